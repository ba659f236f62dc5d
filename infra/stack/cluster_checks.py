"""Cross-field checks of the cluster and its node pools: what EKS and EC2 would refuse at
`pulumi up`, or accept and then leave unreachable, each located at the YAML path to edit.
"""

from __future__ import annotations

import difflib
import ipaddress
from datetime import date

from infra.stack.cluster_config import EksCluster, addon_key, zone_in_region
from infra.stack.config import StackConfig
from infra.stack.eks_versions import (
    DEFAULT_AL2023_RELEASES,
    DEFAULT_KUBERNETES_VERSION,
    EKS_KUBERNETES_VERSIONS,
)
from infra.stack.errors import ConfigIssue
from infra.stack.pool_checks import pool_issues

EVERYWHERE = "0.0.0.0/0"


def cluster_issues(config: StackConfig, today: date | None = None) -> list[ConfigIssue]:
    """Every cross-field problem of the cluster and node pools (`today`: for support dates)."""
    issues = pool_issues(config)
    issues += _check_high_availability(config)
    issues += _check_access(config)
    cluster = config.cluster
    if isinstance(cluster, EksCluster):
        issues += _check_region(cluster)
        issues += _check_zones(cluster)
        issues += _check_kubernetes_support(cluster, today or date.today())
        issues += _check_endpoint_access(cluster)
        issues += _check_admins(cluster)
        issues += _check_node_images(config, cluster)
        issues += _check_addons(cluster)
        issues += _check_network_policy_mode(config, cluster)
    return issues


# AWS Regions with EKS (docs.aws.amazon.com/general/latest/gr/eks.html), for a did-you-mean:
# a region that is not here is a warning, not an error, since AWS opens new ones.
KNOWN_REGIONS = (
    *("us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1"),
    *("mx-central-1", "sa-east-1", "af-south-1", "il-central-1", "me-south-1", "me-central-1"),
    *("eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1"),
    *("eu-south-2", "eu-north-1", "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2"),
    *("ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2"),
    *("ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7"),
    *("us-gov-east-1", "us-gov-west-1", "cn-north-1", "cn-northwest-1"),
)


def _check_region(cluster: EksCluster) -> list[ConfigIssue]:
    """A misspelled region spelled the same everywhere passes every consistency check."""
    if cluster.region in KNOWN_REGIONS:
        return []
    close = difflib.get_close_matches(cluster.region, KNOWN_REGIONS, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return [
        ConfigIssue(
            "cluster.region",
            f"{cluster.region!r} is not an AWS Region we know: {hint}(a Region opened since is "
            "fine; `preflight` asks AWS)",
            severity="warning",
        )
    ]


def _check_zones(cluster: EksCluster) -> list[ConfigIssue]:
    """Each zone of the VPC in cluster.region, located at the zone itself."""
    return [
        ConfigIssue(
            f"cluster.vpc.availabilityZones[{index}]",
            f"{zone} is not a zone of region {cluster.region} (e.g. {cluster.region}a)",
        )
        for index, zone in enumerate(cluster.vpc.availability_zones)
        if not zone_in_region(zone, cluster.region)
    ]


def _check_kubernetes_support(cluster: EksCluster, today: date) -> list[ConfigIssue]:
    """Standard support (14 months), then extended (12 more, billed higher), then none: the EKS
    version lifecycle (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html)."""
    lifecycle = EKS_KUBERNETES_VERSIONS[cluster.kubernetes_version]
    phase = lifecycle.phase(today)
    version, path = cluster.kubernetes_version, "cluster.kubernetesVersion"
    if phase == "ended":
        return [
            ConfigIssue(
                path,
                f"EKS ended support for Kubernetes {version} on "
                f"{lifecycle.end_of_extended_support}: upgrade, one minor version at a time",
            )
        ]
    if phase == "standard":
        return []
    issues = [
        ConfigIssue(
            path,
            f"Kubernetes {version} left EKS standard support on "
            f"{lifecycle.end_of_standard_support}: the cluster pays the extended-support rate "
            f"until {lifecycle.end_of_extended_support}; upgrade towards "
            f"{DEFAULT_KUBERNETES_VERSION} (one minor version at a time)",
            severity="warning",
        )
    ]
    if cluster.upgrade_policy.support_type == "STANDARD":
        # "You cannot disable extended support once your cluster has entered it"
        # (docs.aws.amazon.com/eks/latest/userguide/disable-extended-support.html).
        issues.append(
            ConfigIssue(
                "cluster.upgradePolicy.supportType",
                f"Kubernetes {version} is in extended support: EKS takes only EXTENDED for it",
            )
        )
    return issues


def _check_endpoint_access(cluster: EksCluster) -> list[ConfigIssue]:
    access = cluster.endpoint_access
    issues = []
    if EVERYWHERE in access.public_access_cidrs:
        issues.append(
            ConfigIssue(
                "cluster.endpointAccess.publicAccessCidrs",
                "the public API endpoint answers the whole internet (0.0.0.0/0; IAM "
                "authentication still applies): list the runner's and your networks instead",
                severity="warning",
            )
        )
    if access.runner == "in-vpc" and not cluster.vpc.existing:
        vpc = ipaddress.IPv4Network(cluster.vpc.cidr)
        issues += [
            ConfigIssue(
                f"cluster.endpointAccess.runnerCidrs[{index}]",
                f"{cidr} is outside vpc.cidr {vpc}, where an in-vpc runner's addresses come from",
            )
            for index, cidr in enumerate(access.runner_cidrs)
            if not ipaddress.IPv4Network(cidr).subnet_of(vpc)
        ]
    if access.mode == "private" and not cluster.vpc.existing and not access.vpc_reachable:
        issues.append(
            ConfigIssue(
                "cluster.endpointAccess.mode",
                "a private endpoint in a VPC this stack creates: the first `pulumi up` runs "
                "before any runner can be in (or routed to) that VPC, so it would create the "
                "cluster and then time out on every Kubernetes object; deploy first with "
                "public-and-private (then switch, with vpcReachable: true once the runner "
                "reaches the VPC), or use an existing VPC (vpc.id)",
            )
        )
    return issues


def _check_admins(cluster: EksCluster) -> list[ConfigIssue]:
    """The creator gets no access entry of its own (bootstrapClusterCreatorAdminPermissions off,
    as terraform-aws-eks main.tf does): admins are the listed principals only."""
    admins = cluster.admin_principal_arns
    if not admins:
        return [
            ConfigIssue(
                "cluster.adminPrincipalArns",
                "no cluster admin: the identity running `pulumi up` gets no access of its own, "
                "and would be locked out of the cluster it creates; list its role ARN",
            )
        ]
    return [
        ConfigIssue(
            f"cluster.adminPrincipalArns[{index}]",
            f"{arn} is listed twice (EKS keeps one access entry per principal)",
        )
        for index, arn in enumerate(admins)
        if admins.index(arn) != index
    ]


def _check_node_images(config: StackConfig, cluster: EksCluster) -> list[ConfigIssue]:
    """An AL2023 node group's releaseVersion is <Kubernetes version>.<patch>-<date>: EKS refuses
    a release of another minor than the group's Kubernetes version (CreateNodegroup)."""
    version = cluster.kubernetes_version
    releases = [
        ("cluster.systemNodeGroup.amiReleaseVersion", cluster.system_node_group.ami_release_version)
    ]
    releases += [
        (f"nodePools[{i}].amiReleaseVersion", pool.ami_release_version)
        for i, pool in enumerate(config.node_pools)
        if pool.ami_type == "al2023-nvidia"
    ]
    issues = [
        ConfigIssue(
            path,
            f"{release} is not an AMI release for Kubernetes {version}, which the cluster runs "
            f"(e.g. {DEFAULT_AL2023_RELEASES[version]}, or leave it unset for that one)",
        )
        for path, release in releases
        if release is not None and not release.startswith(f"{version}.")
    ]
    for index, pool in enumerate(config.node_pools):
        if pool.ami_type == "bottlerocket-nvidia" and pool.ami_release_version is None:
            issues.append(
                ConfigIssue(
                    f"nodePools[{index}].amiReleaseVersion",
                    "unpinned Bottlerocket release: new nodes take whatever is latest when they "
                    "start; pin amiReleaseVersion",
                    severity="warning",
                )
            )
    return issues


def _check_addons(cluster: EksCluster) -> list[ConfigIssue]:
    missing = [
        name for name, v in cluster.addons.pinned(cluster.kubernetes_version).items() if not v
    ]
    if not missing:
        return []
    keys = ", ".join(addon_key(name) for name in missing)
    return [
        ConfigIssue(
            "cluster.addons",
            f"no add-on versions are pinned for Kubernetes {cluster.kubernetes_version}: set "
            f"{keys} (`aws eks describe-addon-versions --kubernetes-version "
            f"{cluster.kubernetes_version} --addon-name <name>`)",
        )
    ]


def _check_network_policy_mode(config: StackConfig, cluster: EksCluster) -> list[ConfigIssue]:
    """Strict mode: "you must have a network policy defined for every pod in your cluster. Host
    Networking pods are exempted" (aws/amazon-vpc-cni-k8s README, NETWORK_POLICY_ENFORCING_MODE)."""
    if cluster.network_policy_enforcing_mode != "strict":
        return []
    path = "cluster.networkPolicyEnforcingMode"
    if not config.security.network_policies:
        return [
            ConfigIssue(
                path,
                "strict mode gives a pod no network until NetworkPolicies allow it, and "
                "security.networkPolicies is off: set that on, or use standard",
            )
        ]
    gateway = config.traffic.gateway.namespace if config.traffic.gateway else None
    foreign = {*config.security.client_namespaces, config.security.gateway_namespace, gateway}
    observability = config.observability
    if observability.enabled and not observability.install_kube_prometheus_stack:
        foreign.add(observability.namespace)
    named = sorted(n for n in foreign if n)
    if not named:
        return []
    return [
        ConfigIssue(
            path,
            f"strict mode: pods in namespaces this stack does not own ({', '.join(named)}) get "
            "no network until they have NetworkPolicies of their own",
            severity="warning",
        )
    ]


def _check_access(config: StackConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    cluster = config.cluster
    for level, grant in config.security.access.grants().items():
        for index, arn in enumerate(grant.principal_arns):
            path = f"security.access.{level}.principalArns[{index}]"
            if not isinstance(cluster, EksCluster):
                issues.append(
                    ConfigIssue(
                        path,
                        "IAM principals join through EKS access entries, which need cluster.mode "
                        "eks; on an existing cluster bind groups your identity provider asserts",
                    )
                )
            elif arn in cluster.admin_principal_arns:
                issues.append(
                    ConfigIssue(
                        path,
                        f"{arn} is already in cluster.adminPrincipalArns: EKS allows one access "
                        "entry per principal, and cluster admin covers this level",
                    )
                )
    return issues


def _check_high_availability(config: StackConfig) -> list[ConfigIssue]:
    """HA NATS (and etcd) spread one server per node over the untainted system nodes."""
    cluster = config.cluster
    if not (config.platform.high_availability and isinstance(cluster, EksCluster)):
        return []
    if cluster.system_node_group.min_size >= 3:
        return []
    return [
        ConfigIssue(
            "cluster.systemNodeGroup.minSize",
            f"platform.highAvailability runs 3 NATS servers, one per node, on the system nodes: "
            f"minSize must be at least 3 (is {cluster.system_node_group.min_size})",
        )
    ]
