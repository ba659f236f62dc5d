"""The placement simulation: pods packed onto nodes as the scheduler would, not a GPU sum."""

from __future__ import annotations

import pytest

from infra.deployment.checked import check_stack, check_stack_values
from infra.deployment.placement import format_placement, node_allocatable, place
from infra.stack.errors import StackConfigError
from infra.stack.instances import CATALOG, efa_per_pod
from tests.conftest import PROJECT_ROOT

from .helpers import values


def _checked(raw: dict):
    return check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)


def test_a_gpu_sum_that_fits_but_pods_that_do_not_fails_naming_the_pods() -> None:
    raw = values()
    raw["models"] = [raw["models"][1]]  # gpt-oss disagg on h100 (p5, 8 GPUs a node)
    model = raw["models"][0]
    model["prefill"] = {"gpusPerWorker": 5, "replicas": 2}
    model["decode"] = {"gpusPerWorker": 5, "replicas": 1}
    # 16 GPUs >= 15 asked, but each node holds one 5-GPU pod
    raw["nodePools"][1] |= {"desiredSize": 2, "maxSize": 2}
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    (issue,) = [i for i in caught.value.issues if i.path == "nodePools[1].desiredSize"]
    assert "the scheduler cannot place gpt-oss-120b/blue" in issue.message
    assert "its pods need 3 p5.48xlarge nodes, desiredSize is 2" in issue.message


def test_a_fixed_node_group_is_counted_at_desired_size_not_max_size() -> None:
    """Nothing adds a node to a managed node group that is not autoscaled: room up to maxSize
    is not room the scheduler has."""
    raw = values()
    raw["models"] = [raw["models"][1]]
    raw["models"][0]["prefill"] = {"gpusPerWorker": 4, "replicas": 4}
    raw["models"][0]["decode"] = {"gpusPerWorker": 4, "replicas": 2}
    raw["nodePools"][1] |= {"desiredSize": 2, "maxSize": 4}  # two 4-GPU pods a node: 3 nodes
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    (issue,) = [i for i in caught.value.issues if i.path == "nodePools[1].desiredSize"]
    assert "desiredSize is 2" in issue.message and "exactly desiredSize nodes" in issue.message

    raw["nodePools"][1]["autoscaled"] = True  # an autoscaler the user runs grows it to maxSize
    checked = _checked(raw)
    (warning,) = [w for w in checked.warnings if w.path == "nodePools[1].autoscaled"]
    assert "cluster-autoscaler" in warning.message


def test_efa_interfaces_follow_a_pods_share_of_the_gpus() -> None:
    p5 = CATALOG["p5.48xlarge"]
    assert [efa_per_pod(p5, g) for g in (1, 4, 8)] == [4, 16, 32]
    assert efa_per_pod(CATALOG["p4d.24xlarge"], 1) == 1  # at least one
    # Two 4-GPU pods on one p5: with all 32 interfaces each, the second would need a new node.
    prod = check_stack(PROJECT_ROOT, "prod").deployment
    (h100,) = [p for p in place(prod) if p.pool.name == "h100"]
    shared = [n for n in h100.nodes if len(n.pods) == 2]
    assert shared and all("gpt-oss-120b/blue" in pod for pod in shared[0].pods)
    assert h100.nodes_needed == 6 <= h100.pool.max_size


def test_multinode_workers_are_placed_all_or_nothing() -> None:
    raw = values()
    raw["models"] = [
        raw["models"][1]
        | {
            "topology": "disagg-multinode",
            "source": {"s3": {"uri": "s3://bucket/model", "sizeGib": 10}},
            "prefill": {"gpusPerWorker": 8, "nodes": 2},
            "decode": {"gpusPerWorker": 8, "nodes": 2},
        }
    ]
    raw["nodePools"][1] |= {"desiredSize": 3, "maxSize": 3}  # one gang of two, not the second
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    messages = [i.message for i in caught.value.issues if i.path == "nodePools[1].desiredSize"]
    assert messages and "(2 nodes)" in messages[0] and "need 4" in messages[0]


def test_allocatable_is_what_is_left_after_the_kubelet_reservations() -> None:
    g6e = node_allocatable(CATALOG["g6e.12xlarge"], efa=False)
    assert g6e.gpus == 4 and g6e.efa == 0
    assert 47_000 < g6e.cpu_millis < 48_000  # 48 vCPUs less ~0.2 reserved
    assert g6e.memory_mib < 384 * 1024


def test_plan_shows_the_placement_per_pool() -> None:
    prod = check_stack(PROJECT_ROOT, "prod").deployment
    text = format_placement(place(prod))
    assert "pool h100 (p5.48xlarge): 6 of 6 nodes used (desiredSize), 6 needed" in text
    assert "node 6: gpt-oss-120b/blue decode #1, gpt-oss-120b/blue prefill #1" in text


def test_downloads_from_the_hub_must_fit_the_nodes_disk() -> None:
    """Each worker pod downloads the whole checkpoint into pod storage on its node's disk,
    which no request makes the scheduler count: two gpt-oss pods on a node hold two copies."""
    raw = values()
    raw["models"] = [raw["models"][1]]  # gpt-oss-120b from Hugging Face, prefill + decode
    raw["nodePools"][1] |= {"localNvmeRaid0": False, "rootVolumeGib": 200}
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    (issue,) = [i for i in caught.value.issues if i.path == "nodePools[1].rootVolumeGib"]
    assert "from the Hugging Face hub into pod storage" in issue.message
    assert "its 200 GiB root volume less 100 GiB" in issue.message
    raw["nodePools"][1] |= {"localNvmeRaid0": True}  # p5's 8 × 3.84 TB array takes them
    _checked(raw)


def test_each_cached_slot_needs_a_node_of_its_own_for_its_exclusive_dataset() -> None:
    raw = values()
    model = raw["models"][1]  # gpt-oss disagg on h100, both slots from the S3-backed cache
    model["source"] = {"s3": {"uri": "s3://bucket/gpt-oss-120b", "sizeGib": 65}}
    model["slots"] = {"blue": {}, "green": {"prefill": {"replicas": 0}, "decode": {"replicas": 0}}}
    raw["models"] = [model]
    raw["nodePools"][1] |= {"minSize": 1, "desiredSize": 1, "maxSize": 1}  # blue fits one node
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    (issue,) = [i for i in caught.value.issues if "Exclusive" in i.message]
    assert issue.path == "nodePools[1].desiredSize"
    assert "caches 2 Datasets (gpt-oss-120b/blue, gpt-oss-120b/green) on 1 nodes" in issue.message
    raw["nodePools"][1] |= {"desiredSize": 2, "maxSize": 2}
    _checked(raw)
