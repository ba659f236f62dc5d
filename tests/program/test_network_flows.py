"""Which flows the rendered NetworkPolicies allow, by Kubernetes semantics (infra.offline.network_reach).

Pods are derived from the rendered DGDs the way the operator labels them, in either DGD layout
(tests/dgd_layouts.py); platform pods carry the labels their charts give them. Every allowed flow
the design needs is proven open, and the flows isolation is for are proven closed, for every
stack as rendered.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
import yaml

from components.network_policies import NamespaceKind, NetworkPlan, Upstream, namespace_policies
from infra.offline.network_reach import External, NetworkPolicies, Pod
from tests.conftest import ENVIRONMENT_STACKS, Rendered
from tests.dgd_layouts import OPERATOR_COMPONENT_TYPE_LABEL, OPERATOR_GRAPH_LABEL, services

NIXL_PORT = 19090
REQUEST_PLANE_PORT = 34567  # a dynamic request-plane port
# The API server as the unit tests' plans see it (no addresses known); a rendered stack's is in
# its control-plane subnets (Cluster.api_server).
API_SERVER = External("10.0.0.10", "api-server")
# Pods reach the API server at the `kubernetes` Service's address (EKS's default range).
API_SERVICE = External("172.20.0.1", "kubernetes-service")
INTERNET = External("52.216.8.1", "s3")
KUBE_DNS = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"})
STRANGER = Pod("stranger", "default", {"app": "curl"})
GATEWAY = Pod("envoy", "gateway", {"app": "envoy"})
NATS = Pod("nats-0", "dynamo-system", {"app.kubernetes.io/name": "nats"}, {"client": 4222})
OPERATOR = Pod("operator", "dynamo-system", {"control-plane": "controller-manager"})
PROMETHEUS = Pod("prometheus-0", "monitoring", {"app.kubernetes.io/name": "prometheus"})
GRAFANA = Pod("grafana", "monitoring", {"app.kubernetes.io/name": "grafana"})
DCGM = Pod("dcgm-exporter", "gpu-system", {"app": "dcgm-exporter"}, {"metrics": 9400})
KEDA = Pod("keda-operator", "keda", {"app": "keda-operator"})


class Cluster:
    """A rendered stack's policies plus the pods its graphs would run, each with an address in
    the stack's VPC as the VPC CNI gives them (no address when the stack creates no VPC)."""

    def __init__(self, rendered: Rendered) -> None:
        labels = {
            n["metadata"]["name"]: n["metadata"]["labels"] for n in rendered.objects("Namespace")
        }
        self.namespaces = set(labels)
        self.net = NetworkPolicies(rendered.objects("NetworkPolicy"), labels)
        vpcs = [rendered.load(r)["cidrBlock"] for r in rendered.of_type("aws:ec2/vpc:Vpc")]
        self.vpc = ipaddress.ip_network(vpcs[0]) if vpcs else None
        control_plane = [
            ipaddress.ip_network(rendered.load(r)["cidrBlock"])
            for r in rendered.of_type("aws:ec2/subnet:Subnet")
            if "control-plane" in r["file"]
        ]
        # EKS's network interfaces live in the control-plane subnets; with none (a cluster we
        # did not create) the API server's address is unknown and stands anywhere.
        self.api_server_known = bool(control_plane)
        self.api_server = (
            External(str(next(control_plane[0].hosts()) + 9), "api-server")
            if control_plane
            else API_SERVER
        )
        addresses = self.vpc.hosts() if self.vpc else iter(())
        next(addresses, None)  # skip the network's first host (the VPC router's neighbourhood)
        self.pods: dict[tuple[str, str], Pod] = {}
        self.frontends: list[Pod] = []
        self.downloading: set[str] = set()  # pod names
        drafts = {
            config_map["metadata"]["name"].removesuffix("-engine-config")
            for config_map in rendered.objects("ConfigMap")
            if any(
                isinstance(text, str) and _hub_draft(text)
                for text in (config_map.get("data") or {}).values()
            )
        }
        for dgd in rendered.objects("DynamoGraphDeployment"):
            name = dgd["metadata"]["name"]
            views = services(dgd)
            hub = name in drafts or any(
                not view.container.args[view.container.args.index("--model-path") + 1].startswith(
                    "/"
                )
                for view in views.values()
                if view.is_worker
            )
            for key, service in views.items():
                address = next(addresses, None)
                pod = Pod(
                    f"{name}-{key.lower()}",
                    dgd["metadata"]["namespace"],
                    service.pod_labels,
                    {"http": 8000} if service.is_frontend else {"system": 9090},
                    ip=str(address) if address else None,
                )
                self.pods[(name, key)] = pod
                if service.is_frontend:
                    self.frontends.append(pod)
                if hub:  # weights, tokenizer or a draft from the Hugging Face hub
                    self.downloading.add(pod.name)
        # the gateways the HTTPRoutes hang off, and the namespaces whose frontends they route to
        self.routes = {
            (
                parent.get("namespace", route["metadata"]["namespace"]),
                route["metadata"]["namespace"],
            )
            for route in rendered.objects("HTTPRoute")
            for parent in route["spec"]["parentRefs"]
        }

    def internet_open(self, pod: Pod) -> bool:
        """HTTPS to the internet: for workers that download, or everyone when the VPC is not ours."""
        return self.vpc is None or pod.name in self.downloading

    def frontend(self, dgd: str) -> Pod:
        return self.pods[(dgd, "Frontend")]

    def worker(self, dgd: str, key: str) -> Pod:
        return self.pods[(dgd, key)]

    def assert_open(
        self, src: Pod | External, dst: Pod | External, port: int, protocol: str = "TCP"
    ) -> None:
        verdict = self.net.check(src, dst, port, protocol)
        assert verdict.allowed, verdict.reason

    def assert_closed(self, src: Pod | External, dst: Pod | External, port: int) -> None:
        verdict = self.net.check(src, dst, port)
        assert not verdict.allowed, verdict.reason


def _hub_draft(engine_config: str) -> bool:
    spec = (yaml.safe_load(engine_config) or {}).get("speculative_config") or {}
    draft = spec.get("speculative_model_dir") or spec.get("speculative_model")
    return bool(draft) and not str(draft).startswith("/")


def graph_of(pod: Pod) -> str:
    return pod.labels[OPERATOR_GRAPH_LABEL]


@pytest.fixture(scope="module")
def clusters(rendered: dict[str, Rendered]) -> dict[str, Cluster]:
    return {stack: Cluster(rendered[stack]) for stack in ENVIRONMENT_STACKS}


@pytest.fixture(scope="module")
def prod(clusters: dict[str, Cluster]) -> Cluster:
    return clusters["prod"]


@pytest.fixture(scope="module")
def staging(clusters: dict[str, Cluster]) -> Cluster:
    return clusters["staging"]


# --- every stack, every graph, as rendered -------------------------------------------------------


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_graph_talks_inside_itself_and_to_no_other_graph(
    clusters: dict[str, Cluster], stack: str
) -> None:
    cluster = clusters[stack]
    assert cluster.pods
    for src in cluster.pods.values():
        for dst in cluster.pods.values():
            if src is dst:
                continue
            for port in (8000, 9090, NIXL_PORT, REQUEST_PLANE_PORT):
                verdict = cluster.net.check(src, dst, port)
                assert verdict.allowed == (graph_of(src) == graph_of(dst)), (
                    f"{src} -> {dst}:{port}: {verdict.reason}"
                )


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_graph_pod_reaches_nats_dns_and_https_only(
    clusters: dict[str, Cluster], stack: str
) -> None:
    cluster = clusters[stack]
    for pod in cluster.pods.values():
        cluster.assert_open(pod, NATS, 4222)
        cluster.assert_closed(pod, NATS, 6222)  # cluster routes stay among NATS pods
        cluster.assert_open(pod, KUBE_DNS, 53, "UDP")
        cluster.assert_open(pod, cluster.api_server, 443)  # the private endpoint
        cluster.assert_open(pod, API_SERVICE, 443)  # ... as pods address it
        verdict = cluster.net.check(pod, INTERNET, 443)
        assert verdict.allowed == cluster.internet_open(pod), verdict.reason
        cluster.assert_closed(pod, INTERNET, 80)
        cluster.assert_closed(pod, STRANGER, 8000)


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_frontend_answers_its_gateway_and_no_stranger(
    clusters: dict[str, Cluster], stack: str
) -> None:
    cluster = clusters[stack]
    assert cluster.frontends
    for frontend in cluster.frontends:
        cluster.assert_closed(STRANGER, frontend, 8000)
        # the promotion gates' smoke requests, through the API server's Service proxy
        verdict = cluster.net.check(cluster.api_server, frontend, 8000)
        assert verdict.allowed == cluster.api_server_known, verdict.reason
        cluster.assert_closed(cluster.api_server, frontend, 9090)
        for gateway_namespace, namespace in cluster.routes:
            gateway = replace(GATEWAY, namespace=gateway_namespace)
            if namespace == frontend.namespace:
                cluster.assert_open(gateway, frontend, 8000)
            cluster.assert_closed(gateway, frontend, 9090)
    for pod in cluster.pods.values():
        if pod not in cluster.frontends:
            cluster.assert_closed(STRANGER, pod, 9090)
            cluster.assert_closed(STRANGER, pod, NIXL_PORT)


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_prometheus_scrapes_every_graph_pod_on_its_metrics_port_only(
    clusters: dict[str, Cluster], stack: str
) -> None:
    cluster = clusters[stack]
    monitored = PROMETHEUS.namespace in cluster.namespaces  # observability on
    for pod in cluster.pods.values():
        metrics = 8000 if pod.labels[OPERATOR_COMPONENT_TYPE_LABEL] == "frontend" else 9090
        assert cluster.net.check(PROMETHEUS, pod, metrics).allowed == monitored, pod
        cluster.assert_closed(PROMETHEUS, pod, NIXL_PORT)
        cluster.assert_closed(GRAFANA, pod, 9090)  # only Prometheus pods scrape


# --- prod (v1alpha1) and staging (v1beta1) in detail ---------------------------------------------


@pytest.mark.parametrize(
    ("stack", "graph"), [("prod", "gpt-oss-120b-blue"), ("staging", "qwen3-disagg-blue")]
)
def test_inside_one_graph_everything_flows(
    clusters: dict[str, Cluster], stack: str, graph: str
) -> None:
    cluster = clusters[stack]
    frontend = cluster.frontend(graph)
    prefill = cluster.worker(graph, "prefill")
    decode = cluster.worker(graph, "decode")
    for port in (9090, NIXL_PORT, REQUEST_PLANE_PORT):  # system port, NIXL, request plane
        cluster.assert_open(frontend, prefill, port)
        cluster.assert_open(frontend, decode, port)
        cluster.assert_open(prefill, decode, port)
        cluster.assert_open(decode, prefill, port)
        cluster.assert_open(decode, frontend, port)


def test_blue_and_green_cannot_reach_each_other(prod: Cluster) -> None:
    for src, dst in (
        ("gpt-oss-120b-blue", "gpt-oss-120b-green"),
        ("gpt-oss-120b-green", "gpt-oss-120b-blue"),
    ):
        for key in ("prefill", "decode"):
            prod.assert_closed(prod.worker(src, key), prod.worker(dst, key), NIXL_PORT)
            prod.assert_closed(prod.frontend(src), prod.worker(dst, key), REQUEST_PLANE_PORT)
        prod.assert_closed(prod.worker(src, "decode"), prod.frontend(dst), 8000)


def test_one_model_cannot_reach_another(prod: Cluster) -> None:
    qwen = prod.frontend("qwen3-0-6b-blue")
    qwen_worker = prod.worker("qwen3-0-6b-blue", "TRTLLMWorker")
    gpt = prod.frontend("gpt-oss-120b-blue")
    gpt_decode = prod.worker("gpt-oss-120b-blue", "decode")
    prod.assert_closed(qwen, gpt, 8000)
    prod.assert_closed(qwen_worker, gpt_decode, NIXL_PORT)
    prod.assert_closed(gpt_decode, qwen_worker, 9090)


def test_frontends_answer_only_their_namespace_and_the_gateway(prod: Cluster) -> None:
    frontend = prod.frontend("qwen3-0-6b-blue")
    prod.assert_open(GATEWAY, frontend, 8000)
    prod.assert_open(prod.worker("qwen3-0-6b-blue", "TRTLLMWorker"), frontend, 8000)
    prod.assert_closed(STRANGER, frontend, 8000)
    prod.assert_closed(GATEWAY, frontend, 9090)
    prod.assert_open(prod.api_server, frontend, 8000)  # the promoter's Service proxy
    prod.assert_closed(prod.api_server, prod.worker("qwen3-0-6b-blue", "TRTLLMWorker"), 9090)


def test_nobody_outside_a_graph_reaches_a_workers_kv_transfer_port(prod: Cluster) -> None:
    decode = prod.worker("gpt-oss-120b-blue", "decode")
    for outsider in (GATEWAY, STRANGER, PROMETHEUS, NATS, prod.api_server, INTERNET):
        prod.assert_closed(outsider, decode, NIXL_PORT)


def test_graphs_reach_nats_and_nothing_else_does(prod: Cluster) -> None:
    for pod in prod.pods.values():
        prod.assert_open(pod, NATS, 4222)
        prod.assert_closed(pod, NATS, 6222)  # cluster routes stay among NATS pods
    prod.assert_closed(STRANGER, NATS, 4222)
    prod.assert_closed(GATEWAY, NATS, 4222)
    prod.assert_open(OPERATOR, NATS, 4222)  # same namespace


def test_dns_and_https_egress(prod: Cluster) -> None:
    worker = prod.worker("deepseek-r1-blue", "decode")  # weights from the S3-backed cache
    prod.assert_open(worker, KUBE_DNS, 53, "UDP")
    prod.assert_open(worker, prod.api_server, 443)  # the Kubernetes API's private endpoint
    # HTTPS inside the VPC goes to the control plane only, not to a pod that would take it
    prod.assert_closed(worker, replace(STRANGER, ip="10.0.3.7"), 443)
    prod.assert_closed(worker, INTERNET, 443)  # nothing to download: no way out
    prod.assert_closed(worker, INTERNET, 80)
    downloader = prod.worker("qwen3-0-6b-blue", "TRTLLMWorker")  # Qwen from Hugging Face
    prod.assert_open(downloader, INTERNET, 443)
    # out of the cluster only: not to another tenant's pod or a host-network pod in the VPC
    prod.assert_closed(downloader, replace(STRANGER, ip="10.0.3.7"), 443)
    prod.assert_open(prod.frontend("qwen3-0-6b-blue"), INTERNET, 443)  # tokenizer and config
    prod.assert_open(prod.worker("llama-4-maverick-blue", "TRTLLMWorker"), INTERNET, 443)  # draft
    prod.assert_closed(prod.frontend("deepseek-r1-blue"), INTERNET, 443)  # all from the cache
    # the HTTPS allow is egress only: another model's namespace still denies the ingress
    prod.assert_closed(worker, prod.frontend("qwen3-0-6b-blue"), 443)


def test_prometheus_scrapes_metrics_ports_only(prod: Cluster) -> None:
    frontend = prod.frontend("qwen3-0-6b-blue")
    worker = prod.worker("qwen3-0-6b-blue", "TRTLLMWorker")
    prod.assert_open(PROMETHEUS, frontend, 8000)
    prod.assert_open(PROMETHEUS, worker, 9090)
    prod.assert_open(PROMETHEUS, DCGM, 9400)
    prod.assert_open(PROMETHEUS, NATS, 7777)
    prod.assert_closed(PROMETHEUS, worker, NIXL_PORT)
    prod.assert_closed(GRAFANA, worker, 9090)  # only Prometheus pods scrape


def test_api_server_reaches_webhooks_and_aggregated_apis(prod: Cluster) -> None:
    api_server = prod.api_server
    prod.assert_open(api_server, OPERATOR, 9443)
    prod.assert_open(api_server, Pod("fluid-webhook", "fluid-system", {}), 9443)
    prod.assert_open(api_server, Pod("keda-metrics-apiserver", "keda", {}), 6443)
    prod.assert_closed(api_server, Pod("prometheus-adapter", "monitoring", {}), 6443)  # KEDA's
    prod.assert_closed(api_server, NATS, 4222)
    prod.assert_open(OPERATOR, api_server, 443)
    # only the API server: a pod of the VPC cannot call a webhook or an aggregated API
    pod_in_vpc = replace(STRANGER, ip="10.0.3.7")
    prod.assert_closed(pod_in_vpc, OPERATOR, 9443)
    prod.assert_closed(pod_in_vpc, Pod("keda-metrics-apiserver", "keda", {}), 6443)


def test_keda_queries_prometheus(prod: Cluster) -> None:
    prod.assert_open(KEDA, PROMETHEUS, 9090)
    prod.assert_closed(STRANGER, PROMETHEUS, 9090)


def test_fluid_cache_pods_and_their_loader(prod: Cluster) -> None:
    """Alluxio runs on the host network (outside NetworkPolicy); workers read its FUSE mount
    on their node. Fluid's DataLoad job is a pod-network pod that must reach the master."""
    master = Pod(
        "cache-master",
        "gpt-oss-120b",
        {"role": "alluxio-master"},
        host_network=True,
        node_ip="10.0.12.7",
    )
    # the labels Fluid's dataloader chart gives the pod of the DataLoad of Dataset weights-blue
    labels = {"role": "dataload-pod", "app": "alluxio", "targetDataset": "weights-blue"}
    loader = Pod("cache-loader", "gpt-oss-120b", labels)
    prod.assert_open(loader, master, 20001)
    prod.assert_closed(loader, prod.worker("gpt-oss-120b-blue", "decode"), 9090)
    # any other unlabelled pod of the namespace, or a loader in a namespace without a cache,
    # cannot reach the host-network caches (another tenant's among them)
    prod.assert_closed(Pod("stray", "gpt-oss-120b", {}), master, 20001)
    prod.assert_closed(Pod("loader-elsewhere", "qwen3-0-6b", labels), master, 20001)


def test_canary_slots_of_staging_are_isolated(staging: Cluster) -> None:
    blue, green = staging.frontend("qwen3-0-6b-blue"), staging.frontend("qwen3-0-6b-green")
    staging.assert_open(GATEWAY, blue, 8000)
    staging.assert_open(GATEWAY, green, 8000)  # the HTTPRoute splits traffic between both
    staging.assert_closed(blue, green, 8000)
    staging.assert_closed(
        staging.worker("qwen3-0-6b-green", "TRTLLMWorker"),
        staging.worker("qwen3-0-6b-blue", "TRTLLMWorker"),
        NIXL_PORT,
    )


def _plan(**changes: object) -> NetworkPlan:
    plan = NetworkPlan(
        platform_namespace="dynamo-system",
        serving_namespaces=("qwen3",),
        nats=Upstream(4222, "dynamo-system"),
        etcd=None,
        prometheus=Upstream(9090, "monitoring"),
        client_namespaces=(),
        monitoring_namespace="monitoring",
        keda_namespace="keda",
    )
    return replace(plan, **changes)


def _policies(plan: NetworkPlan) -> NetworkPolicies:
    kinds = {
        "dynamo-system": NamespaceKind.PLATFORM,
        "monitoring": NamespaceKind.MONITORING,
        "keda": NamespaceKind.KEDA,
    }
    policies = namespace_policies("qwen3", NamespaceKind.SERVING, plan, model="qwen3")
    for namespace, kind in kinds.items():
        policies += namespace_policies(namespace, kind, plan)
    return NetworkPolicies(policies)


QWEN_WORKER = Pod(
    "worker",
    "qwen3",
    {
        "dynamo-trtllm.io/model": "qwen3",
        "dynamo-trtllm.io/color": "blue",
        OPERATOR_COMPONENT_TYPE_LABEL: "worker",
    },
)
ETCD = Pod("etcd-0", "dynamo-system", {"app.kubernetes.io/name": "etcd"})


def test_bundled_etcd_is_reached_only_by_graphs() -> None:
    with_etcd = _policies(_plan(etcd=Upstream(2379, "dynamo-system")))
    assert with_etcd.check(QWEN_WORKER, ETCD, 2379).allowed
    assert not with_etcd.check(STRANGER, ETCD, 2379).allowed
    assert not _policies(_plan()).check(QWEN_WORKER, ETCD, 2379).allowed


def test_external_nats_and_etcd_are_reached_on_their_ports() -> None:
    net = _policies(_plan(nats=Upstream(4333, None), etcd=Upstream(2381, None)))
    outside = External("10.20.0.5", "external-nats")
    assert net.check(QWEN_WORKER, outside, 4333).allowed
    assert net.check(QWEN_WORKER, outside, 2381).allowed
    assert not net.check(QWEN_WORKER, outside, 4222).allowed
    # the platform namespace takes no client ports then
    assert not net.check(QWEN_WORKER, NATS, 4222).allowed


def test_the_metrics_api_port_opens_only_beside_the_prometheus_adapter() -> None:
    adapter = Pod(
        "prometheus-adapter", "monitoring", {"app.kubernetes.io/name": "prometheus-adapter"}
    )
    assert not _policies(_plan()).check(API_SERVER, adapter, 6443).allowed
    hpa = _policies(_plan(keda_namespace=None, prometheus_adapter=True))
    assert hpa.check(API_SERVER, adapter, 6443).allowed
    assert not hpa.check(KEDA, PROMETHEUS, 9090).allowed


def test_keda_follows_prometheus_wherever_the_url_points() -> None:
    thanos = Pod("thanos-query", "thanos", {"app": "thanos-query"})
    net = _policies(_plan(prometheus=Upstream(10902, "thanos")))
    assert net.check(KEDA, thanos, 10902).allowed
    assert not net.check(KEDA, PROMETHEUS, 9090).allowed
