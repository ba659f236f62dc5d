"""Preflight: the EKS side. Whether the identity running `pulumi up` will be a cluster admin,
whether EKS offers each pinned add-on version for the cluster's Kubernetes version (and takes
the configuration we send it), and whether an existing VPC's control-plane subnets are what the
stack says (NetworkPolicies name the API server by their CIDRs).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from botocore.exceptions import BotoCoreError, ClientError

from components.cluster_addons import vpc_cni_configuration
from infra.live.preflight_result import PreflightCheck, aws_error, eks_cluster
from infra.stack.cluster_config import addon_key
from infra.stack.config import StackConfig
from infra.stack.eks_versions import VPC_CNI

ADMINS_PATH = "cluster.adminPrincipalArns"
CONTROL_PLANE_SUBNETS_PATH = "cluster.vpc.controlPlaneSubnets"
# EKS describes the network interfaces it places for the control plane so (ENI descriptions
# "Amazon EKS <cluster>"); anything else in those subnets is an address policies would trust.
EKS_INTERFACE_PREFIX = "Amazon EKS"
_ASSUMED_ROLE = re.compile(
    r"arn:(?P<partition>[\w-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+"
)


def caller_principal(caller_arn: str, iam: Any) -> tuple[str, bool]:
    """The principal an access entry names for the caller, and whether that is exact.

    A role session (sts ...:assumed-role/<role>/<session>) is its role; the session ARN drops
    the role's path, which IAM GetRole gives back. Without iam:GetRole the path-less ARN is
    returned, not exact (compared by account and role name).
    """
    session = _ASSUMED_ROLE.fullmatch(caller_arn)
    if session is None:
        return caller_arn, True
    try:
        return str(iam.get_role(RoleName=session["role"])["Role"]["Arn"]), True
    except (ClientError, BotoCoreError):
        return f"arn:{session['partition']}:iam::{session['account']}:role/{session['role']}", False


def _same_role(pathless: str, arn: str) -> bool:
    account, _, name = pathless.partition(":role/")
    return arn.startswith(f"{account}:role/") and arn.rsplit("/", 1)[-1] == name


def check_caller_identity(config: StackConfig, sts: Any, iam: Any) -> list[PreflightCheck]:
    """The caller is one of cluster.adminPrincipalArns: the cluster gives its creator no access
    entry of its own, so any other caller is locked out of the Kubernetes part of `pulumi up`."""
    admins = eks_cluster(config).admin_principal_arns
    name = "cluster access: the caller is an admin"
    try:
        caller = str(sts.get_caller_identity()["Arn"])
    except (ClientError, BotoCoreError) as exc:
        return [PreflightCheck(name, False, aws_error(exc), ADMINS_PATH)]
    principal, exact = caller_principal(caller, iam)
    acting = caller if principal == caller else f"{caller} (role {principal})"
    if principal in admins or (not exact and any(_same_role(principal, a) for a in admins)):
        return [PreflightCheck(name, True, f"{acting} is in cluster.adminPrincipalArns")]
    if ":federated-user/" in caller:
        detail = f"{caller} is a federated user, which no access entry can name: deploy as a role"
    else:
        detail = (
            f"{acting} is not in cluster.adminPrincipalArns: the cluster gives its creator no "
            "access of its own, so this identity will have none and cannot create the stack's "
            "Kubernetes resources; add it, or deploy as one of the listed principals"
        )
    return [PreflightCheck(name, False, detail, ADMINS_PATH)]


def check_addon_versions(config: StackConfig, eks: Any) -> list[PreflightCheck]:
    """Each pinned add-on version is one EKS offers for the cluster's Kubernetes version
    (DescribeAddonVersions), and the VPC CNI takes our configuration values (its version's
    schema, DescribeAddonConfiguration)."""
    cluster = eks_cluster(config)
    kubernetes = cluster.kubernetes_version
    configurations = {VPC_CNI: vpc_cni_configuration(cluster.network_policy_enforcing_mode)}
    checks = []
    for addon, pinned in cluster.addons.pinned(kubernetes).items():
        version = pinned or "(none pinned)"
        name = f"add-on: {addon} {version} on Kubernetes {kubernetes}"
        path = f"cluster.addons.{addon_key(addon)}"
        try:
            offered = _offered_versions(eks, addon, kubernetes)
            default = next((v for v, is_default in offered.items() if is_default), None)
            if version not in offered:
                newest = f"; its default is {default}" if default else ""
                detail = f"EKS offers no {addon} {version} for Kubernetes {kubernetes}{newest}"
                checks.append(PreflightCheck(name, False, detail, path))
                continue
            problems = _configuration_problems(eks, addon, version, configurations.get(addon))
        except (ClientError, BotoCoreError) as exc:
            checks.append(PreflightCheck(name, False, aws_error(exc), path))
            continue
        if problems:
            detail = f"its configuration schema refuses our values: {'; '.join(problems)}"
            checks.append(PreflightCheck(name, False, detail, path))
        else:
            detail = f"offered (default {default})" if default else "offered"
            checks.append(PreflightCheck(name, True, detail))
    return checks


def _offered_versions(eks: Any, addon: str, kubernetes: str) -> dict[str, bool]:
    """Version -> whether it is the default for the Kubernetes version."""
    pages = eks.get_paginator("describe_addon_versions").paginate(
        kubernetesVersion=kubernetes, addonName=addon
    )
    return {
        version["addonVersion"]: any(
            c.get("clusterVersion") == kubernetes and c.get("defaultVersion")
            for c in version.get("compatibilities", [])
        )
        for page in pages
        for found in page.get("addons", [])
        for version in found.get("addonVersions", [])
    }


def _configuration_problems(eks: Any, addon: str, version: str, values: dict | None) -> list[str]:
    if values is None:
        return []
    answer = eks.describe_addon_configuration(addonName=addon, addonVersion=version)
    schema = json.loads(answer.get("configurationSchema") or "{}")
    validator = jsonschema.validators.validator_for(schema)(schema)
    return sorted(error.message for error in validator.iter_errors(values))


def check_control_plane_subnets(config: StackConfig, ec2: Any) -> list[PreflightCheck]:
    """An existing VPC's control-plane subnets: in that VPC, with the CIDRs the stack states,
    in at least two zones, and holding no network interface but EKS's own."""
    vpc = eks_cluster(config).vpc
    if not vpc.existing:
        return []
    stated = {s.id: s.cidr for s in vpc.control_plane_subnets}
    name = f"control-plane subnets: {', '.join(stated)}"
    try:
        found = ec2.describe_subnets(SubnetIds=list(stated))["Subnets"]
        interfaces = [
            interface
            for page in ec2.get_paginator("describe_network_interfaces").paginate(
                Filters=[{"Name": "subnet-id", "Values": list(stated)}]
            )
            for interface in page.get("NetworkInterfaces", [])
        ]
    except (ClientError, BotoCoreError) as exc:
        return [PreflightCheck(name, False, aws_error(exc), CONTROL_PLANE_SUBNETS_PATH)]
    problems = []
    for subnet in found:
        subnet_id = subnet["SubnetId"]
        if subnet.get("VpcId") != vpc.id:
            problems.append(f"{subnet_id} is in {subnet.get('VpcId')}, not {vpc.id}")
        if subnet.get("CidrBlock") != stated[subnet_id]:
            problems.append(
                f"{subnet_id} is {subnet.get('CidrBlock')}, the stack says {stated[subnet_id]}"
            )
    zones = {subnet.get("AvailabilityZone") for subnet in found}
    if len(zones) < 2:
        problems.append(f"all in {', '.join(sorted(map(str, zones)))}: EKS needs two zones")
    foreign = sorted(
        f"{i['NetworkInterfaceId']} ({i.get('Description') or i.get('InterfaceType') or 'no description'})"
        for i in interfaces
        if not str(i.get("Description") or "").startswith(EKS_INTERFACE_PREFIX)
    )
    if foreign:
        problems.append(
            f"they hold other network interfaces, which NetworkPolicies would take for the API "
            f"server: {', '.join(foreign)}"
        )
    if problems:
        return [PreflightCheck(name, False, "; ".join(problems), CONTROL_PLANE_SUBNETS_PATH)]
    return [PreflightCheck(name, True, f"in {vpc.id}, {len(zones)} zones, EKS's interfaces only")]
