"""Checks of one worker role of a model: autoscaling, its placement on the pool, and EFA
(interfaces, image, multinode transport)."""

from __future__ import annotations

from infra.stack.config import EksCluster, StackConfig
from infra.stack.errors import ConfigIssue
from infra.stack.instances import pool_gpus
from infra.stack.model_config import Model


def check_role(
    config: StackConfig,
    model: Model,
    role: str,
    path: str,
    model_path: str,
) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    spec = model.role(role)
    if spec.autoscaling is not None:
        if spec.nodes > 1:
            issues.append(
                ConfigIssue(
                    f"{path}.autoscaling",
                    f"a worker spanning {spec.nodes} nodes is one gang-scheduled group: "
                    "multinode roles cannot autoscale (set replicas instead)",
                )
            )
        if not config.observability.enabled:
            issues.append(
                ConfigIssue(
                    f"{path}.autoscaling",
                    "autoscaling reads frontend metrics from Prometheus: "
                    "set observability.enabled (and a Prometheus)",
                )
            )
        if spec.autoscaling.scales_to_zero:
            issues += _check_scale_to_zero(config, model, role, path)
    if spec.nodes > 1 and not model.topology.multinode:
        issues.append(
            ConfigIssue(
                f"{path}.nodes",
                f"{spec.nodes} nodes per worker needs topology disagg-multinode "
                f"(this model is {model.topology.value})",
            )
        )
    if model.engine == "trtllm":
        issues += _check_placement(config, model, role, path, model_path)
        issues += _check_efa(config, model, role, model_path)
    return issues


def _check_scale_to_zero(
    config: StackConfig, model: Model, role: str, path: str
) -> list[ConfigIssue]:
    """minReplicas 0: only KEDA goes to zero, and only a pool that drops its node saves the GPU."""
    issues = []
    if config.platform.autoscaler == "hpa":
        # autoscaling/v2 takes minReplicas 0 only behind the HPAScaleToZero feature gate (alpha
        # since Kubernetes 1.16), and EKS lets no cluster turn feature gates on.
        issues.append(
            ConfigIssue(
                f"{path}.autoscaling.minReplicas",
                "minReplicas 0 needs platform.autoscaler keda: a HorizontalPodAutoscaler "
                "keeps at least one worker (scaling to zero is behind the HPAScaleToZero "
                "feature gate, which EKS does not offer); set minReplicas 1, or use keda",
            )
        )
    pool = config.pool(model.role_pool(role) or "")
    if pool is not None and isinstance(config.cluster, EksCluster) and not pool.karpenter_managed:
        kept, key = (
            (pool.min_size, "minSize") if pool.autoscaled else (pool.desired_size, "desiredSize")
        )
        if kept > 0:
            issues.append(
                ConfigIssue(
                    f"nodePools[{config.node_pools.index(pool)}].provisioner",
                    f"{model.name}'s {role} workers scale to zero, but pool {pool.name!r} is a "
                    f"managed node group that keeps {kept} node(s) ({key}): their GPUs are paid "
                    "for while no worker runs; provisioner karpenter removes an empty node",
                    severity="warning",
                )
            )
    return issues


def _check_efa(config: StackConfig, model: Model, role: str, model_path: str) -> list[ConfigIssue]:
    """Multinode tensor parallelism and KV transfer want EFA, and EFA wants the EFA image."""
    pool_name = model.role_pool(role)
    pool = config.pool(pool_name) if pool_name else None
    if pool is None or not isinstance(config.cluster, EksCluster):
        return []
    index = config.node_pools.index(pool)
    issues = []
    if model.role(role).nodes > 1 and pool.efa is None:
        issues.append(
            ConfigIssue(
                f"nodePools[{index}].efa",
                f"{model.name}'s {role} workers span {model.role(role).nodes} nodes: without "
                "EFA, NCCL and the KV transfer between them run over TCP; set efa: true (an "
                "instance type with EFA), or efa: false to accept TCP",
            )
        )
    elif model.role(role).nodes > 1 and pool.efa is False:
        issues.append(
            ConfigIssue(
                f"nodePools[{index}].efa",
                f"{model.name}'s {role} workers span nodes over TCP (efa: false): expect much "
                "slower tensor parallelism and KV transfer than over EFA",
                severity="warning",
            )
        )
    if model.role(role).nodes > 1 and not pool.availability_zone:
        # EFA pools name their zone already; a multinode group elsewhere may straddle zones.
        issues.append(
            ConfigIssue(
                f"nodePools[{index}].availabilityZone",
                f"{model.name}'s {role} workers span nodes, and pool {pool.name} spans zones: one "
                "group may land in two, with NCCL over cross-zone links (slower, and billed); "
                "set availabilityZone to keep each group in one zone",
                severity="warning",
            )
        )
    if pool.efa:
        spans_nodes = model.role(role).nodes > 1
        for color in sorted(model.slots):
            image = model.image_for(color) or ""
            tag = image.rpartition(":")[2] if "@" not in image else ""
            if "efa" not in tag:
                slot = model.slots.get(color)
                issues.append(
                    ConfigIssue(
                        # where the image is set: the slot's override, else the model's
                        f"{model_path}.slots.{color}.image"
                        if slot is not None and slot.image
                        else f"{model_path}.image",
                        f"{model.name} ({color}) runs on EFA pool {pool.name!r} with {image}: "
                        "the plain runtime image has no libfabric, so the KV transfer (NIXL) "
                        + (
                            "and its tensor parallelism across nodes (NCCL, without the AWS OFI "
                            "plugin) fall back to TCP"
                            if spans_nodes
                            else "falls back to TCP"
                        )
                        + "; use the -efa-amd64 variant of the same release",
                        # Multinode is what the EFA pool is for: over TCP it runs several
                        # times slower, so it is refused as multinode without EFA is.
                        severity="error" if spans_nodes else "warning",
                    )
                )
    return issues


def _check_placement(
    config: StackConfig, model: Model, role: str, path: str, model_path: str
) -> list[ConfigIssue]:
    spec = model.role(role)
    pool_name = model.role_pool(role)
    if pool_name is None:
        return [
            ConfigIssue(
                f"{path}.nodePool",
                f"no node pool for the {role} workers (set {path}.nodePool or {model_path}.nodePool)",
            )
        ]
    pool = config.pool(pool_name)
    where = f"{path}.nodePool" if model.role(role).node_pool else f"{model_path}.nodePool"
    if pool is None:
        known = ", ".join(p.name for p in config.node_pools) or "none defined"
        return [ConfigIssue(where, f"node pool {pool_name!r} does not exist (pools: {known})")]
    facts = pool_gpus(pool)
    issues: list[ConfigIssue] = []
    if facts is not None and spec.gpus_per_worker > facts.gpu_count:
        issues.append(
            ConfigIssue(
                f"{path}.gpusPerWorker",
                f"{spec.gpus_per_worker} GPUs asked, node pool {pool.name!r} "
                f"({pool.instance_type}) has {facts.gpu_count}",
            )
        )
    if spec.nodes > pool.max_size and isinstance(config.cluster, EksCluster):
        issues.append(
            ConfigIssue(
                f"{path}.nodes",
                f"{spec.nodes} nodes per worker, node pool {pool.name!r} grows to at most "
                f"{pool.max_size} (maxSize)",
            )
        )
    return issues
