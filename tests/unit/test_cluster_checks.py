"""The cluster's cross-checks (support dates, access, images, add-ons, network policy mode) and
the pure builders of the AWS foundation."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from components.cluster_access_entries import principal_key
from components.cluster_addons import vpc_cni_configuration
from components.gpu_node_pool import (
    efa_network_interfaces,
    own_placement_group,
    rolls_without_spare_capacity,
)
from infra.specs import aws_default_tags
from infra.stack.cluster_checks import cluster_issues
from infra.stack.cluster_config import EksCluster
from infra.stack.config import StackConfig
from infra.stack.errors import ConfigIssue, StackConfigError
from infra.stack.pool_config import NodePool

from .eks_stack import DEPLOY_ROLE, values
from .helpers import parse

TODAY = date(2026, 12, 1)


def config_with(cluster: dict[str, Any] | None = None, **sections: Any) -> StackConfig:
    """The stack's schema, without its cross-checks (those under test run with their own date)."""
    raw = values(**sections)
    raw["cluster"] |= cluster or {}
    return StackConfig.model_validate(raw)


def issues(config: StackConfig, on: date = TODAY) -> dict[str, ConfigIssue]:
    return {issue.path: issue for issue in cluster_issues(config, on)}


def errors(raw_cluster: dict[str, Any], **sections: Any) -> list[str]:
    raw = values(**sections)
    raw["cluster"] |= raw_cluster
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    return [f"{i.path}: {i.message}" for i in caught.value.issues]


# --- Kubernetes version support --------------------------------------------------------------


def test_a_version_in_extended_support_is_a_warning_with_its_dates() -> None:
    found = issues(config_with({"kubernetesVersion": "1.33", "addons": ADDONS_133}))
    warning = found["cluster.kubernetesVersion"]
    assert warning.severity == "warning"
    assert warning.message == (
        "Kubernetes 1.33 left EKS standard support on 2026-07-29: the cluster pays the "
        "extended-support rate until 2027-07-29; upgrade towards 1.35 (one minor version at a "
        "time)"
    )


ADDONS_133 = {
    "vpcCni": "v1.21.1-eksbuild.3",
    "kubeProxy": "v1.33.8-eksbuild.2",
    "coredns": "v1.13.2-eksbuild.1",
    "eksPodIdentityAgent": "v1.3.10-eksbuild.3",
    "awsEbsCsiDriver": "v1.56.0-eksbuild.1",
}


def test_standard_support_type_on_an_extended_version_is_refused() -> None:
    config = config_with(
        {
            "kubernetesVersion": "1.33",
            "addons": ADDONS_133,
            "upgradePolicy": {"supportType": "STANDARD"},
        }
    )
    refusal = issues(config)["cluster.upgradePolicy.supportType"]
    assert refusal.severity == "error"
    assert (
        refusal.message == "Kubernetes 1.33 is in extended support: EKS takes only EXTENDED for it"
    )


def test_versions_move_through_their_support_phases() -> None:
    config = config_with({"kubernetesVersion": "1.34", "addons": ADDONS_133})
    assert "cluster.kubernetesVersion" not in issues(config, date(2026, 12, 1))
    assert issues(config, date(2026, 12, 2))["cluster.kubernetesVersion"].severity == "warning"
    ended = issues(config, date(2027, 12, 2))["cluster.kubernetesVersion"]
    assert ended.severity == "error"
    assert ended.message.startswith("EKS ended support for Kubernetes 1.34 on 2027-12-02")


def test_a_version_without_pinned_addons_names_the_keys_to_set() -> None:
    (found,) = errors({"kubernetesVersion": "1.36", "addons": {"vpcCni": "v1.22.4-eksbuild.3"}})
    assert found.startswith(
        "cluster.addons: no add-on versions are pinned for Kubernetes 1.36: set kubeProxy, "
        "coredns, eksPodIdentityAgent, awsEbsCsiDriver"
    )


# --- endpoint access and admins --------------------------------------------------------------


def test_the_whole_internet_on_the_public_endpoint_is_a_warning() -> None:
    access = {"mode": "public-and-private", "publicAccessCidrs": ["0.0.0.0/0"]}
    warning = issues(config_with({"endpointAccess": access}))[
        "cluster.endpointAccess.publicAccessCidrs"
    ]
    assert warning.severity == "warning" and "whole internet" in warning.message


def test_a_private_endpoint_in_a_new_vpc_is_refused_until_the_runner_reaches_it() -> None:
    """The first `up` would create the cluster, then time out on every Kubernetes object."""
    access = {"mode": "private", "runner": "in-vpc", "runnerCidrs": ["10.0.128.0/20"]}
    error = issues(config_with({"endpointAccess": access}))["cluster.endpointAccess.mode"]
    assert error.severity == "error"
    assert "the first `pulumi up` runs before any runner" in error.message
    assert "vpcReachable" in error.message
    reachable = access | {"vpcReachable": True}  # a later `up`, with the runner inside
    assert "cluster.endpointAccess.mode" not in issues(config_with({"endpointAccess": reachable}))


def test_an_in_vpc_runner_comes_from_the_vpc() -> None:
    access = {
        "mode": "private",
        "runner": "in-vpc",
        "runnerCidrs": ["10.0.0.0/24", "192.168.0.0/24"],
        "vpcReachable": True,
    }
    assert errors({"endpointAccess": access}) == [
        "cluster.endpointAccess.runnerCidrs[1]: 192.168.0.0/24 is outside vpc.cidr 10.0.0.0/16, "
        "where an in-vpc runner's addresses come from"
    ]


def test_no_admin_means_the_deployer_is_locked_out() -> None:
    (found,) = errors({"adminPrincipalArns": []})
    assert found.startswith("cluster.adminPrincipalArns: no cluster admin: the identity running")


def test_admins_are_role_or_user_arns_listed_once() -> None:
    session = "arn:aws:sts::123456789012:assumed-role/deploy/ci"
    assert errors({"adminPrincipalArns": [DEPLOY_ROLE, session, DEPLOY_ROLE]}) == [
        f"cluster.adminPrincipalArns[1]: {session} is a role session: an access entry names the "
        "role itself, arn:aws:iam::<account>:role/<name>",
    ]
    config = config_with()
    assert issues(config_with({"adminPrincipalArns": [DEPLOY_ROLE, DEPLOY_ROLE]}))[
        "cluster.adminPrincipalArns[1]"
    ].message.endswith("is listed twice (EKS keeps one access entry per principal)")
    assert "cluster.adminPrincipalArns" not in issues(config)


def test_admin_entries_are_named_by_the_principal_alone() -> None:
    ops = "arn:aws:iam::123456789012:role/platform/Ops_Team"
    assert principal_key(ops) == principal_key(ops)
    assert principal_key(ops).startswith("ops-team-") and len(principal_key(ops)) == 17
    assert principal_key(ops) != principal_key("arn:aws:iam::999999999999:role/platform/Ops_Team")


# --- node images, pools and networking ---------------------------------------------------------


def test_an_ami_release_of_another_kubernetes_version_is_refused() -> None:
    raw = values()
    raw["nodePools"][0]["amiReleaseVersion"] = "1.33.5-20251120"
    raw["cluster"]["systemNodeGroup"] = {"amiReleaseVersion": "1.35.6-20260714"}
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    assert [f"{i.path}: {i.message}" for i in caught.value.issues] == [
        "nodePools[0].amiReleaseVersion: 1.33.5-20251120 is not an AMI release for Kubernetes "
        "1.35, which the cluster runs (e.g. 1.35.6-20260714, or leave it unset for that one)"
    ]


def test_an_unpinned_bottlerocket_pool_is_a_warning() -> None:
    raw = values()
    raw["nodePools"][0]["amiType"] = "bottlerocket-nvidia"
    assert issues(parse(raw))["nodePools[0].amiReleaseVersion"].severity == "warning"


def test_a_reservation_placement_group_needs_the_reservation() -> None:
    raw = values()
    raw["nodePools"][1]["reservationPlacementGroup"] = "h100-block"
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    (issue,) = caught.value.issues
    assert issue.path == "nodePools[1].reservationPlacementGroup"


def test_capacity_block_pools_get_a_note_on_rolling_updates() -> None:
    raw = values()
    raw["nodePools"][1] |= {
        "capacityType": "capacity-block",
        "capacityReservationId": "cr-0123456789abcdef0",
        "availabilityZone": "us-west-2a",
        "maxUnavailable": 2,
    }
    note = issues(parse(raw))["nodePools[1].capacityType"]
    assert note.severity == "warning"
    assert note.message == (
        "capacity-block pool 'h100': a launch-template or AMI change replaces its nodes 2 at a "
        "time, each stopped before its successor starts (the block has no spare instance): "
        "scale its models down first"
    )


CONTROL_PLANE_SUBNETS = [
    {"id": "subnet-c1", "cidr": "10.1.250.0/28"},
    {"id": "subnet-c2", "cidr": "10.1.250.16/28"},
]


def test_an_existing_vpc_names_subnets_for_the_control_plane_alone() -> None:
    existing = {"id": "vpc-0abc", "privateSubnetIds": ["subnet-a", "subnet-b"]}
    (found,) = [e for e in errors({"vpc": existing}) if e.startswith("cluster.vpc")]
    assert found.startswith("cluster.vpc: an existing VPC needs controlPlaneSubnets (id and cidr)")
    shared = existing | {
        "controlPlaneSubnets": [{"id": "subnet-a", "cidr": "10.1.0.0/24"}, CONTROL_PLANE_SUBNETS[1]]
    }
    (found,) = [e for e in errors({"vpc": shared}) if e.startswith("cluster.vpc")]
    assert found.startswith(
        "cluster.vpc: subnet-a: a control-plane subnet must not also hold nodes"
    )
    raw = values()
    raw["cluster"]["vpc"] = existing | {"controlPlaneSubnets": CONTROL_PLANE_SUBNETS}
    assert parse(raw).cluster.vpc.control_plane_cidrs == ("10.1.250.0/28", "10.1.250.16/28")


def test_a_new_vpc_cuts_its_own_control_plane_subnets() -> None:
    new = {"cidr": "10.0.0.0/16", "availabilityZones": ["us-west-2a", "us-west-2b"]}
    (found,) = [
        e
        for e in errors({"vpc": new | {"controlPlaneSubnets": CONTROL_PLANE_SUBNETS}})
        if e.startswith("cluster.vpc")
    ]
    assert found == (
        "cluster.vpc: controlPlaneSubnets is for an existing VPC; a new one gets its own per zone"
    )
    (found,) = [e for e in errors({"vpc": new | {"cidr": "10.0.0.0/23"}}) if "cluster.vpc" in e]
    assert "a VPC here is /16 to /22" in found


def test_nat_gateways_belong_to_a_vpc_we_create() -> None:
    existing = {
        "id": "vpc-0abc",
        "privateSubnetIds": ["subnet-a", "subnet-b"],
        "controlPlaneSubnets": CONTROL_PLANE_SUBNETS,
        "natGateways": "perAz",
    }
    (found,) = [e for e in errors({"vpc": existing}) if e.startswith("cluster.vpc")]
    assert found == "cluster.vpc: natGateways is for a VPC this stack creates, not an existing one"


def test_logs_keep_a_cloudwatch_retention_period() -> None:
    (found,) = errors({"controlPlaneLogs": {"retentionDays": 100}})
    assert found.startswith(
        "cluster.controlPlaneLogs.retentionDays: CloudWatch keeps logs for one of"
    )


def test_tags_the_stack_sets_itself_or_aws_owns_are_refused() -> None:
    assert errors({"tags": {"extra": {"stack": "x", "team": "inference"}}}) == [
        "cluster.tags.extra: stack: set by the stack itself"
    ]
    assert errors({"tags": {"extra": {"aws:owner": "me"}}}) == [
        "cluster.tags.extra.aws:owner.[key]: tag key 'aws:owner': the aws: prefix is reserved "
        "for AWS"
    ]


# --- strict network policies -----------------------------------------------------------------


def test_strict_mode_needs_network_policies() -> None:
    (found,) = errors({}, security={"networkPolicies": False})
    assert found.startswith(
        "cluster.networkPolicyEnforcingMode: strict mode gives a pod no network"
    )
    assert parse(
        values(security={"networkPolicies": False})
        | {"cluster": {**values()["cluster"], "networkPolicyEnforcingMode": "standard"}}
    )


def test_strict_mode_warns_about_pods_in_namespaces_we_do_not_own() -> None:
    config = config_with(
        security={"clientNamespaces": ["batch"]},
        traffic={
            "gateway": {"name": "public", "namespace": "gateway", "domain": "inference.example.com"}
        },
    )
    warning = issues(config)["cluster.networkPolicyEnforcingMode"]
    assert warning.severity == "warning"
    assert "(batch, gateway)" in warning.message


def test_the_vpc_cni_configuration_enforces_network_policy_in_the_stated_mode() -> None:
    assert vpc_cni_configuration("strict") == {
        "enableNetworkPolicy": "true",
        "env": {"NETWORK_POLICY_ENFORCING_MODE": "strict"},
    }


# --- GPU pool builders and tags ----------------------------------------------------------------


def pool(**fields: Any) -> NodePool:
    return NodePool.model_validate({"name": "p", "instanceType": "p5.48xlarge", **fields})


def test_efa_interfaces_keep_one_efa_on_card_zero_and_efa_only_elsewhere() -> None:
    nics = efa_network_interfaces(4, "sg-cluster", "sg-efa")
    assert [(n["network_card_index"], n["device_index"], n["interface_type"]) for n in nics] == [
        (0, 0, "efa"),
        (1, 0, "efa-only"),
        (2, 0, "efa-only"),
        (3, 0, "efa-only"),
    ]
    assert nics[0]["security_groups"] == ["sg-cluster", "sg-efa"]
    assert all(n["security_groups"] == ["sg-efa"] for n in nics[1:])


def test_only_efa_pools_outside_a_capacity_block_or_reserved_group_get_their_own_group() -> None:
    assert own_placement_group(pool(efa=True))
    assert not own_placement_group(pool(efa=True, capacityType="capacity-block"))
    assert not own_placement_group(
        pool(efa=True, capacityReservationId="cr-1", reservationPlacementGroup="reserved")
    )
    assert not own_placement_group(pool())


def test_rendered_capacity_block_resources_are_recognised() -> None:
    group, template = "aws:eks/nodeGroup:NodeGroup", "aws:ec2/launchTemplate:LaunchTemplate"
    assert rolls_without_spare_capacity(group, {"capacityType": "CAPACITY_BLOCK"})
    assert not rolls_without_spare_capacity(group, {"capacityType": "ON_DEMAND"})
    assert rolls_without_spare_capacity(
        template, {"instanceMarketOptions": {"marketType": "capacity-block"}}
    )
    assert not rolls_without_spare_capacity(template, {})


def test_default_tags_name_project_stack_environment_and_cost_centre() -> None:
    cluster = config_with({"tags": {"costCentre": "ml", "extra": {"team": "inference"}}}).cluster
    assert isinstance(cluster, EksCluster)
    assert aws_default_tags(cluster, "dynamo-trtllm", "prod") == {
        "team": "inference",
        "project": "dynamo-trtllm",
        "stack": "prod",
        "environment": "prod",
        "cost-centre": "ml",
    }


def test_a_region_misspelled_the_same_everywhere_is_a_warning_with_a_guess() -> None:
    found = issues(
        config_with(
            {"region": "us-wset-2", "vpc": {"availabilityZones": ["us-wset-2a", "us-wset-2b"]}}
        )
    )
    warning = found["cluster.region"]
    assert warning.severity == "warning" and "did you mean us-west-2?" in warning.message
