"""Karpenter pools: what the stack file may say, the NodePool and EC2NodeClass built from it, the
controller's IAM, and the placement simulation counting a Karpenter pool at its limit."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.karpenter import build_karpenter_values
from components.karpenter_iam import INTERRUPTION_EVENTS, controller_policy
from components.karpenter_pool import ami_alias, build_ec2_node_class, build_node_pool
from infra.deployment.checked import check_stack_values
from infra.stack.errors import StackConfigError
from infra.stack.instances import CATALOG, pool_gpus
from infra.stack.pool_config import NodePool, karpenter_controller_replicas
from tests.conftest import PROJECT_ROOT

from .helpers import values

KARPENTER_L4 = {"name": "l4", "instanceType": "g6.xlarge", "provisioner": "karpenter", "maxSize": 2}


def _checked(raw: dict) -> Any:
    return check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)


def _issues(raw: dict) -> dict[str, str]:
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    return {i.path: i.message for i in caught.value.issues if i.severity == "error"}


def _with_l4(pool: dict) -> dict:
    raw = values()
    raw["nodePools"][0] = pool
    return raw


def test_a_karpenter_pool_is_accepted_with_a_limit_alone() -> None:
    checked = _checked(_with_l4(KARPENTER_L4))
    (pool,) = [p for p in checked.config.node_pools if p.name == "l4"]
    assert pool.karpenter_managed and pool.karpenter.consolidate_after == "10m"


def test_a_karpenter_pool_without_max_size_is_refused() -> None:
    pool = {k: v for k, v in KARPENTER_L4.items() if k != "maxSize"}
    issues = _issues(_with_l4(pool))
    assert "GPU limit" in issues["nodePools[0].maxSize"]


@pytest.mark.parametrize("key", ["minSize", "desiredSize", "autoscaled", "maxUnavailable"])
def test_managed_node_group_settings_on_a_karpenter_pool_are_refused(key: str) -> None:
    value: Any = True if key == "autoscaled" else 1
    issues = _issues(_with_l4(KARPENTER_L4 | {key: value}))
    assert "managed-node-group setting" in issues[f"nodePools[0].{key}"]


def test_karpenter_settings_on_a_managed_pool_are_refused() -> None:
    raw = values()
    raw["nodePools"][0]["karpenter"] = {"consolidateAfter": "5m"}
    assert "provisioner karpenter only" in _issues(raw)["nodePools[0].karpenter"]


def test_an_efa_pool_on_karpenter_runs_its_workers_without_huge_pages() -> None:
    """Karpenter launches no node for a pod asking for huge pages: its EFA workers ask for their
    interfaces alone, and libfabric keeps its buffers off huge pages."""
    raw = values()
    raw["models"] = [raw["models"][1]]  # gpt-oss disagg on the H100 pool
    raw["nodePools"][1] = {
        "name": "h100",
        "instanceType": "p5.48xlarge",
        "provisioner": "karpenter",
        "maxSize": 4,
        "efa": True,
        "availabilityZone": "us-west-2a",
    }
    checked = _checked(raw)
    assert checked.deployment is not None
    (model,) = checked.deployment.models
    for role in model.roles.values():
        assert role.placement is not None
        assert role.placement.efa_interfaces > 0 and role.placement.hugepages_mib == 0
        assert role.placement.karpenter and role.placement.efa_rdma_read


def test_karpenter_on_an_existing_cluster_is_refused() -> None:
    raw = _with_l4(KARPENTER_L4)
    raw["cluster"] = {"mode": "existing"}
    assert "cluster.mode eks" in _issues(raw)["nodePools[0].provisioner"]


def test_a_karpenter_duration_outside_its_syntax_is_refused() -> None:
    raw = _with_l4(KARPENTER_L4 | {"karpenter": {"expireAfter": "30 days"}})
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    assert any("expireAfter" in i.path for i in caught.value.issues)


def _pool(**fields: Any) -> NodePool:
    return NodePool.model_validate(
        {"name": "gpu", "instanceType": "p5.48xlarge", "provisioner": "karpenter", "maxSize": 3}
        | fields
    )


def test_the_ami_alias_pins_the_same_release_as_a_managed_pool() -> None:
    assert ami_alias(_pool(amiReleaseVersion="1.35.6-20260714"), "1.35") == "al2023@v20260714"
    bottlerocket = _pool(amiType="bottlerocket-nvidia", amiReleaseVersion="1.50.0-a1b2c3d4")
    assert ami_alias(bottlerocket, "1.35") == "bottlerocket@v1.50.0"
    assert ami_alias(_pool(amiType="bottlerocket-nvidia"), "1.35") == "bottlerocket@latest"


def test_node_pool_carries_taint_labels_zone_capacity_and_gpu_limit() -> None:
    pool = _pool(
        capacityType="capacity-block",
        capacityReservationId="cr-0123456789abcdef0",
        availabilityZone="us-east-1a",
        labels={"team": "inference"},
    )
    manifest = build_node_pool(pool, CATALOG["p5.48xlarge"])
    spec = manifest["spec"]
    template = spec["template"]
    assert template["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert template["metadata"]["labels"]["dynamo-trtllm.io/node-pool"] == "gpu"
    assert template["metadata"]["labels"]["team"] == "inference"
    requirements = {r["key"]: r["values"] for r in template["spec"]["requirements"]}
    assert requirements == {
        "node.kubernetes.io/instance-type": ["p5.48xlarge"],
        "karpenter.sh/capacity-type": ["reserved"],
        "topology.kubernetes.io/zone": ["us-east-1a"],
    }
    assert spec["limits"] == {"nvidia.com/gpu": "24"}  # 3 nodes x 8 GPUs
    assert spec["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert template["spec"]["expireAfter"] == "Never"


def test_an_on_demand_reservation_is_used_first_then_on_demand() -> None:
    pool = _pool(capacityReservationId="cr-0abc")
    (capacity,) = [
        r
        for r in build_node_pool(pool, CATALOG["p5.48xlarge"])["spec"]["template"]["spec"][
            "requirements"
        ]
        if r["key"] == "karpenter.sh/capacity-type"
    ]
    assert capacity["values"] == ["reserved", "on-demand"]


def test_node_class_carries_image_disks_metadata_reservation_and_placement() -> None:
    pool = _pool(
        capacityType="capacity-block",
        capacityReservationId="cr-0123456789abcdef0",
        rootVolumeGib=500,
        amiReleaseVersion="1.35.6-20260714",
    )
    manifest = build_ec2_node_class(
        pool,
        CATALOG["p5.48xlarge"],
        "1.35",
        "karpenter-node",
        ["subnet-0a"],
        ["sg-cluster"],
        "reserved-group",
        {"stack": "prod"},
    )
    spec = manifest["spec"]
    assert spec["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    assert spec["securityGroupSelectorTerms"] == [{"id": "sg-cluster"}]
    assert spec["metadataOptions"]["httpTokens"] == "required"
    assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
    (volume,) = spec["blockDeviceMappings"]
    assert volume["ebs"]["volumeSize"] == "500Gi" and volume["ebs"]["encrypted"] is True
    assert spec["instanceStorePolicy"] == "RAID0"  # the cache tier's disks, as nodeadm stripes them
    assert spec["capacityReservationSelectorTerms"] == [{"id": "cr-0123456789abcdef0"}]
    assert spec["placementGroupSelector"] == {"name": "reserved-group"}
    assert spec["tags"] == {"stack": "prod", "dynamo-trtllm.io/node-pool": "gpu"}


def test_the_controller_policy_has_no_wildcard_action_and_scopes_every_write() -> None:
    policy = controller_policy(
        "aws", "123456789012", "us-west-2", "dev", "arn:aws:iam::1:role/n", "arn:aws:sqs:q"
    )
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert statement["Effect"] == "Allow"
        assert all(action != "*" and not action.endswith(":*") for action in actions)
        if statement["Resource"] == "*":
            # Only reads that name no resource they could be scoped to.
            verbs = {action.split(":", 1)[1] for action in actions}
            assert all(v.startswith(("Describe", "List", "Get")) for v in verbs), statement
    writes = [s for s in policy["Statement"] if "ec2:TerminateInstances" in str(s["Action"])]
    assert writes[0]["Condition"]["StringEquals"] == {
        "aws:ResourceTag/kubernetes.io/cluster/dev": "owned"
    }


def test_the_interruption_queue_hears_spot_rebalance_health_state_and_reservation_events() -> None:
    assert {source for source, _ in INTERRUPTION_EVENTS.values()} == {"aws.ec2", "aws.health"}
    assert "EC2 Capacity Reservation Instance Interruption Warning" in {
        detail for _, detail in INTERRUPTION_EVENTS.values()
    }


def test_the_controller_never_runs_more_replicas_than_system_nodes() -> None:
    assert [karpenter_controller_replicas(n) for n in (1, 2, 5)] == [1, 2, 2]
    dumped = build_karpenter_values("dev", "dev", "arn:role", 1, {"role": "system"}).dump()
    assert dumped["replicas"] == 1 and dumped["nodeSelector"] == {"role": "system"}
    assert dumped["settings"] == {"clusterName": "dev", "interruptionQueue": "dev"}


def _autoscaled_qwen(pool: dict, max_replicas: int) -> dict:
    raw = values()
    raw["nodePools"][0] = pool
    qwen = raw["models"][0]
    qwen["agg"] = {"autoscaling": {"minReplicas": 1, "maxReplicas": max_replicas}}
    raw["models"] = [qwen]
    raw["observability"] = {"enabled": True}
    return raw


def test_a_worker_autoscaled_past_a_managed_pool_is_refused_and_fits_a_karpenter_pool() -> None:
    managed = {"name": "l4", "instanceType": "g6.xlarge", "minSize": 0, "maxSize": 2}
    managed["desiredSize"] = 2
    issues = _issues(_autoscaled_qwen(managed, 4))  # 4 one-GPU workers, 2 one-GPU nodes
    assert "nodes" in issues["nodePools[0].desiredSize"]
    roomy = copy.deepcopy(KARPENTER_L4) | {"maxSize": 4}
    _checked(_autoscaled_qwen(roomy, 4))  # packed at maxReplicas onto the pool's limit
    issues = _issues(_autoscaled_qwen(copy.deepcopy(KARPENTER_L4), 4))
    assert "nodes" in issues["nodePools[0].maxSize"]  # the limit binds a Karpenter pool too


def test_a_cluster_name_too_long_for_the_interruption_queue_is_refused() -> None:
    raw = _with_l4(KARPENTER_L4)
    raw["cluster"]["name"] = "c" * 81
    assert "80 characters" in _issues(raw)["cluster.name"]


def test_a_spot_pool_with_a_reservation_is_refused() -> None:
    raw = _with_l4(KARPENTER_L4 | {"capacityType": "spot", "capacityReservationId": "cr-0abc"})
    assert "on-demand capacity" in _issues(raw)["nodePools[0].capacityReservationId"]


def test_expiry_without_a_grace_period_is_a_warning() -> None:
    checked = _checked(_with_l4(KARPENTER_L4 | {"karpenter": {"expireAfter": "720h"}}))
    assert any(w.path == "nodePools[0].karpenter.expireAfter" for w in checked.warnings)
    graceful = {"expireAfter": "720h", "terminationGracePeriod": "2h"}
    checked = _checked(_with_l4(KARPENTER_L4 | {"karpenter": graceful}))
    assert not any(w.path == "nodePools[0].karpenter.expireAfter" for w in checked.warnings)


def test_a_worker_whose_memory_cannot_be_derived_must_state_it() -> None:
    raw = values()
    custom = {"gpuProduct": "X1", "gpusPerNode": 1, "gpuMemoryGib": 24}
    raw["nodePools"][0] = {"name": "l4", "instanceType": "x1.large", "gpu": custom, "maxSize": 2}
    raw["nodePools"][0] |= {"minSize": 0, "desiredSize": 1}
    raw["models"] = [raw["models"][0]]
    assert "set memory" in _issues(raw)["models[0].agg.memory"]
    raw["models"][0]["agg"] = {"memory": "32Gi"}
    _checked(raw)


def test_a_model_cache_on_a_karpenter_pool_is_a_warning() -> None:
    raw = _with_l4(KARPENTER_L4)
    raw["models"] = [
        raw["models"][0] | {"source": {"s3": {"uri": "s3://weights-bucket/qwen", "sizeGib": 2}}}
    ]
    checked = _checked(raw)
    (warning,) = [
        w for w in checked.warnings if w.path == "models[0].source" and "Karpenter" in w.message
    ]
    assert "scale to zero never happens" in warning.message


def test_a_capacity_block_on_karpenter_warns_that_drift_cannot_replace_a_node() -> None:
    block = KARPENTER_L4 | {
        "capacityType": "capacity-block",
        "capacityReservationId": "cr-0abc",
        "availabilityZone": "us-west-2a",
    }
    checked = _checked(_with_l4(block))
    (warning,) = [w for w in checked.warnings if w.path == "nodePools[0].capacityType"]
    assert "launches each replacement before it drains" in warning.message
    assert "at a time" not in warning.message  # the managed group's MINIMAL roll is not this


L40S = {
    "name": "l40s",
    "instanceType": "g6e.24xlarge",
    "provisioner": "karpenter",
    "maxSize": 2,
    "alternativeInstanceTypes": ["g6e.12xlarge"],
}


def _with_l40s(pool: dict) -> dict:
    raw = _with_l4(pool)
    raw["models"][0]["nodePool"] = "l40s"
    return raw


def test_a_karpenter_pool_may_launch_alternatives_and_is_planned_as_the_smallest() -> None:
    checked = _checked(_with_l40s(L40S))
    (pool,) = [p for p in checked.config.node_pools if p.name == "l40s"]
    shape = pool_gpus(pool)
    assert shape is not None
    assert (shape.gpu_count, shape.vcpu, shape.memory_gib) == (4, 48, 384)  # a g6e.12xlarge's
    assert shape.efa_interfaces == 1 and shape.nvme_gb == 3800
    (types,) = [
        r["values"]
        for r in build_node_pool(pool, shape)["spec"]["template"]["spec"]["requirements"]
        if r["key"] == "node.kubernetes.io/instance-type"
    ]
    assert types == ["g6e.24xlarge", "g6e.12xlarge"]
    labels = build_node_pool(pool, shape)["spec"]["template"]["metadata"]["labels"]
    assert "dynamo-trtllm.io/instance-type" not in labels  # it may be either
    assert labels["nvidia.com/gpu.present"] == "true"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"alternativeInstanceTypes": ["g6e.48xlarge"]}, "8 x L40S, g6e.24xlarge 4 x L40S"),
        ({"alternativeInstanceTypes": ["g6.12xlarge"]}, "4 x L4"),
        ({"alternativeInstanceTypes": ["g6e.24xlarge"]}, "listed already"),
        ({"alternativeInstanceTypes": ["x9.huge"]}, "not in the GPU instance catalog"),
        ({"provisioner": "managed-node-group", "maxSize": 2}, "for provisioner karpenter only"),
    ],
)
def test_alternatives_that_would_change_a_workers_node_are_refused(
    change: dict, expected: str
) -> None:
    issues = _issues(_with_l40s(L40S | change))
    (message,) = [m for path, m in issues.items() if path.startswith("nodePools[0].alternative")]
    assert expected in message


def test_an_alternative_without_efa_on_an_efa_pool_is_named_alone() -> None:
    """The pool's own type has EFA and the alternative, the same L40S, has none: the alternative
    is reported at its entry, the pool's own type not at all."""
    pool = {
        "name": "l4",
        "instanceType": "g6e.8xlarge",
        "provisioner": "karpenter",
        "maxSize": 2,
        "efa": True,
        "availabilityZone": "us-west-2a",
        "alternativeInstanceTypes": ["g6e.4xlarge"],
    }
    issues = _issues(_with_l4(pool))
    assert "nodePools[0].efa" not in issues
    assert issues["nodePools[0].alternativeInstanceTypes[0]"] == (
        "g6e.4xlarge has no EFA network interface"
    )
