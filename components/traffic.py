"""Traffic: per model a stable Service that selects the active color's frontend pods."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.dgd import COLOR_LABEL, FRONTEND_PORT, MODEL_LABEL, OPERATOR_COMPONENT_TYPE_LABEL
from infra.config import Color

COMPONENT_TYPE = "dynamo-trtllm:traffic:Traffic"


def build_stable_service(model: str, namespace: str, active: Color) -> dict:
    """Switching colors changes only this selector: a one-line diff in the preview."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": model,
            "namespace": namespace,
            "labels": {MODEL_LABEL: model, "app.kubernetes.io/managed-by": "pulumi"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {
                MODEL_LABEL: model,
                COLOR_LABEL: active,
                OPERATOR_COMPONENT_TYPE_LABEL: "frontend",
            },
            "ports": [
                {
                    "name": "http",
                    "port": FRONTEND_PORT,
                    "targetPort": FRONTEND_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


@dataclass(frozen=True)
class TrafficArgs:
    model: str
    namespace: str
    active: Color
    depends_on: list[pulumi.Resource]


class Traffic(pulumi.ComponentResource):
    endpoint: str

    def __init__(self, name: str, args: TrafficArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        manifest = build_stable_service(args.model, args.namespace, args.active)
        k8s.core.v1.Service(
            name,
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
        )
        self.endpoint = f"http://{args.model}.{args.namespace}.svc.cluster.local:{FRONTEND_PORT}"
        self.register_outputs({"endpoint": self.endpoint, "activeColor": args.active})
