"""Observability: PodMonitors for Dynamo frontends and workers in each model namespace and for the
platform's NATS and etcd, our Grafana dashboard, and alert rules with each model's latency
objectives. (DCGM is scraped through its chart's own ServiceMonitor, see components/platform.py.)"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.alert_rules import build_prometheus_rule
from components.dgd import (
    FRONTEND_PORT,
    GRAPH_LABEL,
    MODEL_LABEL,
    OPERATOR_COMPONENT_TYPE_LABEL,
    OPERATOR_GRAPH_LABEL,
    WORKER_COMPONENT_TYPES,
)
from components.k8s_objects import custom_resource
from components.monitoring_content import (
    DEFAULT_PROMETHEUS_RELEASE,
    ModelSlo,
    build_dashboard_config_map,
)
from components.platform import MetricsEndpoint

COMPONENT_TYPE = "dynamo-trtllm:observability:Observability"
WORKER_SYSTEM_PORT = 9090
# The label Grove puts on each pod: its PodClique's name.
GROVE_CLIQUE_LABEL = "grove.io/podclique"


def _pod_monitor(name: str, namespace: str, selector: dict, endpoint: dict) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {
            "name": name,
            "namespace": namespace,
            # kube-prometheus-stack's Prometheus selects monitors by its release label.
            "labels": {"release": DEFAULT_PROMETHEUS_RELEASE},
        },
        "spec": {
            "selector": selector,
            "podMetricsEndpoints": [endpoint | {"interval": "15s"}],
        },
    }


def build_pod_monitor(namespace: str, model: str, component_type: str, port: int) -> dict:
    """A model's frontends or workers, by port number; each series carries its slot's graph.

    The `graph` label (the operator's graph-name pod label, "<model>-<color>") lets autoscalers
    and alerts select one slot, so blue never scales on green's queue.
    """
    types = WORKER_COMPONENT_TYPES if component_type == "worker" else (component_type,)
    selector = {
        "matchLabels": {MODEL_LABEL: model},
        "matchExpressions": [
            {"key": OPERATOR_COMPONENT_TYPE_LABEL, "operator": "In", "values": list(types)}
        ],
    }
    return _pod_monitor(
        f"{model}-{component_type}",
        namespace,
        selector,
        {
            "portNumber": port,
            "path": "/metrics",
            "relabelings": [
                {
                    "sourceLabels": [_meta_label(OPERATOR_GRAPH_LABEL)],
                    "targetLabel": GRAPH_LABEL,
                    "action": "replace",
                },
                # A multinode worker serves metrics from its leader only: the other pods of
                # its group (Grove clique "<svc>-wkr", beside the leader's "<svc>-ldr") would
                # read as workers down forever.
                {
                    "sourceLabels": [_meta_label(GROVE_CLIQUE_LABEL)],
                    "regex": ".*-wkr",
                    "action": "drop",
                },
            ],
        },
    )


def _meta_label(pod_label: str) -> str:
    """Prometheus' service-discovery name of a pod label."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)


def build_platform_pod_monitor(endpoint: MetricsEndpoint) -> dict:
    """NATS or etcd pods of the platform chart, by the port name the chart gives them."""
    return _pod_monitor(
        endpoint.name,
        endpoint.namespace,
        {"matchLabels": endpoint.pod_labels},
        {"port": endpoint.port, "path": endpoint.path},
    )


@dataclass(frozen=True)
class ObservabilityArgs:
    models: dict[str, str]  # model name -> namespace
    slos: list[ModelSlo]
    monitoring_namespace: str
    platform_namespace: str  # where NATS runs
    platform_endpoints: list[MetricsEndpoint]
    # Each namespace's Namespace object, and what installs the monitoring CRDs (our
    # kube-prometheus-stack release; none when the cluster's Prometheus operator is used): an
    # object waits for its own namespace and those alone.
    namespaces: Mapping[str, pulumi.Resource]
    crds: Sequence[pulumi.Resource]


class Observability(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)

        def inside(namespace: str) -> pulumi.ResourceOptions:
            created = args.namespaces.get(namespace)
            after = [*([created] if created else []), *args.crds]
            return pulumi.ResourceOptions(parent=self, depends_on=after)

        for model, namespace in sorted(args.models.items()):
            for component_type, port in (
                ("frontend", FRONTEND_PORT),
                ("worker", WORKER_SYSTEM_PORT),
            ):
                manifest = build_pod_monitor(namespace, model, component_type, port)
                custom_resource(f"{model}-{component_type}-monitor", manifest, inside(namespace))
        for endpoint in args.platform_endpoints:
            manifest = build_platform_pod_monitor(endpoint)
            custom_resource(f"{endpoint.name}-monitor", manifest, inside(endpoint.namespace))
        after = inside(args.monitoring_namespace)
        dashboard = build_dashboard_config_map(
            args.monitoring_namespace, sorted(args.models), namespaces=args.models
        )
        k8s.core.v1.ConfigMap(
            "dynamo-trtllm-dashboard",
            metadata=dashboard["metadata"],
            data=dashboard["data"],
            opts=after,
        )
        rule = build_prometheus_rule(args.monitoring_namespace, args.slos, args.platform_namespace)
        custom_resource("dynamo-trtllm-alerts", rule, after)
        self.register_outputs({"monitoredModels": sorted(args.models)})
