"""The GPU node pools a stack runs its workers on: instance type, capacity, AMI, EFA, zone.

Checks that need more than one key (sizes, reservations, zones) are in infra.stack.pool_checks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from infra.stack.spec import Spec


class GpuFacts(Spec):
    """GPU facts for an instance type the built-in catalog lacks."""

    gpu_product: str
    gpus_per_node: int = Field(ge=1, le=16)
    gpu_memory_gib: float = Field(gt=0)
    efa_interfaces: int = Field(default=0, ge=0)


class NodePool(Spec):
    name: str
    instance_type: str
    gpu: GpuFacts | None = None
    capacity_type: Literal["on-demand", "spot", "capacity-block"] = "on-demand"
    capacity_reservation_id: str | None = None
    # The placement group the capacity reservation was made in (EC2 launches its instances only
    # there; `preflight` reads it). Unset: a capacity-block pool gets no placement group, any
    # other EFA pool a cluster placement group of its own.
    reservation_placement_group: str | None = None
    ami_type: Literal["al2023-nvidia", "bottlerocket-nvidia"] = "al2023-nvidia"
    # The AMI release; AL2023 default: the one pinned for the Kubernetes version.
    ami_release_version: str | None = None
    min_size: int = Field(default=0, ge=0)
    max_size: int = Field(default=1, ge=1)
    desired_size: int = Field(default=1, ge=0)
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
    root_volume_gib: int = Field(default=200, ge=20)
    # Stripe the instance-store NVMe disks into one RAID0 volume for caches (AL2023 nodes).
    local_nvme_raid0: bool = True
    labels: dict[str, str] = {}
    # For existing clusters: how to find this pool's nodes (default: our pool label).
    node_selector: dict[str, str] = {}

    @property
    def capacity_block(self) -> bool:
        """Runs in an EC2 Capacity Block: a fixed set of reserved instances, none spare."""
        return self.capacity_type == "capacity-block"
