"""EFA done right: interfaces, huge pages and libfabric's environment on EFA pods; multinode
workers refused without EFA unless TCP is accepted; the EFA image variant on EFA pools."""

from __future__ import annotations

import pytest

from components.dgd_parts import efa_envs
from infra.deployment.checked import check_stack_values
from infra.stack.errors import StackConfigError
from tests.conftest import PROJECT_ROOT, Rendered

from .helpers import values


def _multinode(efa: bool | None) -> dict:
    raw = values()
    model = raw["models"][1]
    model |= {
        "topology": "disagg-multinode",
        "source": {"s3": {"uri": "s3://bucket/model", "sizeGib": 10}},
        "prefill": {
            "gpusPerWorker": 8,
            "nodes": 2,
            "engineConfig": "engine_configs/deepseek-r1/prefill.yaml",
        },
        "decode": {
            "gpusPerWorker": 8,
            "nodes": 2,
            "engineConfig": "engine_configs/deepseek-r1/decode.yaml",
        },
        "plan": {"architecture": "deepseek-ai/DeepSeek-R1"},
    }
    raw["models"] = [model]
    raw["nodePools"][1] |= {"desiredSize": 8, "maxSize": 8, "availabilityZone": "us-west-2a"}
    if efa is not None:
        raw["nodePools"][1]["efa"] = efa
    return raw


def test_prods_efa_pods_ask_their_share_and_set_libfabrics_environment(
    rendered: dict[str, Rendered],
) -> None:
    graphs = {d["metadata"]["name"]: d for d in rendered["prod"].objects("DynamoGraphDeployment")}
    prefill = graphs["gpt-oss-120b-blue"]["spec"]["services"]["prefill"]  # 4 of a p5's 8 GPUs
    custom = prefill["resources"]["limits"]["custom"]
    assert custom == {"vpc.amazonaws.com/efa": "16", "hugepages-2Mi": "2560Mi"}
    assert {"name": "FI_PROVIDER", "value": "efa"} in prefill["envs"]
    image = prefill["extraPodSpec"]["mainContainer"]["image"]
    assert image.endswith("-efa-amd64")
    qwen = graphs["qwen3-0-6b-blue"]["spec"]["services"]["TRTLLMWorker"]  # not an EFA pool
    assert "custom" not in qwen.get("resources", {}).get("limits", {})
    assert not [e for e in qwen["envs"] if e["name"].startswith("FI_")]


def test_multinode_workers_without_efa_are_refused_unless_tcp_is_accepted() -> None:
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(_multinode(None), "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    assert any(
        i.path == "nodePools[1].efa" and "run over TCP" in i.message for i in caught.value.issues
    )
    accepted = check_stack_values(_multinode(False), "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    assert any("over TCP (efa: false)" in w.message for w in accepted.warnings)
    assert not [w for w in accepted.warnings if w.path == "nodePools[1].availabilityZone"]
    # ... and without a zone a group may straddle two
    spread = _multinode(False)
    del spread["nodePools"][1]["availabilityZone"]
    accepted = check_stack_values(spread, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    zones = [w.message for w in accepted.warnings if w.path == "nodePools[1].availabilityZone"]
    assert len(zones) == 2 and all("cross-zone" in z for z in zones)  # prefill and decode


def test_the_plain_image_is_refused_for_multinode_workers_and_a_warning_otherwise() -> None:
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(_multinode(True), "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (error,) = {i for i in caught.value.issues if "-efa-amd64" in i.message}
    assert error.path == "models[0].image" and "(NCCL" in error.message
    single = values()  # gpt-oss disagg, one node per worker
    single["models"] = [single["models"][1]]
    single["nodePools"][1] |= {"efa": True, "availabilityZone": "us-west-2a"}
    checked = check_stack_values(single, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (warning,) = [w for w in checked.warnings if "-efa-amd64" in w.message]
    assert warning.path == "models[0].image" and "NCCL" not in warning.message


def test_the_image_warning_points_where_the_image_is_set() -> None:
    raw = _multinode(True)
    raw["models"][0]["image"] = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0-efa-amd64"
    raw["models"][0]["slots"] = {
        "blue": {},
        "green": {
            "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.1",
            "prefill": {"replicas": 0},
            "decode": {"replicas": 0},
        },
    }
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (warning,) = {i for i in caught.value.issues if "-efa-amd64" in i.message}
    assert warning.path == "models[0].slots.green.image"


def test_gpudirect_rdma_is_asked_for_only_where_the_efa_device_reads_peer_memory() -> None:
    """libfabric aborts a worker that sets FI_EFA_USE_DEVICE_RDMA=1 on an EFA device without RDMA
    read (a g6e's): there it is left to libfabric, on a p5 it is set."""
    raw = values()
    raw["models"] = [raw["models"][1]]
    raw["nodePools"][1] |= {
        "instanceType": "g6e.48xlarge",
        "efa": True,
        "availabilityZone": "us-west-2a",
    }
    checked = check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    assert checked.deployment is not None
    placements = [r.placement for r in checked.deployment.models[0].roles.values()]
    assert placements and all(p is not None and p.efa_interfaces for p in placements)
    for placement in placements:
        assert placement is not None
        names = {e["name"] for e in efa_envs(placement)}
        assert "FI_EFA_USE_DEVICE_RDMA" not in names and "FI_PROVIDER" in names
        assert "FI_EFA_USE_HUGE_PAGE" not in names  # a managed pool's pods have huge pages


def test_the_device_plugins_that_serve_gpu_nodes_tolerate_their_taint(
    rendered: dict[str, Rendered],
) -> None:
    """Every GPU pool is tainted nvidia.com/gpu: a DaemonSet without the toleration never lands
    there, and no EFA interface is advertised (EFA workers stay Pending) or GPU measured."""
    prod = rendered["prod"]
    releases = {
        r["name"]: prod.load(r)["values"]
        for r in prod.index
        if r["type"] == "kubernetes:helm.sh/v3:Release"
    }
    gpu = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    for release in ("aws-efa-k8s-device-plugin", "dcgm-exporter"):
        assert gpu in releases[release]["tolerations"], release
    # ... and dcgm-exporter stays off the CPU nodes, where it has no GPU to measure.
    terms = releases["dcgm-exporter"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    assert {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]} in [
        t["matchExpressions"][0] for t in terms
    ]
