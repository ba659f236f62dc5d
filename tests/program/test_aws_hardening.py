"""prod's AWS foundation as `pulumi up` would register it: one explicit AWS provider, the order
EKS needs, protection, access entries keyed by principal, and kube-system under strict network
policies. Registrations are recorded where the engine would see them (RegisterResource)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.offline.network_reach import External, NetworkPolicies, Pod
from infra.offline.render import mock_id, render_stack
from infra.stack.eks_versions import DEFAULT_ADDON_VERSIONS
from tests.conftest import Project, Rendered

from .registrations import Registrations, record_render

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"


def test_every_aws_resource_names_the_stacks_aws_provider(prod: Registrations) -> None:
    aws = [r for r in prod.all if r.type.startswith("aws:")]
    assert len(aws) > 50
    providers = {r.provider.rsplit("::", 1)[0].rsplit("::", 1)[-1] for r in aws}
    assert providers == {"aws"}  # our provider is named "aws"; a default one is "default_*"
    assert all("pulumi:providers:aws::aws" in r.provider for r in aws)
    settings = prod.inputs("pulumi:providers:aws", "aws")
    assert settings["region"] == "us-east-1"
    assert json.loads(settings["defaultTags"]) == {
        "tags": {
            "project": "dynamo-trtllm",
            "stack": "prod",
            "environment": "prod",
            "cost-centre": "ml-platform",
        }
    }


def test_the_cluster_logs_encrypts_and_is_protected(prod: Registrations) -> None:
    cluster = prod.inputs(CLUSTER, "cluster-eks")
    assert cluster["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    assert cluster["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster["encryptionConfig"]["provider"]["keyArn"].endswith("key/cluster-secrets")
    assert prod.inputs("aws:kms/key:Key", "cluster-secrets")["enableKeyRotation"] is True
    logs = prod.inputs("aws:cloudwatch/logGroup:LogGroup", "cluster-control-plane-logs")
    assert logs == {"name": "/aws/eks/dynamo-prod/cluster", "retentionInDays": 90}
    assert cluster["deletionProtection"] is True
    protected = {(r.type, r.name) for r in prod.all if r.protect}
    assert protected == {
        (CLUSTER, "cluster-eks"),
        ("aws:ec2/vpc:Vpc", "cluster-vpc"),
        ("aws:kms/key:Key", "cluster-secrets"),
        ("aws:cloudwatch/logGroup:LogGroup", "cluster-control-plane-logs"),
    }
    # The log group exists, with its retention, before EKS writes to it.
    log_group = prod.one("aws:cloudwatch/logGroup:LogGroup", "cluster-control-plane-logs")
    assert any(
        d.endswith(log_group.urn_suffix) for d in prod.one(CLUSTER, "cluster-eks").dependencies
    )


def test_no_creator_bootstrap_and_the_public_endpoint_answers_the_runner_only(
    prod: Registrations,
) -> None:
    cluster = prod.inputs(CLUSTER, "cluster-eks")
    assert cluster["accessConfig"] == {
        "authenticationMode": "API",
        "bootstrapClusterCreatorAdminPermissions": False,
    }
    assert cluster["vpcConfig"]["endpointPublicAccess"] is True
    assert cluster["vpcConfig"]["endpointPrivateAccess"] is True
    assert cluster["vpcConfig"]["publicAccessCidrs"] == ["198.51.100.0/24"]


def test_a_private_endpoint_lets_the_runner_in(tmp_path_factory: pytest.TempPathFactory) -> None:
    """prod closed after its first deploy: a runner inside the VPC, nothing public."""
    root = tmp_path_factory.mktemp("project")
    project = Project(root)
    config = project.stack_config("prod")
    config["dynamo-trtllm:cluster"]["endpointAccess"] = {
        "mode": "private",
        "runner": "in-vpc",
        "runnerCidrs": ["10.0.0.0/16"],
        "vpcReachable": True,
    }
    project.write_stack("prod", config)
    private = record_render("prod", tmp_path_factory.mktemp("private") / "prod", root)
    cluster = private.inputs(CLUSTER, "cluster-eks")
    assert cluster["vpcConfig"]["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in cluster["vpcConfig"]
    (rule,) = private.render.of_type("aws:vpc/securityGroupIngressRule")
    assert private.render.load(rule) | {"description": ""} == {
        "cidrIpv4": "10.0.0.0/16",
        "description": "",
        "fromPort": 443,
        "ipProtocol": "tcp",
        "securityGroupId": "sg-dynamo-prod-cluster",
        "toPort": 443,
    }


def test_addons_are_pinned_overwrite_and_networking_comes_before_nodes(
    prod: Registrations,
) -> None:
    pinned = DEFAULT_ADDON_VERSIONS["1.35"]
    for registration in prod.of_type(ADDON):
        addon = prod.inputs(ADDON, registration.name)
        assert addon["addonVersion"] == pinned[addon["addonName"]]
        assert addon["resolveConflictsOnCreate"] == addon["resolveConflictsOnUpdate"] == "OVERWRITE"
    before_nodes = [
        prod.one(ADDON, f"cluster-{a}") for a in ("vpc-cni", "kube-proxy", "eks-pod-identity-agent")
    ]
    for group in prod.of_type(NODE_GROUP):
        for addon in before_nodes:
            assert any(d.endswith(addon.urn_suffix) for d in group.dependencies), (
                group.name,
                addon.name,
            )
    system = prod.one(NODE_GROUP, "cluster-system")
    for late in ("coredns", "aws-ebs-csi-driver"):
        addon = prod.one(ADDON, f"cluster-{late}")
        assert any(d.endswith(system.urn_suffix) for d in addon.dependencies)


def test_the_system_nodes_have_a_launch_template_and_a_pinned_release(prod: Registrations) -> None:
    group = prod.inputs(NODE_GROUP, "cluster-system")
    assert group["launchTemplate"]["id"] == mock_id(
        "aws:ec2/launchTemplate:LaunchTemplate", "cluster-system-template"
    )
    assert group["releaseVersion"] == "1.35.6-20260714"
    assert group["nodeGroupNamePrefix"] == "system-"
    template = prod.inputs("aws:ec2/launchTemplate:LaunchTemplate", "cluster-system-template")
    assert template["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert {spec["resourceType"] for spec in template["tagSpecifications"]} == {
        "instance",
        "volume",
        "network-interface",
    }
    gpu = prod.inputs("aws:ec2/launchTemplate:LaunchTemplate", "pool-h100-template")
    assert all(spec["tags"]["cost-centre"] == "ml-platform" for spec in gpu["tagSpecifications"])
    assert all(
        spec["tags"]["dynamo-trtllm.io/node-pool"] == "h100" for spec in gpu["tagSpecifications"]
    )


def test_a_nat_gateway_per_zone_each_zone_routing_through_its_own(prod: Registrations) -> None:
    nats = {r.name for r in prod.of_type("aws:ec2/natGateway:NatGateway")}
    assert nats == {f"cluster-nat-us-east-1{z}" for z in "abc"}
    for zone in ("us-east-1a", "us-east-1b", "us-east-1c"):
        table = prod.inputs("aws:ec2/routeTable:RouteTable", f"cluster-private-{zone}")
        assert table["routes"][0]["natGatewayId"] == f"cluster-nat-{zone}-id"
        association = prod.inputs(
            "aws:ec2/routeTableAssociation:RouteTableAssociation", f"cluster-private-{zone}"
        )
        assert association["routeTableId"] == f"cluster-private-{zone}-id"


def test_dev_keeps_its_single_nat_gateway_under_its_old_name(rendered: dict[str, Rendered]) -> None:
    dev = rendered["dev"]
    assert [r["name"] for r in dev.of_type("aws:ec2/natGateway")] == ["cluster-nat"]
    assert [r["name"] for r in dev.of_type("aws:ec2/routeTable:RouteTable")] == [
        "cluster-private",
        "cluster-public",
    ]
    assert "protect" not in json.dumps([r.get("lifecycle", {}) for r in dev.index])
    assert dev.load(next(r for r in dev.of_type(CLUSTER)))["deletionProtection"] is False


def test_removing_an_admin_leaves_the_other_entries_as_they_are(
    prod: Registrations, project: Project, tmp_path: Path
) -> None:
    before = admin_entries(prod.render)
    assert len(before) == 2
    config = project.stack_config("prod")
    first, *others = config["dynamo-trtllm:cluster"]["adminPrincipalArns"]
    config["dynamo-trtllm:cluster"]["adminPrincipalArns"] = others
    project.write_stack("prod", config)
    after = Rendered(_render(project, tmp_path))
    assert admin_entries(after) == {name: arn for name, arn in before.items() if arn != first}


def admin_entries(render: Rendered) -> dict[str, str]:
    """The STANDARD access entries (the admins'; Karpenter's nodes have an EC2_LINUX one)."""
    entries = {r["name"]: render.load(r) for r in render.of_type(ACCESS_ENTRY)}
    return {name: e["principalArn"] for name, e in entries.items() if e["type"] == "STANDARD"}


def _render(project: Project, tmp_path: Path) -> Path:
    render_stack("prod", tmp_path / "out", project.root)
    return tmp_path / "out"


# --- kube-system under strict network policies ------------------------------------------------

COREDNS = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
EBS_CSI = Pod(
    "ebs-csi-controller",
    "kube-system",
    {"app": "ebs-csi-controller", "app.kubernetes.io/name": "aws-ebs-csi-driver"},
)
KARPENTER = Pod("karpenter", "kube-system", {"app.kubernetes.io/name": "karpenter"})
API_SERVER = External("10.0.0.10", "api-server")
VPC_RESOLVER = External("10.0.0.2", "vpc-resolver")


def test_kube_system_pods_have_policies_that_let_them_work(rendered: dict[str, Rendered]) -> None:
    prod = rendered["prod"]
    policies = [
        p for p in prod.objects("NetworkPolicy") if p["metadata"]["namespace"] == "kube-system"
    ]
    assert sorted(p["metadata"]["name"] for p in policies) == [
        "aws-ebs-csi-driver",
        "coredns",
        "karpenter",
    ]
    net = NetworkPolicies(prod.objects("NetworkPolicy"))
    worker = Pod("worker", "gpt-oss-120b", {"app": "x"})
    assert net.allows(worker, COREDNS, 53, "UDP") and net.allows(worker, COREDNS, 53, "TCP")
    assert net.allows(COREDNS, VPC_RESOLVER, 53, "UDP")
    assert net.allows(COREDNS, API_SERVER, 443) and not net.allows(COREDNS, API_SERVER, 80)
    assert net.allows(EBS_CSI, API_SERVER, 443) and not net.allows(EBS_CSI, API_SERVER, 22)
    assert not net.allows(worker, EBS_CSI, 443)
    assert net.allows(KARPENTER, API_SERVER, 443) and net.allows(KARPENTER, COREDNS, 53, "UDP")
    assert not net.allows(worker, KARPENTER, 8080)  # metrics only from where scrapes come
    # strict mode denies a pod no policy selects: all are selected, both ways
    for pod in (COREDNS, EBS_CSI, KARPENTER):
        reason = net.check(pod, API_SERVER, 80).reason
        assert "isolated by" in reason, reason


def test_standard_mode_leaves_kube_system_alone(project: Project, tmp_path: Path) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:cluster"]["networkPolicyEnforcingMode"] = "standard"
    project.write_stack("dev", config)
    render_stack("dev", tmp_path / "dev", project.root)
    dev = Rendered(tmp_path / "dev")
    assert not [
        p for p in dev.objects("NetworkPolicy") if p["metadata"]["namespace"] == "kube-system"
    ]
    (cni,) = [dev.load(r) for r in dev.of_type(ADDON) if r["name"] == "cluster-vpc-cni"]
    assert json.loads(cni["configurationValues"])["env"] == {
        "NETWORK_POLICY_ENFORCING_MODE": "standard"
    }
