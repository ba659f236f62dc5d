"""The GPU node pools a stack runs its workers on: instance type, capacity, AMI, EFA, zone.

Checks that need more than one key (sizes, reservations, zones) are in infra.stack.pool_checks.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from infra.stack.spec import MAX_NODES, MAX_VOLUME_GIB, Spec


class GpuFacts(Spec):
    """GPU facts for an instance type the built-in catalog lacks."""

    gpu_product: str
    gpus_per_node: int = Field(ge=1, le=16)
    gpu_memory_gib: float = Field(gt=0)
    efa_interfaces: int = Field(default=0, ge=0)
    # The node's memory: workers' default memory limit is their GPUs' share of it (without it,
    # each worker role states its memory).
    memory_gib: int | None = Field(default=None, ge=1)


# Karpenter's controller as the stack installs it: the getting-started guide's 1 CPU and 1 GiB,
# requested and limited; its chart's 2 replicas on different hosts (required anti-affinity), never
# more than there are system nodes, or one stays Pending.
KARPENTER_CONTROLLER_CPU = "1"
KARPENTER_CONTROLLER_MEMORY = "1Gi"
KARPENTER_MAX_REPLICAS = 2


def karpenter_controller_replicas(system_nodes: int) -> int:
    return max(1, min(KARPENTER_MAX_REPLICAS, system_nodes))


# Karpenter's duration syntax (karpenter.sh_nodepools.yaml v1.14.1: consolidateAfter, expireAfter).
KarpenterDuration = Annotated[str, Field(pattern=r"^(([0-9]+(s|m|h))+|Never)$")]
# The disruption budget's node count: a number or a percentage of the pool's nodes.
NodeBudget = Annotated[str, Field(pattern=r"^((100|[0-9]{1,2})%|[0-9]+)$")]


class KarpenterDisruption(Spec):
    """When Karpenter may take a GPU node away (a karpenter pool's `karpenter:` block)."""

    # How long a node stays empty of workers before Karpenter removes it (Never: kept).
    # Consolidation is only ever of empty nodes: moving a worker costs its weight load.
    consolidate_after: KarpenterDuration = "10m"
    # A node's lifetime before Karpenter replaces it; Never by default, since a replacement
    # reloads every worker on it. Capacity blocks end on their own date.
    expire_after: KarpenterDuration = "Never"
    # At most this many of the pool's nodes (or percent) disrupted at once, for any reason.
    max_disrupted_nodes: NodeBudget = "1"
    # The longest a node drains before its pods are deleted; unset: pods that ask not to be
    # disrupted (multinode groups, workers still loading) hold a drifted node indefinitely.
    termination_grace_period: Annotated[str, Field(pattern=r"^([0-9]+(s|m|h))+$")] | None = None


class NodePool(Spec):
    name: str
    instance_type: str
    gpu: GpuFacts | None = None
    # managed-node-group: an EKS managed node group of minSize..maxSize nodes. karpenter: nodes
    # started when a pod waits for one and removed once empty, from zero to maxSize nodes (the
    # NodePool's GPU limit); needs cluster.mode eks.
    provisioner: Literal["managed-node-group", "karpenter"] = "managed-node-group"
    karpenter: KarpenterDisruption = KarpenterDisruption()
    # karpenter only: more instance types Karpenter may launch for the pool (it takes the
    # cheapest one offered), each with instanceType's GPU and GPU count; the checks plan every
    # node as the smallest of them.
    alternative_instance_types: list[str] = Field(default=[], max_length=20)
    capacity_type: Literal["on-demand", "spot", "capacity-block"] = "on-demand"
    # A capacity block's reservation, or an On-Demand Capacity Reservation an on-demand pool
    # launches into first (karpenter: then falls back to on-demand).
    capacity_reservation_id: Annotated[str, Field(pattern=r"^cr-[0-9a-z]+$")] | None = None
    # The placement group the capacity reservation was made in (EC2 launches its instances only
    # there; `preflight` reads it). Unset: a capacity-block pool gets no placement group, any
    # other EFA pool a cluster placement group of its own.
    reservation_placement_group: str | None = None
    ami_type: Literal["al2023-nvidia", "bottlerocket-nvidia"] = "al2023-nvidia"
    # The AMI release; AL2023 default: the one pinned for the Kubernetes version.
    ami_release_version: str | None = None
    min_size: int = Field(default=0, ge=0, le=MAX_NODES)
    max_size: int = Field(default=1, ge=1, le=MAX_NODES)
    desired_size: int = Field(default=1, ge=0, le=MAX_NODES)
    # true: an autoscaler you run (e.g. cluster-autoscaler) resizes the group between minSize
    # and maxSize, and Pulumi leaves desiredSize alone. false: the group stays at desiredSize.
    autoscaled: bool = False
    # Nodes an update (new AMI release or launch template) replaces at a time (EKS allows 100).
    max_unavailable: int = Field(default=1, ge=1, le=100)
    # EKS node auto repair: unhealthy nodes are replaced.
    auto_repair: bool = True
    # true: EFA interfaces, a placement group (see reservationPlacementGroup), the EFA device
    # plugin. Unset on a pool running multinode workers is an error; false there accepts NCCL
    # and KV transfer over TCP (a warning).
    efa: bool | None = None
    availability_zone: str | None = None
    # Private subnets for the pool on an existing VPC (ours are known by availability zone).
    subnet_ids: list[str] = []
    root_volume_gib: int = Field(default=200, ge=20, le=MAX_VOLUME_GIB)
    # Stripe the instance-store NVMe disks into one RAID0 volume for caches (AL2023 nodes).
    local_nvme_raid0: bool = True
    labels: dict[str, str] = {}
    # For existing clusters: how to find this pool's nodes (default: our pool label).
    node_selector: dict[str, str] = {}

    @property
    def karpenter_managed(self) -> bool:
        return self.provisioner == "karpenter"

    @property
    def instance_types(self) -> list[str]:
        """Every instance type the pool's nodes may be: instanceType first."""
        return [self.instance_type, *self.alternative_instance_types]

    def instance_type_keys(self) -> list[tuple[str, str]]:
        """Each instance type with the key that states it (alternativeInstanceTypes[i])."""
        return [("instanceType", self.instance_type)] + [
            (f"alternativeInstanceTypes[{i}]", t)
            for i, t in enumerate(self.alternative_instance_types)
        ]

    @property
    def schedulable_nodes(self) -> int:
        """How many nodes the scheduler can count on: a fixed managed node group stays at
        desiredSize (nothing adds a node to it); Karpenter and an autoscaled group grow to
        maxSize."""
        return self.max_size if self.karpenter_managed or self.autoscaled else self.desired_size

    @property
    def schedulable_nodes_key(self) -> str:
        """The setting that bounds schedulable_nodes."""
        return "maxSize" if self.karpenter_managed or self.autoscaled else "desiredSize"

    @property
    def capacity_block(self) -> bool:
        """Runs in an EC2 Capacity Block: a fixed set of reserved instances, none spare."""
        return self.capacity_type == "capacity-block"
