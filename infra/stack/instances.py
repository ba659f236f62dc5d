"""GPU facts for AWS instance types (EC2 DescribeInstanceTypes figures).

The catalog lets a stack speak in instance types while the checks reason in GPUs:
a worker asking for more GPUs than a node has is an error before any node starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from infra.stack.config import NodePool
from infra.stack.names import NODE_POOL_LABEL

# The GPU families whose EFA devices offer RDMA read (EC2 user guide, "EFA supported instance
# types"). libfabric aborts a process that sets FI_EFA_USE_DEVICE_RDMA=1 on a device without it
# ("EFA device has no rdma-read capability", prov/efa efa_rdm_get_use_device_rdma), as on g5.
EFA_RDMA_READ_FAMILIES = frozenset({"p4d", "p4de", "p5", "p5e", "p5en", "p6-b200"})


@dataclass(frozen=True)
class GpuInstance:
    instance_type: str
    gpu_product: str
    gpu_count: int
    gpu_memory_gib: float
    vcpu: int
    memory_gib: int
    efa_interfaces: int
    local_nvme: bool
    nvme_gb: int = 0  # instance-store NVMe capacity, all disks together (EC2's GB)

    @property
    def supports_efa(self) -> bool:
        return self.efa_interfaces > 0

    @property
    def efa_rdma_read(self) -> bool:
        """The instance's EFA reads GPU memory of the peer directly (GPUDirect RDMA)."""
        return self.instance_type.split(".", 1)[0] in EFA_RDMA_READ_FAMILIES


def _sizes(
    family: str,
    gpu_product: str,
    gpu_memory_gib: float,
    rows: list[tuple[str, int, int, int, int, int]],
) -> list[GpuInstance]:
    """rows: (size, gpus, vcpu, memory GiB, EFA interfaces, NVMe GB); G families carry NVMe."""
    return [
        GpuInstance(
            f"{family}.{size}", gpu_product, gpus, gpu_memory_gib, vcpu, mem, efa, True, nvme
        )
        for size, gpus, vcpu, mem, efa, nvme in rows
    ]


_G6E = [
    ("xlarge", 1, 4, 32, 0, 250),
    ("2xlarge", 1, 8, 64, 0, 450),
    ("4xlarge", 1, 16, 128, 0, 600),
    ("8xlarge", 1, 32, 256, 1, 900),
    ("16xlarge", 1, 64, 512, 1, 1900),
    ("12xlarge", 4, 48, 384, 1, 3800),
    ("24xlarge", 4, 96, 768, 2, 3800),
    ("48xlarge", 8, 192, 1536, 4, 7600),
]
# g5 and g6 share one shape table; only the GPU (and g6's larger disks' split) differs.
_G5_G6 = [
    ("xlarge", 1, 4, 16, 0, 250),
    ("2xlarge", 1, 8, 32, 0, 450),
    ("4xlarge", 1, 16, 64, 0, 600),
    ("8xlarge", 1, 32, 128, 1, 900),
    ("16xlarge", 1, 64, 256, 1, 1900),
    ("12xlarge", 4, 48, 192, 1, 3760),
    ("24xlarge", 4, 96, 384, 1, 3760),
    ("48xlarge", 8, 192, 768, 1, 7520),
]

CATALOG: dict[str, GpuInstance] = {
    entry.instance_type: entry
    for entry in [
        GpuInstance("p5.48xlarge", "H100-80GB", 8, 80, 192, 2048, 32, True, 30720),
        GpuInstance("p5e.48xlarge", "H200", 8, 141, 192, 2048, 32, True, 30720),
        GpuInstance("p5en.48xlarge", "H200", 8, 141, 192, 2048, 16, True, 30720),
        GpuInstance("p4d.24xlarge", "A100-40GB", 8, 40, 96, 1152, 4, True, 8000),
        GpuInstance("p4de.24xlarge", "A100-80GB", 8, 80, 96, 1152, 4, True, 8000),
        GpuInstance("p6-b200.48xlarge", "B200", 8, 179, 192, 2048, 8, True, 30720),
        *_sizes("g6e", "L40S", 45, _G6E),
        *_sizes("g6", "L4", 22.4, _G5_G6),
        *_sizes("g5", "A10G", 22.4, _G5_G6),
    ]
}


def lookup(instance_type: str) -> GpuInstance | None:
    return CATALOG.get(instance_type)


def pool_gpus(pool: NodePool) -> GpuInstance | None:
    """GPU facts of a pool: the catalog entry, or the facts the pool states itself. A pool whose
    nodes may be one of several types (alternativeInstanceTypes) is planned as the smallest of
    each: whichever Karpenter launches, what fits the plan fits the node."""
    if pool.gpu is not None:
        return GpuInstance(
            instance_type=pool.instance_type,
            gpu_product=pool.gpu.gpu_product,
            gpu_count=pool.gpu.gpus_per_node,
            gpu_memory_gib=pool.gpu.gpu_memory_gib,
            vcpu=0,
            memory_gib=pool.gpu.memory_gib or 0,
            efa_interfaces=pool.gpu.efa_interfaces,
            local_nvme=False,
        )
    primary = lookup(pool.instance_type)
    shapes = [lookup(t) for t in pool.alternative_instance_types]
    known = [s for s in shapes if s is not None]
    if primary is None or not known:
        return primary
    every = [primary, *known]
    return dataclasses.replace(
        primary,
        vcpu=min(s.vcpu for s in every),
        memory_gib=min(s.memory_gib for s in every),
        efa_interfaces=min(s.efa_interfaces for s in every),
        local_nvme=all(s.local_nvme for s in every),
        nvme_gb=min(s.nvme_gb for s in every),
    )


# nodeadm's RAID0 (NodeConfig spec.instance.localStorage.strategy RAID0, AL2023) stripes the
# instance-store NVMe disks into /dev/md/kubernetes and mounts it here (amazon-eks-ami
# templates/al2023/runtime/bin/setup-local-disks); kubelet and containerd are bind-mounted onto it.
RAID0_MOUNT = "/mnt/k8s-disks/0"
# What a node's root volume keeps for itself (OS, images of both slots, logs) when the cache
# shares it: the TensorRT-LLM runtime image alone is tens of GiB unpacked.
ROOT_VOLUME_RESERVE_GIB = 100


def striped_nvme(pool: NodePool) -> bool:
    """The pool's nodes stripe instance-store NVMe into one array (nodeadm RAID0, AL2023)."""
    facts = pool_gpus(pool)
    return (
        pool.local_nvme_raid0
        and pool.ami_type == "al2023-nvidia"
        and facts is not None
        and facts.local_nvme
    )


def cache_disk_gib(pool: NodePool) -> int:
    """Disk a cache on this pool's nodes can fill: the NVMe array, else the root volume's rest."""
    facts = pool_gpus(pool)
    if striped_nvme(pool) and facts is not None and facts.nvme_gb:
        return int(facts.nvme_gb * 1e9 / 2**30)
    return max(0, pool.root_volume_gib - ROOT_VOLUME_RESERVE_GIB)


def pool_node_selector(pool: NodePool) -> dict[str, str]:
    """How workers find this pool's nodes: our pool label, or what an existing cluster uses."""
    return dict(pool.node_selector) if pool.node_selector else {NODE_POOL_LABEL: pool.name}


def efa_per_pod(instance: GpuInstance | None, gpus: int) -> int:
    """A pod's share of the node's EFA interfaces, in proportion to its GPUs (at least one)."""
    if instance is None or not instance.efa_interfaces or not instance.gpu_count:
        return 0
    return max(1, instance.efa_interfaces * gpus // instance.gpu_count)


# EFA's libfabric works from 2 MiB huge pages. The EKS GPU AMIs with the EFA driver preallocate
# 5128 of them (10256 MiB) per node, and AWS's EFA pod examples ask 5120Mi for an 8-GPU worker
# (EKS user guide, node-efa); a pod asks its share, in proportion to its GPUs.
EFA_NODE_HUGEPAGES_MIB = 5128 * 2
EFA_HUGEPAGES_PER_NODE_MIB = 5120


def efa_hugepages_mib(instance: GpuInstance | None, gpus: int) -> int:
    if instance is None or not instance.gpu_count:
        return 0
    return EFA_HUGEPAGES_PER_NODE_MIB * gpus // instance.gpu_count


# kubelet reservations nodeadm sets on AL2023 EKS nodes (awslabs/amazon-eks-ami
# nodeadm/internal/kubelet/config.go): memory 255Mi + 11Mi per pod of maxPods, eviction at
# memory.available 100Mi, CPU a falling share of each core. maxPods comes from the instance's ENIs
# (eni_max_pods.go), capped by managed node groups at 110 below 30 vCPUs and 250 above; p5 and
# p5e give 100 (2 ENIs of 50 addresses), p5en 198.
_MAX_PODS = {"p5.48xlarge": 100, "p5e.48xlarge": 100, "p5en.48xlarge": 198}
EVICTION_MIB = 100
# What a GPU node's DaemonSets ask for (VPC CNI, kube-proxy, the EBS CSI and Pod Identity
# agents, device plugins, DCGM, Fluid's CSI plugin), kept out of the workers' default memory.
NODE_DAEMONSET_RESERVE_MIB = 4096
# A node's memory capacity is below the instance's nominal size (the kernel and firmware keep
# some; EC2's figure is GiB of RAM, not what the kubelet sees). Karpenter plans with 7.5% less
# (settings.vmMemoryOverheadPercent, 0.075, chart 1.14.1); so do we, on every pool.
VM_MEMORY_OVERHEAD = 0.075


def max_pods(instance: GpuInstance) -> int:
    default = 110 if instance.vcpu < 30 else 250
    return _MAX_PODS.get(instance.instance_type, default)


def allocatable_memory_mib(instance: GpuInstance, efa: bool = False) -> int | None:
    """A node's memory the scheduler may hand out; None when the instance's memory is unknown.
    Huge pages the EFA driver preallocates are not memory to the kubelet."""
    if not instance.memory_gib:
        return None
    reserved = 255 + 11 * max_pods(instance) + EVICTION_MIB
    hugepages = EFA_NODE_HUGEPAGES_MIB if efa and instance.supports_efa else 0
    capacity = int(instance.memory_gib * 1024 * (1 - VM_MEMORY_OVERHEAD))
    return capacity - reserved - hugepages


def worker_memory_mib(instance: GpuInstance | None, gpus: int, efa: bool = False) -> int | None:
    """A worker's default memory, requested and limited: its GPUs' share of what the node can
    give once its DaemonSets have theirs (the /dev/shm it fills counts inside it)."""
    allocatable = allocatable_memory_mib(instance, efa) if instance else None
    if instance is None or allocatable is None:
        return None
    return (
        (allocatable - NODE_DAEMONSET_RESERVE_MIB)
        * min(gpus, instance.gpu_count)
        // (instance.gpu_count)
    )


# General-purpose (m), compute (c) and memory (r) families the system nodes run on: EC2 gives
# each 2 vCPUs per `large` step and 4, 2 or 8 GiB per vCPU (docs.aws.amazon.com/ec2/latest/
# instancetypes/gp.html, co.html, mo.html).
_CPU_FAMILIES = {
    **dict.fromkeys(("m5", "m5a", "m6i", "m6a", "m7i", "m7a"), 4),
    **dict.fromkeys(("c5", "c5a", "c6i", "c6a", "c7i", "c7a"), 2),
    **dict.fromkeys(("r5", "r5a", "r6i", "r6a", "r7i", "r7a"), 8),
}
_CPU_SIZES = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48}


def cpu_instance(instance_type: str) -> GpuInstance | None:
    """A system node's shape (no GPU), for the families above; None for any other type."""
    family, _, size = instance_type.partition(".")
    if family not in _CPU_FAMILIES or size not in _CPU_SIZES:
        return None
    vcpu = _CPU_SIZES[size]
    return GpuInstance(instance_type, "", 0, 0, vcpu, vcpu * _CPU_FAMILIES[family], 0, False)
