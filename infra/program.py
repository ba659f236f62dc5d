"""Composition root: the only place that wires components together.

`run()` is what `pulumi up` executes (via infra/__main__.py) and what `render` executes under the
recording mock runtime: one program, two runtimes. `build()` lists the components in dependency
order; each wiring step is its own function, and every model's resources depend on that
model's own namespace and accounts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.access import Access, AccessArgs, ServingNamespace
from components.admission_policies import AdmissionPolicies
from components.autoscaling import Autoscaling, AutoscalingArgs
from components.cache_access import CacheAccess, CacheAccessArgs
from components.cluster import SYSTEM_NODE_LABELS, Cluster, ClusterArgs
from components.dgd import GraphInputs, engine_config_map_name, frontend_service_name
from components.gpu_node_pool import GpuNodePool, GpuNodePoolArgs, PoolComponent
from components.karpenter import Karpenter, KarpenterArgs
from components.karpenter_pool import KarpenterNodePool, KarpenterNodePoolArgs
from components.model_cache import CacheTarget, ModelCache, ModelCacheArgs
from components.monitoring_content import ModelSlo
from components.nats_accounts import CREDENTIALS_SECRET, NatsAccounts, NatsAccountsArgs
from components.observability import Observability, ObservabilityArgs
from components.platform import (
    AUTOSCALER_RELEASE,
    Platform,
    PlatformArgs,
    platform_metrics_endpoints,
    platform_releases,
)
from components.security import Security, SecurityArgs
from components.traffic import Traffic, TrafficArgs
from components.trtllm_graph import TrtllmGraph, TrtllmGraphArgs
from infra.deployment.checked import CheckedStack, check_stack_values
from infra.deployment.readiness import ready_timeout_seconds
from infra.deployment.resolved import Deployment, ResolvedModel
from infra.runtime_config import (
    StackSecrets,
    present_secrets,
    read_raw_config,
    read_secrets,
)
from infra.specs import (
    admission_rules,
    autoscaler_namespace,
    aws_default_tags,
    cache_selector,
    cache_tier_path,
    downloads_from_hugging_face,
    nats_account_namespaces,
    network_plan,
    owned_namespaces,
    s3_sources,
)
from infra.stack.config import EksCluster, NodePool, StackConfig, TrafficStackConfig
from infra.stack.errors import CONFIG_NAMESPACE, StackConfigError
from infra.stack.instances import pool_gpus
from infra.stack.loading import read_stack_file, source_label, stack_file
from infra.stack.model_config import COLORS, Color
from infra.stack.names import FLUID_NAMESPACE, GPU_NAMESPACE, GRAFANA_ADMIN_KEY
from infra.traffic_program import build_traffic


def project_root() -> Path:
    """The directory holding Pulumi.yaml: engine config paths in stack files are relative to it."""
    for candidate in (Path.cwd(), *Path.cwd().parents):
        if (candidate / "Pulumi.yaml").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def run(
    root: Path | None = None,
    log_warnings: bool = True,
    checked: CheckedStack | None = None,
) -> None:
    """Entry point of the Pulumi program: check the config, then build. User errors, no traceback.

    `checked`: the stack already checked and resolved (offline `render` checks the stack file
    before the program runs, and the program takes that one pass as it is).
    """
    root = root or project_root()
    if checked is None:
        checked = _checked_runtime_config(root)
    if isinstance(checked.config, TrafficStackConfig):
        build_traffic(checked.config)
        return
    # (Offline, `render` and `validate` print these themselves.)
    for warning in checked.warnings if log_warnings else ():
        pulumi.log.warn(warning.render())
    assert checked.deployment is not None
    build(checked.deployment, read_secrets(pulumi.Config(CONFIG_NAMESPACE)))


def _checked_runtime_config(root: Path) -> CheckedStack:
    """The config Pulumi hands the program, checked; errors located in the stack file."""
    source = source_label(pulumi.get_stack())
    try:
        # The file as written, for line numbers and the problems Pulumi would let through
        # (unknown namespaces, YAML 1.1 spellings); the values come from Pulumi.
        written = read_stack_file(stack_file(root, pulumi.get_stack()), source)
    except StackConfigError:
        written = None
    try:
        return check_stack_values(
            read_raw_config(),
            source,
            root,
            source_map=written.source_map if written else None,
            file_issues=written.issues if written else (),
            secrets=present_secrets(),
        )
    except StackConfigError as error:
        raise pulumi.RunError(error.report()) from None


@dataclass
class _Built:
    """Components built so far, for the steps after them."""

    cluster: Cluster
    k8s_opts: pulumi.ResourceOptions
    # For components making AWS resources beside Kubernetes ones (access entries, IRSA roles).
    k8s_and_aws_opts: pulumi.ResourceOptions
    pools: dict[str, PoolComponent]
    security: Security
    nats: NatsAccounts | None
    platform: Platform
    access: Access


def build(deployment: Deployment, secrets: StackSecrets) -> None:
    """Create every component in dependency order and export the stack outputs."""
    config = deployment.config
    aws_providers, node_tags = _aws(config)
    cluster = Cluster(
        "cluster",
        ClusterArgs(config.cluster, node_tags=node_tags),
        opts=pulumi.ResourceOptions(providers=aws_providers),
    )
    k8s_opts = pulumi.ResourceOptions(providers=[cluster.provider])
    k8s_and_aws_opts = pulumi.ResourceOptions(providers=[cluster.provider, *aws_providers])
    pools = _node_pools(config, cluster, aws_providers, k8s_and_aws_opts, node_tags)
    security = _security(deployment, secrets, k8s_opts)
    if config.security.admission_policies:
        AdmissionPolicies("admission", admission_rules(config), config.platform.fluid, k8s_opts)
    nats = _nats_accounts(config, security, k8s_opts)
    platform = _platform(config, security, nats, pools, k8s_opts)
    access = _access(config, cluster, security, k8s_and_aws_opts)
    built = _Built(cluster, k8s_opts, k8s_and_aws_opts, pools, security, nats, platform, access)
    endpoints = {
        resolved.model.name: _model(resolved, deployment, built, secrets)
        for resolved in deployment.models
    }
    if config.observability.enabled:
        _observability(config, built)
    _exports(config, built, endpoints)


def _aws(config: StackConfig) -> tuple[list[pulumi.ProviderResource], dict[str, str]]:
    """The one AWS provider every AWS resource names, in cluster.region (the region's one source
    of truth) and tagging everything it creates; and those tags, for what nodes create."""
    cluster = config.cluster
    if not isinstance(cluster, EksCluster):
        return [], {}
    tags = aws_default_tags(cluster, pulumi.get_project(), pulumi.get_stack())
    provider = aws.Provider(
        "aws", region=cluster.region, default_tags=aws.ProviderDefaultTagsArgs(tags=tags)
    )
    return [provider], tags


def _node_pools(
    config: StackConfig,
    cluster: Cluster,
    aws_providers: list[pulumi.ProviderResource],
    k8s_and_aws_opts: pulumi.ResourceOptions,
    node_tags: dict[str, str],
) -> dict[str, PoolComponent]:
    """Each GPU pool: a managed node group, or a Karpenter NodePool (with Karpenter itself)."""
    pools: dict[str, PoolComponent] = {}
    eks = config.cluster
    if not isinstance(eks, EksCluster):
        return pools
    assert cluster.eks_cluster is not None and cluster.node_role_arn is not None
    assert cluster.vpc_id is not None and cluster.cluster_security_group_id is not None
    karpenter = _karpenter(config, eks, cluster, k8s_and_aws_opts)
    for pool in config.node_pools:
        gpus = pool_gpus(pool)
        assert gpus is not None  # guaranteed by the cross-checks
        if pool.karpenter_managed:
            assert karpenter is not None
            pools[pool.name] = KarpenterNodePool(
                f"pool-{pool.name}",
                KarpenterNodePoolArgs(
                    pool=pool,
                    gpus=gpus,
                    kubernetes_version=eks.kubernetes_version,
                    node_role_name=karpenter.node_role.name,
                    subnet_ids=_pool_subnets(cluster, pool),
                    vpc_id=cluster.vpc_id,
                    cluster_security_group_id=cluster.cluster_security_group_id,
                    tags=node_tags,
                    depends_on=[karpenter.controller],
                ),
                opts=k8s_and_aws_opts,
            )
            continue
        pools[pool.name] = GpuNodePool(
            f"pool-{pool.name}",
            GpuNodePoolArgs(
                pool=pool,
                gpus=gpus,
                kubernetes_version=eks.kubernetes_version,
                cluster_name=cluster.eks_cluster.name,
                node_role_arn=cluster.node_role_arn,
                subnet_ids=_pool_subnets(cluster, pool),
                vpc_id=cluster.vpc_id,
                cluster_security_group_id=cluster.cluster_security_group_id,
                tags=node_tags,
                depends_on=cluster.node_prerequisites,
            ),
            opts=pulumi.ResourceOptions(providers=aws_providers),
        )
    return pools


def _karpenter(
    config: StackConfig,
    eks: EksCluster,
    cluster: Cluster,
    k8s_and_aws_opts: pulumi.ResourceOptions,
) -> Karpenter | None:
    """Karpenter, when a pool asks for it."""
    if not any(pool.karpenter_managed for pool in config.node_pools):
        return None
    assert cluster.eks_cluster is not None and cluster.oidc_provider_arn is not None
    assert cluster.oidc_issuer_url is not None
    return Karpenter(
        "karpenter",
        KarpenterArgs(
            cluster_name=eks.name,
            region=eks.region,
            cluster=cluster.eks_cluster,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            chart_version=config.platform.chart_pins()["karpenter"],
            system_nodes=eks.system_node_group.min_size,
            system_node_selector=SYSTEM_NODE_LABELS,
            network_policy=eks.network_policy_enforcing_mode == "strict",
        ),
        opts=k8s_and_aws_opts,
    )


def _security(
    deployment: Deployment, secrets: StackSecrets, k8s_opts: pulumi.ResourceOptions
) -> Security:
    config = deployment.config
    downloading = tuple(
        (resolved.model.k8s_namespace, color)
        for resolved in deployment.models
        for color in resolved.downloading_colors()
    )
    grafana = config.observability.installs_grafana
    if grafana and secrets.grafana_admin_password is None:
        # validate says so from the stack file; here an imported environment did not set it.
        raise pulumi.RunError(
            f"{CONFIG_NAMESPACE}:{GRAFANA_ADMIN_KEY} is not set: Grafana would keep its chart's "
            "default admin password"
        )
    return Security(
        "security",
        SecurityArgs(
            namespaces=owned_namespaces(config),
            network=network_plan(config, downloading),
            pod_security=config.security.pod_security,
            network_policies=config.security.network_policies,
            hf_token=secrets.hf_token,
            image_pull_secret=secrets.image_pull_secret,
            s3_keys=secrets.s3_keys,
            s3_namespaces={m.k8s_namespace for m in config.models if s3_sources(m)},
            hf_namespaces={
                m.k8s_namespace for m in config.models if downloads_from_hugging_face(m)
            },
            grafana_admin_password=secrets.grafana_admin_password,
            monitoring_namespace=config.observability.namespace if grafana else None,
        ),
        opts=k8s_opts,
    )


def _nats_accounts(
    config: StackConfig, security: Security, k8s_opts: pulumi.ResourceOptions
) -> NatsAccounts | None:
    namespaces = nats_account_namespaces(config)
    if not namespaces:
        return None
    platform = config.platform.namespace
    return NatsAccounts(
        "nats-accounts",
        NatsAccountsArgs(
            platform_namespace=platform,
            model_namespaces=namespaces,
            namespaces={n: security.namespaces[n] for n in (platform, *namespaces)},
        ),
        opts=k8s_opts,
    )


def _platform(
    config: StackConfig,
    security: Security,
    nats: NatsAccounts | None,
    pools: dict[str, PoolComponent],
    k8s_opts: pulumi.ResourceOptions,
) -> Platform:
    releases = platform_releases(
        config.platform,
        gpu_namespace=GPU_NAMESPACE,
        fluid_namespace=FLUID_NAMESPACE,
        observability=config.observability,
        gpus=bool(config.node_pools),
        efa=any(p.efa for p in config.node_pools),
        grove=config.uses_grove,
        autoscaler_namespace=autoscaler_namespace(config),
        nats_accounts=nats is not None,
    )
    # The namespaces the charts install into (kube-system is not ours); not the models'.
    namespaces = dict.fromkeys(
        security.namespaces[r.namespace] for r in releases if r.namespace in security.namespaces
    )
    return Platform(
        "platform",
        PlatformArgs(
            releases=releases,
            charts=config.platform.chart_pins(),
            depends_on=[
                *namespaces,
                # NATS reads the accounts file at start.
                *([nats.accounts_secret] if nats else []),
                *([security.grafana_admin] if security.grafana_admin else []),
                *[p.nodes for p in pools.values()],
            ],
        ),
        opts=k8s_opts,
    )


def _access(
    config: StackConfig, cluster: Cluster, security: Security, opts: pulumi.ResourceOptions
) -> Access:
    grants = config.security.access.grants()
    return Access(
        "access",
        AccessArgs(
            namespaces=[
                ServingNamespace(
                    m.k8s_namespace,
                    m.name,
                    ("frontend", *m.topology.roles),
                    tuple(frontend_service_name(m, color) for color in sorted(m.slots)),
                    tuple(engine_config_map_name(m, color) for color in COLORS),
                )
                for m in config.models
            ],
            groups={level: g.groups for level, g in grants.items()},
            principals={level: g.principal_arns for level, g in grants.items()},
            eks_cluster_name=cluster.eks_cluster.name if cluster.eks_cluster else None,
            namespace_resources={
                m.k8s_namespace: security.namespaces[m.k8s_namespace] for m in config.models
            },
        ),
        opts=opts,
    )


def _model(
    resolved: ResolvedModel, deployment: Deployment, built: _Built, secrets: StackSecrets
) -> pulumi.Output[str] | str:
    """One model: cache access, each slot's cache and graph, autoscaling, traffic; its endpoint."""
    config, model = deployment.config, resolved.model
    namespace = built.security.namespaces[model.k8s_namespace]
    _cache_access(resolved, built, secrets, namespace)
    graphs = [_slot(resolved, color, deployment, built, namespace) for color in sorted(model.slots)]
    if any(model.role(r).autoscaling for r in model.topology.roles):
        Autoscaling(
            f"{model.name}-autoscaling",
            AutoscalingArgs(
                model=model,
                autoscaler=config.platform.autoscaler,
                prometheus=config.observability.prometheus(),
                depends_on=[
                    *graphs,
                    built.platform.releases[AUTOSCALER_RELEASE[config.platform.autoscaler]],
                ],
            ),
            opts=built.k8s_opts,
        )
    traffic = Traffic(
        f"{model.name}-traffic",
        TrafficArgs(model=model, gateway=config.traffic.gateway, depends_on=[namespace, *graphs]),
        opts=built.k8s_opts,
    )
    return traffic.endpoint


def _cache_access(
    resolved: ResolvedModel, built: _Built, secrets: StackSecrets, namespace: pulumi.Resource
) -> None:
    """The IAM role (IRSA) that lets the model's cache read its S3 prefixes, on EKS."""
    model, cluster = resolved.model, built.cluster
    sources = s3_sources(model)
    if not sources or cluster.oidc_provider_arn is None or secrets.s3_keys is not None:
        return
    assert cluster.oidc_issuer_url is not None
    CacheAccess(
        f"{model.name}-cache-access",
        CacheAccessArgs(
            namespace=model.k8s_namespace,
            sources=sources,
            oidc_provider_arn=cluster.oidc_provider_arn,
            oidc_issuer_url=cluster.oidc_issuer_url,
            depends_on=[namespace],
        ),
        opts=built.k8s_and_aws_opts,
    )


def _slot(
    resolved: ResolvedModel,
    color: Color,
    deployment: Deployment,
    built: _Built,
    namespace: pulumi.Resource,
) -> pulumi.Resource:
    """One color of a model: its cache (S3 weights) and its graph; returns the DGD."""
    config, model = deployment.config, resolved.model
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
                    node_selector=cache_selector(config, model),
                    tier_path=cache_tier_path(config, model),
                    credentials_secret=built.security.s3_credentials_secret,
                ),
                spec=config.model_cache,
                depends_on=[namespace, built.platform.releases["fluid"]],
            ),
            opts=built.k8s_opts,
        )
    graph = TrtllmGraph(
        f"{model.name}-{color}",
        TrtllmGraphArgs(
            model=model,
            color=color,
            engine_files=resolved.engine_files(color),
            inputs=GraphInputs(
                namespace=model.k8s_namespace,
                placements=resolved.placements(),
                parallelism=resolved.parallelism(color),
                # Only a slot that downloads reads the token (a cached one never needs it).
                hf_token_secret=built.security.hf_token_secret
                if model.source_for(color).hugging_face is not None
                else None,
                image_pull_secret=built.security.image_pull_secret,
                model_pvc=cache.pvc_name if cache else None,
                cache_node_label=cache.node_label if cache else None,
                reasoning_parser=resolved.facts.reasoning_parser if resolved.facts else None,
                tool_call_parser=resolved.facts.tool_call_parser if resolved.facts else None,
                ready_timeout_seconds=ready_timeout_seconds(resolved),
                cluster_topology=config.platform.cluster_topology,
                dgd_api_version=config.platform.profile.dgd_api_version,
                nats_credentials_secret=CREDENTIALS_SECRET if built.nats else None,
            ),
            # The operator's admission webhook must answer before any DGD is sent.
            depends_on=[
                namespace,
                built.platform.operator,
                *built.access.service_accounts[model.k8s_namespace],
                *([cache.dataset] if cache else []),
                *([built.nats.credentials[model.k8s_namespace]] if built.nats else []),
            ],
        ),
        opts=built.k8s_opts,
    )
    return graph.dgd


def _observability(config: StackConfig, built: _Built) -> None:
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
                    scales_to_zero=any(
                        (scaling := m.role(r).autoscaling) is not None and scaling.scales_to_zero
                        for r in m.topology.roles
                    ),
                )
                for m in config.models
            ],
            monitoring_namespace=config.observability.namespace,
            platform_namespace=config.platform.namespace,
            platform_endpoints=platform_metrics_endpoints(config.platform),
            namespaces=built.security.namespaces,
            crds=[crds] if (crds := built.platform.prometheus_operator) else [],
        ),
        opts=built.k8s_opts,
    )


def _exports(
    config: StackConfig, built: _Built, endpoints: Mapping[str, pulumi.Output[str] | str]
) -> None:
    cluster = built.cluster
    pulumi.export("kubeconfig", cluster.kubeconfig)
    pulumi.export("clusterName", cluster.cluster_name)
    if cluster.endpoint is not None:
        pulumi.export("clusterEndpoint", cluster.endpoint)
        pulumi.export("oidcProviderArn", cluster.oidc_provider_arn)
    pulumi.export("endpoints", endpoints)
    pulumi.export("activeColors", {m.name: m.active for m in config.models})
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
            for name, pool in built.pools.items()
        },
    )


def _pool_subnets(cluster: Cluster, pool: NodePool) -> pulumi.Input[Sequence[pulumi.Input[str]]]:
    """The pool's own subnets, its zone's private subnet (EFA, capacity blocks), or all private."""
    if pool.subnet_ids:
        return list(pool.subnet_ids)
    if pool.availability_zone and pool.availability_zone in cluster.private_subnets_by_zone:
        return [cluster.private_subnets_by_zone[pool.availability_zone]]
    assert cluster.private_subnet_ids is not None
    return cluster.private_subnet_ids
