"""The cluster a stack runs on: a new EKS cluster (VPC, endpoint access, logging, encryption,
add-ons, tags) or an existing one. Its GPU node pools are in infra.stack.pool_config.

What needs more than one key (a version's support window, admins, strict network policies) is
checked in infra.stack.cluster_checks.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator
from pydantic.alias_generators import to_camel

from infra.stack.eks_versions import (
    ADDONS,
    DEFAULT_ADDON_VERSIONS,
    DEFAULT_KUBERNETES_VERSION,
    EKS_KUBERNETES_VERSIONS,
)
from infra.stack.spec import MAX_NODES, MAX_VOLUME_GIB, Spec

# The largest VPC prefix whose subnet split (components/cluster_network.py) still yields /28s,
# the smallest subnet EKS takes for its control-plane network interfaces (docs.aws.amazon.com/
# eks/latest/userguide/network-reqs.html).
MAX_VPC_PREFIX = 22
MAX_VPC_ZONES = 3


def _ipv4_network(cidr: str) -> str:
    try:
        ipaddress.IPv4Network(cidr)
    except ValueError:
        try:
            suggestion = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IPv4 network (a.b.c.d/n)") from None
        raise ValueError(f"{cidr!r} has host bits set: the network is {suggestion}") from None
    return cidr


Ipv4Network = Annotated[str, AfterValidator(_ipv4_network)]


def _iam_principal(arn: str) -> str:
    if re.fullmatch(r"arn:aws[a-z-]*:sts::\d{12}:assumed-role/.+", arn):
        raise ValueError(
            f"{arn} is a role session: an access entry names the role itself, "
            "arn:aws:iam::<account>:role/<name>"
        )
    if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+", arn):
        raise ValueError(f"{arn!r} is not the ARN of an IAM role or user")
    return arn


IamPrincipalArn = Annotated[str, AfterValidator(_iam_principal)]


class ControlPlaneSubnet(Spec):
    """A subnet of an existing VPC that holds only the EKS control plane's network interfaces."""

    id: str = Field(pattern=r"^subnet-[0-9a-f]+$")
    # Its CIDR, as NetworkPolicies name the API server by it; `preflight` compares it with EC2's.
    cidr: Ipv4Network


class VpcSpec(Spec):
    """Either a new VPC (cidr + availabilityZones) or an existing one (id + subnet ids)."""

    cidr: Ipv4Network = "10.0.0.0/16"
    availability_zones: list[str] = []
    # A new VPC's NAT gateways: `single` (one, in the first zone: cheaper, but private subnets
    # lose egress with that zone) or `perAz` (one per zone, each zone routes through its own).
    nat_gateways: Literal["single", "perAz"] = "single"
    id: str | None = None
    private_subnet_ids: list[str] = []
    # An existing VPC: subnets for the control plane's network interfaces alone, in at least two
    # zones (a new VPC gets one per zone). The API server calls webhooks and proxies the
    # promoter's smoke requests from these addresses, so NetworkPolicies can name it.
    control_plane_subnets: list[ControlPlaneSubnet] = []

    @property
    def existing(self) -> bool:
        return self.id is not None

    @property
    def control_plane_cidrs(self) -> tuple[str, ...]:
        """Where the EKS control plane's network interfaces (and so the API server) are."""
        if self.existing:
            return tuple(s.cidr for s in self.control_plane_subnets)
        return split_vpc(self.cidr, len(self.availability_zones)).control_plane

    @field_validator("cidr")
    @classmethod
    def _cidr_is_a_network_we_can_split(cls, cidr: str) -> str:
        # AWS allows VPCs of /16 to /28; the subnet split (a quarter per private subnet, a
        # sixteenth per public one, a sixty-fourth per control-plane one) needs /28 at least.
        if not 16 <= ipaddress.IPv4Network(cidr).prefixlen <= MAX_VPC_PREFIX:
            raise ValueError(
                f"{cidr}: a VPC here is /16 to /{MAX_VPC_PREFIX} (AWS allows /16 to /28, and the "
                "control-plane subnets are a sixty-fourth of it, at least /28)"
            )
        return cidr

    @model_validator(mode="after")
    def _new_or_existing(self) -> VpcSpec:
        if self.existing and len(self.private_subnet_ids) < 2:
            raise ValueError(
                "an existing VPC needs privateSubnetIds in at least 2 availability zones"
            )
        if self.existing and len(self.control_plane_subnets) < 2:
            raise ValueError(
                "an existing VPC needs controlPlaneSubnets (id and cidr) in at least 2 "
                "availability zones, holding nothing but the EKS control plane's network "
                "interfaces: NetworkPolicies let the API server in by those addresses"
            )
        if not self.existing and self.control_plane_subnets:
            raise ValueError(
                "controlPlaneSubnets is for an existing VPC; a new one gets its own per zone"
            )
        shared = {s.id for s in self.control_plane_subnets} & set(self.private_subnet_ids)
        if shared:
            raise ValueError(
                f"{', '.join(sorted(shared))}: a control-plane subnet must not also hold nodes, "
                "or NetworkPolicies could not tell the API server from pods"
            )
        if self.existing and "nat_gateways" in self.model_fields_set:
            raise ValueError("natGateways is for a VPC this stack creates, not an existing one")
        if not self.existing and len(self.availability_zones) < 2:
            raise ValueError("a new VPC needs at least 2 availabilityZones")
        if len(set(self.availability_zones)) != len(self.availability_zones):
            raise ValueError("availabilityZones lists a zone twice")
        if len(self.availability_zones) > MAX_VPC_ZONES:
            # The VPC is cut in quarters: three private subnets and one block of public ones.
            raise ValueError(f"a new VPC spans at most {MAX_VPC_ZONES} availabilityZones")
        if len(set(self.private_subnet_ids)) != len(self.private_subnet_ids):
            raise ValueError("privateSubnetIds lists a subnet twice")
        return self


@dataclass(frozen=True)
class VpcLayout:
    """The subnets of a new VPC, one of each kind per availability zone, in zone order."""

    private: tuple[str, ...]
    public: tuple[str, ...]
    control_plane: tuple[str, ...]


def split_vpc(vpc_cidr: str, zones: int) -> VpcLayout:
    """A quarter of the VPC per private subnet (nodes and pods); the last quarter cut in four:
    a sixteenth per public subnet, and the last sixteenth cut in four again, a sixty-fourth per
    control-plane subnet (EKS's network interfaces alone)."""
    quarters = list(ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=2))
    zones = min(zones, MAX_VPC_ZONES)
    sixteenths = list(quarters[3].subnets(prefixlen_diff=2))
    control_plane = list(sixteenths[3].subnets(prefixlen_diff=2))
    return VpcLayout(
        private=tuple(str(quarters[i]) for i in range(zones)),
        public=tuple(str(s) for s in sixteenths[:zones]),
        control_plane=tuple(str(s) for s in control_plane[:zones]),
    )


class SystemNodeGroup(Spec):
    """Small on-demand group for operators and controllers, kept off the GPU nodes."""

    instance_type: str = "m6i.xlarge"
    min_size: int = Field(default=2, ge=1, le=MAX_NODES)
    max_size: int = Field(default=4, ge=1, le=MAX_NODES)
    desired_size: int = Field(default=2, ge=1, le=MAX_NODES)
    # The EKS-optimized AL2023 AMI release; default: the one pinned for the Kubernetes version.
    ami_release_version: str | None = None
    # The nodes' encrypted gp3 root volume: images and pod data.
    root_volume_gib: int = Field(default=50, ge=20, le=MAX_VOLUME_GIB)

    @model_validator(mode="after")
    def _sizes_ordered(self) -> SystemNodeGroup:
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desiredSize {self.desired_size} must lie within [minSize {self.min_size}, "
                f"maxSize {self.max_size}]"
            )
        return self


# EKS service quota "Public endpoint access CIDR ranges per cluster" (docs.aws.amazon.com/eks/
# latest/userguide/service-quotas.html).
MAX_PUBLIC_ACCESS_CIDRS = 40


class EndpointAccess(Spec):
    """How `pulumi up` (and kubectl) reach the API server. The nodes always use the private
    endpoint; `pulumi up` creates Kubernetes objects, so its runner must reach one of them."""

    # public-and-private: the public endpoint answers only publicAccessCidrs. private: only the
    # VPC and networks routed to it reach the API server.
    mode: Literal["public-and-private", "private"]
    # public-and-private: the networks the public endpoint answers (the deploy runner's egress
    # addresses, your VPN); 0.0.0.0/0 only when you mean the whole internet.
    public_access_cidrs: list[Ipv4Network] = Field(default=[], max_length=MAX_PUBLIC_ACCESS_CIDRS)
    # private: where `pulumi up` runs: in-vpc (a runner in this VPC) or connected-network (VPN,
    # peering or Transit Gateway routed to it, with DNS for the private endpoint).
    runner: Literal["in-vpc", "connected-network"] | None = None
    # private: the runner's networks, let in to the API server (443) by the cluster security group.
    runner_cidrs: list[Ipv4Network] = []
    # private, in a VPC this stack creates: true once an earlier `up` (with public-and-private)
    # made the VPC and the runner now reaches it; before that no runner can, and the first `up`
    # could not create a Kubernetes object.
    vpc_reachable: bool = False

    @model_validator(mode="after")
    def _the_path_is_stated(self) -> EndpointAccess:
        if self.mode == "public-and-private":
            if not self.public_access_cidrs:
                raise ValueError(
                    "mode public-and-private needs publicAccessCidrs: the networks `pulumi up` "
                    "and kubectl come from (no silent 0.0.0.0/0; list it to mean the internet)"
                )
            if self.runner is not None or self.runner_cidrs or self.vpc_reachable:
                raise ValueError("runner, runnerCidrs and vpcReachable belong to mode private")
            return self
        if self.runner is None or not self.runner_cidrs:
            raise ValueError(
                "mode private: with no public endpoint, `pulumi up` must run inside the VPC or a "
                "network routed to it: set runner (in-vpc or connected-network) and runnerCidrs"
            )
        if self.public_access_cidrs:
            raise ValueError("publicAccessCidrs belongs to mode public-and-private")
        return self


ControlPlaneLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
# The retention periods CloudWatch Logs accepts (PutRetentionPolicy retentionInDays).
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731),
    *(1096, 1827, 2192, 2557, 2922, 3288, 3653),
)


class ControlPlaneLogs(Spec):
    """EKS control-plane logs, to the CloudWatch log group /aws/eks/<name>/cluster."""

    # [] turns control-plane logging off.
    types: list[ControlPlaneLogType] = ["api", "audit", "authenticator"]
    # How long CloudWatch keeps them: one of the periods it offers.
    retention_days: int = 90

    @field_validator("retention_days")
    @classmethod
    def _a_cloudwatch_period(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch keeps logs for one of {LOG_RETENTION_DAYS} days")
        return days

    @field_validator("types")
    @classmethod
    def _each_once(cls, types: list[str]) -> list[str]:
        if len(set(types)) != len(types):
            raise ValueError("a log type is listed twice")
        return types


AddonVersion = Annotated[str, Field(pattern=r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")]


def addon_key(addon: str) -> str:
    """The cluster.addons key of an EKS add-on: aws-ebs-csi-driver -> awsEbsCsiDriver."""
    return to_camel(addon.replace("-", "_"))


class AddonVersions(Spec):
    """Managed add-on versions (`aws eks describe-addon-versions`); each one left unset takes
    the version pinned for the cluster's Kubernetes version (infra/stack/eks_versions.py)."""

    vpc_cni: AddonVersion | None = None
    kube_proxy: AddonVersion | None = None
    coredns: AddonVersion | None = None
    eks_pod_identity_agent: AddonVersion | None = None
    aws_ebs_csi_driver: AddonVersion | None = None

    def pinned(self, kubernetes_version: str) -> dict[str, str | None]:
        """Each add-on's version by its EKS name; None where neither this nor a default says."""
        defaults = DEFAULT_ADDON_VERSIONS.get(kubernetes_version, {})
        return {
            addon: getattr(self, addon.replace("-", "_")) or defaults.get(addon) for addon in ADDONS
        }


class UpgradePolicy(Spec):
    # EXTENDED (EKS's default for clusters made through its API): past the end of standard
    # support the cluster stays on its version at the extended-support price. STANDARD: EKS
    # upgrades the control plane itself then (bump kubernetesVersion to match).
    support_type: Literal["STANDARD", "EXTENDED"] = "EXTENDED"


# EC2 tag restrictions (docs.aws.amazon.com/AWSEC2/latest/UserGuide/Using_Tags.html): keys up to
# 128 and values up to 256 characters of letters, digits, spaces and + - = . _ : / @; the aws:
# prefix is AWS's own.
TAG_TEXT = r"[\w\s+=.:/@-]*"


def _tag_key(key: str) -> str:
    if not re.fullmatch(TAG_TEXT, key):
        raise ValueError(f"tag key {key!r}: letters, digits, spaces and + - = . _ : / @ only")
    if key.lower().startswith("aws:"):
        raise ValueError(f"tag key {key!r}: the aws: prefix is reserved for AWS")
    return key


TagKey = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_tag_key)]
TagValue = Annotated[str, Field(max_length=256, pattern=f"^{TAG_TEXT}$")]
# The tags every stack sets itself.
OWN_TAG_KEYS = ("project", "stack", "environment", "cost-centre")


class ResourceTags(Spec):
    """Tags on every AWS resource (the provider's default tags) and on the nodes' instances,
    volumes and network interfaces: project and stack, plus these."""

    # Default: the stack name.
    environment: TagValue | None = None
    # The cost-centre tag; unset: none.
    cost_centre: TagValue | None = None
    # More tags, e.g. team: inference.
    extra: dict[TagKey, TagValue] = {}

    @field_validator("extra")
    @classmethod
    def _not_ours(cls, extra: dict[str, str]) -> dict[str, str]:
        taken = sorted(set(extra) & set(OWN_TAG_KEYS))
        if taken:
            raise ValueError(f"{', '.join(taken)}: set by the stack itself")
        return extra


def zone_in_region(zone: str, region: str) -> bool:
    """An availability zone (us-east-1a) or Local Zone (us-east-1-bos-1a) of `region`."""
    return re.fullmatch(rf"{re.escape(region)}([a-z]|-[a-z]+-\d+[a-z])", zone) is not None


def _offered_by_eks(version: str) -> str:
    if version not in EKS_KUBERNETES_VERSIONS:
        raise ValueError(
            f"EKS does not create clusters with Kubernetes {version}: it offers "
            f"{', '.join(EKS_KUBERNETES_VERSIONS)}"
        )
    return version


class EksCluster(Spec):
    mode: Literal["eks"] = "eks"
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    kubernetes_version: Annotated[str, AfterValidator(_offered_by_eks)] = Field(
        default=DEFAULT_KUBERNETES_VERSION, pattern=r"^1\.\d{2}$"
    )
    upgrade_policy: UpgradePolicy = UpgradePolicy()
    vpc: VpcSpec
    endpoint_access: EndpointAccess
    # Cluster admins (EKS access entries with AmazonEKSClusterAdminPolicy). The identity that
    # runs `pulumi up` must be one: the creator gets no access of its own.
    admin_principal_arns: list[IamPrincipalArn] = []
    system_node_group: SystemNodeGroup = SystemNodeGroup()
    control_plane_logs: ControlPlaneLogs = ControlPlaneLogs()
    # Envelope encryption of Kubernetes Secrets with a KMS key of the stack's (rotated yearly).
    # EKS cannot turn it off again once on.
    secrets_encryption: bool = True
    # Pulumi `protect` on the cluster, VPC, KMS key and log group, and EKS deletion protection:
    # `pulumi destroy` stops until this is false and applied.
    protect: bool = True
    addons: AddonVersions = AddonVersions()
    # strict: a new pod has no network until its NetworkPolicies apply (every pod not on the
    # host network needs one); standard: a new pod is open until then. Needs
    # security.networkPolicies.
    network_policy_enforcing_mode: Literal["strict", "standard"] = "strict"
    tags: ResourceTags = ResourceTags()


class ExistingCluster(Spec):
    """A cluster someone else runs: only a kubeconfig, and no AWS resource is created."""

    mode: Literal["existing"] = "existing"
    kubeconfig: str | None = None
    context: str | None = None
    # The addresses the API server reaches pods from (webhooks, the promoter's smoke requests
    # through Service proxies). Empty: not known, so webhooks take any source and the promotion
    # gates reach frontends only where the API server shares their node (a one-node lab cluster).
    api_server_cidrs: list[Ipv4Network] = []
    kubernetes_version: str = Field(default=DEFAULT_KUBERNETES_VERSION, pattern=r"^1\.\d{2}$")


def _cluster_mode(value: Any) -> str:
    """The cluster's `mode` (default eks), told apart without a per-field discriminator."""
    if isinstance(value, dict):
        return str(value.get("mode", "eks"))
    return str(getattr(value, "mode", "eks"))


ClusterSpec = Annotated[
    Annotated[EksCluster, Tag("eks")] | Annotated[ExistingCluster, Tag("existing")],
    Discriminator(_cluster_mode),
]
