"""What the composition root hands each component, derived from the checked stack.

Pure functions from the config to the components' typed specs (namespaces and their Pod
Security levels, the network plan, where the autoscaler runs): the program only wires them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from components.access import OWN_SECRETS
from components.admission_policies import AdmissionRules, Exemptions
from components.nats_accounts import ACCOUNTS_SECRET, CREDENTIALS_SECRET
from components.network_policies import (
    EKS_DEFAULT_SERVICE_CIDRS,
    ETCD_PORT,
    NATS_PORT,
    NamespaceKind,
    NetworkPlan,
    Upstream,
)
from components.security import OwnedNamespace
from infra.stack.cluster_config import EksCluster
from infra.stack.config import StackConfig, url_port
from infra.stack.derived_names import cache_name
from infra.stack.instances import RAID0_MOUNT, pool_node_selector, striped_nvme
from infra.stack.model_config import Model, S3Source
from infra.stack.names import FLUID_NAMESPACE, GPU_NAMESPACE, GRAFANA_ADMIN_SECRET, KEDA_NAMESPACE

# The SSD tier's directory when the nodes have no striped NVMe: on the root volume.
DEFAULT_CACHE_PATH = "/opt/dynamo/model-cache"


def owned_namespaces(config: StackConfig) -> list[OwnedNamespace]:
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
    if autoscaler_namespace(config) == KEDA_NAMESPACE:
        owned.append(
            OwnedNamespace(
                KEDA_NAMESPACE,
                "restricted",
                "the KEDA operator and metrics server run as non-root without host access",
                NamespaceKind.KEDA,
            )
        )
    for model in config.models:
        cached = bool(s3_sources(model))  # the config checks require modelCache for S3
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


def network_plan(config: StackConfig, downloading: tuple[tuple[str, str], ...] = ()) -> NetworkPlan:
    """downloading: (namespace, color) of each slot whose pods fetch from the Hugging Face hub
    (ResolvedModel.downloading_colors)."""
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
        serving_namespaces=model_namespaces(config),
        nats=_upstream(platform.nats.external_url, NATS_PORT, platform.namespace),
        etcd=_upstream(etcd.external_endpoint, ETCD_PORT, platform.namespace)
        if etcd.enabled
        else None,
        prometheus=_prometheus_upstream(config.observability.prometheus()),
        client_namespaces=tuple(sorted(clients)),
        monitoring_namespace=config.observability.namespace
        if config.observability.enabled
        else None,
        keda_namespace=KEDA_NAMESPACE if autoscaler_namespace(config) == KEDA_NAMESPACE else None,
        prometheus_adapter=autoscaler_namespace(config) == config.observability.namespace,
        cluster_cidr=_vpc_cidr(config),
        api_server_sources=_api_server_sources(config),
        service_cidrs=EKS_DEFAULT_SERVICE_CIDRS if isinstance(config.cluster, EksCluster) else (),
        downloading=downloading,
        caches=tuple(
            (model.k8s_namespace, cache_name(color))
            for model in config.models
            for color in sorted(model.slots)
            if model.source_for(color).s3 is not None
        ),
    )


def _vpc_cidr(config: StackConfig) -> str | None:
    """The CIDR of a VPC the stack creates (an existing VPC's is not in the config)."""
    cluster = config.cluster
    if isinstance(cluster, EksCluster) and not cluster.vpc.existing:
        return cluster.vpc.cidr
    return None


def _api_server_sources(config: StackConfig) -> tuple[str, ...]:
    """EKS's control-plane subnets, or what an existing cluster's config states."""
    cluster = config.cluster
    if isinstance(cluster, EksCluster):
        return cluster.vpc.control_plane_cidrs
    return tuple(cluster.api_server_cidrs)


def nats_account_namespaces(config: StackConfig) -> tuple[str, ...]:
    """The model namespaces that get NATS accounts of their own; () when the stack's NATS has
    none (a NATS it does not run, perModelAccounts off, or no model)."""
    return model_namespaces(config) if config.platform.nats.accounts else ()


def model_namespaces(config: StackConfig) -> tuple[str, ...]:
    """Each namespace models are served in, once, sorted."""
    return tuple(sorted({m.k8s_namespace for m in config.models}))


def autoscaler_namespace(config: StackConfig) -> str | None:
    """KEDA gets a namespace of its own; the Prometheus adapter sits beside Prometheus."""
    if not config.autoscales:
        return None
    return (
        KEDA_NAMESPACE if config.platform.autoscaler == "keda" else config.observability.namespace
    )


def s3_sources(model: Model) -> list[S3Source]:
    return [s.s3 for c in model.slots if (s := model.source_for(c)).s3 is not None]


def downloads_from_hugging_face(model: Model) -> bool:
    """A slot of the model downloads its weights from the Hub (and needs the token there)."""
    return model.engine == "trtllm" and any(
        model.source_for(color).hugging_face is not None for color in model.slots
    )


def cache_selector(config: StackConfig, model: Model) -> dict[str, str]:
    """Cache on the nodes of the model's cache pool."""
    pool = config.cache_pool(model)
    return pool_node_selector(pool) if pool else {}


def cache_tier_path(config: StackConfig, model: Model) -> str:
    """Where the SSD tier lives: the configured path, else on the disks the nodes have."""
    if config.model_cache.path:
        return config.model_cache.path
    pool = config.cache_pool(model)
    if pool is not None and striped_nvme(pool):
        return f"{RAID0_MOUNT}/dynamo-model-cache"
    return DEFAULT_CACHE_PATH


def aws_default_tags(cluster: EksCluster, project: str, stack: str) -> dict[str, str]:
    """Tags for every AWS resource of the stack and what its nodes create (cost attribution)."""
    tags = cluster.tags
    own = {
        "project": project,
        "stack": stack,
        "environment": tags.environment or stack,
        "cost-centre": tags.cost_centre,
    }
    return {**tags.extra, **{key: value for key, value in own.items() if value}}


def admission_exemptions(config: StackConfig) -> Exemptions:
    """The stack's own identities: its admins (an IAM role signs in as
    `arn:<partition>:sts::<account>:assumed-role/<name>/<session>`, the EKS default for an access
    entry of a role), the controllers that write our objects back, and any the stack names."""
    usernames = list(config.security.admission_exempt_usernames)
    prefixes = [
        f"system:serviceaccount:{config.platform.namespace}:",  # the Dynamo operator
        f"system:serviceaccount:{FLUID_NAMESPACE}:",  # Fluid's controllers
    ]
    if isinstance(config.cluster, EksCluster):
        for arn in config.cluster.admin_principal_arns:
            _, partition, _, _, account, resource = arn.split(":", 5)
            kind, _, name = resource.partition("/")
            if kind == "role":
                role = name.rsplit("/", 1)[-1]
                prefixes.append(f"arn:{partition}:sts::{account}:assumed-role/{role}/")
            else:
                usernames.append(arn)
    return Exemptions(tuple(sorted(set(usernames))), tuple(sorted(set(prefixes))))


def admission_rules(config: StackConfig) -> AdmissionRules:
    """What the stack's own objects need, so the admission policies allow exactly that."""
    gateway = config.traffic.gateway
    cached = [
        (model, color, model.source_for(color).s3)
        for model in config.models
        for color in sorted(model.slots)
        if model.source_for(color).s3 is not None
    ]
    return AdmissionRules(
        exemptions=admission_exemptions(config),
        cache_paths=tuple(sorted({cache_tier_path(config, model) for model, _, _ in cached})),
        weight_sources=tuple(sorted({s3.uri for _, _, s3 in cached if s3 is not None})),
        secret_names=tuple(OWN_SECRETS)
        + ((GRAFANA_ADMIN_SECRET,) if config.observability.installs_grafana else ())
        + ((CREDENTIALS_SECRET, ACCOUNTS_SECRET) if nats_account_namespaces(config) else ()),
        gateway=(gateway.name, gateway.namespace) if gateway else None,
        route_domain=gateway.domain if gateway else "",
    )
