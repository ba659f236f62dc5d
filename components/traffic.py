"""Traffic: per model a stable Service that selects the active color's frontend pods, and with a
Gateway an HTTPRoute that splits requests between the slots' frontends by weight."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.dgd import (
    COLOR_LABEL,
    FRONTEND_PORT,
    MODEL_LABEL,
    OPERATOR_COMPONENT_TYPE_LABEL,
    frontend_service_name,
)
from components.k8s_objects import custom_resource
from infra.stack.config import GatewayRef
from infra.stack.model_config import Color, Model

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


def model_hostname(model: Model, gateway: GatewayRef) -> str:
    """The one hostname a model's route answers (model names are unique in a stack)."""
    return f"{model.name}.{gateway.domain}"


def build_http_route(model: Model, gateway: GatewayRef) -> dict:
    """Both slots' frontends behind one route; promotion changes only the weights."""
    backends = [
        {
            "name": frontend_service_name(model, color),
            "port": FRONTEND_PORT,
            "weight": share,
        }
        for color, share in model.traffic_weights().items()
    ]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": model.name,
            "namespace": model.k8s_namespace,
            "labels": {MODEL_LABEL: model.name, "app.kubernetes.io/managed-by": "pulumi"},
        },
        "spec": {
            "parentRefs": [{"name": gateway.name, "namespace": gateway.namespace}],
            "hostnames": [model_hostname(model, gateway)],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": backends,
                }
            ],
        },
    }


@dataclass(frozen=True)
class TrafficArgs:
    model: Model
    gateway: GatewayRef | None
    depends_on: list[pulumi.Resource]


class Traffic(pulumi.ComponentResource):
    endpoint: str

    def __init__(self, name: str, args: TrafficArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        model = args.model
        child = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        manifest = build_stable_service(model.name, model.k8s_namespace, model.active)
        k8s.core.v1.Service(name, metadata=manifest["metadata"], spec=manifest["spec"], opts=child)
        if args.gateway is not None:
            custom_resource(f"{name}-route", build_http_route(model, args.gateway), child)
        self.endpoint = (
            f"http://{model.name}.{model.k8s_namespace}.svc.cluster.local:{FRONTEND_PORT}"
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "activeColor": model.active,
                "weights": model.traffic_weights(),
            }
        )
