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
        (g["metadata"]["namespace"], pvc["name"])
        for g in graphs
        for pvc in g["spec"].get("pvcs", [])
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
    assert graph["spec"]["services"]["TRTLLMWorker"]["scalingAdapter"] == {"enabled": True}
    assert not [d for e, d in load(renders["dev"]) if d.get("chart") == "keda"]
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


def test_monitors_select_pods_the_graphs_make(renders: dict[str, Path]) -> None:
    resources = load(renders["prod"])
    graphs = [d for e, d in resources if e.get("kind") == "DynamoGraphDeployment"]
    models = {g["metadata"]["namespace"] for g in graphs}
    monitors = [
        d for e, d in resources if e.get("kind") == "PodMonitor" and e["namespace"] in models
    ]
    assert monitors
    ports = {"frontend": 8000, "worker": 9090}
    for monitor in monitors:
        selector = monitor["spec"]["selector"]["matchLabels"]
        component = selector["nvidia.com/dynamo-component-type"]
        matching = [
            g
            for g in graphs
            if g["metadata"]["namespace"] == monitor["metadata"]["namespace"]
            # spec.labels go onto every pod; the operator adds the component type
            and g["spec"]["labels"]["dynamo-trtllm.io/model"] == selector["dynamo-trtllm.io/model"]
            and any(s["componentType"] == component for s in g["spec"]["services"].values())
        ]
        assert matching, monitor["metadata"]["name"]
        assert monitor["spec"]["podMetricsEndpoints"][0]["portNumber"] == ports[component]


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
    # dev has no Prometheus: no exporter, no monitors, and DCGM's chart makes no ServiceMonitor.
    dev = load(renders["dev"])
    assert not [e for e, d in dev if e.get("kind") == "PodMonitor"]
    assert "promExporter" not in platform_values(renders["dev"])["nats"]
    dcgm = next(d for e, d in dev if d.get("chart") == "dcgm-exporter")
    assert dcgm["values"] == {"serviceMonitor": {"enabled": False}}


def test_charts_that_make_monitors_wait_for_the_prometheus_operator_crds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    waits: dict[str, set[str]] = {}
    real = platform.k8s.helm.v3.Release

    def recording(resource_name: str, **kwargs: Any) -> Any:
        waits[resource_name] = {getattr(d, "_name", "") for d in kwargs["opts"].depends_on}
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
