"""Autoscaling: KEDA ScaledObjects that scale a role's workers through the DGD's scaling adapter.

Driven by the frontend's own metrics in Prometheus: requests waiting in its queue, and
optionally TTFT p95. Each model has its own namespace, so `namespace` selects its frontends.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.dgd import WORKER_SERVICES, dgd_name
from components.k8s_objects import custom_resource
from infra.config import AutoscalingSpec, Color, Model

COMPONENT_TYPE = "dynamo-trtllm:scaling:Autoscaling"
SCALING_ADAPTER_KIND = "DynamoGraphDeploymentScalingAdapter"


def adapter_name(model: Model, color: Color, role: str) -> str:
    """The operator names each adapter after the DGD service it scales: <dgd>-<lower(service)>."""
    return f"{dgd_name(model, color)}-{WORKER_SERVICES[role].lower()}"


def queue_query(namespace: str) -> str:
    return f'sum(dynamo_frontend_queued_requests{{namespace="{namespace}"}})'


def ttft_p95_query(namespace: str) -> str:
    return (
        "histogram_quantile(0.95, sum by (le) (rate("
        f'dynamo_frontend_time_to_first_token_seconds_bucket{{namespace="{namespace}"}}[2m])))'
    )


def build_scaled_object(
    model: Model, color: Color, role: str, scaling: AutoscalingSpec, prometheus: str
) -> dict:
    triggers = [
        {
            "type": "prometheus",
            "name": "queued-requests",
            "metadata": {
                "serverAddress": prometheus,
                "query": queue_query(model.k8s_namespace),
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
                    "query": ttft_p95_query(model.k8s_namespace),
                    "threshold": f"{scaling.ttft_p95_seconds:g}",
                },
            }
        )
    name = adapter_name(model, color, role)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {
            "name": name,
            "namespace": model.k8s_namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi"},
        },
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "nvidia.com/v1alpha1",
                "kind": SCALING_ADAPTER_KIND,
                "name": name,
            },
            "minReplicaCount": scaling.min_replicas,
            "maxReplicaCount": scaling.max_replicas,
            "triggers": triggers,
        },
    }


def scaled_roles(model: Model) -> list[tuple[Color, str, AutoscalingSpec]]:
    """Roles that autoscale, in the slots that take traffic (an idle slot stays as configured)."""
    shares = model.traffic_weights()
    return [
        (color, role, scaling)
        for color in sorted(model.slots)
        if shares.get(color, 0) > 0
        for role in model.topology.roles
        if (scaling := model.role(role).autoscaling) is not None
    ]


@dataclass(frozen=True)
class AutoscalingArgs:
    model: Model
    prometheus: str
    depends_on: list[pulumi.Resource]


class Autoscaling(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: AutoscalingArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        after = pulumi.ResourceOptions(parent=self, depends_on=args.depends_on)
        for color, role, scaling in scaled_roles(args.model):
            manifest = build_scaled_object(args.model, color, role, scaling, args.prometheus)
            custom_resource(f"{name}-{color}-{role}", manifest, after)
        self.register_outputs({"scaled": [f"{c}/{r}" for c, r, _ in scaled_roles(args.model)]})
