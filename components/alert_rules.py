"""The PrometheusRule of our alerts: per model its SLOs (latency, errors, workers down), the GPUs
(XID errors, memory full) and NATS (JetStream storage, slow consumers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.dgd import GRAPH_LABEL, WORKER_SERVICES
from components.monitoring_content import (
    DEFAULT_PROMETHEUS_RELEASE,
    PART_OF,
    ModelSlo,
    dcgm_labels,
    latency_quantile,
    promql_number,
)

PROMETHEUS_RULE_NAME = "dynamo-trtllm-alerts"
# XIDs after which the GPU needs a reset or the node a drain: 48 double-bit ECC error,
# 79 GPU fell off the bus, 95 uncontained ECC error.
FATAL_XIDS = (48, 79, 95)
GPU_MEMORY_FULL_RATIO = 0.95
JETSTREAM_STORAGE_HIGH_RATIO = 0.85
# Worker pods: the operator names them after the lower-cased DGD service key.
WORKER_POD_REGEX = ".*-(" + "|".join(sorted(s.lower() for s in WORKER_SERVICES.values())) + ")-.*"
# The NATS server pods of the platform chart's StatefulSet (not nats-box).
NATS_POD_REGEX = ".*nats-[0-9]+"


def pod_monitor_job(namespace: str, model: str, component_type: str) -> str:
    """The `job` label of a PodMonitor's targets: "<namespace>/<PodMonitor name>".

    The PodMonitor is named "<model>-<component type>" by components/observability.py.
    """
    return f"{namespace}/{model}-{component_type}"


def _alert(
    name: str,
    expr: str,
    duration: str,
    severity: str,
    summary: str,
    description: str,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {"summary": summary, "description": description},
    }


def _model_rules(slo: ModelSlo) -> list[dict[str, Any]]:
    ns = f'namespace="{slo.namespace}"'
    labels = {"model": slo.model, "namespace": slo.namespace}
    # Per slot (the PodMonitors' graph label): green's queue never hides behind blue's.
    queued = f"sum by (namespace, {GRAPH_LABEL}) (dynamo_frontend_queued_requests{{{ns}}})"
    worker_up = f'up{{{ns}, job="{pod_monitor_job(slo.namespace, slo.model, "worker")}"}}'
    ttft = promql_number(slo.ttft_p95_seconds)
    itl = promql_number(slo.itl_p95_seconds)
    return [
        _alert(
            "DynamoTimeToFirstTokenAboveSlo",
            f"{latency_quantile(0.95, 'dynamo_frontend_time_to_first_token_seconds', ns)} > {ttft}",
            "10m",
            "warning",
            f"{slo.model}: p95 time to first token above its {ttft}s objective",
            f"Over the last 5 minutes 95% of {slo.model}'s requests got their first token within "
            '{{ $value | printf "%.3f" }}s, more than the ' + ttft + "s objective, for 10 "
            "minutes. Look at the queue, the KV-cache usage and the prefill workers.",
            labels,
        ),
        _alert(
            "DynamoInterTokenLatencyAboveSlo",
            f"{latency_quantile(0.95, 'dynamo_frontend_inter_token_latency_seconds', ns)} > {itl}",
            "10m",
            "warning",
            f"{slo.model}: p95 inter-token latency above its {itl}s objective",
            f"The p95 gap between streamed tokens of {slo.model} is "
            '{{ $value | printf "%.4f" }}s, above the ' + itl + "s objective, for 10 minutes. "
            "Decode workers are likely overloaded (batch too large or KV cache full).",
            labels,
        ),
        _alert(
            "DynamoRequestQueueGrowing",
            f"({queued} > 0) and (deriv({queued}[10m:1m]) > 0)",
            "10m",
            "warning",
            f"{slo.model}: requests waiting for a first token keep piling up",
            f"The number of {slo.model} requests waiting for their first token "
            "({{ $value }} now) has been rising for more than 10 minutes: "
            "arrivals outpace what the workers take on. Add workers or shed load.",
            labels,
        ),
        _alert(
            "DynamoWorkerDown",
            f"{worker_up} == 0",
            "5m",
            "warning",
            f"{slo.model}: a worker does not answer on its metrics port",
            "Prometheus has not been able to scrape worker pod {{ $labels.pod }} on its "
            "system port for 5 minutes: the worker process crashed, hung or is restarting.",
            labels,
        ),
        _no_worker_up(slo, ns, worker_up, labels),
        _alert(
            "DynamoWorkerPodNotRunning",
            f"sum by (namespace, pod) (kube_pod_status_phase{{{ns}, "
            f'pod=~"{WORKER_POD_REGEX}", phase=~"Pending|Failed|Unknown"}}) > 0',
            "30m",
            "warning",
            f"{slo.model}: a worker pod has not been running for 30 minutes",
            "Worker pod {{ $labels.pod }} has been Pending, Failed or Unknown for 30 minutes: "
            "no GPU node could be provisioned, the image cannot be pulled, or a volume "
            "(model cache) cannot be mounted. Check the pod's events.",
            labels,
        ),
    ]


def _no_worker_up(slo: ModelSlo, ns: str, worker_up: str, labels: dict[str, str]) -> dict[str, Any]:
    none_up = f"(sum({worker_up}) or vector(0)) == 0"
    if not slo.scales_to_zero:
        return _alert(
            "DynamoNoWorkerUp",
            none_up,
            "10m",
            "critical",
            f"{slo.model}: no worker is up",
            f"None of {slo.model}'s worker pods has answered a scrape for 10 minutes (or none "
            "exists): the model cannot serve requests.",
            labels,
        )
    # Scaled to zero, no worker is the idle state: only requests that keep arriving with none
    # up are an outage, and a wake-up is a whole cold start (node, image, weights, engine), so
    # the alert gives it the half hour a worker pod may stay Pending before it is reported.
    arriving = f"sum(rate(dynamo_frontend_requests_total{{{ns}}}[5m])) > 0"
    return _alert(
        "DynamoNoWorkerUp",
        f"({none_up}) and on() ({arriving})",
        "30m",
        "critical",
        f"{slo.model}: requests arrive but no worker is up",
        f"{slo.model} scales to zero, and requests have kept arriving for 30 minutes while "
        "none of its worker pods answers a scrape: the wake-up failed (no GPU node, image "
        "pull, weights or engine start). Check the worker pods' events.",
        labels,
    )


def _gpu_rules(dcgm_honor_labels: bool, memory_full_ratio: float) -> list[dict[str, Any]]:
    gpu_ns_label, gpu_pod_label = dcgm_labels(dcgm_honor_labels)
    where = (
        "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} (pod {{ $labels." + gpu_ns_label + " }}/"
        "{{ $labels." + gpu_pod_label + " }})"
    )
    xid = "DCGM_FI_DEV_XID_ERRORS"
    fatal = " or ".join(f"({xid} == {code})" for code in FATAL_XIDS)
    ratio = promql_number(memory_full_ratio)
    return [
        _alert(
            "GpuFatalXidError",
            fatal,
            "1m",
            "critical",
            "A GPU reported an XID error that needs a reset",
            where + " last reported XID {{ $value }} (48 double-bit ECC, 79 fell off the "
            "bus, 95 uncontained ECC). Its workers are likely broken; drain the node and reset "
            "or replace the GPU. The exporter keeps reporting the code until then.",
        ),
        _alert(
            "GpuXidError",
            f"(({xid} > 0) and (changes({xid}[15m]) > 0)) unless ({fatal})",
            "1m",
            "warning",
            "A GPU reported a new XID error",
            where + " reported XID {{ $value }} in the last 15 minutes. Many XIDs come from "
            "the application (13, 31, 43); look up the code and the worker's logs.",
        ),
        _alert(
            "GpuMemoryNearlyFull",
            "DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE) > " + ratio,
            "15m",
            "warning",
            "GPU memory is nearly full",
            where + " has used {{ $value | humanizePercentage }} of its memory for 15 minutes. "
            "TensorRT-LLM reserves most free memory for its KV cache at start-up, so little is "
            "left for activations: lower free_gpu_memory_fraction if workers hit out-of-memory.",
        ),
    ]


def _nats_rules(nats_namespace: str) -> list[dict[str, Any]]:
    ns = f'namespace="{nats_namespace}"'
    used = f"nats_varz_jetstream_stats_storage{{{ns}}}"
    limit = f"nats_varz_jetstream_config_max_storage{{{ns}}}"
    return [
        _alert(
            "NatsServerPodNotRunning",
            f'sum by (namespace, pod) (kube_pod_status_phase{{namespace="{nats_namespace}", '
            f'pod=~"{NATS_POD_REGEX}", phase!="Running"}}) > 0',
            "10m",
            "critical",
            "A NATS server pod is not running",
            "NATS pod {{ $labels.namespace }}/{{ $labels.pod }} has not been Running for 10 "
            "minutes. Dynamo carries KV-cache events and router state over NATS: KV routing "
            "degrades and new workers may fail to start.",
        ),
        _alert(
            "NatsJetStreamStorageHigh",
            # Both series come from one exporter target, so they match label for label.
            f"{used} / ({limit} > 0) > {promql_number(JETSTREAM_STORAGE_HIGH_RATIO)}",
            "15m",
            "warning",
            "NATS JetStream storage high",
            "NATS server {{ $labels.pod }} has used {{ $value | humanizePercentage }} of its "
            "JetStream file storage for 15 minutes. When it is full, streams reject new messages "
            "and KV events stop reaching the router. Raise platform.nats.jetstreamStorage or "
            "find the stream that keeps growing.",
        ),
    ]


def build_prometheus_rule(
    namespace: str,
    slos: list[ModelSlo],
    nats_namespace: str,
    *,
    prometheus_release: str = DEFAULT_PROMETHEUS_RELEASE,
    dcgm_honor_labels: bool = False,
    gpu_memory_full_ratio: float = GPU_MEMORY_FULL_RATIO,
) -> dict:
    """One PrometheusRule: a group per model (SLOs, queue, workers), one for GPUs, one for NATS."""
    for field, values in (
        ("model", [s.model for s in slos]),
        ("namespace", [s.namespace for s in slos]),
    ):
        if len(set(values)) != len(values):
            raise ValueError(f"two SLOs share a {field}: {sorted(values)}")
    groups = [
        {"name": f"dynamo-trtllm.model.{slo.model}", "rules": _model_rules(slo)}
        for slo in sorted(slos, key=lambda s: s.model)
    ]
    groups.append(
        {"name": "dynamo-trtllm.gpu", "rules": _gpu_rules(dcgm_honor_labels, gpu_memory_full_ratio)}
    )
    groups.append({"name": "dynamo-trtllm.nats", "rules": _nats_rules(nats_namespace)})
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": PROMETHEUS_RULE_NAME,
            "namespace": namespace,
            "labels": {"release": prometheus_release, **PART_OF},
        },
        "spec": {"groups": groups},
    }
