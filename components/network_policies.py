"""NetworkPolicy content for every namespace we own: deny by default, then the flows each needs.

Policies select by namespace name (`kubernetes.io/metadata.name`, set by the API server) rather
than by labels we add, so nobody joins a flow by labelling their own namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from components.dgd import (
    COLOR_LABEL,
    FRONTEND_PORT,
    MODEL_LABEL,
    OPERATOR_COMPONENT_TYPE_LABEL,
)

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
NATS_PORT = 4222
NATS_MONITORING_PORT = 8222
NATS_EXPORTER_PORT = 7777
ETCD_PORT = 2379
WORKER_SYSTEM_PORT = 9090
OPERATOR_METRICS_PORT = 8080
DCGM_EXPORTER_PORT = 9400
# controller-runtime webhooks (Dynamo operator, Grove, Fluid, KEDA) listen on 9443.
WEBHOOK_PORT = 9443
# Aggregated API servers (KEDA metrics, Prometheus adapter) and the prometheus-operator webhook.
AGGREGATED_API_PORT = 6443
PROMETHEUS_OPERATOR_WEBHOOK_PORT = 10250
# The Service ranges EKS picks from when the cluster names none, as ours do (CreateCluster
# kubernetesNetworkConfig.serviceIpv4Cidr: 10.100.0.0/16 or 172.20.0.0/16).
EKS_DEFAULT_SERVICE_CIDRS = ("10.100.0.0/16", "172.20.0.0/16")
# Fluid gives host-network cache runtimes ports from this range (its controller's default).
FLUID_RUNTIME_PORTS = (20000, 26000)
# What Prometheus scrapes: Dynamo frontend and workers, DCGM, NATS exporter and monitor, etcd,
# operator metrics, node-exporter, kubelet/cAdvisor, the API server.
SCRAPE_PORTS = (
    FRONTEND_PORT,
    WORKER_SYSTEM_PORT,
    DCGM_EXPORTER_PORT,
    NATS_EXPORTER_PORT,
    NATS_MONITORING_PORT,
    ETCD_PORT,
    OPERATOR_METRICS_PORT,
    9100,  # node-exporter
    9153,  # CoreDNS
    10249,  # kube-proxy
    10250,  # kubelet, cAdvisor
    443,  # API server
)
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}


NAMESPACE_KIND_LABEL = "dynamo-trtllm.io/namespace-kind"  # its value: the NamespaceKind


class NamespaceKind(StrEnum):
    """What runs in a namespace we own, which decides the flows it needs."""

    SERVING = "serving"  # one model's Dynamo graphs (blue and green)
    PLATFORM = "platform"  # Dynamo operator, NATS, etcd, Grove
    GPU = "gpu"  # device plugins, GPU operator, DCGM exporter
    FLUID = "fluid"  # Fluid controllers and webhook
    MONITORING = "monitoring"  # Prometheus, Grafana, alertmanager, prometheus-operator
    KEDA = "keda"  # KEDA operator, metrics API server, webhooks


@dataclass(frozen=True)
class Upstream:
    """A service pods call: its port, and the namespace it runs in (None: outside the cluster,
    or somewhere we cannot name, so only the port is allowed)."""

    port: int
    namespace: str | None


@dataclass(frozen=True)
class NetworkPlan:
    """The cluster-wide facts the policies need."""

    platform_namespace: str
    serving_namespaces: tuple[str, ...]
    nats: Upstream
    etcd: Upstream | None  # None: Dynamo discovers through the Kubernetes API
    prometheus: Upstream  # what KEDA queries
    # namespaces whose pods may call the model frontends (the gateway's, and any client's)
    client_namespaces: tuple[str, ...]
    monitoring_namespace: str | None  # where Prometheus runs, when observability is on
    keda_namespace: str | None
    prometheus_adapter: bool = False  # the HPA's external metrics API, beside Prometheus
    # The VPC's CIDR (nodes and, with the VPC CNI, pods): where Fluid's host-network cache
    # runtime is. None (an existing VPC or cluster): not known, so the loader's ports are open.
    cluster_cidr: str | None = None
    # Where the API server calls pods from (webhooks, aggregated APIs, the promoter's requests
    # through a Service proxy): EKS's control-plane subnets. Empty: not known, so webhooks and
    # aggregated APIs take any source and frontends only their clients.
    api_server_sources: tuple[str, ...] = ()
    # The cluster's Service ranges (the `kubernetes` Service pods address the API server by);
    # with api_server_sources, HTTPS from model pods goes there only. Empty: not known, so
    # model pods keep HTTPS to anywhere.
    service_cidrs: tuple[str, ...] = ()
    # (namespace, color) of each slot whose workers download from Hugging Face.
    downloading: tuple[tuple[str, str], ...] = ()
    # (namespace, Dataset name) of each Fluid cache: its DataLoad pods prewarm it.
    caches: tuple[tuple[str, str], ...] = ()


def _policy(namespace: str, name: str, spec: dict) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def _namespaces(*names: str) -> dict:
    return {
        "namespaceSelector": {
            "matchExpressions": [
                {"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(names)}
            ]
        }
    }


def _tcp(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def default_deny(namespace: str) -> dict:
    """Nothing in, nothing out, unless a later policy allows it."""
    return _policy(
        namespace, "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    )


def allow_dns(namespace: str) -> dict:
    kube_dns = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    ports = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    return _policy(
        namespace,
        "allow-dns",
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [kube_dns], "ports": ports}],
        },
    )


def allow_https_egress(namespace: str, pods: dict | None = None, to: tuple[str, ...] = ()) -> dict:
    """HTTPS to the Kubernetes API: to the `to` blocks when they are known, else anywhere."""
    return _policy(
        namespace,
        "allow-https-egress",
        {
            "podSelector": pods or {},
            "policyTypes": ["Egress"],
            "egress": [_to_blocks({"ports": _tcp(443)}, to)],
        },
    )


def api_server_blocks(plan: NetworkPlan) -> tuple[str, ...]:
    """Where pods reach the API server: its control-plane addresses (the private endpoint) and
    the Service ranges (the `kubernetes` Service's address, which the VPC CNI matches before
    translating it; it adds Service addresses only for rules selecting pods). Empty when
    either is unknown."""
    if not plan.api_server_sources or not plan.service_cidrs:
        return ()
    return (*plan.api_server_sources, *plan.service_cidrs)


def _to_blocks(rule: dict, blocks: tuple[str, ...]) -> dict:
    """`rule` limited to `blocks` (none given: unlimited)."""
    if not blocks:
        return rule
    return {"to": _ip_blocks(blocks), **rule}


def _ip_blocks(blocks: tuple[str, ...]) -> list[dict]:
    return [{"ipBlock": {"cidr": block}} for block in blocks]


def _from_api_server(plan: NetworkPlan) -> list[dict] | None:
    """The API server as an ingress source; None (any source) when its addresses are unknown."""
    return _ip_blocks(plan.api_server_sources) if plan.api_server_sources else None


def allow_within_namespace(namespace: str) -> dict:
    """Platform components talk among themselves (operator, NATS cluster routes, etcd peers)."""
    same: list[dict] = [{"podSelector": {}}]
    return _policy(
        namespace,
        "allow-within-namespace",
        {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": same}],
            "egress": [{"to": same}],
        },
    )


def _egress_to(upstream: Upstream) -> dict:
    rule: dict = {"ports": _tcp(upstream.port)}
    if upstream.namespace is not None:
        rule["to"] = [_namespaces(upstream.namespace)]
    return rule


def allow_ingress_ports(
    namespace: str, name: str, ports: tuple[int, ...], sources: list[dict] | None
) -> dict:
    """Ingress on `ports` to any pod of the namespace, from `sources` (None: from anywhere)."""
    rule: dict = {"ports": _tcp(*ports)}
    if sources is not None:
        rule["from"] = sources
    return _policy(
        namespace, name, {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [rule]}
    )


def _metrics_ingress(namespace: str, plan: NetworkPlan, ports: tuple[int, ...]) -> list[dict]:
    if plan.monitoring_namespace is None:
        return []
    prometheus = _namespaces(plan.monitoring_namespace) | {
        "podSelector": {"matchLabels": PROMETHEUS_POD_LABELS}
    }
    return [allow_ingress_ports(namespace, "allow-metrics-scrape", ports, [prometheus])]


def serving_policies(namespace: str, model: str, plan: NetworkPlan) -> list[dict]:
    """One model's namespace: each color's graph talks only to itself, the platform and HTTPS.

    Blue and green pods never match each other's color selector, so they cannot talk. Fluid's
    cache runtime pods run on the host network (Fluid's default), outside NetworkPolicy; workers
    read the cache through its FUSE mount on their node, which is not a network flow.
    """
    policies = [default_deny(namespace), allow_dns(namespace)]
    for color in ("blue", "green"):
        graph = {"podSelector": {"matchLabels": {MODEL_LABEL: model, COLOR_LABEL: color}}}
        # Request plane and NIXL/UCX use dynamic ports: allow all ports inside one graph.
        policies.append(
            _policy(
                namespace,
                f"allow-graph-{color}",
                {
                    "podSelector": graph["podSelector"],
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [{"from": [graph]}],
                    "egress": [{"to": [graph]}],
                },
            )
        )
    model_pods = {"matchLabels": {MODEL_LABEL: model}}
    upstreams = [plan.nats] + ([plan.etcd] if plan.etcd else [])
    policies.append(
        _policy(
            namespace,
            "allow-platform-egress",
            {
                "podSelector": model_pods,
                "policyTypes": ["Egress"],
                "egress": [_egress_to(upstream) for upstream in upstreams],
            },
        )
    )
    to_api_server = api_server_blocks(plan)
    policies.append(allow_https_egress(namespace, model_pods, to_api_server))
    if to_api_server:
        policies += [
            _download_egress(namespace, model, color, plan)
            for slot_namespace, color in plan.downloading
            if slot_namespace == namespace
        ]
    frontend = {"matchLabels": {MODEL_LABEL: model, OPERATOR_COMPONENT_TYPE_LABEL: "frontend"}}
    clients: list[dict] = [{"podSelector": {}}]
    if plan.client_namespaces:
        clients.append(_namespaces(*plan.client_namespaces))
    # The promotion gates' smoke requests come through the API server's Service proxy.
    clients += _ip_blocks(plan.api_server_sources)
    policies.append(
        _policy(
            namespace,
            "allow-frontend-ingress",
            {
                "podSelector": frontend,
                "policyTypes": ["Ingress"],
                "ingress": [{"from": clients, "ports": _tcp(FRONTEND_PORT)}],
            },
        )
    )
    datasets = sorted(dataset for ns, dataset in plan.caches if ns == namespace)
    if datasets:
        policies.append(_cache_loader_egress(namespace, datasets, plan))
    return policies + _metrics_ingress(namespace, plan, (FRONTEND_PORT, WORKER_SYSTEM_PORT))


# The labels Fluid's dataloader chart gives a DataLoad's pod (charts/fluid-dataloader/alluxio/
# templates/job.yaml), with `targetDataset: <dataset>`.
FLUID_LOADER_LABELS = {"role": "dataload-pod", "app": "alluxio"}


def _cache_loader_egress(namespace: str, datasets: list[str], plan: NetworkPlan) -> dict:
    """Fluid's DataLoad pod (on the pod network) asks the host-network cache master to
    prewarm: Fluid's runtime ports, inside the VPC. Only in namespaces that hold a cache, and
    only for pods labelled as a loader of one of its Datasets, not a graph's pods."""
    low, high = FLUID_RUNTIME_PORTS
    loader = {
        "matchLabels": FLUID_LOADER_LABELS,
        "matchExpressions": [
            {"key": "targetDataset", "operator": "In", "values": datasets},
            {"key": MODEL_LABEL, "operator": "DoesNotExist"},
        ],
    }
    return _policy(
        namespace,
        "allow-cache-loader-egress",
        {
            "podSelector": loader,
            "policyTypes": ["Egress"],
            "egress": [
                _to_blocks(
                    {"ports": [{"protocol": "TCP", "port": low, "endPort": high}]},
                    (plan.cluster_cidr,) if plan.cluster_cidr else (),
                )
            ],
        },
    )


def _download_egress(namespace: str, model: str, color: str, plan: NetworkPlan) -> dict:
    """A slot that fetches from the Hugging Face hub: HTTPS out of the cluster for its pods
    (workers fetch weights and drafts, the frontend the tokenizer and config) — not to the VPC's
    or the Services' addresses, where it would reach other tenants' pods and nodes."""
    slot = {"matchLabels": {MODEL_LABEL: model, COLOR_LABEL: color}}
    inside = tuple(c for c in (plan.cluster_cidr, *plan.service_cidrs) if c)
    rule: dict = {"ports": _tcp(443)}
    if inside:
        rule["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": list(inside)}}]
    return _policy(
        namespace,
        f"allow-download-egress-{color}",
        {"podSelector": slot, "policyTypes": ["Egress"], "egress": [rule]},
    )


def platform_policies(namespace: str, plan: NetworkPlan) -> list[dict]:
    """Dynamo operator, NATS and etcd: clients only from the serving namespaces."""
    policies = _infrastructure_base(namespace)
    client_ports = tuple(
        u.port for u in (plan.nats, plan.etcd) if u is not None and u.namespace == namespace
    )
    if plan.serving_namespaces and client_ports:
        policies.append(
            allow_ingress_ports(
                namespace,
                "allow-dynamo-clients",
                client_ports,
                [_namespaces(*plan.serving_namespaces)],
            )
        )
    policies.append(
        allow_ingress_ports(namespace, "allow-webhooks", (WEBHOOK_PORT,), _from_api_server(plan))
    )
    return policies + _metrics_ingress(
        namespace,
        plan,
        (OPERATOR_METRICS_PORT, NATS_EXPORTER_PORT, NATS_MONITORING_PORT, ETCD_PORT),
    )


def gpu_policies(namespace: str, plan: NetworkPlan) -> list[dict]:
    return _infrastructure_base(namespace) + _metrics_ingress(
        namespace, plan, (DCGM_EXPORTER_PORT,)
    )


def fluid_policies(namespace: str, plan: NetworkPlan) -> list[dict]:
    return _infrastructure_base(namespace) + [
        allow_ingress_ports(namespace, "allow-webhooks", (WEBHOOK_PORT,), _from_api_server(plan))
    ]


def monitoring_policies(namespace: str, plan: NetworkPlan) -> list[dict]:
    """Prometheus scrapes across the cluster (pods and node IPs); KEDA queries it."""
    policies = _infrastructure_base(namespace)
    policies.append(
        _policy(
            namespace,
            "allow-prometheus-scrape",
            {
                "podSelector": {"matchLabels": PROMETHEUS_POD_LABELS},
                "policyTypes": ["Egress"],
                "egress": [{"ports": _tcp(*SCRAPE_PORTS)}],
            },
        )
    )
    api_ports: tuple[int, ...] = (PROMETHEUS_OPERATOR_WEBHOOK_PORT,)
    if plan.prometheus_adapter:
        api_ports += (AGGREGATED_API_PORT,)
    policies.append(
        allow_ingress_ports(namespace, "allow-api-server", api_ports, _from_api_server(plan))
    )
    if plan.keda_namespace and plan.prometheus.namespace == namespace:
        policies.append(
            allow_ingress_ports(
                namespace,
                "allow-keda-queries",
                (plan.prometheus.port,),
                [_namespaces(plan.keda_namespace)],
            )
        )
    return policies


def keda_policies(namespace: str, plan: NetworkPlan) -> list[dict]:
    policies = _infrastructure_base(namespace)
    policies.append(
        allow_ingress_ports(
            namespace,
            "allow-api-server",
            (AGGREGATED_API_PORT, WEBHOOK_PORT),
            _from_api_server(plan),
        )
    )
    policies.append(
        _policy(
            namespace,
            "allow-prometheus-queries",
            {"podSelector": {}, "policyTypes": ["Egress"], "egress": [_egress_to(plan.prometheus)]},
        )
    )
    return policies


def _infrastructure_base(namespace: str) -> list[dict]:
    return [
        default_deny(namespace),
        allow_dns(namespace),
        allow_within_namespace(namespace),
        allow_https_egress(namespace),
    ]


def namespace_policies(
    namespace: str, kind: NamespaceKind, plan: NetworkPlan, model: str | None = None
) -> list[dict]:
    """Every NetworkPolicy of one owned namespace, default deny first."""
    if kind is NamespaceKind.SERVING:
        assert model is not None, "a serving namespace serves one model"
        return serving_policies(namespace, model, plan)
    builders = {
        NamespaceKind.PLATFORM: platform_policies,
        NamespaceKind.GPU: gpu_policies,
        NamespaceKind.FLUID: fluid_policies,
        NamespaceKind.MONITORING: monitoring_policies,
        NamespaceKind.KEDA: keda_policies,
    }
    return builders[kind](namespace, plan)
