"""Composition root: the only place that wires components together.

`run()` is what `pulumi up` executes (via infra/__main__.py) and what `render` executes under the
recording mock runtime: one program, two runtimes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pulumi
from pulumi.runtime import config as runtime_config

from components.access import Access, AccessArgs, ServingNamespace
from components.autoscaling import Autoscaling, AutoscalingArgs
from components.cache_access import CacheAccess, CacheAccessArgs
from components.cluster import Cluster, ClusterArgs
from components.dgd import GraphInputs, WorkerParallelism, WorkerPlacement, frontend_service_name
from components.dns_traffic import EnvironmentTraffic, EnvironmentTrafficArgs
from components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs, pool_node_selector
from components.model_cache import CacheTarget, ModelCache, ModelCacheArgs
from components.monitoring_content import ModelSlo
from components.network_policies import (
    ETCD_PORT,
    NATS_PORT,
    NamespaceKind,
    NetworkPlan,
    Upstream,
)
from components.observability import Observability, ObservabilityArgs
from components.platform import (
    AUTOSCALER_RELEASE,
    Platform,
    PlatformArgs,
    platform_metrics_endpoints,
    platform_releases,
)
from components.security import OwnedNamespace, Security, SecurityArgs
from components.traffic import Traffic, TrafficArgs
from components.trtllm_graph import TrtllmGraph, TrtllmGraphArgs
from infra.stack.checks import config_warnings
from infra.stack.config import (
    SECRET_KEYS,
    Color,
    EksCluster,
    Model,
    NodePool,
    S3Source,
    StackConfig,
    TrafficStackConfig,
    url_port,
)
from infra.stack.errors import CONFIG_NAMESPACE, StackConfigError
from infra.stack.instances import pool_gpus
from infra.stack.loading import parse_stack_config, read_stack_file, source_label, stack_file
from infra.stack.names import FLUID_NAMESPACE, GPU_NAMESPACE, KEDA_NAMESPACE
from infra.trtllm.engine_config import check_engine_config_file


@dataclass(frozen=True)
class StackSecrets:
    hf_token: pulumi.Output[str] | None = None
    image_pull_secret: pulumi.Output[str] | None = None
    # Static S3 keys for the model cache, when IAM roles are not an option (existing clusters).
    s3_access_key_id: pulumi.Output[str] | None = None
    s3_secret_access_key: pulumi.Output[str] | None = None

    @property
    def s3_keys(self) -> tuple[pulumi.Output[str], pulumi.Output[str]] | None:
        if self.s3_access_key_id is None or self.s3_secret_access_key is None:
            return None
        return self.s3_access_key_id, self.s3_secret_access_key


def project_root() -> Path:
    """The directory holding Pulumi.yaml: engine config paths in stack files are relative to it."""
    for candidate in (Path.cwd(), *Path.cwd().parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def _owned_namespaces(config: StackConfig) -> list[OwnedNamespace]:
    platform = config.platform.namespace
    owned = [
        OwnedNamespace(
            platform,
            "baseline",
            "Dynamo operator, NATS and etcd charts do not all set restricted security contexts",
            NamespaceKind.PLATFORM,
        ),
    ]
    gpu_pools = bool(config.node_pools)
    if gpu_pools:
        owned.append(
            OwnedNamespace(
                GPU_NAMESPACE,
                "privileged",
                "device plugins and DCGM use hostPath to the kubelet device-plugin socket",
                NamespaceKind.GPU,
            )
        )
    if config.platform.fluid:
        owned.append(
            OwnedNamespace(
                FLUID_NAMESPACE,
                "privileged",
                "Fluid's CSI node plugin mounts caches with bidirectional propagation",
                NamespaceKind.FLUID,
            )
        )
    # Only a namespace we install Prometheus into is ours: a Prometheus you run keeps its own.
    if config.observability.enabled and config.observability.install_kube_prometheus_stack:
        owned.append(
            OwnedNamespace(
                config.observability.namespace,
                "privileged",
                "node-exporter reads host metrics through hostPath and hostNetwork",
                NamespaceKind.MONITORING,
            )
        )
    if _autoscaler_namespace(config) == KEDA_NAMESPACE:
        owned.append(
            OwnedNamespace(
                KEDA_NAMESPACE,
                "restricted",
                "the KEDA operator and metrics server run as non-root without host access",
                NamespaceKind.KEDA,
            )
        )
    for model in config.models:
        cached = bool(_s3_sources(model))  # the config checks require modelCache for S3
        owned.append(
            OwnedNamespace(
                model.k8s_namespace,
                "privileged" if cached else "baseline",
                "Fluid runs the model's cache here: host-network runtime pods, a hostPath tiered "
                "store and a privileged FUSE pod"
                if cached
                else "TensorRT-LLM images run as root and multinode workers start sshd for mpirun",
                NamespaceKind.SERVING,
                model=model.name,
            )
        )
    return owned


def _upstream(url: str | None, default_port: int, bundled_namespace: str) -> Upstream:
    """A bundled service in its namespace, or an external URL's port anywhere."""
    if url is None:
        return Upstream(default_port, bundled_namespace)
    return Upstream(urlsplit(url).port or default_port, None)


def _prometheus_upstream(url: str) -> Upstream:
    """Where KEDA reads metrics: a `<service>.<namespace>.svc` URL names its namespace."""
    labels = (urlsplit(url).hostname or "").split(".")
    namespace = labels[1] if len(labels) >= 3 and labels[2] == "svc" else None
    return Upstream(url_port(url), namespace)


def _network_plan(config: StackConfig) -> NetworkPlan:
    clients = set(config.security.client_namespaces)
    gateway = config.security.gateway_namespace or (
        config.traffic.gateway.namespace if config.traffic.gateway else None
    )
    if gateway:
        clients.add(gateway)
    platform = config.platform
    etcd = platform.etcd
    return NetworkPlan(
        platform_namespace=platform.namespace,
        serving_namespaces=tuple(sorted(m.k8s_namespace for m in config.models)),
        nats=_upstream(platform.nats.external_url, NATS_PORT, platform.namespace),
        etcd=_upstream(etcd.external_endpoint, ETCD_PORT, platform.namespace)
        if etcd.enabled
        else None,
        prometheus=_prometheus_upstream(config.observability.prometheus()),
        client_namespaces=tuple(sorted(clients)),
        monitoring_namespace=config.observability.namespace
        if config.observability.enabled
        else None,
        keda_namespace=KEDA_NAMESPACE if _autoscaler_namespace(config) == KEDA_NAMESPACE else None,
        prometheus_adapter=_autoscaler_namespace(config) == config.observability.namespace,
    )


def _engine_files(model: Model, color: Color, root: Path) -> dict[str, str]:
    if model.engine != "trtllm":
        return {}
    return {
        f"{role}.yaml": (root / model.engine_config(role, color)).read_text()
        for role in model.topology.roles
    }


def _parallelism(model: Model, color: Color, root: Path) -> dict[str, WorkerParallelism]:
    """Each role's parallel layout from its engine config (checked before the program runs)."""
    layouts = {}
    for role in model.topology.roles if model.engine == "trtllm" else ():
        args = check_engine_config_file(root / model.engine_config(role, color)).args
        assert args is not None, "engine configs are validated by the config checks"
        layouts[role] = WorkerParallelism(
            tensor=args.tensor_parallel_size,
            pipeline=args.pipeline_parallel_size,
            expert=args.moe_expert_parallel_size,
            gpus_per_node=model.role(role).gpus_per_worker,
        )
    return layouts


def build(config: StackConfig, secrets: StackSecrets, root: Path) -> None:
    """Create every component in dependency order and export the stack outputs."""
    cluster = Cluster("cluster", ClusterArgs(config.cluster))
    k8s_opts = pulumi.ResourceOptions(providers=[cluster.provider])

    pools: dict[str, GpuNodePool] = {}
    if isinstance(config.cluster, EksCluster):
        assert cluster.eks_cluster is not None and cluster.node_role_arn is not None
        assert cluster.private_subnet_ids is not None
        for pool in config.node_pools:
            gpus = pool_gpus(pool)
            assert gpus is not None  # guaranteed by the cross-checks
            pools[pool.name] = GpuNodePool(
                f"pool-{pool.name}",
                GpuNodePoolArgs(
                    pool=pool,
                    gpus=gpus,
                    cluster_name=cluster.eks_cluster.name,
                    node_role_arn=cluster.node_role_arn,
                    subnet_ids=_pool_subnets(cluster, pool),
                    vpc_id=cluster.vpc_id,
                    cluster_security_group_id=cluster.cluster_security_group_id,
                ),
            )

    security = Security(
        "security",
        SecurityArgs(
            namespaces=_owned_namespaces(config),
            network=_network_plan(config),
            pod_security=config.security.pod_security,
            network_policies=config.security.network_policies,
            hf_token=secrets.hf_token,
            image_pull_secret=secrets.image_pull_secret,
            s3_keys=secrets.s3_keys,
            s3_namespaces={m.k8s_namespace for m in config.models if _s3_sources(m)},
        ),
        opts=k8s_opts,
    )

    platform = Platform(
        "platform",
        PlatformArgs(
            releases=platform_releases(
                config.platform,
                gpu_namespace=GPU_NAMESPACE,
                fluid_namespace=FLUID_NAMESPACE,
                observability=config.observability,
                gpus=bool(config.node_pools),
                efa=any(p.efa for p in config.node_pools),
                multinode=any(m.topology.multinode and m.engine == "trtllm" for m in config.models),
                autoscaler_namespace=_autoscaler_namespace(config),
            ),
            charts=config.platform.charts,
            depends_on=[*security.namespaces.values(), *[p.node_group for p in pools.values()]],
        ),
        opts=k8s_opts,
    )

    grants = config.security.access.grants()
    access = Access(
        "access",
        AccessArgs(
            namespaces=[
                ServingNamespace(
                    m.k8s_namespace,
                    m.name,
                    ("frontend", *m.topology.roles),
                    tuple(frontend_service_name(m, color) for color in sorted(m.slots)),
                )
                for m in config.models
            ],
            groups={level: g.groups for level, g in grants.items()},
            principals={level: g.principal_arns for level, g in grants.items()},
            eks_cluster_name=cluster.eks_cluster.name if cluster.eks_cluster else None,
            depends_on=list(security.namespaces.values()),
        ),
        opts=k8s_opts,
    )

    endpoints: dict[str, str] = {}
    active: dict[str, str] = {}
    for model in config.models:
        namespace = security.namespaces[model.k8s_namespace]
        s3_sources = _s3_sources(model)
        if s3_sources and cluster.oidc_provider_arn is not None and secrets.s3_keys is None:
            assert cluster.oidc_issuer_url is not None
            CacheAccess(
                f"{model.name}-cache-access",
                CacheAccessArgs(
                    namespace=model.k8s_namespace,
                    sources=s3_sources,
                    oidc_provider_arn=cluster.oidc_provider_arn,
                    oidc_issuer_url=cluster.oidc_issuer_url,
                    depends_on=[namespace],
                ),
                opts=k8s_opts,
            )
        graphs = []
        for color in sorted(model.slots):
            cache: ModelCache | None = None
            source = model.source_for(color)
            if source.s3 is not None:
                cache = ModelCache(
                    f"{model.name}-{color}-cache",
                    ModelCacheArgs(
                        target=CacheTarget(
                            namespace=model.k8s_namespace,
                            color=color,
                            source=source.s3,
                            node_selector=_cache_selector(config, model),
                            credentials_secret=security.s3_credentials_secret,
                        ),
                        spec=config.model_cache,
                        depends_on=[namespace, platform.releases["fluid"]],
                    ),
                    opts=k8s_opts,
                )
            graph = TrtllmGraph(
                f"{model.name}-{color}",
                TrtllmGraphArgs(
                    model=model,
                    color=color,
                    engine_files=_engine_files(model, color, root),
                    inputs=GraphInputs(
                        namespace=model.k8s_namespace,
                        placements=_placements(config, model),
                        parallelism=_parallelism(model, color, root),
                        hf_token_secret=security.hf_token_secret,
                        image_pull_secret=security.image_pull_secret,
                        model_pvc=cache.pvc_name if cache else None,
                        cache_node_label=cache.node_label if cache else None,
                    ),
                    # The operator's admission webhook must answer before any DGD is sent.
                    depends_on=[
                        namespace,
                        platform.operator,
                        *access.service_accounts,
                        *([cache.dataset] if cache else []),
                    ],
                ),
                opts=k8s_opts,
            )
            graphs.append(graph.dgd)
        if any(model.role(r).autoscaling for r in model.topology.roles):
            Autoscaling(
                f"{model.name}-autoscaling",
                AutoscalingArgs(
                    model=model,
                    autoscaler=config.platform.autoscaler,
                    prometheus=config.observability.prometheus(),
                    depends_on=[
                        *graphs,
                        platform.releases[AUTOSCALER_RELEASE[config.platform.autoscaler]],
                    ],
                ),
                opts=k8s_opts,
            )
        traffic = Traffic(
            f"{model.name}-traffic",
            TrafficArgs(
                model=model, gateway=config.traffic.gateway, depends_on=[namespace, *graphs]
            ),
            opts=k8s_opts,
        )
        endpoints[model.name] = traffic.endpoint
        active[model.name] = model.active

    if config.observability.enabled:
        Observability(
            "observability",
            ObservabilityArgs(
                models={m.name: m.k8s_namespace for m in config.models},
                slos=[
                    ModelSlo(
                        model=m.name,
                        namespace=m.k8s_namespace,
                        ttft_p95_seconds=m.slo.ttft_p95_seconds,
                        itl_p95_seconds=m.slo.itl_p95_seconds,
                    )
                    for m in config.models
                ],
                monitoring_namespace=config.observability.namespace,
                platform_namespace=config.platform.namespace,
                platform_endpoints=platform_metrics_endpoints(config.platform),
                depends_on=[
                    *security.namespaces.values(),
                    *platform.releases.values(),
                ],
            ),
            opts=k8s_opts,
        )

    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("clusterName", cluster.cluster_name)
    if cluster.endpoint is not None:
        pulumi.export("clusterEndpoint", cluster.endpoint)
        pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
    pulumi.export("endpoints", endpoints)
    pulumi.export("activeColors", active)
    # What `dynamo-infra promote` (and a traffic stack) needs to find and check each model.
    pulumi.export(
        "models",
        {
            m.name: {
                "namespace": m.k8s_namespace,
                "servedModelName": m.display_name,
                "active": m.active,
                "weights": m.traffic_weights(),
            }
            for m in config.models
        },
    )
    if config.traffic.public_hostname:
        pulumi.export("publicHostname", config.traffic.public_hostname)
    pulumi.export(
        "nodePools",
        {
            name: {
                "instanceType": pool.instance_type,
                "gpusPerNode": pool.gpus_per_node,
                "maxGpus": pool.max_gpus,
            }
            for name, pool in pools.items()
        },
    )


def _autoscaled(config: StackConfig) -> bool:
    return any(m.role(r).autoscaling for m in config.models for r in m.topology.roles)


def _autoscaler_namespace(config: StackConfig) -> str | None:
    """KEDA gets a namespace of its own; the Prometheus adapter sits beside Prometheus."""
    if not _autoscaled(config):
        return None
    return (
        KEDA_NAMESPACE if config.platform.autoscaler == "keda" else config.observability.namespace
    )


def _s3_sources(model: Model) -> list[S3Source]:
    return [s.s3 for c in model.slots if (s := model.source_for(c)).s3 is not None]


def _pool_subnets(cluster: Cluster, pool: NodePool) -> pulumi.Input[Sequence[pulumi.Input[str]]]:
    """The pool's own subnets, its zone's private subnet (EFA, capacity blocks), or all private."""
    if pool.subnet_ids:
        return list(pool.subnet_ids)
    if pool.availability_zone and pool.availability_zone in cluster.private_subnets_by_zone:
        return [cluster.private_subnets_by_zone[pool.availability_zone]]
    assert cluster.private_subnet_ids is not None
    return cluster.private_subnet_ids


def _role_pools(config: StackConfig, model: Model) -> dict[str, NodePool]:
    """The node pool of each worker role that has one (the mocker engine may have none)."""
    pools = {}
    for role in model.topology.roles:
        pool_name = model.role_pool(role)
        pool = config.pool(pool_name) if pool_name else None
        if pool is not None:
            pools[role] = pool
    return pools


def _placements(config: StackConfig, model: Model) -> dict[str, WorkerPlacement]:
    placements = {}
    for role, pool in _role_pools(config, model).items():
        gpus = pool_gpus(pool)
        efa = gpus.efa_interfaces if (pool.efa and gpus is not None) else 0
        placements[role] = WorkerPlacement(
            node_selector=pool_node_selector(pool), efa_interfaces=efa
        )
    return placements


def _cache_selector(config: StackConfig, model: Model) -> dict[str, str]:
    """Cache on the nodes of the model's first worker role's pool."""
    pools = list(_role_pools(config, model).values())
    return pool_node_selector(pools[0]) if pools else {}


def read_secrets(pulumi_config: pulumi.Config) -> StackSecrets:
    hf_key, pull_key, s3_id_key, s3_secret_key = SECRET_KEYS
    return StackSecrets(
        hf_token=pulumi_config.get_secret(hf_key),
        image_pull_secret=pulumi_config.get_secret(pull_key),
        s3_access_key_id=pulumi_config.get_secret(s3_id_key),
        s3_secret_access_key=pulumi_config.get_secret(s3_secret_key),
    )


def read_raw_config() -> dict[str, object]:
    """Our namespace's keys from Pulumi's runtime config (the stack file, decrypted by Pulumi)."""

    prefix = f"{CONFIG_NAMESPACE}:"
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw: dict[str, object] = {}
    for key in sorted(k for k in keys if k.startswith(prefix)):
        name = key[len(prefix) :]
        if name in SECRET_KEYS:
            continue
        value = runtime_config.get_config(key)
        try:
            raw[name] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[name] = value
    return raw


def environment_stack_name(reference: str) -> str:
    """A full `org/project/stack` name; a bare stack name means a stack of this project."""
    if "/" in reference:
        return reference
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{reference}"


def build_traffic(config: TrafficStackConfig) -> None:
    """A traffic stack: weighted DNS over the environments' exported public hostnames."""
    hostnames = {
        color: pulumi.StackReference(
            f"environment-{color}", stack_name=environment_stack_name(reference)
        ).require_output("publicHostname")
        for color, reference in config.environments.items()
    }
    EnvironmentTraffic(
        "public-entry",
        EnvironmentTrafficArgs(
            dns=config.dns, weights=config.traffic_weights(), hostnames=hostnames
        ),
    )
    pulumi.export("activeEnvironment", config.active)
    pulumi.export("weights", config.traffic_weights())
    pulumi.export("environments", dict(config.environments))


def run(
    root: Path | None = None,
    log_warnings: bool = True,
    config: StackConfig | TrafficStackConfig | None = None,
) -> None:
    """Entry point of the Pulumi program: check the config, then build. User errors, no traceback.

    `config`: already checked (offline `render` checks the stack file before the program runs).
    """
    root = root or project_root()
    if config is None:
        config = _checked_runtime_config(root)
    if isinstance(config, TrafficStackConfig):
        build_traffic(config)
        return
    # (Offline, `render` and `validate` print these themselves.)
    for warning in config_warnings(config, root) if log_warnings else ():
        pulumi.log.warn(warning.render())
    build(config, read_secrets(pulumi.Config(CONFIG_NAMESPACE)), root)


def _checked_runtime_config(root: Path) -> StackConfig | TrafficStackConfig:
    """The config Pulumi hands the program, checked; errors located in the stack file."""
    source = source_label(pulumi.get_stack())
    try:
        # The file as written, for line numbers and the problems Pulumi would let through
        # (unknown namespaces, YAML 1.1 spellings); the values come from Pulumi.
        written = read_stack_file(stack_file(root, pulumi.get_stack()), source)
    except StackConfigError:
        written = None
    try:
        return parse_stack_config(
            read_raw_config(),
            source,
            root,
            source_map=written.source_map if written else None,
            file_issues=written.issues if written else (),
        )
    except StackConfigError as error:
        raise pulumi.RunError(error.report()) from None
