"""Each topology's DGD follows the shape of Dynamo's own TensorRT-LLM example of that name.

The upstream examples are the operator's conventions in practice: which services exist, their
component types, the worker entry point and flags, where the router mode and GPUs are set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.dgd import GraphInputs, WorkerParallelism, build_dgd
from infra.stack.model_config import Model

UPSTREAM_EXAMPLE = {
    "agg": "agg.yaml",
    "agg-router": "agg_router.yaml",
    "disagg": "disagg.yaml",
    "disagg-router": "disagg_router.yaml",
    "disagg-multinode": "disagg-multinode.yaml",
}
# Flags we add on purpose: the parallel layout read from the engine config (see WorkerParallelism).
OUR_EXTRA_FLAGS = {
    "--tensor-parallel-size",
    "--pipeline-parallel-size",
    "--gpus-per-node",
    "--expert-parallel-size",
    # the engine's tokens_per_block, so the KV router hashes blocks as the engine does
    "--kv-block-size",
}


def upstream_graph(reference: Path, topology: str) -> dict:
    path = reference / "dynamo-examples" / "trtllm" / UPSTREAM_EXAMPLE[topology]
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return next(d for d in documents if d["kind"] == "DynamoGraphDeployment")


def our_graph(topology: str) -> dict:
    roles: dict = {}
    if topology == "disagg-multinode":
        roles = {r: {"gpusPerWorker": 4, "nodes": 2} for r in ("prefill", "decode")}
    model = Model.model_validate(
        {
            "name": "qwen3",
            "source": {"s3": {"uri": "s3://bucket/qwen3", "sizeGib": 2}}
            if topology == "disagg-multinode"
            else {"huggingFace": "Qwen/Qwen3-0.6B"},
            "servedModelName": "Qwen/Qwen3-0.6B",
            "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.1.0",
            "topology": topology,
            **roles,
        }
    )
    layout = WorkerParallelism(tensor=8 if roles else 1, gpus_per_node=4 if roles else 1)
    inputs = GraphInputs(
        namespace="qwen3",
        engine_config_map="qwen3-blue-engine-config",
        engine_config_hash="0",
        parallelism={role: layout for role in model.topology.roles},
        hf_token_secret="hf-token-secret",
        model_pvc="weights-blue" if roles else None,
    )
    return build_dgd(model, "blue", inputs)


def workers_by_mode(graph: dict) -> dict[str, dict]:
    """Worker services keyed by the disaggregation mode their args ask for (agg when none)."""
    workers = {}
    for service in graph["spec"]["services"].values():
        if service["componentType"] == "frontend":
            continue
        args = service["extraPodSpec"]["mainContainer"].get("args", [])
        mode = (
            args[args.index("--disaggregation-mode") + 1]
            if "--disaggregation-mode" in args
            else "agg"
        )
        workers[mode] = service
    return workers


def frontend(graph: dict) -> dict:
    return next(s for s in graph["spec"]["services"].values() if s["componentType"] == "frontend")


def router_mode(service: dict) -> str:
    for env in service.get("envs", []):
        if env["name"] == "DYN_ROUTER_MODE":
            return str(env["value"])
    args = service["extraPodSpec"]["mainContainer"].get("args", [])
    return args[args.index("--router-mode") + 1] if "--router-mode" in args else "round-robin"


def flags(service: dict) -> set[str]:
    args = service["extraPodSpec"]["mainContainer"].get("args", [])
    return {a for a in args if a.startswith("--")}


@pytest.mark.parametrize("topology", sorted(UPSTREAM_EXAMPLE))
def test_services_and_component_types_match_upstream(reference: Path, topology: str) -> None:
    upstream, ours = upstream_graph(reference, topology), our_graph(topology)
    assert set(workers_by_mode(ours)) == set(workers_by_mode(upstream))
    assert len(ours["spec"]["services"]) == len(upstream["spec"]["services"])
    for mode, theirs in workers_by_mode(upstream).items():
        mine = workers_by_mode(ours)[mode]
        assert mine["componentType"] == theirs["componentType"]
        if "subComponentType" in theirs:
            assert mine["subComponentType"] == theirs["subComponentType"]
    assert ours["spec"]["backendFramework"] == "trtllm"


@pytest.mark.parametrize("topology", sorted(UPSTREAM_EXAMPLE))
def test_worker_entry_point_and_flags_match_upstream(reference: Path, topology: str) -> None:
    upstream, ours = upstream_graph(reference, topology), our_graph(topology)
    for mode, theirs in workers_by_mode(upstream).items():
        mine = workers_by_mode(ours)[mode]
        their_container = theirs["extraPodSpec"]["mainContainer"]
        assert mine["extraPodSpec"]["mainContainer"]["command"] == their_container["command"]
        assert flags(mine) - OUR_EXTRA_FLAGS == flags(theirs), mode
        assert mine.get("envFromSecret") == theirs.get("envFromSecret")


@pytest.mark.parametrize("topology", sorted(UPSTREAM_EXAMPLE))
def test_router_mode_matches_upstream(reference: Path, topology: str) -> None:
    upstream, ours = upstream_graph(reference, topology), our_graph(topology)
    assert router_mode(frontend(ours)) == router_mode(frontend(upstream))


@pytest.mark.parametrize("topology", sorted(UPSTREAM_EXAMPLE))
def test_gpus_are_limits_and_multinode_matches_upstream(reference: Path, topology: str) -> None:
    upstream, ours = upstream_graph(reference, topology), our_graph(topology)
    for mode, theirs in workers_by_mode(upstream).items():
        mine = workers_by_mode(ours)[mode]
        assert mine["resources"]["limits"]["gpu"] == theirs["resources"]["limits"]["gpu"]
        assert mine.get("multinode") == theirs.get("multinode")
        if "multinode" in theirs:
            # Every node of a multinode worker reads the same weights from one shared volume.
            assert [m["mountPoint"] for m in mine["volumeMounts"]] == [
                m["mountPoint"] for m in theirs["volumeMounts"]
            ]
    their_envs = {e["name"] for e in upstream["spec"].get("envs", [])}
    our_envs = {e["name"] for e in ours["spec"].get("envs", [])}
    # HF_HOME points upstream's Hugging Face cache at the shared volume; we mount the weights
    # themselves there and pass that path as --model-path instead.
    assert their_envs - {"HF_HOME"} == our_envs
