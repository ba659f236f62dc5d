"""Autoscaling: scale a role's workers through the DGD's scaling adapter, on frontend metrics.

Both autoscalers (platform.autoscaler) read the same Prometheus queries: requests waiting in the
frontend's queue, and optionally TTFT p95. `keda`: KEDA ScaledObjects query Prometheus themselves.
`hpa`: autoscaling/v2 HorizontalPodAutoscalers read External metrics that the Prometheus adapter
computes with those queries. Each model has its own namespace, so `namespace` selects its frontends.

Scale to zero (minReplicas 0, KEDA only) adds a third trigger that sees requests arrive while no
worker exists; see REQUESTS_ARRIVING.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from components.dgd import GRAPH_LABEL, WORKER_SERVICES, dgd_name
from components.helm_values import (
    AdapterMetricName,
    AdapterPrometheus,
    AdapterResource,
    AdapterResources,
    AdapterRule,
    AdapterRules,
    PrometheusAdapterValues,
)
from components.k8s_objects import custom_resource
from infra.stack.config import url_port
from infra.stack.model_config import AutoscalingSpec, Color, Model
from infra.stack.platform_config import Autoscaler

COMPONENT_TYPE = "dynamo-trtllm:scaling:Autoscaling"
SCALING_ADAPTER_KIND = "DynamoGraphDeploymentScalingAdapter"


@dataclass(frozen=True)
class ScalingMetric:
    """A frontend metric both autoscalers use: PromQL over `series` for the frontends `selector` picks."""

    name: str  # the External metric name the HPA asks the Prometheus adapter for
    series: str
    template: str  # PromQL with {series} and {selector}

    def query(self, selector: str) -> str:
        return self.template.format(series=self.series, selector=selector)


QUEUED_REQUESTS = ScalingMetric(
    "dynamo_frontend_queued_requests",
    "dynamo_frontend_queued_requests",
    "sum({series}{{{selector}}})",
)
TTFT_P95 = ScalingMetric(
    "dynamo_frontend_ttft_p95_seconds",
    "dynamo_frontend_time_to_first_token_seconds_bucket",
    "histogram_quantile(0.95, sum by (le) (rate({series}{{{selector}}}[2m])))",
)
SCALING_METRICS = (QUEUED_REQUESTS, TTFT_P95)

# What wakes a role at zero workers. The queue cannot: with no worker the model leaves the
# frontend (Dynamo main df888f68, pyproject 1.1.0: lib/llm/src/discovery/watcher.rs handle_delete
# removes it with its last instance), so a request is answered 404 at once and the queue gauge
# is up for microseconds, between two scrapes. The request is still counted: the frontend creates its InflightGuard before
# it looks the model up, and the guard's drop adds it to `dynamo_frontend_requests_total` with
# status "error" (lib/llm/src/http/service/openai.rs completions_single, chat_completions;
# metrics.rs `impl Drop for InflightGuard`). So: how many requests came in over the window, the
# counters now less the same counters then. Not rate() or increase(): the first 404 after a
# frontend starts creates its series at 1, and both need two samples of a series, so they would
# miss it; a series absent a window ago counts from 0 (`or vector(0)`). Clamped to [0, 1] so that
# the trigger asks for exactly one worker while requests arrive (AverageValue 1) and never drives
# scale-out, which stays with the queue; a counter reset (frontend restart) reads as 0.
ARRIVAL_WINDOW = "2m"
REQUESTS_ARRIVING = ScalingMetric(
    "dynamo_frontend_requests_arriving",  # KEDA only: no HPA asks for it (minReplicas 0 is KEDA's)
    "dynamo_frontend_requests_total",
    "clamp(sum({series}{{{selector}}}) - "
    "(sum({series}{{{selector}}} offset " + ARRIVAL_WINDOW + ") or vector(0)), 0, 1)",
)
# KEDA's own default, said here so that what the README promises is what is rendered: the role
# goes to 0 once every trigger has been inactive this long (after the arrival window empties).
SCALE_TO_ZERO_COOLDOWN_SECONDS = 300
# The adapter fills this in with the HPA's namespace (see the rules' `resources`).
ADAPTER_LABEL_MATCHERS = "<<.LabelMatchers>>"


def adapter_name(model: Model, color: Color, role: str) -> str:
    """The operator names each adapter after the DGD service it scales: <dgd>-<lower(service)>."""
    return f"{dgd_name(model, color)}-{WORKER_SERVICES[role].lower()}"


def scale_target_ref(model: Model, color: Color, role: str) -> dict:
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": SCALING_ADAPTER_KIND,
        "name": adapter_name(model, color, role),
    }


def _metadata(model: Model, color: Color, role: str) -> dict:
    return {
        "name": adapter_name(model, color, role),
        "namespace": model.k8s_namespace,
        "labels": {"app.kubernetes.io/managed-by": "pulumi"},
    }


def _slot_selector(model: Model, color: Color) -> str:
    """One slot's frontends: blue's scaler never reacts to green's queue."""
    return f'namespace="{model.k8s_namespace}",{GRAPH_LABEL}="{dgd_name(model, color)}"'


def build_scaled_object(
    model: Model, color: Color, role: str, scaling: AutoscalingSpec, prometheus: str
) -> dict:
    triggers = [
        {
            "type": "prometheus",
            "name": "queued-requests",
            "metadata": {
                "serverAddress": prometheus,
                "query": QUEUED_REQUESTS.query(_slot_selector(model, color)),
                # AverageValue: KEDA divides the queue by the current workers.
                "threshold": f"{scaling.queued_requests_per_worker:g}",
            },
        }
    ]
    if scaling.ttft_p95_seconds is not None:
        triggers.append(
            {
                "type": "prometheus",
                "name": "ttft-p95",
                "metricType": "Value",
                "metadata": {
                    "serverAddress": prometheus,
                    "query": TTFT_P95.query(_slot_selector(model, color)),
                    "threshold": f"{scaling.ttft_p95_seconds:g}",
                },
            }
        )
    spec: dict = {
        "scaleTargetRef": scale_target_ref(model, color, role),
        "minReplicaCount": scaling.min_replicas,
        "maxReplicaCount": scaling.max_replicas,
    }
    if scaling.scales_to_zero:
        # KEDA itself takes the adapter between 0 and 1, its activation phase: up when any
        # trigger's value is above its activationThreshold (pkg/scalers/prometheus_scaler.go
        # IsActive), down once none has been for cooldownPeriod; the HPA it creates scales
        # 1..max (keda.sh docs, concepts/scaling-deployments). minReplicaCount 0 rather than
        # idleReplicaCount 0 under a minimum of 1: the CRD takes both (keda.sh_scaledobjects.yaml,
        # v2.20.2, minimum 0), and idleReplicaCount only ever takes 0, so it would say the same
        # with one field more. The adapter goes to 0 too: its spec.replicas has minimum 0
        # (nvidia.com_dynamographdeploymentscalingadapters.yaml, v1alpha1 and v1beta1).
        spec["cooldownPeriod"] = SCALE_TO_ZERO_COOLDOWN_SECONDS
        triggers.insert(
            0,
            {
                "type": "prometheus",
                "name": "requests-arriving",
                "metadata": {
                    "serverAddress": prometheus,
                    "query": REQUESTS_ARRIVING.query(_slot_selector(model, color)),
                    "threshold": "1",
                    # Active on any request in the window (the query is 0 or 1): KEDA wakes
                    # the role on a value strictly above this.
                    "activationThreshold": "0",
                },
            },
        )
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": _metadata(model, color, role),
        "spec": spec | {"triggers": triggers},
    }


def _external_metric(metric: ScalingMetric, target: dict, graph: str) -> dict:
    """The adapter adds the HPA's metric selector to its label matchers: one slot's series."""
    return {
        "type": "External",
        "external": {
            "metric": {"name": metric.name, "selector": {"matchLabels": {GRAPH_LABEL: graph}}},
            "target": target,
        },
    }


def build_horizontal_pod_autoscaler(
    model: Model, color: Color, role: str, scaling: AutoscalingSpec
) -> dict:
    """The same scaling rule as the ScaledObject, on External metrics from the Prometheus adapter."""
    if scaling.scales_to_zero:
        # Refused by validate (role_checks): autoscaling/v2 takes minReplicas 0 only behind the
        # HPAScaleToZero feature gate, which EKS does not let a cluster turn on.
        raise ValueError("a HorizontalPodAutoscaler cannot scale to zero (minReplicas 0)")
    metrics = [
        _external_metric(
            QUEUED_REQUESTS,
            # AverageValue: the HPA divides the queue by the current workers.
            {"type": "AverageValue", "averageValue": f"{scaling.queued_requests_per_worker:g}"},
            dgd_name(model, color),
        )
    ]
    if scaling.ttft_p95_seconds is not None:
        metrics.append(
            _external_metric(
                TTFT_P95,
                {"type": "Value", "value": f"{scaling.ttft_p95_seconds:g}"},
                dgd_name(model, color),
            )
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(model, color, role),
        "spec": {
            "scaleTargetRef": scale_target_ref(model, color, role),
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
        },
    }


def adapter_rule(metric: ScalingMetric) -> AdapterRule:
    """An External metric rule: the metric's query, scoped to the asking HPA's namespace."""
    return AdapterRule(
        series_query=f'{metric.series}{{namespace!=""}}',
        resources=AdapterResources(overrides={"namespace": AdapterResource(resource="namespace")}),
        name=AdapterMetricName(matches=f"^{metric.series}$", as_=metric.name),
        metrics_query=metric.query(ADAPTER_LABEL_MATCHERS),
    )


def build_prometheus_adapter_values(prometheus: str) -> PrometheusAdapterValues:
    """Only our External metrics: no catch-all custom-metrics rules, no resource metrics (those
    stay with metrics-server). The chart joins url, port and path, so the address is split."""
    address = urlsplit(prometheus)
    return PrometheusAdapterValues(
        prometheus=AdapterPrometheus(
            url=f"{address.scheme}://{address.hostname}",
            port=url_port(prometheus),
            path=address.path.rstrip("/") or None,
        ),
        rules=AdapterRules(default=False, external=[adapter_rule(m) for m in SCALING_METRICS]),
    )


def scaled_roles(model: Model) -> list[tuple[Color, str, AutoscalingSpec]]:
    """Roles that autoscale, in the slots that take traffic and leave the count to the adapter
    (an idle slot, or one that pins the role's replicas, stays as configured)."""
    shares = model.traffic_weights()
    return [
        (color, role, scaling)
        for color in sorted(model.slots)
        if shares.get(color, 0) > 0
        for role in model.topology.roles
        if (scaling := model.autoscaled(role, color)) is not None
    ]


@dataclass(frozen=True)
class AutoscalingArgs:
    model: Model
    autoscaler: Autoscaler
    prometheus: str  # read by KEDA; the Prometheus adapter has its own address
    depends_on: list[pulumi.Resource]


class Autoscaling(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        for color, role, scaling in scaled_roles(args.model):
            if args.autoscaler == "keda":
                manifest = build_scaled_object(args.model, color, role, scaling, args.prometheus)
                custom_resource(f"{name}-{color}-{role}", manifest, after)
            else:
                manifest = build_horizontal_pod_autoscaler(args.model, color, role, scaling)
                k8s.autoscaling.v2.HorizontalPodAutoscaler(
                    f"{name}-{color}-{role}",
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    opts=after,
                )
        self.register_outputs({"scaled": [f"{c}/{r}" for c, r, _ in scaled_roles(args.model)]})
