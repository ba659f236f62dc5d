"""Observability: Prometheus PodMonitors for Dynamo frontends and workers in each model namespace."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.dgd import FRONTEND_PORT, MODEL_LABEL, OPERATOR_COMPONENT_TYPE_LABEL
from components.k8s_objects import custom_resource

COMPONENT_TYPE = "dynamo-trtllm:observability:Observability"
WORKER_SYSTEM_PORT = 9090


def build_pod_monitor(namespace: str, model: str, component_type: str, port: int) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": f"{model}-{component_type}", "namespace": namespace},
        "spec": {
            "selector": {
                "matchLabels": {MODEL_LABEL: model, OPERATOR_COMPONENT_TYPE_LABEL: component_type}
            },
            "podMetricsEndpoints": [{"portNumber": port, "path": "/metrics", "interval": "15s"}],
        },
    }


@dataclass(frozen=True)
class ObservabilityArgs:
    models: dict[str, str]  # model name -> namespace
    depends_on: list[pulumi.Resource]


class Observability(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        for model, namespace in sorted(args.models.items()):
            for component_type, port in (
                ("frontend", FRONTEND_PORT),
                ("worker", WORKER_SYSTEM_PORT),
            ):
                manifest = build_pod_monitor(namespace, model, component_type, port)
                custom_resource(f"{model}-{component_type}-monitor", manifest, after)
        self.register_outputs({"monitoredModels": sorted(args.models)})
