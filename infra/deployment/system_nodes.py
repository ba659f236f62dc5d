"""The stack's own pods on the system nodes, packed as the scheduler would.

GPU nodes are tainted, so what tolerates no GPU taint lands on the system node group: every
slot's frontends (their `frontend.memory`, requested and limited), with Karpenter pools its
controller (1 CPU and 1 GiB a replica), and the platform charts' own pods at their charts'
requests (infra.deployment.platform_pods), whose DaemonSets take their share of every node first.
The EKS add-ons' pods (CoreDNS, kube-proxy, the VPC CNI, ...) are not counted. A managed node
group without an autoscaler runs `desiredSize` nodes: that is what they must fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

from infra.deployment.placement import Demand, Node, PodGroup, node_allocatable, pack
from infra.deployment.platform_pods import installed_charts, platform_daemon_sets, platform_pods
from infra.deployment.resolved import Deployment
from infra.stack.cluster_config import SystemNodeGroup
from infra.stack.config import EksCluster
from infra.stack.errors import ConfigIssue
from infra.stack.instances import cpu_instance
from infra.stack.names import parse_quantity_mib
from infra.stack.pool_config import (
    KARPENTER_CONTROLLER_CPU,
    KARPENTER_CONTROLLER_MEMORY,
    karpenter_controller_replicas,
)

WHERE = "cluster.systemNodeGroup"


def system_pods(deployment: Deployment) -> list[PodGroup]:
    """What the scheduler places on the system nodes; the DaemonSets are platform_daemon_sets."""
    config = deployment.config
    pods = []
    for resolved in deployment.models:
        model = resolved.model
        memory = parse_quantity_mib(model.frontend.memory)
        for color in sorted(model.slots):
            for replica in range(model.frontend.replicas):
                label = f"{model.name}/{color} frontend #{replica + 1}"
                pods.append(
                    PodGroup(label, resolved.path, "frontend", 1, Demand(memory_mib=memory))
                )
    cluster = config.cluster
    if isinstance(cluster, EksCluster) and any(p.karpenter_managed for p in config.node_pools):
        controller = Demand(
            cpu_millis=int(float(KARPENTER_CONTROLLER_CPU) * 1000),
            memory_mib=parse_quantity_mib(KARPENTER_CONTROLLER_MEMORY),
        )
        for replica in range(karpenter_controller_replicas(cluster.system_node_group.min_size)):
            pods.append(PodGroup(f"karpenter #{replica + 1}", WHERE, "karpenter", 1, controller))
    return pods + platform_pods(deployment)


@dataclass(frozen=True)
class SystemPacking:
    """The system node group's pods packed onto its desiredSize nodes, DaemonSets off first."""

    group: SystemNodeGroup
    allocatable: Demand  # per node, after its DaemonSets
    pods: list[PodGroup]
    daemon_sets: list[PodGroup]
    nodes: list[Node]
    unplaced: list[PodGroup]


def pack_system_nodes(deployment: Deployment) -> SystemPacking | None:
    """None: no system node group of ours, or an instance type we know no shape of."""
    cluster = deployment.config.cluster
    if not isinstance(cluster, EksCluster):
        return None
    group = cluster.system_node_group
    instance = cpu_instance(group.instance_type)
    if instance is None:
        return None
    daemon_sets = platform_daemon_sets(deployment)
    # Every node runs one pod of each DaemonSet: what is left is the rest's to share.
    allocatable = reduce(
        lambda free, pod: free - pod.demand, daemon_sets, node_allocatable(instance, efa=False)
    )
    pods = system_pods(deployment)
    nodes, unplaced = pack(pods, allocatable, group.desired_size)
    return SystemPacking(group, allocatable, pods, daemon_sets, nodes, unplaced)


def format_system_placement(packing: SystemPacking) -> str:
    """For `plan`: each system node's pods and what is left free on it."""
    group = packing.group
    used = sum(1 for node in packing.nodes if node.pods)
    lines = [
        f"system nodes ({group.instance_type}): {used} of {group.desired_size} nodes used "
        f"(desiredSize), {len(packing.pods)} pods beside the DaemonSets "
        f"({', '.join(pod.label for pod in packing.daemon_sets) or 'none of ours'})"
    ]
    for number, node in enumerate(packing.nodes, start=1):
        if node.pods:
            shown = ", ".join(node.pods[:5]) + (
                f" and {len(node.pods) - 5} more" if len(node.pods) > 5 else ""
            )
            free = node.free
            lines.append(
                f"  node {number}: {shown}; free {free.cpu_millis / 1000:.1f} CPU, "
                f"{free.memory_mib / 1024:.1f} GiB"
            )
    lines += [f"  NOT PLACED: {pod.label}" for pod in packing.unplaced]
    return "\n".join(lines)


def system_node_issues(deployment: Deployment) -> list[ConfigIssue]:
    packing = pack_system_nodes(deployment)
    if packing is None or not packing.unplaced:
        return []
    group, allocatable, pods = packing.group, packing.allocatable, packing.pods
    unplaced, daemon_sets = packing.unplaced, packing.daemon_sets
    needed, _ = pack(pods, allocatable, None)
    names = ", ".join(g.label for g in unplaced[:4]) + (" ..." if len(unplaced) > 4 else "")
    counted = _counted(deployment, pods)
    return [
        ConfigIssue(
            f"{WHERE}.desiredSize",
            f"the stack's own pods on the system nodes ({len(pods)}: {counted}) need "
            f"{sum(1 for n in needed if n.pods)} {group.instance_type} nodes, desiredSize is "
            f"{group.desired_size}: {names} would stay Pending ({_after(daemon_sets)}the EKS "
            "add-ons' pods need room beside them)",
        )
    ]


_OWN_PODS = {"frontend": "frontends", "karpenter": "Karpenter"}


def _counted(deployment: Deployment, pods: list[PodGroup]) -> str:
    """What the count takes in, e.g. "frontends, Karpenter, the pods of dynamo-platform, keda"."""
    roles = {pod.role for pod in pods}
    counted = [name for role, name in _OWN_PODS.items() if role in roles]
    charts = [chart.release for chart in installed_charts(deployment.config) if chart.pods]
    return ", ".join([*counted, f"the pods of {', '.join(charts)}"])


def _after(daemon_sets: list[PodGroup]) -> str:
    if not daemon_sets:
        return ""
    return f"after each node's DaemonSets: {', '.join(pod.label for pod in daemon_sets)}; "
