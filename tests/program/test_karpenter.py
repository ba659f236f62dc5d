"""Karpenter as `pulumi up` registers it for prod: the autoscaled L40S pool on Karpenter, the
capacity-block p5 pool still a managed node group; and dev's L4 pool from zero."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Project, Rendered
from tests.dgd_layouts import services

from .registrations import Registrations, record_render

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
NODE_POOL = "kubernetes:karpenter.sh/v1:NodePool"
NODE_CLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
RELEASE = "kubernetes:helm.sh/v3:Release"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


def test_the_karpenter_pool_has_no_node_group_and_the_managed_pool_keeps_its_own(
    prod: Registrations,
) -> None:
    assert [r.name for r in prod.of_type(NODE_GROUP) if r.name.startswith("pool-")] == ["pool-h100"]
    h100 = prod.inputs(NODE_GROUP, "pool-h100")
    assert h100["capacityType"] == "CAPACITY_BLOCK"
    assert h100["scalingConfig"] == {"desiredSize": 6, "maxSize": 8, "minSize": 6}
    assert [r.name for r in prod.of_type(NODE_POOL)] == ["pool-l40s"]


def test_the_l40s_node_pool_is_limited_to_max_size_gpus_and_waits_for_the_controller(
    prod: Registrations,
) -> None:
    pool = prod.inputs(NODE_POOL, "pool-l40s")
    assert pool["spec"]["limits"] == {"nvidia.com/gpu": "32"}  # 8 g6e.12xlarge x 4 GPUs
    labels = pool["spec"]["template"]["metadata"]["labels"]
    assert labels["dynamo-trtllm.io/node-pool"] == "l40s"
    registration = prod.one(NODE_POOL, "pool-l40s")
    controller = prod.one(RELEASE, "karpenter")
    node_class = prod.one(NODE_CLASS, "pool-l40s-class")
    for prerequisite in (controller, node_class):
        assert any(d.endswith(prerequisite.urn_suffix) for d in registration.dependencies)
    assert registration.provider.split("::")[-1].startswith("cluster-k8s")


def test_karpenter_nodes_join_by_an_access_entry_and_the_controller_by_irsa(
    prod: Registrations,
) -> None:
    entry = prod.inputs(ACCESS_ENTRY, "karpenter-nodes")
    assert entry["type"] == "EC2_LINUX"
    values = prod.render.load(
        next(r for r in prod.render.index if r["type"] == RELEASE and r["name"] == "karpenter")
    )["values"]
    assert values["settings"] == {
        "clusterName": "dynamo-prod",
        "interruptionQueue": "dynamo-prod",
    }
    assert values["serviceAccount"]["name"] == "karpenter"
    assert values["nodeSelector"] == {"dynamo-trtllm.io/node-role": "system"}
    role = prod.inputs("aws:iam/role:Role", "karpenter-controller")
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:kube-system:karpenter" in trust.values()


def test_the_controller_policy_has_no_wildcard_action(prod: Registrations) -> None:
    policy = json.loads(
        prod.inputs("aws:iam/rolePolicy:RolePolicy", "karpenter-controller")["policy"]
    )
    actions = [
        action
        for statement in policy["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    ]
    assert actions and not [a for a in actions if a == "*" or a.endswith(":*")]
    assert all(s["Effect"] == "Allow" for s in policy["Statement"])
    # Its region is the cluster's.
    assert "arn:aws:ssm:us-east-1::parameter/aws/service/*" in json.dumps(policy)


def test_the_interruption_queue_receives_every_interruption_event(prod: Registrations) -> None:
    queue = prod.inputs("aws:sqs/queue:Queue", "karpenter-interruptions")
    assert queue["messageRetentionSeconds"] == 300 and queue["sqsManagedSseEnabled"] is True
    rules = {r.name for r in prod.of_type("aws:cloudwatch/eventRule:EventRule")}
    targets = {r.name for r in prod.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    assert len(rules) == 5 and targets == rules
    policy = json.loads(
        prod.inputs("aws:sqs/queuePolicy:QueuePolicy", "karpenter-interruptions")["policy"]
    )
    assert any(s.get("Sid") == "DenyHTTP" for s in policy["Statement"])


def _holds(render: Rendered) -> dict[str, str | None]:
    """Each worker service's Karpenter hold, by graph/service."""
    return {
        f"{dgd['metadata']['name']}/{name}": view.pod_annotations.get(DO_NOT_DISRUPT)
        for dgd in render.objects("DynamoGraphDeployment")
        for name, view in services(dgd).items()
        if view.is_worker
    }


def test_workers_on_karpenter_pools_ask_not_to_be_moved_while_loading(
    rendered: dict[str, Rendered],
) -> None:
    """dev's worker is held for its cold-start budget; prod's workers on the managed p5 pool
    carry nothing of Karpenter's, its Qwen workers on the L40S pool do."""
    (dev_hold,) = _holds(rendered["dev"]).values()
    assert dev_hold is not None and dev_hold.endswith("s") and int(dev_hold[:-1]) >= 1200
    prod = _holds(rendered["prod"])
    assert {name for name, hold in prod.items() if hold} == {
        name for name in prod if name.startswith("qwen3-0-6b")
    }


def test_dev_starts_with_no_gpu_node(rendered: dict[str, Rendered]) -> None:
    dev = rendered["dev"]
    assert not [r for r in dev.of_type(NODE_GROUP) if r["name"].startswith("pool-")]
    (pool,) = dev.objects("NodePool")
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"


def test_an_efa_pool_on_karpenter_gets_its_placement_group_and_efa_security_group(
    project: Project, tmp_path: Path
) -> None:
    """prod's p5 pool moved to Karpenter (on-demand): its EC2NodeClass selects a cluster placement
    group and the EFA security group beside the cluster's, and its workers ask for EFA
    interfaces but no huge pages, with libfabric told to do without."""
    config = project.stack_config("prod")
    h100 = config["dynamo-trtllm:nodePools"][0]
    for managed_only in ("minSize", "desiredSize", "capacityType", "capacityReservationId"):
        h100.pop(managed_only, None)
    h100["provisioner"] = "karpenter"
    project.write_stack("prod", config)
    moved = record_render("prod", tmp_path / "prod", project.root)

    node_class = moved.inputs(NODE_CLASS, "pool-h100-class")["spec"]
    assert node_class["placementGroupSelector"]["name"]
    groups = [term["id"] for term in node_class["securityGroupSelectorTerms"]]
    assert len(groups) == 2  # the cluster's and the pool's EFA group
    assert "capacityReservationSelectorTerms" not in node_class
    assert moved.of_type("aws:ec2/placementGroup:PlacementGroup")
    assert [r.name for r in moved.of_type("aws:ec2/securityGroup:SecurityGroup")].count(
        "pool-h100-efa"
    ) == 1
    assert sorted(r.name for r in moved.of_type(NODE_POOL)) == ["pool-h100", "pool-l40s"]

    dgd = next(
        d
        for d in moved.render.objects("DynamoGraphDeployment")
        if d["metadata"]["name"] == "gpt-oss-120b-blue"
    )
    prefill = dgd["spec"]["services"]["prefill"]
    assert prefill["resources"]["limits"]["custom"] == {"vpc.amazonaws.com/efa": "16"}
    envs = {e["name"]: e["value"] for e in prefill["envs"]}
    assert envs["FI_EFA_USE_HUGE_PAGE"] == "0" and envs["FI_EFA_USE_DEVICE_RDMA"] == "1"
