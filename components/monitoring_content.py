"""Monitoring content: our Grafana dashboard and Prometheus alert rules for Dynamo + TensorRT-LLM.

Pure builders from model names and SLOs to plain Kubernetes objects (dicts); no Pulumi here.

Which labels the series carry, and so how we filter per model:

- Dynamo frontend and worker series come from our PodMonitors (components/observability.py).
  Those set no `podTargetLabels`, so the pod label `dynamo-trtllm.io/model` is NOT copied onto
  the series. The frontend adds its own `model` label, but its value is the served model name
  (a Hugging Face id or path), not our model name. What every scraped series does carry is the
  `namespace`, `pod` and `job` target labels that the Prometheus operator adds to PodMonitor
  targets (`job` = "<PodMonitor namespace>/<PodMonitor name>"). Each model lives in a namespace of
  its own, so `namespace="<model namespace>"` is an exact per-model filter (both colours of a
  blue/green pair share it, which is what a per-model view wants).
- DCGM series come from the DCGM exporter chart's own ServiceMonitor (components/platform.py). The
  exporter labels each GPU with the pod that holds it (`namespace`, `pod`, `container`); with the
  `honorLabels: false` we set there, Prometheus keeps its own target labels (the exporter's
  namespace and pod) and renames the exported ones to `exported_namespace` / `exported_pod`. The
  `dcgm_honor_labels` arguments switch to the plain names for a ServiceMonitor with
  `honorLabels: true`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from components.dgd import GRAPH_LABEL

# Every metric name our dashboard and rules use. Where each was verified:
#   /work/shared/reference/dynamo-deploy/observability/ (Dynamo's own Grafana dashboards, as PromQL
#   in grafana_dashboards/*.json and k8s/*-configmap.yaml) unless UPSTREAM_ONLY says otherwise.
KNOWN_METRICS: frozenset[str] = frozenset(
    {
        # Dynamo frontend (HTTP service, port 8000): dynamo.json, disagg-dashboard.json.
        "dynamo_frontend_requests_total",
        "dynamo_frontend_queued_requests",
        "dynamo_frontend_inflight_requests",
        "dynamo_frontend_time_to_first_token_seconds_bucket",
        "dynamo_frontend_inter_token_latency_seconds_bucket",
        # Dynamo worker KV-cache stats (system port 9090): disagg-dashboard.json.
        "dynamo_component_gpu_cache_usage_percent",
        # dcgm-exporter: dcgm-metrics.json, disagg-dashboard.json, dynamo.json.
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_FB_FREE",
        "DCGM_FI_DEV_XID_ERRORS",
        # kube-state-metrics (kube-prometheus-stack): disagg-dashboard.json.
        "kube_pod_status_phase",
        # prometheus-nats-exporter, the NATS chart's sidecar: JetStream file storage used / limit.
        "nats_varz_jetstream_stats_storage",
        "nats_varz_jetstream_config_max_storage",
        # Prometheus itself, one per scrape target.
        "up",
    }
)

# Names in KNOWN_METRICS that the local reference does not use in any PromQL, and where each was
# checked instead. Tests require every other name to appear in the reference's PromQL.
UPSTREAM_ONLY: Mapping[str, str] = {
    "dynamo_frontend_inflight_requests": (
        "ai-dynamo/dynamo lib/runtime/src/metrics/prometheus_names.rs "
        "(frontend_service::INFLIGHT_REQUESTS, a gauge); also /work/shared/FIELD-NOTES.md"
    ),
    "dynamo_frontend_time_to_first_token_seconds_bucket": (
        "a HistogramVec in ai-dynamo/dynamo lib/llm/src/http/service/metrics.rs; the reference "
        "uses the same family's _sum and _count"
    ),
    "dynamo_frontend_inter_token_latency_seconds_bucket": (
        "a HistogramVec in ai-dynamo/dynamo lib/llm/src/http/service/metrics.rs; the reference "
        "uses the same family's _sum and _count"
    ),
    "DCGM_FI_DEV_XID_ERRORS": (
        "NVIDIA/dcgm-exporter etc/default-counters.csv (enabled by default; a gauge holding the "
        "last XID code seen)"
    ),
    "up": "Prometheus's synthetic per-target series (1 when the last scrape succeeded)",
    # The exporter names /varz fields <prefix>_varz_<field>, nested ones joined by "_" (the
    # default prefix is gnatsd). The NATS chart runs it with -varz -prefix=nats
    # (nats-io/k8s helm/charts/nats/files/stateful-set/prom-exporter-container.yaml).
    "nats_varz_jetstream_stats_storage": (
        "nats-io/prometheus-nats-exporter walkthrough/grafana-jetstream-dash-helm.json (the "
        "exporter's dashboard for the Helm chart's prefix): bytes of JetStream file storage in use"
    ),
    "nats_varz_jetstream_config_max_storage": (
        "nats-io/prometheus-nats-exporter walkthrough/grafana-jetstream-dash-helm.json: the "
        "server's JetStream file storage limit in bytes"
    ),
}

DASHBOARD_KEY = "dynamo-trtllm.json"
DASHBOARD_UID = "dynamo-trtllm"
DASHBOARD_CONFIG_MAP = "dynamo-trtllm-dashboard"
# kube-prometheus-stack's Grafana sidecar loads ConfigMaps carrying this label.
GRAFANA_DASHBOARD_LABEL = {"grafana_dashboard": "1"}
# kube-prometheus-stack's Prometheus selects PrometheusRules labelled release=<Helm release> by
# default (ruleSelectorNilUsesHelmValues: true).
DEFAULT_PROMETHEUS_RELEASE = "kube-prometheus-stack"
PART_OF = {"app.kubernetes.io/part-of": "dynamo-trtllm"}

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class ModelSlo:
    model: str  # model name (label value of dynamo-trtllm.io/model)
    namespace: str
    ttft_p95_seconds: float
    itl_p95_seconds: float
    # A role autoscales with minReplicas 0: no worker is the idle state, not an outage.
    scales_to_zero: bool = False

    def __post_init__(self) -> None:
        if not self.model or not self.namespace:
            raise ValueError("ModelSlo needs a model name and a namespace")
        for name in ("ttft_p95_seconds", "itl_p95_seconds"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{self.model}: {name} must be a positive number, got {value!r}")


def promql_number(value: float) -> str:
    """A PromQL number literal that round-trips exactly (0.5 -> "0.5")."""
    return repr(float(value))


def dcgm_labels(honor_labels: bool) -> tuple[str, str]:
    """The labels naming the namespace and pod that hold a GPU, on DCGM series."""
    return ("namespace", "pod") if honor_labels else ("exported_namespace", "exported_pod")


def latency_quantile(quantile: float, family: str, selector: str, window: str = "5m") -> str:
    return (
        f"histogram_quantile({promql_number(quantile)}, sum by (namespace, {GRAPH_LABEL}, le) "
        f"(rate({family}_bucket{{{selector}}}[{window}])))"
    )


# --- Grafana dashboard -------------------------------------------------------------------------


def _panel(
    title: str,
    description: str,
    unit: str,
    targets: list[tuple[str, str]],
    grid: tuple[int, int],
    max_value: float | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "min": 0}
    if max_value is not None:
        defaults["max"] = max_value
    x, y = grid
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "expr": expr,
                "legendFormat": legend,
            }
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _model_variable(models: list[str], namespaces: Mapping[str, str]) -> dict[str, Any]:
    """A custom variable: shows model names, substitutes each model's namespace."""
    pairs = [(m, namespaces.get(m, m)) for m in models]
    for text, value in pairs:
        for part in (text, value):
            if not part or any(c in part for c in ",: "):
                raise ValueError(f"model name or namespace {part!r} cannot be a dashboard option")
    return {
        "name": "model",
        "label": "Model",
        "type": "custom",
        "query": ",".join(f"{text} : {value}" for text, value in pairs),
        "current": {"text": pairs[0][0], "value": pairs[0][1]},
        "options": [
            {"text": text, "value": value, "selected": i == 0}
            for i, (text, value) in enumerate(pairs)
        ],
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def build_dashboard(
    models: list[str],
    *,
    namespaces: Mapping[str, str] | None = None,
    dcgm_honor_labels: bool = False,
) -> dict[str, Any]:
    """The dashboard model (Grafana JSON) for one model at a time, picked by `$model`."""
    if not models:
        raise ValueError("a dashboard needs at least one model")
    if len(set(models)) != len(models):
        raise ValueError(f"duplicate model names: {models}")
    ns = 'namespace="$model"'
    gpu_ns_label, gpu_pod_label = dcgm_labels(dcgm_honor_labels)
    gpu = f'{gpu_ns_label}="$model"'
    ttft = "dynamo_frontend_time_to_first_token_seconds"
    itl = "dynamo_frontend_inter_token_latency_seconds"
    fb_used, fb_free = f"DCGM_FI_DEV_FB_USED{{{gpu}}}", f"DCGM_FI_DEV_FB_FREE{{{gpu}}}"
    gpu_legend = f"{{{{{gpu_pod_label}}}}} GPU {{{{gpu}}}}"
    panels = [
        _panel(
            "Request rate",
            "Requests per second the frontends finished, by outcome.",
            "reqps",
            [(f"sum by (status) (rate(dynamo_frontend_requests_total{{{ns}}}[2m]))", "{{status}}")],
            (0, 0),
        ),
        _panel(
            "Queued and in-flight requests",
            "Queued: requests still waiting for their first token. In flight: requests the "
            "frontends have sent to workers and not yet finished.",
            "short",
            [
                (f"sum(dynamo_frontend_queued_requests{{{ns}}})", "queued"),
                (f"sum(dynamo_frontend_inflight_requests{{{ns}}})", "in flight"),
            ],
            (12, 0),
        ),
        _panel(
            "Time to first token (p50 / p95 / p99)",
            "Seen at the frontend, so it includes queueing, routing and prefill.",
            "s",
            [(latency_quantile(q, ttft, ns), f"p{round(q * 100)}") for q in QUANTILES],
            (0, 8),
        ),
        _panel(
            "Inter-token latency (p50 / p95 / p99)",
            "Time between streamed tokens of one response, seen at the frontend.",
            "s",
            [(latency_quantile(q, itl, ns), f"p{round(q * 100)}") for q in QUANTILES],
            (12, 8),
        ),
        _panel(
            "KV-cache usage per worker",
            "Share of each worker's KV-cache blocks in use. Published only by workers started "
            "with --publish-events-and-metrics (the KV-routing roles).",
            "percentunit",
            [(f"dynamo_component_gpu_cache_usage_percent{{{ns}}}", "{{pod}}")],
            (0, 16),
            max_value=1,
        ),
        _panel(
            "GPU utilization per worker",
            "DCGM: share of time a kernel ran on each GPU, by the pod holding the GPU.",
            "percent",
            [(f"DCGM_FI_DEV_GPU_UTIL{{{gpu}}}", gpu_legend)],
            (12, 16),
            max_value=100,
        ),
        _panel(
            "GPU memory per worker",
            "DCGM: share of each GPU's frame buffer in use. TensorRT-LLM reserves most free "
            "memory for its KV cache at start-up, so a high steady level is expected.",
            "percentunit",
            [(f"{fb_used} / ({fb_used} + {fb_free})", gpu_legend)],
            (0, 24),
            max_value=1,
        ),
    ]
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": DASHBOARD_UID,
        "title": "Dynamo TensorRT-LLM serving",
        "description": "Per-model serving latency, load, KV cache and GPUs (dynamo-trtllm).",
        "tags": ["dynamo", "tensorrt-llm", "dynamo-trtllm"],
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                },
                _model_variable(models, namespaces or {}),
            ]
        },
        "panels": panels,
    }


def build_dashboard_config_map(
    namespace: str,
    models: list[str],
    *,
    namespaces: Mapping[str, str] | None = None,
    dcgm_honor_labels: bool = False,
) -> dict:
    """The dashboard as a ConfigMap for kube-prometheus-stack's Grafana sidecar.

    `namespaces` maps a model name to its Kubernetes namespace; a model it leaves out lives in a
    namespace named after it (infra.stack.config's default). Put the ConfigMap where the sidecar looks
    (Grafana's own namespace always works).
    """
    dashboard = build_dashboard(models, namespaces=namespaces, dcgm_honor_labels=dcgm_honor_labels)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": DASHBOARD_CONFIG_MAP,
            "namespace": namespace,
            "labels": {**GRAFANA_DASHBOARD_LABEL, **PART_OF},
        },
        "data": {DASHBOARD_KEY: json.dumps(dashboard, indent=2, sort_keys=True)},
    }


# --- Prometheus alert rules --------------------------------------------------------------------


# --- PromQL introspection ----------------------------------------------------------------------


def _dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def promql_expressions(manifest: dict) -> list[str]:
    """Every PromQL expression in a dashboard ConfigMap or a PrometheusRule, in document order."""
    kind = manifest.get("kind")
    if kind == "PrometheusRule":
        return [
            str(rule["expr"])
            for group in manifest.get("spec", {}).get("groups", [])
            for rule in group.get("rules", [])
        ]
    if kind == "ConfigMap":
        return [
            expr
            for key, text in sorted(manifest.get("data", {}).items())
            if key.endswith(".json")
            for expr in _dashboard_exprs(json.loads(text))
        ]
    raise ValueError(f"no PromQL in a {kind!r}: expected a ConfigMap or a PrometheusRule")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, from promql_parser's AST (raises if it does not parse).

    promql-parser is a development dependency: imported here so the program runs without it.
    """
    import promql_parser

    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if not isinstance(node, promql_parser.VectorSelector):
            return
        named = {node.name} if node.name else set()
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__":
                if matcher.op != promql_parser.MatchOp.Equal:
                    raise ValueError(f"{node}: a metric name pattern hides which metrics it reads")
                named.add(matcher.value)
        if not named:
            raise ValueError(f"{node}: a selector without a metric name")
        names.update(named)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names
