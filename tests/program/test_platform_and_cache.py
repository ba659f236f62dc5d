"""Platform and model cache as rendered: NATS/etcd per environment, cache wiring, S3 credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import platform
from components.trtllm_graph import TrtllmGraph, TrtllmGraphArgs
from infra import program
from infra.offline.render import render_stack
from tests.conftest import PROJECT_ROOT, Project
from tests.dgd_layouts import OPERATOR_COMPONENT_TYPE_LABEL, OPERATOR_GRAPH_LABEL, services


def load(out: Path) -> list[tuple[dict, dict]]:
    index = json.loads((out / "index.json").read_text())["resources"]
    return [(entry, yaml.safe_load((out / entry["file"]).read_text())) for entry in index]


def platform_values(out: Path) -> dict:
    return next(d for e, d in load(out) if d.get("chart") == "dynamo-platform")["values"]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("platform")
    for stack in ("dev", "staging", "prod"):
        render_stack(stack, base / stack, PROJECT_ROOT)
    return {stack: base / stack for stack in ("dev", "staging", "prod")}


def test_nats_is_one_node_in_dev_and_a_three_node_jetstream_cluster_in_prod(
    renders: dict[str, Path],
) -> None:
    dev = platform_values(renders["dev"])["nats"]
    assert dev["config"]["cluster"] == {"enabled": False, "replicas": 1}
    assert dev["podDisruptionBudget"] == {"enabled": False}
    for stack in ("staging", "prod"):
        nats = platform_values(renders[stack])["nats"]
        assert nats["config"]["cluster"] == {"enabled": True, "replicas": 3}
        assert nats["podDisruptionBudget"] == {"enabled": True}
        assert "topologySpreadConstraints" in nats["podTemplate"]
    prod = platform_values(renders["prod"])["nats"]
    for nats in (dev, prod):
        assert nats["config"]["jetstream"]["fileStore"]["pvc"]["enabled"] is True
        assert nats["config"]["merge"]["max_payload"] >= 15 * 1024 * 1024
    # etcd stays off: Dynamo 1.x discovers workers through Kubernetes
    for stack in ("dev", "prod"):
        values = platform_values(renders[stack])
        assert values["global"]["etcd"] == {"install": False} and "etcd" not in values


def test_the_graph_mounts_the_pvc_fluid_makes_for_its_dataset(renders: dict[str, Path]) -> None:
    resources = load(renders["prod"])
    datasets = {
        (d["metadata"]["namespace"], d["metadata"]["name"])
        for e, d in resources
        if e.get("kind") == "Dataset"
    }
    graphs = [d for e, d in resources if e.get("kind") == "DynamoGraphDeployment"]
    mounted = {
        (g["metadata"]["namespace"], claim)
        for g in graphs
        for service in services(g).values()
        for claim in service.pod.claims()
    }
    assert mounted and mounted <= datasets
    assert ("gpt-oss-120b", "weights-blue") in mounted


def test_graphs_wait_for_the_platform_release(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The operator's webhook rejects DGDs until it runs: every graph depends on its release."""
    seen: list[TrtllmGraphArgs] = []

    def recording(name: str, args: TrtllmGraphArgs, opts: object = None) -> TrtllmGraph:
        seen.append(args)
        return TrtllmGraph(name, args, opts)  # type: ignore[arg-type]

    monkeypatch.setattr(program, "TrtllmGraph", recording)
    render_stack("dev", tmp_path / "dev", PROJECT_ROOT)
    assert seen
    for args in seen:
        names = {getattr(d, "_name", None) for d in args.depends_on}
        assert "dynamo-platform" in names


def test_the_platform_waits_for_its_charts_namespaces_and_no_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A chart needs the namespace it installs into; the models' namespaces are not its."""
    seen: list[platform.PlatformArgs] = []

    def recording(name: str, args: platform.PlatformArgs, opts: object = None) -> Any:
        seen.append(args)
        return platform.Platform(name, args, opts)  # type: ignore[arg-type]

    monkeypatch.setattr(program, "Platform", recording)
    render_stack("prod", tmp_path / "prod", PROJECT_ROOT)
    (args,) = seen
    waits = {getattr(d, "_name", None) for d in args.depends_on}
    charts = {f"ns-{r.namespace}" for r in args.releases if r.namespace != "kube-system"}
    assert charts <= waits
    models = yaml.safe_load((PROJECT_ROOT / "stacks" / "Pulumi.prod.yaml").read_text())
    for model in models["config"]["dynamo-trtllm:models"]:
        assert f"ns-{model['name']}" not in waits
    assert "nats-accounts-server" in waits  # NATS reads its accounts file at start


def test_static_s3_keys_reach_fluid_only_by_reference(project: Project, tmp_path: Path) -> None:
    config = project.stack_config("prod")
    config["dynamo-trtllm:s3AccessKeyId"] = {"secure": "v1:AKIAEXAMPLEKEYID0000"}
    config["dynamo-trtllm:s3SecretAccessKey"] = {"secure": "v1:very-secret-access-key-value"}
    project.write_stack("prod", config)
    out = tmp_path / "prod"
    render_stack("prod", out, project.root)
    resources = load(out)
    text = "".join((out / e["file"]).read_text() for e, _ in resources)
    assert "AKIAEXAMPLEKEYID0000" not in text and "very-secret-access-key-value" not in text
    secret = next(
        d
        for e, d in resources
        if e.get("kind") == "Secret"
        and d["metadata"] == {"name": "s3-credentials", "namespace": "gpt-oss-120b"}
    )
    assert secret["stringData"] == {"aws.accessKeyId": "[secret]", "aws.secretKey": "[secret]"}
    dataset = next(
        d
        for e, d in resources
        if e.get("kind") == "Dataset" and d["metadata"]["namespace"] == "gpt-oss-120b"
    )
    (mount,) = dataset["spec"]["mounts"]
    assert "aws.accessKeyId" not in mount.get("options", {})
    assert mount["encryptOptions"] == [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": key}}}
        for key in ("aws.accessKeyId", "aws.secretKey")
    ]
    # with keys given, no IAM role is made for the cache
    assert not [e for e, _ in resources if e["name"].endswith("cache-access-role")]
    # the qwen3 namespace caches nothing from S3 and gets no copy of the keys
    assert not [
        d
        for e, d in resources
        if e.get("kind") == "Secret"
        and d["metadata"]["namespace"] == "qwen3-0-6b"
        and d["metadata"]["name"] == "s3-credentials"
    ]


def test_autoscaled_roles_get_keda_and_a_scaled_object_on_their_adapter(
    renders: dict[str, Path],
) -> None:
    resources = load(renders["prod"])
    keda = next(d for e, d in resources if d.get("chart") == "keda")
    assert (keda["version"], keda["namespace"]) == ("2.20.2", "keda")
    (scaled,) = [d for e, d in resources if e.get("kind") == "ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "qwen3-0-6b-blue-trtllmworker"
    graph = next(
        d
        for e, d in resources
        if e.get("kind") == "DynamoGraphDeployment" and d["metadata"]["name"] == "qwen3-0-6b-blue"
    )
    worker = services(graph)["TRTLLMWorker"]
    assert worker.scaling_adapter and worker.replicas is None  # the adapter owns the count
    # A stack without an autoscaled role (staging) installs no KEDA.
    assert not [d for e, d in load(renders["staging"]) if d.get("chart") == "keda"]
    # KEDA and the Prometheus adapter both serve the external metrics API: only one is installed.
    assert not [d for e, d in resources if d.get("chart") == "prometheus-adapter"]
    assert not [e for e, d in resources if e.get("kind") == "HorizontalPodAutoscaler"]


def test_an_hpa_stack_gets_the_prometheus_adapter_and_hpas_instead_of_keda(
    project: Project, tmp_path: Path
) -> None:
    config = project.stack_config("prod")
    config["dynamo-trtllm:platform"]["autoscaler"] = "hpa"
    project.write_stack("prod", config)
    render_stack("prod", tmp_path / "prod", project.root)
    resources = load(tmp_path / "prod")
    assert not [d for e, d in resources if d.get("chart") == "keda"]
    assert not [e for e, d in resources if e.get("kind") == "ScaledObject"]
    assert not [
        d for e, d in resources if e.get("kind") == "Namespace" and d["metadata"]["name"] == "keda"
    ]
    adapter = next(d for e, d in resources if d.get("chart") == "prometheus-adapter")
    assert (adapter["version"], adapter["namespace"]) == ("5.3.0", "monitoring")
    assert adapter["repo"] == "https://prometheus-community.github.io/helm-charts"
    assert adapter["values"]["prometheus"] == {
        "url": "http://kube-prometheus-stack-prometheus.monitoring.svc",
        "port": 9090,
    }
    (hpa,) = [d for e, d in resources if e.get("kind") == "HorizontalPodAutoscaler"]
    scaling = config["dynamo-trtllm:models"][0]["agg"]["autoscaling"]
    assert hpa["metadata"]["namespace"] == "qwen3-0-6b"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentScalingAdapter",
        "name": "qwen3-0-6b-blue-trtllmworker",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (
        scaling["minReplicas"],
        scaling["maxReplicas"],
    )
    served = {rule["name"]["as"] for rule in adapter["values"]["rules"]["external"]}
    assert {m["external"]["metric"]["name"] for m in hpa["spec"]["metrics"]} == served
    # no KEDA, so no NetworkPolicy opens Prometheus to a keda namespace
    policies = {d["metadata"]["name"] for e, d in resources if e.get("kind") == "NetworkPolicy"}
    assert "allow-keda-queries" not in policies and "allow-api-server" in policies


def selects(selector: dict, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a pod's labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions", []):
        key, operator = requirement["key"], requirement["operator"]
        values = requirement.get("values", [])
        fits = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not fits:
            return False
    return True


def prometheus_label(pod_label: str) -> str:
    """Prometheus' service-discovery name of a pod label."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_monitors_select_pods_the_graphs_make(renders: dict[str, Path], stack: str) -> None:
    """Each model's PodMonitors, against the pods the operator makes of its graphs (labels as
    the operator sets them, per DGD layout): every frontend and every worker (agg, prefill,
    decode) is scraped by exactly one monitor, on its metrics port."""
    resources = load(renders[stack])
    graphs = [d for e, d in resources if e.get("kind") == "DynamoGraphDeployment"]
    models = {g["metadata"]["namespace"] for g in graphs}
    monitors = [
        d for e, d in resources if e.get("kind") == "PodMonitor" and e["namespace"] in models
    ]
    assert monitors
    pods = [
        (g["metadata"]["namespace"], f"{g['metadata']['name']}/{name}", service)
        for g in graphs
        for name, service in services(g).items()
    ]
    assert {s.component_type for _, _, s in pods} >= {"frontend", "worker"}
    scraped_by: dict[str, list[str]] = {pod: [] for _, pod, _ in pods}
    for monitor in monitors:
        selected = [
            (pod, service)
            for namespace, pod, service in pods
            if namespace == monitor["metadata"]["namespace"]
            and selects(monitor["spec"]["selector"], service.pod_labels)
        ]
        assert selected, monitor["metadata"]["name"]
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        for pod, service in selected:
            scraped_by[pod].append(monitor["metadata"]["name"])
            assert service.is_frontend or service.is_worker, pod
            assert endpoint["portNumber"] == (8000 if service.is_frontend else 9090), pod
            # the slot's `graph` series label comes from a label each pod really carries
            sources = {prometheus_label(k) for k in service.pod_labels}
            graph = next(r for r in endpoint["relabelings"] if r.get("targetLabel") == "graph")
            assert graph["sourceLabels"] == [prometheus_label(OPERATOR_GRAPH_LABEL)]
            assert set(graph["sourceLabels"]) <= sources
    assert all(len(names) == 1 for names in scraped_by.values()), scraped_by
    if stack == "staging":  # v1beta1: the halves of a disaggregated graph are types of their own
        halves = {s.pod_labels[OPERATOR_COMPONENT_TYPE_LABEL] for _, _, s in pods if s.sub_type}
        assert halves == {"prefill", "decode"}


def test_monitored_stacks_scrape_nats_and_etcd_in_the_platform_namespace(
    project: Project, tmp_path: Path, renders: dict[str, Path]
) -> None:
    config = project.stack_config("staging")
    config["dynamo-trtllm:platform"]["etcd"] = {"enabled": True}
    project.write_stack("staging", config)
    render_stack("staging", tmp_path / "staging", project.root)
    resources = load(tmp_path / "staging")
    monitors = {
        d["metadata"]["name"]: d
        for e, d in resources
        if e.get("kind") == "PodMonitor" and e["namespace"] == "dynamo-system"
    }
    assert set(monitors) == {"dynamo-platform-nats", "dynamo-platform-etcd"}
    assert platform_values(tmp_path / "staging")["nats"]["promExporter"] == {"enabled": True}
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"] == {"release": "kube-prometheus-stack"}
    # Without Prometheus (dev without its scale-to-zero autoscaling, which reads it): no
    # exporter, no monitors, and DCGM's chart makes no ServiceMonitor.
    config = project.stack_config("dev")
    del config["dynamo-trtllm:observability"], config["dynamo-trtllm:grafanaAdminPassword"]
    for model in config["dynamo-trtllm:models"]:
        model.pop("agg", None)
    project.write_stack("dev", config)
    render_stack("dev", tmp_path / "dev", project.root)
    dev = load(tmp_path / "dev")
    assert not [e for e, d in dev if e.get("kind") == "PodMonitor"]
    assert "promExporter" not in platform_values(tmp_path / "dev")["nats"]
    dcgm = next(d for e, d in dev if d.get("chart") == "dcgm-exporter")
    assert dcgm["values"]["serviceMonitor"] == {"enabled": False}


def test_charts_that_make_monitors_wait_for_the_prometheus_operator_crds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    waits: dict[str, set[str]] = {}
    real = platform.k8s.helm.v3.Release

    def recording(resource_name: str, **kwargs: Any) -> Any:
        waits[resource_name] = {getattr(d, "_name", "") for d in kwargs["opts"].depends_on or []}
        return real(resource_name, **kwargs)

    monkeypatch.setattr(platform.k8s.helm.v3, "Release", recording)
    render_stack("prod", tmp_path / "prod", PROJECT_ROOT)
    assert "kube-prometheus-stack" in waits["dcgm-exporter"]
    assert "kube-prometheus-stack" not in waits["dynamo-platform"]


def test_alerts_use_each_models_slo_and_the_dashboard_reaches_grafana(
    project: Project, tmp_path: Path
) -> None:
    config = project.stack_config("prod")
    config["dynamo-trtllm:models"][1]["slo"] = {"ttftP95Seconds": 0.75, "itlP95Seconds": 0.04}
    project.write_stack("prod", config)
    render_stack("prod", tmp_path / "prod", project.root)
    resources = load(tmp_path / "prod")
    (rule,) = [d for e, d in resources if e.get("kind") == "PrometheusRule"]
    expressions = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    gpt = [e for e in expressions if 'namespace="gpt-oss-120b"' in e]
    assert any("> 0.75" in e and "time_to_first_token" in e for e in gpt)
    assert any("> 0.04" in e and "inter_token_latency" in e for e in gpt)
    (dashboard,) = [
        d
        for e, d in resources
        if e.get("kind") == "ConfigMap" and d["metadata"]["name"] == "dynamo-trtllm-dashboard"
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["dynamo-trtllm.json"])["panels"]
