"""Monitoring content: our dashboard and alert rules read only metrics Dynamo and DCGM really export."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import promql_parser
import pytest
import yaml

from components.alert_rules import WORKER_POD_REGEX, build_prometheus_rule, pod_monitor_job
from components.dgd import dgd_child_names, frontend_service_name
from components.monitoring_content import (
    KNOWN_METRICS,
    UPSTREAM_ONLY,
    ModelSlo,
    build_dashboard_config_map,
    metric_names,
    promql_expressions,
)
from components.observability import build_pod_monitor
from infra.offline.validate import CrdSchemas
from infra.stack.model_config import Model

SLOS = [
    ModelSlo(
        model="qwen3-0-6b", namespace="qwen3-0-6b", ttft_p95_seconds=0.5, itl_p95_seconds=0.05
    ),
    ModelSlo(
        model="gpt-oss-120b", namespace="serving-gpt", ttft_p95_seconds=2, itl_p95_seconds=0.025
    ),
]
PANEL_TITLES = {
    "Request rate",
    "Time to first token (p50 / p95 / p99)",
    "Inter-token latency (p50 / p95 / p99)",
    "Queued and in-flight requests",
    "KV-cache usage per worker",
    "GPU utilization per worker",
    "GPU memory per worker",
}


@pytest.fixture(scope="module")
def dashboard_cm() -> dict:
    return build_dashboard_config_map(
        "monitoring", ["qwen3-0-6b", "gpt-oss-120b"], namespaces={"gpt-oss-120b": "serving-gpt"}
    )


@pytest.fixture(scope="module")
def rule() -> dict:
    return build_prometheus_rule("monitoring", SLOS, "dynamo-system")


def alerts(rule: dict) -> list[dict]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def alert(rule: dict, name: str, model: str | None = None) -> dict:
    (found,) = [r for r in alerts(rule) if r["alert"] == name and r["labels"].get("model") == model]
    return found


# --- every expression parses and reads only known metrics ------------------------------------


def test_every_expression_parses_and_reads_only_known_metrics(dashboard_cm, rule) -> None:
    used: set[str] = set()
    expressions = promql_expressions(dashboard_cm) + promql_expressions(rule)
    assert len(expressions) == 12 + len(alerts(rule))  # 12 dashboard targets
    for expr in expressions:
        promql_parser.parse(expr)  # raises on malformed PromQL
        names = metric_names(expr)
        assert names, expr
        assert names <= KNOWN_METRICS, f"{expr}: unknown {names - KNOWN_METRICS}"
        used |= names
    assert used == KNOWN_METRICS, f"listed but unused: {KNOWN_METRICS - used}"


def _reference_promql_metrics(observability: Path) -> set[str]:
    """Metric names in the PromQL of Dynamo's own dashboards (JSON files and dashboard ConfigMaps)."""
    documents = [json.loads(p.read_text()) for p in sorted(observability.rglob("*.json"))]
    for path in sorted(observability.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for key, text in ((doc or {}).get("data") or {}).items():
                if key.endswith(".json"):
                    documents.append(json.loads(text))
    exprs: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr" and isinstance(value, str):
                    exprs.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(documents)
    names: set[str] = set()
    parsed = 0
    for expr in exprs:
        # Grafana's interval macros are not PromQL; anything else that fails is not PromQL (LogQL).
        text = re.sub(r"\$__(rate_)?interval|\$__range", "5m", expr)
        try:
            names |= metric_names(text)
        except ValueError:
            continue
        parsed += 1
    assert parsed >= 100, f"only {parsed} of {len(exprs)} reference expressions parsed"
    return names


def test_known_metrics_are_ones_dynamo_and_dcgm_export(reference: Path) -> None:
    exported = _reference_promql_metrics(reference / "dynamo-deploy" / "observability")
    assert set(UPSTREAM_ONLY) <= KNOWN_METRICS
    for name in sorted(KNOWN_METRICS - set(UPSTREAM_ONLY)):
        assert name in exported, f"{name} is not in the reference dashboards' PromQL"
    for name in sorted(UPSTREAM_ONLY):
        # Keeps the exception list honest: once the reference uses a name, drop it from the list.
        assert name not in exported, f"{name} is in the reference now: remove it from UPSTREAM_ONLY"
        if name.endswith("_bucket"):
            family = name.removesuffix("_bucket")
            assert {f"{family}_sum", f"{family}_count"} <= exported, family


def test_metric_names_come_from_the_syntax_tree() -> None:
    assert metric_names('sum(rate(a_total{job="b_total"}[5m])) / on() group_left c') == {
        "a_total",
        "c",
    }
    assert metric_names('{__name__="d", x="y"} + deriv(sum(e)[10m:1m])') == {"d", "e"}
    with pytest.raises(ValueError):
        metric_names('{__name__=~"dynamo_.*"}')
    with pytest.raises(ValueError):
        metric_names("sum(rate(a[5m])")


def test_promql_expressions_only_reads_dashboards_and_rules() -> None:
    with pytest.raises(ValueError):
        promql_expressions({"kind": "PodMonitor"})


# --- alert rules -------------------------------------------------------------------------------


def _threshold(expr: str) -> float:
    node = promql_parser.parse(expr)
    assert isinstance(node, promql_parser.BinaryExpr) and str(node.op) == ">", expr
    assert isinstance(node.rhs, promql_parser.NumberLiteral), expr
    return node.rhs.val


def test_slo_thresholds_come_from_each_model(rule) -> None:
    for slo in SLOS:
        ttft = alert(rule, "DynamoTimeToFirstTokenAboveSlo", slo.model)
        itl = alert(rule, "DynamoInterTokenLatencyAboveSlo", slo.model)
        assert _threshold(ttft["expr"]) == slo.ttft_p95_seconds
        assert _threshold(itl["expr"]) == slo.itl_p95_seconds
        for found in (ttft, itl):
            assert f'namespace="{slo.namespace}"' in found["expr"]
            assert "histogram_quantile(0.95," in found["expr"]
    assert alert(rule, "DynamoTimeToFirstTokenAboveSlo", "qwen3-0-6b")["expr"].endswith("> 0.5")
    assert alert(rule, "DynamoInterTokenLatencyAboveSlo", "gpt-oss-120b")["expr"].endswith(
        "> 0.025"
    )


def test_every_alert_has_severity_duration_and_our_annotations(rule) -> None:
    names = [(r["alert"], r["labels"].get("model")) for r in alerts(rule)]
    assert len(names) == len(set(names))
    assert {n for n, _ in names} >= {
        "DynamoRequestQueueGrowing",
        "DynamoWorkerDown",
        "DynamoNoWorkerUp",
        "GpuFatalXidError",
        "GpuXidError",
        "GpuMemoryNearlyFull",
    }
    for r in alerts(rule):
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert re.fullmatch(r"[0-9]+m", r["for"]), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert "0.95" in alert(rule, "GpuMemoryNearlyFull")["expr"]


def test_jetstream_storage_alert_divides_the_exporters_usage_by_its_limit(rule) -> None:
    (nats,) = [g["rules"] for g in rule["spec"]["groups"] if g["name"] == "dynamo-trtllm.nats"]
    (found,) = [r for r in nats if r["alert"] == "NatsJetStreamStorageHigh"]
    assert found["annotations"]["summary"] == "NATS JetStream storage high"
    expr = found["expr"]
    assert _threshold(expr) == 0.85
    ratio = promql_parser.parse(expr).lhs
    assert isinstance(ratio, promql_parser.BinaryExpr) and str(ratio.op) == "/"
    assert metric_names(str(ratio.lhs)) == {"nats_varz_jetstream_stats_storage"}
    # A server without a limit (0) must not divide by zero into an alert.
    assert metric_names(str(ratio.rhs)) == {"nats_varz_jetstream_config_max_storage"}
    assert "> 0" in str(ratio.rhs)
    assert expr.count('namespace="dynamo-system"') == 2
    assert found["labels"] == {"severity": "warning"}


def test_worker_alerts_follow_the_pod_monitor_and_the_operator_pod_names(rule) -> None:
    monitor = build_pod_monitor("serving-gpt", "gpt-oss-120b", "worker", 9090)["metadata"]
    job = pod_monitor_job("serving-gpt", "gpt-oss-120b", "worker")
    assert job == f"{monitor['namespace']}/{monitor['name']}"
    assert f'job="{job}"' in alert(rule, "DynamoWorkerDown", "gpt-oss-120b")["expr"]
    for topology in ("agg", "disagg"):
        m = Model.model_validate(
            {"name": "m", "source": {"huggingFace": "Qwen/Qwen3-0.6B"}, "image": "img:1"}
            | {"topology": topology}
        )
        frontend = frontend_service_name(m, "blue")
        workers = [n for n in dgd_child_names(m, "blue") if n != frontend]
        assert workers
        for name in workers:
            assert re.fullmatch(WORKER_POD_REGEX, f"{name}-7c9d8f6b5-x2x4k"), name
        assert not re.fullmatch(WORKER_POD_REGEX, f"{frontend}-7c9d8f6b5-x2x4k")
    assert not re.fullmatch(WORKER_POD_REGEX, "m-worker-0")  # a Fluid cache worker


def test_prometheus_rule_validates_against_the_reference_crd(reference: Path, rule) -> None:
    crds = CrdSchemas.from_dirs([reference / "crds" / "prometheus-operator"])
    schema = crds.get("monitoring.coreos.com/v1", "PrometheusRule")
    assert schema is not None
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(rule)
    ]
    assert not errors
    broken = json.loads(json.dumps(rule))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_rule_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        ModelSlo(model="m", namespace="m", ttft_p95_seconds=0, itl_p95_seconds=0.05)
    with pytest.raises(ValueError):
        ModelSlo(model="m", namespace="m", ttft_p95_seconds=0.5, itl_p95_seconds=float("nan"))
    with pytest.raises(ValueError):
        build_prometheus_rule("monitoring", [SLOS[0], SLOS[0]], "dynamo-system")


# --- dashboard ---------------------------------------------------------------------------------


def test_dashboard_config_map_carries_our_dashboard(dashboard_cm) -> None:
    assert dashboard_cm["kind"] == "ConfigMap"
    assert dashboard_cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(dashboard_cm["data"]["dynamo-trtllm.json"])
    panels = dashboard["panels"]
    assert {p["title"] for p in panels} == PANEL_TITLES
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    model = variables["model"]
    assert model["type"] == "custom"
    assert [(o["text"], o["value"]) for o in model["options"]] == [
        ("qwen3-0-6b", "qwen3-0-6b"),
        ("gpt-oss-120b", "serving-gpt"),
    ]
    assert model["query"] == "qwen3-0-6b : qwen3-0-6b,gpt-oss-120b : serving-gpt"
    assert variables["datasource"]["type"] == "datasource"
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"]
        for target in panel["targets"]:
            assert '="$model"' in target["expr"], (panel["title"], target["expr"])


def test_dashboard_quantiles_and_gpu_labels(dashboard_cm) -> None:
    panels = {
        p["title"]: p for p in json.loads(dashboard_cm["data"]["dynamo-trtllm.json"])["panels"]
    }
    for title in ("Time to first token (p50 / p95 / p99)", "Inter-token latency (p50 / p95 / p99)"):
        exprs = [t["expr"] for t in panels[title]["targets"]]
        assert [e.split(",")[0] for e in exprs] == [
            "histogram_quantile(0.5",
            "histogram_quantile(0.95",
            "histogram_quantile(0.99",
        ]
    gpu = panels["GPU utilization per worker"]["targets"][0]["expr"]
    assert gpu == 'DCGM_FI_DEV_GPU_UTIL{exported_namespace="$model"}'
    honored = build_dashboard_config_map("monitoring", ["m"], dcgm_honor_labels=True)
    assert 'DCGM_FI_DEV_GPU_UTIL{namespace="$model"}' in promql_expressions(honored)


def test_dashboard_inputs_are_checked() -> None:
    with pytest.raises(ValueError):
        build_dashboard_config_map("monitoring", [])
    with pytest.raises(ValueError):
        build_dashboard_config_map("monitoring", ["a", "a"])
    with pytest.raises(ValueError):
        build_dashboard_config_map("monitoring", ["a"], namespaces={"a": "x,y"})


def test_a_model_that_scales_to_zero_alerts_on_no_worker_only_while_requests_arrive() -> None:
    idle = ModelSlo("m", "m", ttft_p95_seconds=1, itl_p95_seconds=0.1, scales_to_zero=True)
    rule = build_prometheus_rule("monitoring", [idle], "dynamo-system")
    found = alert(rule, "DynamoNoWorkerUp", "m")
    promql_parser.parse(found["expr"])
    assert "dynamo_frontend_requests_total" in found["expr"] and found["for"] == "30m"
    always = alert(
        build_prometheus_rule("monitoring", SLOS, "dynamo-system"), "DynamoNoWorkerUp", "qwen3-0-6b"
    )
    assert "dynamo_frontend_requests_total" not in always["expr"] and always["for"] == "10m"
