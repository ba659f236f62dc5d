"""Cross-field checks: what a single field cannot know (pools vs models, files, name lengths).

Each check returns ConfigIssues located at the YAML path the user should edit.
"""

from __future__ import annotations

from infra.stack.cluster_checks import cluster_issues
from infra.stack.config import StackConfig
from infra.stack.derived_names import cache_name, cache_quota_gib, dgd_child_names, dgd_name
from infra.stack.errors import ConfigIssue
from infra.stack.instances import (
    RAID0_MOUNT,
    ROOT_VOLUME_RESERVE_GIB,
    cache_disk_gib,
    pool_gpus,
    striped_nvme,
)
from infra.stack.model_config import COLORS, WORKER_ROLES, Model
from infra.stack.names import (
    FLUID_NAMESPACE,
    GPU_NAMESPACE,
    KEDA_NAMESPACE,
    SYSTEM_NAMESPACES,
    dns1123_label_problem,
)
from infra.stack.release_checks import admission_policy_issues, runtime_release_issues
from infra.stack.role_checks import check_role

# Fluid's cache node label `fluid.io/s-alluxio-<ns>-<name>` is only predictable up to this length.
FLUID_NAME_BUDGET = 42


def cross_check(config: StackConfig, model_indexes: list[int] | None = None) -> list[ConfigIssue]:
    """All cross-field problems; model_indexes maps config.models back to the file's indexes.

    What needs files (engine configs, model facts) is checked on the resolved deployment
    (infra.deployment.checks).
    """
    indexes = model_indexes or list(range(len(config.models)))
    issues = cluster_issues(config)
    issues += _check_names(config, indexes)
    issues += runtime_release_issues(config, indexes)
    issues += admission_policy_issues(config)
    for index, model in zip(indexes, config.models, strict=True):
        issues += _check_model(config, model, f"models[{index}]")
    return issues


def _check_names(config: StackConfig, indexes: list[int]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    named = [
        ("platform.namespace", config.platform.namespace),
        ("observability.namespace", config.observability.namespace),
    ]
    if config.security.gateway_namespace:
        named.append(("security.gatewayNamespace", config.security.gateway_namespace))
    named += [
        (f"security.clientNamespaces[{i}]", name)
        for i, name in enumerate(config.security.client_namespaces)
    ]
    for path, name in named:
        if problem := dns1123_label_problem(name):
            issues.append(ConfigIssue(path, problem))
    infrastructure = {
        config.platform.namespace: "the platform",
        GPU_NAMESPACE: "the GPU stack",
        FLUID_NAMESPACE: "Fluid",
        KEDA_NAMESPACE: "KEDA",
        **{name: "Kubernetes" for name in SYSTEM_NAMESPACES},
    }
    if config.observability.enabled:
        if config.observability.namespace in infrastructure:
            issues.append(
                ConfigIssue(
                    "observability.namespace",
                    f"{config.observability.namespace!r} is already "
                    f"{infrastructure[config.observability.namespace]}'s namespace",
                )
            )
        infrastructure.setdefault(config.observability.namespace, "monitoring")
    seen_names: set[str] = set()
    seen_namespaces: set[str] = set()
    for index, model in zip(indexes, config.models, strict=True):
        if model.k8s_namespace in infrastructure:
            # A model namespace gets its own Pod Security level and NetworkPolicies.
            issues.append(
                ConfigIssue(
                    f"models[{index}].namespace" if model.namespace else f"models[{index}].name",
                    f"namespace {model.k8s_namespace!r} belongs to "
                    f"{infrastructure[model.k8s_namespace]}: give the model a namespace of its own",
                )
            )
        if model.name in seen_names:
            issues.append(
                ConfigIssue(f"models[{index}].name", f"model name {model.name!r} is used twice")
            )
        elif model.k8s_namespace in seen_namespaces:
            # One serving namespace per model: isolation (NetworkPolicies, RBAC) is per namespace.
            issues.append(
                ConfigIssue(
                    f"models[{index}].namespace",
                    f"namespace {model.k8s_namespace!r} already serves another model",
                )
            )
        seen_names.add(model.name)
        seen_namespaces.add(model.k8s_namespace)
    return issues


def _check_model(config: StackConfig, model: Model, path: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if problem := dns1123_label_problem(model.name):
        issues.append(ConfigIssue(f"{path}.name", problem))
        return issues  # derived names would only repeat the same problem
    if model.namespace and (problem := dns1123_label_problem(model.namespace)):
        issues.append(ConfigIssue(f"{path}.namespace", problem))
    issues += _check_slots(model, path)
    issues += _check_traffic(config, model, path)
    for color in model.slots:
        for child in dgd_child_names(model, color):
            if problem := dns1123_label_problem(child):
                issues.append(
                    ConfigIssue(
                        f"{path}.name",
                        f"derived Kubernetes name {problem} "
                        f"(DynamoGraphDeployment {dgd_name(model, color)!r}); shorten the model name",
                    )
                )
        if model.image_for(color) is None:
            issues.append(
                ConfigIssue(f"{path}.slots.{color}.image", f"no image for slot {color} (set image)")
            )
    if model.engine == "mocker" and model.topology.roles != ("agg",):
        issues.append(
            ConfigIssue(
                f"{path}.engine",
                "the mocker engine stands in for aggregated workers only "
                "(topology agg or agg-router)",
            )
        )
    for role in WORKER_ROLES:
        if getattr(model, role) is not None and role not in model.topology.roles:
            issues.append(
                ConfigIssue(
                    f"{path}.{role}",
                    f"topology {model.topology.value} has no {role} role "
                    f"(its roles: {', '.join(model.topology.roles)})",
                )
            )
    for role in model.topology.roles:
        issues += check_role(config, model, role, f"{path}.{role}", path)
    if model.topology.multinode and all(model.role(r).nodes < 2 for r in model.topology.roles):
        issues.append(
            ConfigIssue(
                f"{path}.topology",
                "disagg-multinode needs nodes >= 2 on prefill or decode",
            )
        )
    if model.topology.multinode and model.engine == "trtllm":
        for color in model.slots:
            if model.source_for(color).s3 is None:
                issues.append(
                    ConfigIssue(
                        f"{path}.slots.{color}.source"
                        if model.slots[color].source
                        else f"{path}.source",
                        "every node of a multinode worker reads the weights from one shared "
                        "volume: give an s3 source, served through the model cache",
                    )
                )
    if model.source.s3 is not None:
        if not config.model_cache.enabled:
            issues.append(
                ConfigIssue(
                    f"{path}.source.s3",
                    "weights in S3 are served through the model cache: enable modelCache",
                )
            )
        elif not config.platform.fluid:
            issues.append(
                ConfigIssue(f"{path}.source.s3", "the model cache needs platform.fluid: true")
            )
        issues += _check_memory_tier(config, model, path)
        issues += _check_disk_tier(config, model, path)
        longest = max(len(model.k8s_namespace) + len(cache_name(c)) for c in model.slots)
        if longest > FLUID_NAME_BUDGET:
            issues.append(
                ConfigIssue(
                    f"{path}.namespace" if model.namespace else f"{path}.name",
                    f"namespace {model.k8s_namespace!r} is too long for the model cache: Fluid's "
                    f"cache node label needs namespace + cache name <= {FLUID_NAME_BUDGET} "
                    f"characters (got {longest})",
                )
            )
    return issues


def _check_traffic(config: StackConfig, model: Model, path: str) -> list[ConfigIssue]:
    """Requests only go where workers are, and a split needs something that can split."""
    issues: list[ConfigIssue] = []
    if model.weights is not None and config.traffic.gateway is None:
        issues.append(
            ConfigIssue(
                f"{path}.weights",
                "a weighted split needs a Gateway API HTTPRoute: set traffic.gateway "
                "(the stable Service can only select one slot)",
            )
        )
    if model.active not in model.slots:
        return issues  # reported by _check_slots
    for color, share in model.traffic_weights().items():
        empty = [r for r in model.topology.roles if model.replicas(r, color) == 0]
        if share > 0 and empty:
            issues.append(
                ConfigIssue(
                    f"{path}.slots.{color}",
                    f"slot {color} receives {share}% of requests but has no "
                    f"{' or '.join(empty)} workers (replicas 0)",
                )
            )
    return issues


def _check_disk_tier(config: StackConfig, model: Model, path: str) -> list[ConfigIssue]:
    """An SSD tier's quota must fit the disk behind its path on one node of the cache's pool."""
    if config.model_cache.medium != "SSD" or config.model_cache.path:
        return []  # a path you chose is yours to size
    pool = config.cache_pool(model)
    if pool is None or pool_gpus(pool) is None:
        return []
    disk = cache_disk_gib(pool)
    where = (
        f"the NVMe array nodeadm mounts at {RAID0_MOUNT}"
        if striped_nvme(pool)
        else f"the {pool.root_volume_gib} GiB root volume less {ROOT_VOLUME_RESERVE_GIB} GiB "
        "for the node's own needs"
    )
    issues = []
    for color in sorted(model.slots):
        source = model.source_for(color).s3
        if source is None:
            continue
        quota = cache_quota_gib(source.size_gib, config.model_cache.headroom_percent)
        if quota > disk:
            issues.append(
                ConfigIssue(
                    f"nodePools[{config.node_pools.index(pool)}].rootVolumeGib"
                    if not striped_nvme(pool)
                    else f"{path}.source.s3.sizeGib",
                    f"the {color} cache of {model.name} needs {quota} GiB, but on pool "
                    f"{pool.name!r} ({pool.instance_type}) it sits on {where}: {disk} GiB; "
                    "raise rootVolumeGib, or use instances with NVMe and localNvmeRaid0",
                )
            )
    return issues


def _check_memory_tier(config: StackConfig, model: Model, path: str) -> list[ConfigIssue]:
    """A MEM cache tier lives in node RAM (and raises the cache pod's memory request to it)."""
    if config.model_cache.medium != "MEM":
        return []
    pool = config.cache_pool(model)
    facts = pool_gpus(pool) if pool else None
    if pool is None or facts is None or not facts.memory_gib:
        return []
    issues = []
    for color in model.slots:
        source = model.source_for(color).s3
        if source is None:
            continue
        quota = cache_quota_gib(source.size_gib, config.model_cache.headroom_percent)
        if quota > facts.memory_gib:
            issues.append(
                ConfigIssue(
                    "modelCache.medium",
                    f"a MEM tier for {model.name} ({color}) needs {quota} GiB of RAM, nodes of pool "
                    f"{pool.name!r} ({pool.instance_type}) have {facts.memory_gib} GiB: use SSD",
                )
            )
    return issues


def _check_slots(model: Model, path: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    if model.active not in model.slots:
        issues.append(
            ConfigIssue(
                f"{path}.active",
                f"active slot {model.active!r} is not defined under slots "
                f"(defined: {', '.join(model.slots) or 'none'})",
            )
        )
    if model.weights is not None:
        missing = [c for c in model.weights if c not in model.slots]
        if missing:
            issues.append(
                ConfigIssue(f"{path}.weights", f"weights name undefined slot(s): {missing}")
            )
        total = sum(model.weights.values())
        if total != 100 or any(w < 0 for w in model.weights.values()):
            issues.append(
                ConfigIssue(
                    f"{path}.weights", f"weights must be >= 0 and add up to 100 (got {total})"
                )
            )
    for color in COLORS:
        slot = model.slots.get(color)
        for role in WORKER_ROLES:
            if (
                slot is not None
                and getattr(slot, role) is not None
                and role not in model.topology.roles
            ):
                issues.append(
                    ConfigIssue(
                        f"{path}.slots.{color}.{role}",
                        f"topology {model.topology.value} has no {role} role",
                    )
                )
    return issues
