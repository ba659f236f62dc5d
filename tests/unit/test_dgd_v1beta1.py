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
from infra.stack.config import Color, Model
from infra.stack.dynamo_versions import DGD_V1ALPHA1, DGD_V1BETA1, PROFILES

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
}


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
    assert resources["requests"] == resources["limits"]
    assert "FI_PROVIDER" in {e["name"] for e in main_container(decode)["env"]}
    assert decode["podTemplate"]["spec"]["nodeSelector"] == {"pool": "h100"}
    assert {"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "1"} in dgd["spec"]["env"]


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
    assert "envFrom" not in main_container(graph["Frontend"])


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


def _env(graph_envs: list[dict], envs: list[dict]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in [*graph_envs, *envs]}


def _native(dynamo: dict) -> dict[str, str]:
    """v1alpha1's resource form in Kubernetes resource names."""
    native = {
        ("nvidia.com/gpu" if k == "gpu" else k): v for k, v in dynamo.items() if k != "custom"
    }
    return native | dynamo.get("custom", {})


def pods_v1alpha1(dgd: dict) -> dict[str, dict]:
    spec = dgd["spec"]
    claims = {p["name"] for p in spec.get("pvcs", [])}
    pods = {}
    for name, service in spec["services"].items():
        pod = service["extraPodSpec"]
        main = pod["mainContainer"]
        volumes = list(pod.get("volumes", []))
        mounts = {m["name"]: m["mountPath"] for m in main.get("volumeMounts", [])}
        for mount in service.get("volumeMounts", []):
            assert mount["name"] in claims  # the operator mounts spec.pvcs entries by name
            volumes.append(
                {"name": mount["name"], "persistentVolumeClaim": {"claimName": mount["name"]}}
            )
            mounts[mount["name"]] = mount["mountPoint"]
        shared_memory = service.get("sharedMemory", {})
        pods[name] = {
            "type": service.get("subComponentType") or service["componentType"],
            "image": main["image"],
            "workingDir": main.get("workingDir"),
            "argv": [*main["command"], *main["args"]],
            "resources": {
                kind: _native(value) for kind, value in service.get("resources", {}).items()
            },
            "env": _env(spec.get("envs", []), service.get("envs", [])),
            "envSecrets": [service["envFromSecret"]] if "envFromSecret" in service else [],
            "volumes": sorted(volumes, key=lambda v: v["name"]),
            "mounts": mounts,
            "labels": spec["labels"] | service.get("labels", {}),
            "serviceAccountName": pod["serviceAccountName"],
            "imagePullSecrets": pod.get("imagePullSecrets", []),
            "nodeSelector": pod.get("nodeSelector", {}),
            "tolerations": pod.get("tolerations", []),
            "affinity": pod.get("affinity"),
            "sharedMemory": "0" if shared_memory.get("disabled") else shared_memory.get("size"),
            "replicas": service.get("replicas"),
            "scalingAdapter": service.get("scalingAdapter", {}).get("enabled", False),
            "nodes": service.get("multinode", {}).get("nodeCount", 1),
        }
    return pods


def pods_v1beta1(dgd: dict) -> dict[str, dict]:
    spec = dgd["spec"]
    pods = {}
    for component in spec["components"]:
        template = component["podTemplate"]
        pod = template["spec"]
        main = main_container(component)
        pods[component["name"]] = {
            "type": component["type"],
            "image": main["image"],
            "workingDir": main.get("workingDir"),
            "argv": [*main["command"], *main["args"]],
            "resources": main.get("resources", {}),
            "env": _env(spec.get("env", []), main.get("env", [])),
            "envSecrets": [e["secretRef"]["name"] for e in main.get("envFrom", [])],
            "volumes": sorted(pod.get("volumes", []), key=lambda v: v["name"]),
            "mounts": {m["name"]: m["mountPath"] for m in main.get("volumeMounts", [])},
            "labels": spec["labels"] | template.get("metadata", {}).get("labels", {}),
            "serviceAccountName": pod["serviceAccountName"],
            "imagePullSecrets": pod.get("imagePullSecrets", []),
            "nodeSelector": pod.get("nodeSelector", {}),
            "tolerations": pod.get("tolerations", []),
            "affinity": pod.get("affinity"),
            "sharedMemory": component.get("sharedMemorySize"),
            "replicas": component.get("replicas"),
            "scalingAdapter": "scalingAdapter" in component,
            "nodes": component.get("multinode", {}).get("nodeCount", 1),
        }
    return pods


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
@pytest.mark.parametrize("color", ["blue", "green"])
def test_both_api_versions_describe_the_same_pods(topology: str, color: Color) -> None:
    m, graph_inputs = TOPOLOGIES[topology]
    alpha = build_dgd(m, color, graph_inputs)
    beta = build_dgd_v1beta1(m, color, graph_inputs)
    assert pods_v1beta1(beta) == pods_v1alpha1(alpha)
    assert beta["metadata"] == alpha["metadata"]
    for field in ("backendFramework", "annotations", "labels"):
        assert beta["spec"][field] == alpha["spec"][field]
