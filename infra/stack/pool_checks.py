"""Cross-field checks of the GPU node pools: sizes, names, capacity reservations and zones, each
located at the YAML path to edit.
"""

from __future__ import annotations

from infra.stack.cluster_config import EksCluster, zone_in_region
from infra.stack.config import StackConfig
from infra.stack.errors import ConfigIssue
from infra.stack.instances import lookup, pool_gpus
from infra.stack.names import dns1123_label_problem
from infra.stack.pool_config import NodePool

# SQS queue names: 1-80 characters (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/
# API_CreateQueue.html, QueueName).
MAX_QUEUE_NAME = 80


def pool_issues(config: StackConfig) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    names = [p.name for p in config.node_pools]
    for index, pool in enumerate(config.node_pools):
        path = f"nodePools[{index}]"
        if problem := dns1123_label_problem(pool.name):
            issues.append(ConfigIssue(f"{path}.name", problem))
        if names.index(pool.name) != index:
            issues.append(
                ConfigIssue(f"{path}.name", f"node pool name {pool.name!r} is used twice")
            )
        facts = pool_gpus(pool)
        if facts is None:
            issues.append(
                ConfigIssue(
                    f"{path}.instanceType",
                    f"{pool.instance_type!r} is not in the GPU instance catalog; "
                    "state its GPUs under `gpu:` (gpuProduct, gpusPerNode, gpuMemoryGib)",
                )
            )
        elif pool.efa:
            issues += _types_without_efa(pool, path)
        if pool.alternative_instance_types:
            issues += _check_alternative_types(pool, path)
        if pool.karpenter_managed:
            issues += _check_karpenter_pool(config, pool, path)
        elif "karpenter" in pool.model_fields_set:
            issues.append(ConfigIssue(f"{path}.karpenter", "for provisioner karpenter only"))
        elif not pool.min_size <= pool.desired_size <= pool.max_size:
            issues.append(
                ConfigIssue(
                    f"{path}.desiredSize",
                    f"{pool.desired_size} is outside [minSize {pool.min_size}, "
                    f"maxSize {pool.max_size}]",
                )
            )
        elif pool.autoscaled:
            issues.append(
                ConfigIssue(
                    f"{path}.autoscaled",
                    f"pool {pool.name!r} is counted at maxSize {pool.max_size}, but this stack "
                    "installs nothing that resizes a managed node group: run cluster-autoscaler "
                    "(or your own) for it, or use provisioner karpenter",
                    severity="warning",
                )
            )
        issues += _check_reservation(pool, path)
        issues += _check_pool_placement(config, pool, path)
    issues += _check_caches_on_karpenter(config)
    cluster = config.cluster
    karpenter = any(pool.karpenter_managed for pool in config.node_pools)
    if karpenter and isinstance(cluster, EksCluster) and len(cluster.name) > MAX_QUEUE_NAME:
        issues.append(
            ConfigIssue(
                "cluster.name",
                f"Karpenter's interruption queue is named as the cluster, and SQS allows "
                f"{MAX_QUEUE_NAME} characters: shorten the name to use karpenter pools",
            )
        )
    return issues


# What only a managed node group has: Karpenter starts nodes for pods that wait, from zero, and
# rolls them by its own disruption rules.
MANAGED_GROUP_ONLY = {
    "min_size": "minSize",
    "desired_size": "desiredSize",
    "autoscaled": "autoscaled",
    "max_unavailable": "maxUnavailable",
    "auto_repair": "autoRepair",
}


def _check_alternative_types(pool: NodePool, path: str) -> list[ConfigIssue]:
    """Karpenter picks among the types; each must give a worker what instanceType gives it."""
    key = f"{path}.alternativeInstanceTypes"
    if not pool.karpenter_managed:
        managed = "for provisioner karpenter only: a managed node group launches instanceType alone"
        return [ConfigIssue(key, managed)]
    if pool.gpu is not None:
        return [ConfigIssue(key, "a pool stating its own `gpu:` facts takes one instance type")]
    if pool.capacity_block:
        return [ConfigIssue(key, "a capacity block reserves one instance type")]
    primary = lookup(pool.instance_type)
    issues = []
    for offset, instance_type in enumerate(pool.alternative_instance_types):
        where = f"{key}[{offset}]"
        facts = lookup(instance_type)
        if pool.instance_types.index(instance_type) != offset + 1:
            issues.append(ConfigIssue(where, f"{instance_type} is listed already"))
        elif facts is None:
            issues.append(
                ConfigIssue(where, f"{instance_type!r} is not in the GPU instance catalog")
            )
        elif primary is not None and (facts.gpu_product, facts.gpu_count) != (
            primary.gpu_product,
            primary.gpu_count,
        ):
            issues.append(
                ConfigIssue(
                    where,
                    f"{instance_type} has {facts.gpu_count} x {facts.gpu_product}, "
                    f"{pool.instance_type} {primary.gpu_count} x {primary.gpu_product}: the "
                    "pool's workers, engine configs and GPU limit are sized for one of them",
                )
            )
    return issues


def _types_without_efa(pool: NodePool, path: str) -> list[ConfigIssue]:
    """An EFA pool's instance types that have no EFA interface: instanceType (or the `gpu:`
    facts the pool states) reported at `efa`, an alternative at its own entry."""
    shapes = [("efa", pool_gpus(pool) if pool.gpu is not None else lookup(pool.instance_type))]
    shapes += [(key, lookup(t)) for key, t in pool.instance_type_keys()[1:]]
    return [
        ConfigIssue(f"{path}.{key}", f"{shape.instance_type} has no EFA network interface")
        for key, shape in shapes
        if shape is not None and not shape.supports_efa
    ]


def _check_karpenter_pool(config: StackConfig, pool: NodePool, path: str) -> list[ConfigIssue]:
    if not isinstance(config.cluster, EksCluster):
        return [
            ConfigIssue(
                f"{path}.provisioner",
                "karpenter pools need cluster.mode eks: the stack installs Karpenter with its "
                "IAM and interruption queue; on an existing cluster use its own node pools",
            )
        ]
    issues = [
        ConfigIssue(
            f"{path}.{key}",
            "a managed-node-group setting: a karpenter pool starts nodes from zero when pods "
            "wait for them, up to maxSize",
        )
        for field, key in MANAGED_GROUP_ONLY.items()
        if field in pool.model_fields_set
    ]
    disruption = pool.karpenter
    if disruption.expire_after != "Never" and disruption.termination_grace_period is None:
        # Karpenter's disruption docs: expiry without a grace period waits forever on pods that
        # ask not to be disrupted (our multinode groups, for good).
        issues.append(
            ConfigIssue(
                f"{path}.karpenter.expireAfter",
                "an expiring node running a pod that asks not to be disrupted (a multinode "
                "group) drains forever: set karpenter.terminationGracePeriod too",
                severity="warning",
            )
        )
    if "max_size" not in pool.model_fields_set:
        issues.append(
            ConfigIssue(
                f"{path}.maxSize",
                "a karpenter pool needs maxSize: its NodePool's GPU limit (maxSize x GPUs per "
                "node); without one Karpenter launches nodes for every pending pod",
            )
        )
    return issues


def _check_caches_on_karpenter(config: StackConfig) -> list[ConfigIssue]:
    """A model cache's workers run on its pool's nodes and tolerate the GPU taint: on a
    Karpenter pool they keep a GPU node up (it is never empty), and a replaced node starts cold."""
    issues = []
    for index, model in enumerate(config.models):
        if not config.model_cache.enabled or not any(
            model.source_for(color).s3 for color in model.slots
        ):
            continue
        pool = config.cache_pool(model)
        if pool is not None and pool.karpenter_managed:
            issues.append(
                ConfigIssue(
                    f"models[{index}].source",
                    f"{model.name}'s model cache lives on Karpenter pool {pool.name!r}: its cache "
                    "workers keep a GPU node running (scale to zero never happens), and a node "
                    "Karpenter replaces starts with an empty cache",
                    severity="warning",
                )
            )
    return issues


def _check_reservation(pool: NodePool, path: str) -> list[ConfigIssue]:
    issues = []
    if pool.capacity_type == "spot" and pool.capacity_reservation_id:
        issues.append(
            ConfigIssue(
                f"{path}.capacityReservationId",
                "a capacity reservation holds on-demand capacity: capacityType spot takes none",
            )
        )
    if pool.capacity_block and not pool.capacity_reservation_id:
        issues.append(
            ConfigIssue(
                f"{path}.capacityReservationId",
                "capacityType capacity-block needs the capacity reservation id",
            )
        )
    if pool.reservation_placement_group and not pool.capacity_reservation_id:
        issues.append(
            ConfigIssue(
                f"{path}.reservationPlacementGroup",
                "the placement group of a capacity reservation: set capacityReservationId too",
            )
        )
    if pool.capacity_block and pool.karpenter_managed:
        # Karpenter replaces a drifted node by launching its successor first
        # (karpenter.sh/docs/concepts/disruption), which a full block cannot hold.
        issues.append(
            ConfigIssue(
                f"{path}.capacityType",
                f"capacity-block pool {pool.name!r} on Karpenter: a change to its EC2NodeClass "
                "(AMI, disks) drifts its nodes, and Karpenter launches each replacement before "
                "it drains the old node: a full block has no instance for it, so the nodes stay "
                "drifted; scale its models down first",
                severity="warning",
            )
        )
    elif pool.capacity_block:
        # A roll replaces nodes with updateStrategy MINIMAL (old instances go before new ones
        # launch: docs.aws.amazon.com/eks/latest/APIReference/API_NodegroupUpdateConfig.html).
        issues.append(
            ConfigIssue(
                f"{path}.capacityType",
                f"capacity-block pool {pool.name!r}: a launch-template or AMI change replaces "
                f"its nodes {pool.max_unavailable} at a time, each stopped before its successor "
                "starts (the block has no spare instance): scale its models down first",
                severity="warning",
            )
        )
    return issues


def _check_pool_placement(config: StackConfig, pool: NodePool, path: str) -> list[ConfigIssue]:
    """EFA and capacity-block pools live in one zone, so they need that zone's subnet."""
    cluster = config.cluster
    if not isinstance(cluster, EksCluster):
        return []
    issues: list[ConfigIssue] = []
    single_zone = {
        "EFA pools sit in one cluster placement group": pool.efa,
        "a capacity block is reserved in one zone": pool.capacity_block,
    }
    for reason, applies in single_zone.items():
        if applies and not pool.availability_zone:
            issues.append(
                ConfigIssue(f"{path}.availabilityZone", f"{reason}: name its availability zone")
            )
    zone = pool.availability_zone
    if zone and not zone_in_region(zone, cluster.region):
        issues.append(
            ConfigIssue(
                f"{path}.availabilityZone",
                f"{zone} is not a zone of region {cluster.region} (cluster.region)",
            )
        )
    elif zone and not cluster.vpc.existing and zone not in cluster.vpc.availability_zones:
        issues.append(
            ConfigIssue(
                f"{path}.availabilityZone",
                f"{zone} is not one of the VPC's availability zones "
                f"({', '.join(cluster.vpc.availability_zones)})",
            )
        )
    if zone and cluster.vpc.existing and not pool.subnet_ids:
        issues.append(
            ConfigIssue(
                f"{path}.subnetIds",
                f"on an existing VPC, give the private subnet(s) of {zone} for this pool",
            )
        )
    return issues
