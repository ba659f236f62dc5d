"""Each upstream v1beta1 TensorRT-LLM example (Dynamo 1.2.0) has a graph we build in its shape.

The v1beta1 twin of test_dgd_topologies.py: the same comparisons (components and their types,
the worker entry point and flags, router mode, GPUs, multinode, the shared weights volume), read
from v1beta1's pod templates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.dgd import GraphInputs, WorkerParallelism, build_graph_manifest
from infra.stack.dynamo_versions import DGD_V1BETA1
from infra.stack.model_config import Model
from tests.conformance.test_dgd_topologies import OUR_EXTRA_FLAGS

# Upstream example -> the topology of ours it corresponds to. Not compared anywhere, because we
# do not emit them: agg's ephemeral-storage request, upstream's workingDirs and subPath mounts.
UPSTREAM_EXAMPLE = {
    "agg.yaml": "agg",
    # The agg graph with its engine config in a ConfigMap, as we always ship it.
    "agg-with-config.yaml": "agg",
    "agg_router.yaml": "agg-router",
    "disagg.yaml": "disagg",
    "disagg_router.yaml": "disagg-router",
    "disagg-multinode.yaml": "disagg-multinode",
    # Left out, as we emit none of it: the Planner component and its profile ConfigMap, the
    # frontend's KV routing without KV events, the workers' probes and grace period.
    "disagg_planner.yaml": "disagg",
}
NOT_EMITTED_TYPES = {"planner"}
NOT_EMITTED_ROUTING = {"disagg_planner.yaml"}
# The examples that ship their engine configs in a ConfigMap, as we always do (the others read
# files baked into the image).
CONFIG_MAP_EXAMPLES = ["agg-with-config.yaml", "disagg-multinode.yaml"]
WORKER_TYPES = {"worker", "prefill", "decode"}


def upstream_graph(reference: Path, example: str) -> dict:
    path = reference / "dynamo-1.2.0" / "examples" / "deploy" / "v1beta1" / example
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    graph = next(d for d in documents if d["kind"] == "DynamoGraphDeployment")
    assert graph["apiVersion"] == DGD_V1BETA1
    return dict(graph)


def our_graph(example: str) -> dict:
    topology = UPSTREAM_EXAMPLE[example]
    roles: dict = {}
    if topology == "disagg-multinode":
        roles = {r: {"gpusPerWorker": 4, "nodes": 2} for r in ("prefill", "decode")}
    model = Model.model_validate(
        {
            "name": "qwen3",
            "source": {"s3": {"uri": "s3://bucket/qwen3", "sizeGib": 2}}
            if roles
            else {"huggingFace": "Qwen/Qwen3-0.6B"},
            "servedModelName": "Qwen/Qwen3-0.6B",
            "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0",
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
        dgd_api_version=DGD_V1BETA1,
    )
    return build_graph_manifest(model, "blue", inputs)


def emitted(graph: dict) -> list[dict]:
    return [c for c in graph["spec"]["components"] if c.get("type") not in NOT_EMITTED_TYPES]


def main_container(component: dict) -> dict:
    containers = component["podTemplate"]["spec"]["containers"]
    return dict(next(c for c in containers if c["name"] == "main"))


def argv(component: dict) -> list[str]:
    """Command and args as one line: upstream splits `python3 -m <module>` either way."""
    main = main_container(component)
    return [*main.get("command", []), *main.get("args", [])]


def entry_point(component: dict) -> list[str]:
    line = argv(component)
    flags = [i for i, a in enumerate(line) if a.startswith("--")]
    return line[: flags[0]] if flags else line


def flags(component: dict) -> set[str]:
    return {a for a in argv(component) if a.startswith("--")}


def workers_by_mode(graph: dict) -> dict[str, dict]:
    """Worker components keyed by the disaggregation mode their args ask for (agg when none)."""
    workers = {}
    for component in emitted(graph):
        if component["type"] not in WORKER_TYPES:
            continue
        line = argv(component)
        mode = (
            line[line.index("--disaggregation-mode") + 1]
            if "--disaggregation-mode" in line
            else "agg"
        )
        workers[mode] = component
    return workers


def frontend(graph: dict) -> dict:
    return next(c for c in graph["spec"]["components"] if c["type"] == "frontend")


def router_mode(component: dict) -> str:
    for env in main_container(component).get("env", []):
        if env["name"] == "DYN_ROUTER_MODE":
            return str(env["value"])
    line = argv(component)
    return line[line.index("--router-mode") + 1] if "--router-mode" in line else "round-robin"


def volume_mounts(component: dict, source: str) -> list[str]:
    """Mount paths of the main container's volumes of one source (persistentVolumeClaim...)."""
    volumes = {v["name"]: v for v in component["podTemplate"]["spec"].get("volumes", [])}
    return sorted(
        m["mountPath"]
        for m in main_container(component).get("volumeMounts", [])
        if source in volumes.get(m["name"], {})
    )


def engine_args_from_config_map(component: dict) -> bool:
    line = argv(component)
    path = line[line.index("--extra-engine-args") + 1]
    return any(path.startswith(mount) for mount in volume_mounts(component, "configMap"))


@pytest.mark.parametrize("example", sorted(UPSTREAM_EXAMPLE))
def test_components_names_and_types_match_upstream(reference: Path, example: str) -> None:
    upstream, ours = upstream_graph(reference, example), our_graph(example)
    assert {c["name"] for c in emitted(ours)} == {c["name"] for c in emitted(upstream)}
    assert set(workers_by_mode(ours)) == set(workers_by_mode(upstream))
    for mode, theirs in workers_by_mode(upstream).items():
        mine = workers_by_mode(ours)[mode]
        # Upstream types prefill/decode where its v1alpha1 twin set subComponentType, and keeps
        # `worker` where it did not; we always set the sub type, so only the first must match.
        if theirs["type"] in ("prefill", "decode"):
            assert mine["type"] == theirs["type"], mode
    assert ours["spec"]["backendFramework"] == upstream["spec"].get("backendFramework", "trtllm")


@pytest.mark.parametrize("example", sorted(UPSTREAM_EXAMPLE))
def test_worker_entry_point_and_flags_match_upstream(reference: Path, example: str) -> None:
    upstream, ours = upstream_graph(reference, example), our_graph(example)
    for mode, theirs in workers_by_mode(upstream).items():
        mine = workers_by_mode(ours)[mode]
        assert entry_point(mine) == entry_point(theirs)
        assert flags(mine) - OUR_EXTRA_FLAGS == flags(theirs), mode
        assert main_container(mine).get("envFrom") == main_container(theirs).get("envFrom")


@pytest.mark.parametrize("example", sorted(set(UPSTREAM_EXAMPLE) - NOT_EMITTED_ROUTING))
def test_router_mode_matches_upstream(reference: Path, example: str) -> None:
    upstream, ours = upstream_graph(reference, example), our_graph(example)
    assert router_mode(frontend(ours)) == router_mode(frontend(upstream))


@pytest.mark.parametrize("example", sorted(UPSTREAM_EXAMPLE))
def test_gpus_are_limits_and_multinode_matches_upstream(reference: Path, example: str) -> None:
    upstream, ours = upstream_graph(reference, example), our_graph(example)
    for mode, theirs in workers_by_mode(upstream).items():
        mine = workers_by_mode(ours)[mode]
        their_gpus = main_container(theirs)["resources"]["limits"]["nvidia.com/gpu"]
        assert main_container(mine)["resources"]["limits"]["nvidia.com/gpu"] == their_gpus
        assert mine.get("multinode") == theirs.get("multinode")
        if "multinode" in theirs:
            # Every node of a multinode worker reads the same weights from one claim.
            assert volume_mounts(mine, "persistentVolumeClaim") == volume_mounts(
                theirs, "persistentVolumeClaim"
            )
    their_envs = {e["name"] for e in upstream["spec"].get("env", [])}
    our_envs = {e["name"] for e in ours["spec"].get("env", [])}
    # HF_HOME points upstream's Hugging Face cache at the shared volume; we mount the weights
    # themselves there and pass that path as --model-path instead.
    assert their_envs - {"HF_HOME"} == our_envs


@pytest.mark.parametrize("example", CONFIG_MAP_EXAMPLES)
def test_engine_config_comes_from_a_config_map_as_upstream_mounts_one(
    reference: Path, example: str
) -> None:
    upstream, ours = upstream_graph(reference, example), our_graph(example)
    for mode, theirs in workers_by_mode(upstream).items():
        # Upstream's relative --extra-engine-args paths do not all land in its mount, so only
        # the mount is read there; ours must point into it.
        assert volume_mounts(theirs, "configMap"), mode
        assert engine_args_from_config_map(workers_by_mode(ours)[mode]), mode
