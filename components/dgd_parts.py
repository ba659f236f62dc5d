"""What a DynamoGraphDeployment says, before any API version lays it out.

Both emitters (components/dgd.py for nvidia.com/v1alpha1, components/dgd_v1beta1.py for
nvidia.com/v1beta1) render the same `ServicePlan`s and graph metadata built here, so the two
API versions cannot drift apart in what the pods run and ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.nats_accounts import credential_envs
from infra.deployment.readiness import (
    OPERATOR_STARTUP_PATH,
    OPERATOR_STARTUP_PERIOD_SECONDS,
    OPERATOR_STARTUP_PORT,
    OPERATOR_STARTUP_TIMEOUT_SECONDS,
    startup_failure_threshold,
)
from infra.deployment.resolved import WorkerParallelism, WorkerPlacement
from infra.stack.derived_names import FRONTEND_SERVICE, WORKER_SERVICES, dgd_name
from infra.stack.dynamo_versions import DGD_V1ALPHA1
from infra.stack.model_config import Color, Model

DGD_KIND = "DynamoGraphDeployment"
FRONTEND_PORT = 8000
ENGINE_CONFIG_DIR = "/etc/dynamo-trtllm/engine"
ENGINE_CONFIG_VOLUME = "engine-config"
MODEL_MOUNT = "/models"
WORKING_DIR = "/workspace"
# Every graph pod runs under the container runtime's default seccomp profile and may not gain
# privileges; each drops the Linux capabilities its role has no use for (of the runtime's
# default set). The frontend needs none. A TensorRT-LLM worker runs as root in the runtime image
# and keeps what touching the image's files and starting its MPI ranks take (CHOWN,
# DAC_OVERRIDE, FOWNER, FSETID, KILL, SETUID, SETGID); a multinode worker also runs sshd for
# mpirun, which keeps SYS_CHROOT, AUDIT_WRITE and NET_BIND_SERVICE.
SECCOMP_PROFILE = {"type": "RuntimeDefault"}
CAPABILITIES_DROPPED = {
    "frontend": ("ALL",),
    "worker": (
        "AUDIT_WRITE", "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT",
    ),
    "multinode": ("MKNOD", "NET_RAW", "SETFCAP", "SETPCAP"),
}  # fmt: skip
# The runtime default seccomp profile refuses process_vm_readv (cross-memory attach) without
# CAP_SYS_PTRACE: Open MPI's shared-memory transport then copies through shared memory instead.
MPI_SINGLE_COPY_ENVS = [{"name": "OMPI_MCA_btl_vader_single_copy_mechanism", "value": "none"}]
# A mocker worker (CPU only) is sized like a frontend.
CPU_WORKER_MEMORY = "2Gi"
# Where Hugging Face downloads go (tokenizer files, a draft model, weights of a Hugging Face
# source): a volume that lives as long as the pod, so a restarted container (a crash, an OOM
# kill) finds them instead of downloading again. Upstream's recipes use the same path.
HF_HOME = "/home/dynamo/.cache/huggingface"
HF_HOME_VOLUME = "hf-home"
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
HUGEPAGES_RESOURCE = "hugepages-2Mi"
# Kubernetes refuses a container that asks for huge pages with neither a cpu nor a memory request
# or limit (pkg/apis/core/validation, "HugePages require cpu or memory"): one CPU is requested
# for an EFA worker whose role sets neither.
HUGEPAGES_CPU_REQUEST = "1"
# libfabric over EFA for NIXL's KV transfer and NCCL (aws-ofi-nccl's and AWS's EKS EFA
# examples): the EFA provider and fork safety for the Python worker.
EFA_ENVS = [
    {"name": "FI_PROVIDER", "value": "efa"},
    {"name": "FI_EFA_FORK_SAFE", "value": "1"},
]
# mpirun inside multinode TRT-LLM workers runs as root in the runtime image.
MULTINODE_ENVS = [
    {"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "1"},
    {"name": "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "value": "1"},
]
MODEL_LABEL = "dynamo-trtllm.io/model"
COLOR_LABEL = "dynamo-trtllm.io/color"
ENGINE_HASH_ANNOTATION = "dynamo-trtllm.io/engine-config-hash"
# Karpenter leaves a node alone while a pod on it carries this: "true" for good, a duration for
# that long after the pod starts (Karpenter v1.14 concepts/disruption.md).
DO_NOT_DISRUPT_ANNOTATION = "karpenter.sh/do-not-disrupt"
# The Pulumi Kubernetes provider's await annotations (pulumi-kubernetes >= 4.18).
WAIT_FOR_ANNOTATION = "pulumi.com/waitFor"
TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds"

TRTLLM_WORKER = ["python3", "-m", "dynamo.trtllm"]
MOCKER_WORKER = ["python3", "-m", "dynamo.mocker"]
FRONTEND = ["python3", "-m", "dynamo.frontend"]


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
    cluster_topology: str | None = None  # the ClusterTopology a model's packDomain names a level of
    dgd_api_version: str = DGD_V1ALPHA1  # the Dynamo profile's; picks the emitter
    # The namespace's NATS credentials (components.nats_accounts); None: NATS takes anyone.
    nats_credentials_secret: str | None = None


@dataclass(frozen=True)
class ServicePlan:
    """One graph service as its pods will be: the facts both API layouts render."""

    key: str  # the service key (v1alpha1) or component name (v1beta1)
    role: str  # "frontend" or a worker role: agg, prefill, decode
    image: str | None
    command: list[str]
    args: list[str]
    service_account: str
    replicas: int | None  # None: the scaling adapter owns the count
    working_dir: str | None = None
    image_pull_secret: str | None = None
    env_secret: str | None = None  # every key of this Secret becomes an env var
    envs: list[dict] = field(default_factory=list)
    gpus: int = 0
    # EFA interfaces and the huge pages libfabric registers, requested and limited alike.
    efa_resources: dict[str, str] = field(default_factory=dict)
    cpu: str | None = None  # requested only
    memory: str | None = None  # requested and limited
    shared_memory: str | None = None  # the /dev/shm size; None: the operator's default
    nodes: int = 1
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict] = field(default_factory=list)
    affinity: dict | None = None
    engine_config_map: str | None = None  # mounted read-only at ENGINE_CONFIG_DIR
    model_pvc: str | None = None  # an existing claim, mounted at MODEL_MOUNT
    pod_annotations: dict[str, str] = field(default_factory=dict)  # this service's pods only
    hf_home: bool = False  # HF_HOME on a pod-lifetime volume
    capabilities_dropped: tuple[str, ...] = ("ALL",)
    startup_probe: dict | None = None  # the main container's; None: the operator's default

    @property
    def sub_role(self) -> str | None:
        """The disaggregation half a worker serves, which the operator tells apart."""
        return self.role if self.role in ("prefill", "decode") else None


def workload_service_account(role: str) -> str:
    """The ServiceAccount of a graph role ("frontend" or a worker role), shared by both colors."""
    return "dynamo-frontend" if role == "frontend" else f"dynamo-{role}-worker"


def adapter_owns_replicas(model: Model, role: str, color: Color) -> bool:
    """An autoscaled role in a slot that does not pin its replicas (Model.autoscaled)."""
    return model.autoscaled(role, color) is not None


def model_path(model: Model, color: Color, inputs: GraphInputs) -> str:
    source = model.source_for(color)
    if inputs.model_pvc is not None:
        return MODEL_MOUNT
    assert source.hugging_face is not None, "S3 weights are only reachable through the cache PVC"
    return source.hugging_face


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


def gpu_tolerations() -> list[dict]:
    """GPU nodes carry the GPU taint (GpuNodePool); only GPU workers tolerate it."""
    return [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}]


def cache_affinity(cache_node_label: str) -> dict:
    """Prefer the nodes Fluid caches the weights on; any node still works, only slower."""
    return {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {
                        "matchExpressions": [
                            {"key": cache_node_label, "operator": "In", "values": ["true"]}
                        ]
                    },
                }
            ]
        }
    }


def efa_envs(placement: WorkerPlacement) -> list[dict]:
    """libfabric's settings for the pool's EFA devices: GPUDirect RDMA only where the device
    reads peer memory (set elsewhere, libfabric aborts the worker), and its buffers off huge
    pages when the pod has none to use (fi_efa(7): FI_EFA_USE_HUGE_PAGE)."""
    envs = list(EFA_ENVS)
    if placement.efa_rdma_read:
        envs.append({"name": "FI_EFA_USE_DEVICE_RDMA", "value": "1"})
    if not placement.hugepages_mib:
        envs.append({"name": "FI_EFA_USE_HUGE_PAGE", "value": "0"})
    return envs


def efa_resources(placement: WorkerPlacement | None) -> dict[str, str]:
    if placement is None or placement.efa_interfaces <= 0:
        return {}
    resources = {EFA_RESOURCE: str(placement.efa_interfaces)}
    if placement.hugepages_mib:
        resources[HUGEPAGES_RESOURCE] = f"{placement.hugepages_mib}Mi"
    return resources


def disruption_hold(placement: WorkerPlacement | None, nodes: int, inputs: GraphInputs) -> dict:
    """On a Karpenter pool: a multinode group is never taken apart (one lost pod stops them
    all); a single-node worker is left alone while it may still be loading its weights (its
    cold-start budget), then may move like any pod."""
    if placement is None or not placement.karpenter:
        return {}
    if nodes > 1 or not inputs.ready_timeout_seconds:
        return {DO_NOT_DISRUPT_ANNOTATION: "true"}
    return {DO_NOT_DISRUPT_ANNOTATION: f"{inputs.ready_timeout_seconds}s"}


def worker_startup_probe(inputs: GraphInputs) -> dict | None:
    """A startup probe long enough for the worker's load, where the operator's 2 h default is
    not (infra/deployment/readiness.py); None leaves the operator's.

    The operator takes a main container's startupProbe whole in place of its default, in both
    layouts (ai-dynamo/dynamo deploy/operator/internal/dynamo/graph.go: 1.1.0 df888f68
    GenerateBasePodSpec, lines 1026-1030; 1.2.0 a68c04c7 mergeContainerByName, lines 1554-1556;
    and its v1alpha1 -> v1beta1 conversion keeps it, api/v1alpha1/shared_spec_conversion.go
    1271-1274). So ours repeats its handler and timing and changes only failureThreshold. A
    multinode service's non-leader pods run sshd, not the engine: the TensorRT-LLM backend drops
    their startup probe after the merge and keeps the leader's (backend_trtllm.go: 1.1.0 lines
    44-60, 1.2.0 lines 39-55), which is the one that loads."""
    failures = startup_failure_threshold(inputs.ready_timeout_seconds)
    if failures is None:
        return None
    return {
        "httpGet": {"path": OPERATOR_STARTUP_PATH, "port": OPERATOR_STARTUP_PORT},
        "periodSeconds": OPERATOR_STARTUP_PERIOD_SECONDS,
        "timeoutSeconds": OPERATOR_STARTUP_TIMEOUT_SECONDS,
        "failureThreshold": failures,
    }


def pod_volumes(plan: ServicePlan) -> tuple[list[dict], list[dict]]:
    """The pod volumes both layouts declare in native form, and the main container's mounts."""
    volumes: list[dict] = []
    mounts: list[dict] = []
    if plan.engine_config_map is not None:
        volumes.append(
            {"name": ENGINE_CONFIG_VOLUME, "configMap": {"name": plan.engine_config_map}}
        )
        mounts.append(
            {"name": ENGINE_CONFIG_VOLUME, "mountPath": ENGINE_CONFIG_DIR, "readOnly": True}
        )
    if plan.hf_home:
        volumes.append({"name": HF_HOME_VOLUME, "emptyDir": {}})
        mounts.append({"name": HF_HOME_VOLUME, "mountPath": HF_HOME})
    return volumes, mounts


def container_security(plan: ServicePlan) -> dict:
    """The main container's securityContext: no privilege gain, the role's capabilities only."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": list(plan.capabilities_dropped)},
    }


def pod_scheduling(plan: ServicePlan) -> dict:
    """The pod fields both layouts take as they are: the pod's securityContext, pull secret and
    where the pod may run."""
    fields: dict = {"securityContext": {"seccompProfile": dict(SECCOMP_PROFILE)}}
    if plan.image_pull_secret:
        fields["imagePullSecrets"] = [{"name": plan.image_pull_secret}]
    if plan.tolerations:
        fields["tolerations"] = plan.tolerations
    if plan.node_selector:
        fields["nodeSelector"] = plan.node_selector
    if plan.affinity is not None:
        fields["affinity"] = plan.affinity
    return fields


def frontend_plan(model: Model, color: Color, inputs: GraphInputs) -> ServicePlan:
    return ServicePlan(
        key=FRONTEND_SERVICE,
        role="frontend",
        image=model.image_for(color),
        command=FRONTEND,
        args=frontend_args(model),
        service_account=workload_service_account("frontend"),
        replicas=model.frontend.replicas,
        image_pull_secret=inputs.image_pull_secret,
        memory=model.frontend.memory,
        capabilities_dropped=CAPABILITIES_DROPPED["frontend"],
        # It fetches a Hugging Face model's tokenizer and config itself (a gated one: with it).
        env_secret=inputs.hf_token_secret,
    )


def worker_plan(model: Model, role: str, color: Color, inputs: GraphInputs) -> ServicePlan:
    spec = model.role(role)
    placement = inputs.placements.get(role)
    trtllm = model.engine == "trtllm"
    efa = efa_resources(placement) if trtllm else {}
    memory = spec.memory or (
        f"{placement.memory_mib}Mi"
        if trtllm and placement is not None and placement.memory_mib
        else None
    )
    if not trtllm:
        memory = memory or CPU_WORKER_MEMORY
        dropped = CAPABILITIES_DROPPED["frontend"]
    else:
        dropped = CAPABILITIES_DROPPED["multinode" if spec.nodes > 1 else "worker"]
    return ServicePlan(
        key=WORKER_SERVICES[role],
        role=role,
        image=model.image_for(color),
        command=TRTLLM_WORKER if trtllm else MOCKER_WORKER,
        args=worker_args(model, role, color, inputs),
        service_account=workload_service_account(role),
        replicas=None if adapter_owns_replicas(model, role, color) else model.replicas(role, color),
        working_dir=WORKING_DIR,
        image_pull_secret=inputs.image_pull_secret,
        env_secret=inputs.hf_token_secret,
        envs=[
            *(efa_envs(placement) if efa and placement is not None else []),
            *(MPI_SINGLE_COPY_ENVS if trtllm else []),
            {"name": "HF_HOME", "value": HF_HOME},
        ],
        gpus=spec.gpus_per_worker if trtllm else 0,
        efa_resources=efa,
        cpu=spec.cpu
        or (HUGEPAGES_CPU_REQUEST if HUGEPAGES_RESOURCE in efa and not memory else None),
        memory=memory,
        shared_memory=spec.shared_memory,
        nodes=spec.nodes,
        node_selector=dict(placement.node_selector) if placement is not None else {},
        tolerations=gpu_tolerations() if trtllm else [],
        affinity=cache_affinity(inputs.cache_node_label) if inputs.cache_node_label else None,
        engine_config_map=inputs.engine_config_map if trtllm else None,
        model_pvc=inputs.model_pvc,
        pod_annotations=disruption_hold(placement, spec.nodes, inputs),
        hf_home=True,
        capabilities_dropped=dropped,
        startup_probe=worker_startup_probe(inputs) if trtllm else None,
    )


def service_plans(model: Model, color: Color, inputs: GraphInputs) -> list[ServicePlan]:
    """The frontend, then one service per worker role of the topology."""
    workers = [worker_plan(model, role, color, inputs) for role in model.topology.roles]
    return [frontend_plan(model, color, inputs), *workers]


def pod_labels(model: Model, color: Color) -> dict[str, str]:
    """Propagated by the operator to every pod: the Traffic Service selects one color by them."""
    return {MODEL_LABEL: model.name, COLOR_LABEL: color}


def graph_envs(model: Model, inputs: GraphInputs) -> list[dict]:
    """Envs every container of the graph gets."""
    envs = list(MULTINODE_ENVS) if model.topology.multinode else []
    if inputs.nats_credentials_secret:
        envs += credential_envs(inputs.nats_credentials_secret)
    return envs


def topology_constraint(model: Model, inputs: GraphInputs, topology_key: str) -> dict | None:
    """The graph's pack constraint; each layout names the ClusterTopology with its own key."""
    if not (model.pack_domain and inputs.cluster_topology):
        return None
    return {topology_key: inputs.cluster_topology, "packDomain": model.pack_domain}


def graph_metadata(model: Model, color: Color, inputs: GraphInputs) -> dict:
    annotations = {ENGINE_HASH_ANNOTATION: inputs.engine_config_hash}
    if inputs.ready_timeout_seconds:
        # `pulumi up` succeeds only once the operator reports every service ready.
        annotations[WAIT_FOR_ANNOTATION] = "condition=Ready"
        annotations[TIMEOUT_ANNOTATION] = str(inputs.ready_timeout_seconds)
    return {
        "name": dgd_name(model, color),
        "namespace": inputs.namespace,
        "labels": {
            "app.kubernetes.io/name": model.name,
            "app.kubernetes.io/managed-by": "pulumi",
            MODEL_LABEL: model.name,
            COLOR_LABEL: color,
        },
        "annotations": annotations,
    }
