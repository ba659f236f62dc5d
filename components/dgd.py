"""The DynamoGraphDeployment (nvidia.com/v1alpha1) builder: the one place that knows the CRD layout.

Pure functions from typed specs to plain dicts. A v1beta1 builder can sit beside this one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from infra.deployment.resolved import WorkerParallelism, WorkerPlacement
from infra.stack.config import Color, Model
from infra.stack.derived_names import (  # noqa: F401  (the names components import from here)
    FRONTEND_SERVICE,
    WORKER_SERVICES,
    dgd_child_names,
    dgd_name,
    frontend_service_name,
    service_keys,
)

DGD_API_VERSION = "nvidia.com/v1alpha1"
DGD_KIND = "DynamoGraphDeployment"
FRONTEND_PORT = 8000
ENGINE_CONFIG_DIR = "/etc/dynamo-trtllm/engine"
MODEL_MOUNT = "/models"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
HUGEPAGES_RESOURCE = "hugepages-2Mi"
# libfabric over EFA for NIXL's KV transfer and NCCL (aws-ofi-nccl's and AWS's EKS EFA
# examples): the EFA provider, GPUDirect RDMA, fork safety for the Python worker.
EFA_ENVS = [
    {"name": "FI_PROVIDER", "value": "efa"},
    {"name": "FI_EFA_USE_DEVICE_RDMA", "value": "1"},
    {"name": "FI_EFA_FORK_SAFE", "value": "1"},
]
MODEL_LABEL = "dynamo-trtllm.io/model"
COLOR_LABEL = "dynamo-trtllm.io/color"
ENGINE_HASH_ANNOTATION = "dynamo-trtllm.io/engine-config-hash"
# Labels the operator puts on every pod it creates.
OPERATOR_GRAPH_LABEL = "nvidia.com/dynamo-graph-deployment-name"
OPERATOR_COMPONENT_TYPE_LABEL = "nvidia.com/dynamo-component-type"
# The series label our PodMonitors copy the operator's graph label into: one slot's series.
GRAPH_LABEL = "graph"


@dataclass(frozen=True)
class GraphInputs:
    """What the DGD needs from other components (names only, no Pulumi types)."""

    namespace: str
    engine_config_map: str = ""
    engine_config_hash: str = ""
    placements: dict[str, WorkerPlacement] = field(default_factory=dict)
    parallelism: dict[str, WorkerParallelism] = field(default_factory=dict)
    hf_token_secret: str | None = None
    image_pull_secret: str | None = None
    model_pvc: str | None = None
    cache_node_label: str | None = None
    reasoning_parser: str | None = None
    tool_call_parser: str | None = None
    ready_timeout_seconds: int = 0  # how long `pulumi up` waits for Ready (0: not at all)


# The Pulumi Kubernetes provider's await annotations (pulumi-kubernetes >= 4.18).
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"


def workload_service_account(role: str) -> str:
    """The ServiceAccount of a graph role ("frontend" or a worker role), shared by both colors."""
    return "dynamo-frontend" if role == "frontend" else f"dynamo-{role}-worker"


def adapter_owns_replicas(model: Model, role: str, color: Color) -> bool:
    """An autoscaled role in a slot that runs it: its scaling adapter owns the replica count.

    A slot at replicas 0 keeps the adapter off, so the role stays at 0 while the slot idles.
    """
    return model.role(role).autoscaling is not None and model.replicas(role, color) > 0


def engine_config_hash(files: dict[str, str]) -> str:
    """Content hash of a graph's engine configs; in the pod template so a change rolls workers."""
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key].encode() + b"\0")
    return digest.hexdigest()[:16]


def model_path(model: Model, color: Color, inputs: GraphInputs) -> str:
    source = model.source_for(color)
    if inputs.model_pvc is not None:
        return MODEL_MOUNT
    assert source.hugging_face is not None, "S3 weights are only reachable through the cache PVC"
    return source.hugging_face


TRTLLM_WORKER = ["python3", "-m", "dynamo.trtllm"]
MOCKER_WORKER = ["python3", "-m", "dynamo.mocker"]
FRONTEND = ["python3", "-m", "dynamo.frontend"]
# mpirun inside multinode TRT-LLM workers runs as root in the runtime image.
MULTINODE_ENVS = [
    {"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "1"},
    {"name": "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "value": "1"},
]


def worker_args(model: Model, role: str, color: Color, inputs: GraphInputs) -> list[str]:
    """The worker's arguments, from typed config (no shell, no string templates)."""
    path = model_path(model, color, inputs)
    if model.engine == "mocker":
        # The mocker simulates timing on CPU and needs only the tokenizer.
        return ["--model-path", path, "--model-name", model.display_name]
    args = [
        "--model-path", path,
        "--served-model-name", model.display_name,
        "--extra-engine-args", f"{ENGINE_CONFIG_DIR}/{role}.yaml",
    ]  # fmt: skip
    layout = inputs.parallelism.get(role)
    if layout is not None:
        args += [
            "--tensor-parallel-size", str(layout.tensor),
            "--pipeline-parallel-size", str(layout.pipeline),
            "--gpus-per-node", str(layout.gpus_per_node),
            "--kv-block-size", str(layout.kv_block_size),
        ]  # fmt: skip
        if layout.expert is not None:
            args += ["--expert-parallel-size", str(layout.expert)]
    if role in ("prefill", "decode"):
        args += ["--disaggregation-mode", role]
    if model.multimodal:
        args += ["--modality", "multimodal"]
    if role in model.topology.kv_event_roles:
        args.append("--publish-events-and-metrics")
    if inputs.reasoning_parser:
        args += ["--dyn-reasoning-parser", inputs.reasoning_parser]
    if inputs.tool_call_parser:
        args += ["--dyn-tool-call-parser", inputs.tool_call_parser]
    return args


def frontend_args(model: Model) -> list[str]:
    router = "kv" if model.topology.kv_routing else "round-robin"
    return ["--http-port", str(FRONTEND_PORT), "--router-mode", router]


def _frontend(model: Model, color: Color, inputs: GraphInputs) -> dict:
    image = model.image_for(color)
    container = {"image": image, "command": FRONTEND, "args": frontend_args(model)}
    pod: dict = {
        "mainContainer": container,
        "serviceAccountName": workload_service_account("frontend"),
    }
    if inputs.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": inputs.image_pull_secret}]
    return {
        "componentType": "frontend",
        "replicas": model.frontend.replicas,
        "extraPodSpec": pod,
    }


def _worker(model: Model, role: str, color: Color, inputs: GraphInputs) -> dict:
    spec = model.role(role)
    image = model.image_for(color)
    container: dict = {
        "image": image,
        "workingDir": "/workspace",
        "command": MOCKER_WORKER if model.engine == "mocker" else TRTLLM_WORKER,
        "args": worker_args(model, role, color, inputs),
    }
    pod: dict = {"mainContainer": container, "serviceAccountName": workload_service_account(role)}
    if model.engine == "trtllm":
        container["volumeMounts"] = [
            {"name": "engine-config", "mountPath": ENGINE_CONFIG_DIR, "readOnly": True}
        ]
        pod["volumes"] = [
            {"name": "engine-config", "configMap": {"name": inputs.engine_config_map}}
        ]
    service: dict = {
        "componentType": "worker",
        "sharedMemory": {"size": spec.shared_memory},
    }
    if adapter_owns_replicas(model, role, color):
        # The operator's DynamoGraphDeploymentScalingAdapter <dgd>-<service> owns `replicas`:
        # its webhook refuses any other writer (1.1.0 dynamographdeployment.go:233-277), so the
        # field is not ours to send, and KEDA or the HPA scales the adapter.
        service["scalingAdapter"] = {"enabled": True}
    else:
        service["replicas"] = model.replicas(role, color)
    if role in ("prefill", "decode"):
        service["subComponentType"] = role
    if inputs.hf_token_secret:
        service["envFromSecret"] = inputs.hf_token_secret
    if inputs.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": inputs.image_pull_secret}]
    if spec.nodes > 1:
        service["multinode"] = {"nodeCount": spec.nodes}
    if inputs.model_pvc is not None:
        service["volumeMounts"] = [{"name": inputs.model_pvc, "mountPoint": MODEL_MOUNT}]

    requests: dict = {}
    limits: dict = {}
    placement = inputs.placements.get(role)
    if model.engine == "trtllm":
        gpus = str(spec.gpus_per_worker)
        requests["gpu"] = limits["gpu"] = gpus
        pod["tolerations"] = [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]
        if placement is not None and placement.efa_interfaces > 0:
            efa = {EFA_RESOURCE: str(placement.efa_interfaces)}
            if placement.hugepages_mib:
                efa[HUGEPAGES_RESOURCE] = f"{placement.hugepages_mib}Mi"
            requests["custom"] = dict(efa)
            limits["custom"] = dict(efa)
            service["envs"] = list(EFA_ENVS)
    if placement is not None and placement.node_selector:
        pod["nodeSelector"] = dict(placement.node_selector)
    if inputs.cache_node_label is not None:
        pod["affinity"] = {
            "nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "preference": {
                            "matchExpressions": [
                                {
                                    "key": inputs.cache_node_label,
                                    "operator": "In",
                                    "values": ["true"],
                                }
                            ]
                        },
                    }
                ]
            }
        }
    if spec.cpu:
        requests["cpu"] = spec.cpu
    if spec.memory:
        requests["memory"] = limits["memory"] = spec.memory
    if requests or limits:
        service["resources"] = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    service["extraPodSpec"] = pod
    return service


def build_dgd(model: Model, color: Color, inputs: GraphInputs) -> dict:
    """The DynamoGraphDeployment manifest for one model in one color."""
    name = dgd_name(model, color)
    labels = {
        "app.kubernetes.io/name": model.name,
        "app.kubernetes.io/managed-by": "pulumi",
        MODEL_LABEL: model.name,
        COLOR_LABEL: color,
    }
    services = {FRONTEND_SERVICE: _frontend(model, color, inputs)}
    for role in model.topology.roles:
        services[WORKER_SERVICES[role]] = _worker(model, role, color, inputs)
    spec: dict = {
        "backendFramework": "trtllm",
        # Propagated by the operator to every pod: the hash rolls workers on a config change,
        # the labels let the Traffic Service select one color.
        "labels": {MODEL_LABEL: model.name, COLOR_LABEL: color},
        "annotations": {ENGINE_HASH_ANNOTATION: inputs.engine_config_hash},
        "services": services,
    }
    if model.topology.multinode:
        spec["envs"] = MULTINODE_ENVS
    if inputs.model_pvc is not None:
        spec["pvcs"] = [{"name": inputs.model_pvc, "create": False}]
    annotations = {ENGINE_HASH_ANNOTATION: inputs.engine_config_hash}
    if inputs.ready_timeout_seconds:
        # `pulumi up` succeeds only once the operator reports every service ready.
        annotations[WAIT_FOR_ANNOTATION] = "condition=Ready"
        annotations[TIMEOUT_ANNOTATION] = str(inputs.ready_timeout_seconds)
    return {
        "apiVersion": DGD_API_VERSION,
        "kind": DGD_KIND,
        "metadata": {
            "name": name,
            "namespace": inputs.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }
