"""Pack every worker pod onto its pool's nodes, as the kube-scheduler would, before any node runs.

A GPU sum says 48 GPUs fit 6 × 8; the scheduler places pods, each on one node with room for all
it requests: GPUs, EFA interfaces, CPU and memory (requests plus its memory-backed /dev/shm)
against the node's allocatable (capacity minus kubelet reservations). Multinode workers are a
gang: all of a group's pods on distinct nodes, or none (Grove with gang scheduling). Both slots
run at once; autoscaled roles count at maxReplicas. A pool is packed at the nodes it can have:
maxSize for Karpenter and autoscaled groups, desiredSize for a fixed managed node group (no
autoscaler adds a node to it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import islice

from infra.deployment.readiness import weights_gib
from infra.deployment.resolved import Deployment
from infra.stack.config import EksCluster, NodePool
from infra.stack.errors import ConfigIssue
from infra.stack.instances import (
    EFA_NODE_HUGEPAGES_MIB,
    ROOT_VOLUME_RESERVE_GIB,
    GpuInstance,
    allocatable_memory_mib,
    cache_disk_gib,
    pool_gpus,
    striped_nvme,
)
from infra.stack.names import parse_quantity_mib


@dataclass(frozen=True)
class Demand:
    gpus: int = 0
    efa: int = 0
    cpu_millis: int = 0
    memory_mib: int = 0
    hugepages_mib: int = 0

    def fits(self, free: Demand) -> bool:
        return (
            self.gpus <= free.gpus
            and self.efa <= free.efa
            and self.cpu_millis <= free.cpu_millis
            and self.memory_mib <= free.memory_mib
            and self.hugepages_mib <= free.hugepages_mib
        )

    def __sub__(self, other: Demand) -> Demand:
        return Demand(
            self.gpus - other.gpus,
            self.efa - other.efa,
            self.cpu_millis - other.cpu_millis,
            self.memory_mib - other.memory_mib,
            self.hugepages_mib - other.hugepages_mib,
        )


@dataclass(frozen=True)
class PodGroup:
    """Pods the scheduler must place together: one pod, or a multinode worker's gang."""

    label: str  # e.g. "deepseek-r1/blue prefill #1 (2 nodes)"
    model_path: str  # models[i]
    role: str
    pods: int  # pods in the group, each on its own node
    demand: Demand  # per pod
    # What each pod downloads from the Hugging Face hub into its pod-lifetime HF_HOME volume
    # (the node's ephemeral disk; no request, so the scheduler does not count it).
    download_gib: float = 0


@dataclass
class Node:
    free: Demand
    pods: list[str] = field(default_factory=list)
    download_gib: float = 0  # what its pods' downloads put on its ephemeral disk


@dataclass
class PoolPlacement:
    pool: NodePool
    index: int  # nodePools[index]
    allocatable: Demand
    nodes: list[Node]
    unplaced: list[PodGroup]
    nodes_needed: int  # with as many nodes as it takes

    @property
    def used(self) -> int:
        return sum(1 for node in self.nodes if node.pods)


def node_allocatable(instance: GpuInstance, efa: bool = True) -> Demand:
    """What the scheduler may hand out on one node of `instance` (EFA only on EFA pools)."""
    cores = instance.vcpu
    reserved_cpu = _reserved_cpu_millis(cores)
    memory = allocatable_memory_mib(instance, efa) or 10**9
    cpu = cores * 1000 - reserved_cpu if cores else 10**9  # facts given without a shape
    if not efa:
        return Demand(instance.gpu_count, 0, cpu, memory)
    return Demand(instance.gpu_count, instance.efa_interfaces, cpu, memory, EFA_NODE_HUGEPAGES_MIB)


def _reserved_cpu_millis(cores: int) -> int:
    """6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % of the rest."""
    shares = [60, 10, 5, 5]
    return math.ceil(sum(shares[i] if i < len(shares) else 2.5 for i in range(cores)))


def pod_groups(deployment: Deployment) -> dict[str, list[PodGroup]]:
    """Every worker pod group of the deployment, by pool name."""
    groups: dict[str, list[PodGroup]] = {}
    for resolved in deployment.models:
        model = resolved.model
        if model.engine != "trtllm":
            continue
        for role in resolved.roles.values():
            if role.pool is None or role.placement is None:
                continue
            spec = model.role(role.role)
            shm = parse_quantity_mib(spec.shared_memory)
            if spec.memory:
                memory = parse_quantity_mib(spec.memory) + shm
            else:  # the default share of the node, /dev/shm inside it
                memory = max(role.placement.memory_mib or 0, shm)
            demand = Demand(
                gpus=spec.gpus_per_worker,
                efa=role.placement.efa_interfaces,
                cpu_millis=_cpu_millis(spec.cpu) if spec.cpu else 0,
                memory_mib=memory,
                hugepages_mib=role.placement.hugepages_mib,
            )
            downloads = model.source_for(role.color).hugging_face is not None
            download = (weights_gib(resolved) or 0) if downloads else 0
            for replica in range(role.peak_replicas):
                nodes = f" ({spec.nodes} nodes)" if spec.nodes > 1 else ""
                groups.setdefault(role.pool.name, []).append(
                    PodGroup(
                        f"{model.name}/{role.color} {role.role} #{replica + 1}{nodes}",
                        resolved.path,
                        role.role,
                        spec.nodes,
                        demand,
                        download,
                    )
                )
    return groups


def _cpu_millis(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else math.ceil(float(quantity) * 1000)


def place(deployment: Deployment) -> list[PoolPlacement]:
    """Each EKS pool at its schedulable nodes, pods packed first-fit, gangs and largest first."""
    config = deployment.config
    if not isinstance(config.cluster, EksCluster):
        return []  # an existing cluster's nodes are not ours to count
    groups = pod_groups(deployment)
    placements = []
    for index, pool in enumerate(config.node_pools):
        instance = pool_gpus(pool)
        if instance is None:
            continue
        allocatable = node_allocatable(instance, bool(pool.efa))
        wanted = groups.get(pool.name, [])
        nodes, unplaced = pack(wanted, allocatable, pool.schedulable_nodes)
        needed, _ = pack(wanted, allocatable, None)
        placements.append(
            PoolPlacement(
                pool, index, allocatable, nodes, unplaced, sum(1 for n in needed if n.pods)
            )
        )
    return placements


def pack(
    groups: list[PodGroup], allocatable: Demand, limit: int | None
) -> tuple[list[Node], list[PodGroup]]:
    """First-fit decreasing; limit None adds nodes as needed (to count what it would take)."""
    nodes = [Node(allocatable) for _ in range(limit or 0)]
    unplaced: list[PodGroup] = []
    order = sorted(groups, key=lambda g: (-g.pods, -g.demand.gpus, -g.demand.efa, g.label))
    for group in order:
        if not group.demand.fits(allocatable):
            unplaced.append(group)  # no node of this type can ever hold one of its pods
            continue
        chosen = list(islice((n for n in nodes if group.demand.fits(n.free)), group.pods))
        while limit is None and len(chosen) < group.pods:
            nodes.append(Node(allocatable))
            chosen.append(nodes[-1])
        if len(chosen) < group.pods:
            unplaced.append(group)  # a gang places all of its pods, or none
            continue
        for node in chosen:
            node.free = node.free - group.demand
            node.pods.append(group.label)
            node.download_gib += group.download_gib
    return nodes, unplaced


def placement_issues(deployment: Deployment) -> list[ConfigIssue]:
    """Pools whose pods the scheduler could not all place on the nodes the pool can have, and
    nodes whose pods' downloads overfill their disk."""
    placements = place(deployment)
    issues = _download_disk_issues(placements) + _cache_worker_issues(deployment, placements)
    for placement in placements:
        # More GPUs than a node has is the stack checks' to report (gpusPerWorker).
        unplaced = [g for g in placement.unplaced if g.demand.gpus <= placement.allocatable.gpus]
        if not unplaced:
            continue
        pool = placement.pool
        never = [g for g in unplaced if not g.demand.fits(placement.allocatable)]
        names = ", ".join(g.label for g in unplaced[:6])
        more = len(unplaced) - 6
        names += f" and {more} more" if more > 0 else ""
        if never:
            demand = never[0].demand
            issues.append(
                ConfigIssue(
                    f"{never[0].model_path}.{never[0].role}",
                    f"a pod of {never[0].label} asks for {_describe(demand)}, more than one "
                    f"{pool.instance_type} node of pool {pool.name!r} can give "
                    f"({_describe(placement.allocatable)} allocatable)",
                )
            )
            continue  # more nodes would not help
        issues.append(
            ConfigIssue(
                f"nodePools[{placement.index}].{pool.schedulable_nodes_key}",
                f"the scheduler cannot place {names} on pool {pool.name!r}: its pods need "
                f"{placement.nodes_needed} {pool.instance_type} nodes, "
                f"{pool.schedulable_nodes_key} is {pool.schedulable_nodes}"
                f"{_fixed_pool_hint(pool)} (see `dynamo-infra plan` for the placement)",
            )
        )
    return issues


def _cache_worker_issues(
    deployment: Deployment, placements: list[PoolPlacement]
) -> list[ConfigIssue]:
    """Each cached slot's Dataset is `placement: Exclusive`: Fluid puts its cache worker on a
    node no other Dataset's worker uses, so a pool needs a node per Dataset it caches."""
    config = deployment.config
    datasets: dict[str, list[str]] = {}
    for model in config.models:
        pool = config.cache_pool(model)
        if pool is None:
            continue
        for color in sorted(model.slots):
            if model.source_for(color).s3 is not None:
                datasets.setdefault(pool.name, []).append(f"{model.name}/{color}")
    issues = []
    for placement in placements:
        pool = placement.pool
        cached = datasets.get(pool.name, [])
        if len(cached) > pool.schedulable_nodes:
            issues.append(
                ConfigIssue(
                    f"nodePools[{placement.index}].{pool.schedulable_nodes_key}",
                    f"pool {pool.name!r} caches {len(cached)} Datasets ({', '.join(cached)}) on "
                    f"{pool.schedulable_nodes} nodes: Fluid gives each Exclusive Dataset's cache "
                    "worker a node of its own, so one would never start and its slot's workers "
                    "would wait for their volume; add nodes, or retire a slot's cache",
                )
            )
    return issues


def _download_disk_issues(placements: list[PoolPlacement]) -> list[ConfigIssue]:
    """Nodes whose pods download more from the Hugging Face hub than the node's ephemeral disk
    holds: the kubelet evicts them under disk pressure (their HF_HOME is pod-lifetime storage
    on that disk: the NVMe array with nodeadm's RAID0, else the root volume)."""
    issues = []
    for placement in placements:
        pool = placement.pool
        disk = cache_disk_gib(pool)
        full = [node for node in placement.nodes if node.download_gib > disk]
        if not full:
            continue
        node = max(full, key=lambda n: n.download_gib)
        where = (
            "its NVMe array"
            if striped_nvme(pool)
            else f"its {pool.root_volume_gib} GiB root volume less {ROOT_VOLUME_RESERVE_GIB} GiB "
            "for the node itself"
        )
        issues.append(
            ConfigIssue(
                f"nodePools[{placement.index}].rootVolumeGib",
                f"on a node of pool {pool.name!r}, {', '.join(node.pods)} download "
                f"{node.download_gib:.0f} GiB from the Hugging Face hub into pod storage, more "
                f"than {where} ({disk} GiB): the kubelet would evict them mid-download; raise "
                "rootVolumeGib, or serve the weights from S3 through modelCache",
            )
        )
    return issues


def _fixed_pool_hint(pool: NodePool) -> str:
    if pool.schedulable_nodes_key == "maxSize":
        return ""
    return "; a managed node group without `autoscaled` runs exactly desiredSize nodes"


def _describe(demand: Demand) -> str:
    parts = [f"{demand.gpus} GPUs"]
    if demand.efa:
        parts.append(f"{demand.efa} EFA interfaces")
    if demand.hugepages_mib:
        parts.append(f"{demand.hugepages_mib} MiB of 2 MiB huge pages")
    if demand.cpu_millis < 10**8:
        parts.append(f"{demand.cpu_millis / 1000:g} CPUs")
    if demand.memory_mib < 10**8:
        parts.append(f"{demand.memory_mib / 1024:.0f} GiB memory")
    return ", ".join(parts)


def format_placement(placements: list[PoolPlacement]) -> str:
    """Per pool: nodes used of those it can have, each node's pods and what is left free."""
    lines = []
    for placement in placements:
        pool = placement.pool
        # A Karpenter pool's maxSize is its limit: its nodes exist only while pods need them.
        kind = ", Karpenter: nodes on demand" if pool.karpenter_managed else ""
        lines.append(
            f"pool {pool.name} ({pool.instance_type}{kind}): {placement.used} of "
            f"{pool.schedulable_nodes} nodes used ({pool.schedulable_nodes_key}), "
            f"{placement.nodes_needed} needed"
        )
        for number, node in enumerate(placement.nodes, start=1):
            if not node.pods:
                continue
            free = node.free
            left = f"free {free.gpus} GPUs"
            if placement.allocatable.efa:
                left += f", {free.efa} EFA"
            if free.memory_mib < 10**8:
                left += f", {free.memory_mib / 1024:.0f} GiB"
            lines.append(f"  node {number}: {', '.join(node.pods)}; {left}")
        for group in placement.unplaced:
            lines.append(f"  NOT PLACED: {group.label}")
    return "\n".join(lines)
