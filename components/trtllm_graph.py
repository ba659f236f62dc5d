"""TrtllmGraph: one model in one color — its engine-config ConfigMap and its DynamoGraphDeployment."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_kubernetes as k8s

from components.dgd import (
    GraphInputs,
    build_graph_manifest,
    dgd_name,
    engine_config_hash,
    engine_config_map_name,
    frontend_service_name,
    graph_type_aliases,
)
from components.k8s_objects import custom_resource
from infra.stack.model_config import Color, Model

COMPONENT_TYPE = "dynamo-trtllm:workloads:TrtllmGraph"


def build_engine_config_map(name: str, namespace: str, files: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "pulumi"},
        },
        "data": dict(sorted(files.items())),
    }


@dataclass(frozen=True)
class TrtllmGraphArgs:
    model: Model
    color: Color
    engine_files: dict[str, str]  # "<role>.yaml" -> file content
    inputs: GraphInputs  # engine_config_map / engine_config_hash are filled in here
    depends_on: list[pulumi.Resource]


class TrtllmGraph(pulumi.ComponentResource):
    dgd: k8s.apiextensions.CustomResource
    frontend_service: str

    def __init__(
        self, name: str, args: TrtllmGraphArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        graph = dgd_name(args.model, args.color)
        config_map = build_engine_config_map(
            engine_config_map_name(args.model, args.color), args.inputs.namespace, args.engine_files
        )
        depends_on = list(args.depends_on)
        if args.engine_files:  # the mocker engine has no engine config
            depends_on.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-engine-config",
                    metadata=config_map["metadata"],
                    data=config_map["data"],
                    opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
                )
            )
        manifest = build_graph_manifest(
            args.model,
            args.color,
            replace(
                args.inputs,
                engine_config_map=config_map["metadata"]["name"],
                engine_config_hash=engine_config_hash(args.engine_files),
            ),
        )
        self.dgd = custom_resource(
            name,
            manifest,
            pulumi.ResourceOptions(
                parent=self,
                depends_on=depends_on,
                aliases=graph_type_aliases(manifest["apiVersion"]),
            ),
        )
        self.frontend_service = frontend_service_name(args.model, args.color)
        self.register_outputs({"dgd": graph, "frontendService": self.frontend_service})
