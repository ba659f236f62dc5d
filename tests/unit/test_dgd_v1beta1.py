"""The v1beta1 DGD emitter: valid against Dynamo 1.2.0's schema, and the same pods as v1alpha1."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from components.dgd import (
    GRAPH_BUILDERS,
    GraphInputs,
    WorkerParallelism,
    WorkerPlacement,
    build_dgd,
    build_graph_manifest,
)
from components.dgd_v1beta1 import build_dgd_v1beta1
from infra.offline.crd_bundle import ShippedSchemas
from infra.offline.validate import strict_schema
from infra.stack.dynamo_versions import DGD_V1ALPHA1, DGD_V1BETA1, PROFILES
from infra.stack.model_config import Color, Model
from tests.dgd_layouts import OPERATOR_COMPONENT_TYPE_LABEL, ServiceView, services

IMAGE = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0"
MULTINODE = {"gpusPerWorker": 8, "nodes": 2}
EFA = WorkerPlacement(node_selector={"pool": "h100"}, efa_interfaces=32, hugepages_mib=5120)


def model(**fields: Any) -> Model:
    base = {"name": "m", "source": {"huggingFace": "Qwen/Qwen3-0.6B"}, "image": IMAGE}
    return Model.model_validate(base | fields)


def inputs(**fields: Any) -> GraphInputs:
    return GraphInputs(
        namespace="m", engine_config_map="m-blue-engine-config", engine_config_hash="abc", **fields
    )


# Each graph shape the emitter must get right: (model, inputs).
TOPOLOGIES: dict[str, tuple[Model, GraphInputs]] = {
    "agg": (model(), inputs()),
    "disagg-router": (model(topology="disagg-router"), inputs(image_pull_secret="pull")),
    "disagg-multinode-efa": (
        model(topology="disagg-multinode", prefill=MULTINODE, decode=MULTINODE),
        inputs(
            placements={"prefill": EFA, "decode": EFA},
            parallelism={"prefill": WorkerParallelism(tensor=16, gpus_per_node=8)},
        ),
    ),
    "autoscaled": (
        model(agg={"autoscaling": {"maxReplicas": 4}, "cpu": "8", "memory": "64Gi"}),
        inputs(ready_timeout_seconds=900),
    ),
    "cache-pvc": (
        model(source={"s3": {"uri": "s3://models-bucket/qwen", "sizeGib": 2}}),
        inputs(model_pvc="weights-blue", cache_node_label="fluid.io/s-alluxio-m-weights-blue"),
    ),
    "hf-token": (model(topology="disagg"), inputs(hf_token_secret="hf-token-secret")),
    "mocker": (model(engine="mocker", agg={"sharedMemory": "1Gi"}), inputs()),
    # A load past the operator's 2 h startup probe: the workers' own probe must pass the schema.
    "long-load": (
        model(topology="disagg-multinode", prefill=MULTINODE, decode=MULTINODE),
        inputs(ready_timeout_seconds=164 * 60),
    ),
    # EFA with a memory request of the role's own: that is the request huge pages need.
    "efa-with-memory": (
        model(topology="disagg", prefill={"memory": "64Gi"}, decode={"memory": "64Gi"}),
        inputs(placements={"prefill": EFA, "decode": EFA}),
    ),
}
EFA_TOPOLOGIES = {"disagg-multinode-efa", "efa-with-memory"}


@functools.cache
def validator() -> jsonschema.Draft202012Validator:
    schemas = ShippedSchemas.for_pins({"dynamo_platform": "1.2.0"})
    schema = schemas.get(DGD_V1BETA1, "DynamoGraphDeployment")
    assert schema is not None, "the 1.2.0 bundle ships the v1beta1 DGD schema"
    return jsonschema.Draft202012Validator(strict_schema(schema))


def components(dgd: dict) -> dict[str, dict]:
    return {c["name"]: c for c in dgd["spec"]["components"]}


def main_container(component: dict) -> dict:
    [main] = component["podTemplate"]["spec"]["containers"]
    assert main["name"] == "main"
    return dict(main)


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_every_topology_is_a_valid_v1beta1_graph(topology: str) -> None:
    m, graph_inputs = TOPOLOGIES[topology]
    dgd = build_dgd_v1beta1(m, "blue", graph_inputs)
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(dgd)
    ]
    assert errors == []
    assert dgd["apiVersion"] == DGD_V1BETA1


def test_components_keep_the_v1alpha1_service_names_and_types() -> None:
    m, graph_inputs = TOPOLOGIES["disagg-router"]
    beta = build_dgd_v1beta1(m, "blue", graph_inputs)
    alpha = build_dgd(m, "blue", graph_inputs)
    assert list(components(beta)) == list(alpha["spec"]["services"])
    assert {name: c["type"] for name, c in components(beta).items()} == {
        "Frontend": "frontend",
        "prefill": "prefill",
        "decode": "decode",
    }
    agg = components(build_dgd_v1beta1(model(), "blue", inputs()))
    assert agg["TRTLLMWorker"]["type"] == "worker"


def test_multinode_efa_workers_ask_for_native_resources() -> None:
    m, graph_inputs = TOPOLOGIES["disagg-multinode-efa"]
    dgd = build_dgd_v1beta1(m, "blue", graph_inputs)
    decode = components(dgd)["decode"]
    assert decode["multinode"] == {"nodeCount": 2}
    resources = main_container(decode)["resources"]
    assert resources["limits"] == {
        "nvidia.com/gpu": "8",
        "vpc.amazonaws.com/efa": "32",
        "hugepages-2Mi": "5120Mi",
    }
    # Huge pages need a cpu or memory request, and this role sets neither: one CPU is asked.
    assert resources["requests"] == resources["limits"] | {"cpu": "1"}
    assert "FI_PROVIDER" in {e["name"] for e in main_container(decode)["env"]}
    assert decode["podTemplate"]["spec"]["nodeSelector"] == {"pool": "h100"}
    assert {"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "1"} in dgd["spec"]["env"]


def test_an_efa_worker_with_its_own_memory_request_asks_for_no_extra_cpu() -> None:
    m, graph_inputs = TOPOLOGIES["efa-with-memory"]
    decode = components(build_dgd_v1beta1(m, "blue", graph_inputs))["decode"]
    resources = main_container(decode)["resources"]
    assert resources["requests"]["hugepages-2Mi"] == "5120Mi"
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "64Gi"
    assert "cpu" not in resources["requests"]


def test_an_autoscaled_role_leaves_replicas_to_its_scaling_adapter() -> None:
    m = model(
        agg={"autoscaling": {"maxReplicas": 4}},
        slots={"blue": {}, "green": {"agg": {"replicas": 0}}},
    )
    blue = components(build_dgd_v1beta1(m, "blue", inputs()))["TRTLLMWorker"]
    assert blue["scalingAdapter"] == {}
    assert "replicas" not in blue
    # An idle slot keeps its role at 0 rather than handing it to an adapter.
    green = components(build_dgd_v1beta1(m, "green", inputs()))["TRTLLMWorker"]
    assert green["replicas"] == 0 and "scalingAdapter" not in green


def test_the_cache_pvc_is_a_native_volume_of_the_existing_claim() -> None:
    m, graph_inputs = TOPOLOGIES["cache-pvc"]
    dgd = build_dgd_v1beta1(m, "blue", graph_inputs)
    assert "pvcs" not in dgd["spec"]
    worker = components(dgd)["TRTLLMWorker"]
    assert {"name": "weights-blue", "persistentVolumeClaim": {"claimName": "weights-blue"}} in (
        worker["podTemplate"]["spec"]["volumes"]
    )
    assert {"name": "weights-blue", "mountPath": "/models"} in main_container(worker)[
        "volumeMounts"
    ]
    args = main_container(worker)["args"]
    assert args[args.index("--model-path") + 1] == "/models"


def test_the_hf_token_reaches_workers_through_env_from() -> None:
    m, graph_inputs = TOPOLOGIES["hf-token"]
    graph = components(build_dgd_v1beta1(m, "blue", graph_inputs))
    for name in ("prefill", "decode"):
        assert main_container(graph[name])["envFrom"] == [
            {"secretRef": {"name": "hf-token-secret"}}
        ]
    # the frontend fetches the tokenizer and config: it reads the token too
    assert main_container(graph["Frontend"])["envFrom"] == [
        {"secretRef": {"name": "hf-token-secret"}}
    ]


def test_the_dispatcher_follows_the_profile_api_version() -> None:
    m, graph_inputs = TOPOLOGIES["agg"]
    assert graph_inputs.dgd_api_version == DGD_V1ALPHA1
    assert build_graph_manifest(m, "blue", graph_inputs) == build_dgd(m, "blue", graph_inputs)
    beta_inputs = replace(graph_inputs, dgd_api_version=DGD_V1BETA1)
    assert build_graph_manifest(m, "blue", beta_inputs) == build_dgd_v1beta1(m, "blue", beta_inputs)
    assert {p.dgd_api_version for p in PROFILES.values()} <= set(GRAPH_BUILDERS)
    with pytest.raises(ValueError, match="nvidia.com/v2"):
        build_graph_manifest(m, "blue", GraphInputs(namespace="m", dgd_api_version="nvidia.com/v2"))


# --- the same pods from both layouts ------------------------------------------------------------


def _layout_free(view: ServiceView) -> ServiceView:
    """All a service's pods are, but the component type, which each layout spells its own way."""
    labels = {k: v for k, v in view.pod_labels.items() if k != OPERATOR_COMPONENT_TYPE_LABEL}
    return replace(view, component_type="", pod_labels=labels)


def _asks_huge_pages(view: ServiceView) -> bool:
    return any(
        name.startswith("hugepages-")
        for amounts in view.container.resources.values()
        for name in amounts
    )


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("color", ["blue", "green"])
def test_both_api_versions_describe_the_same_pods(topology: str, color: Color) -> None:
    m, graph_inputs = TOPOLOGIES[topology]
    alpha = services(build_dgd(m, color, graph_inputs))
    beta = services(build_dgd_v1beta1(m, color, graph_inputs))
    assert list(beta) == list(alpha)
    assert {n: _layout_free(v) for n, v in beta.items()} == {
        n: _layout_free(v) for n, v in alpha.items()
    }
    # The component-type pod label: v1alpha1 says `worker` for either half of a disaggregated
    # graph (subComponentType names it); v1beta1's type is the half itself.
    for name, view in alpha.items():
        assert view.component_type in ("frontend", "worker")
        assert beta[name].component_type == (view.sub_type or view.component_type)
        assert beta[name].pod_labels[OPERATOR_COMPONENT_TYPE_LABEL] == beta[name].component_type
    # Kubernetes refuses a container with huge pages but neither a cpu nor a memory request
    # ("HugePages require cpu or memory"): every such worker asks for one, in both layouts.
    huge = [v for v in [*alpha.values(), *beta.values()] if _asks_huge_pages(v)]
    assert bool(huge) == (topology in EFA_TOPOLOGIES)
    for view in huge:
        assert {"cpu", "memory"} & set(view.container.resources.get("requests", {})), view.name
    alpha_dgd = build_dgd(m, color, graph_inputs)
    beta_dgd = build_dgd_v1beta1(m, color, graph_inputs)
    assert beta_dgd["metadata"] == alpha_dgd["metadata"]
    for field in ("backendFramework", "annotations", "labels"):
        assert beta_dgd["spec"][field] == alpha_dgd["spec"][field]
