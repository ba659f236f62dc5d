"""The DynamoGraphDeployment nvidia.com/v1alpha1 emitter, and the dispatch by API version.

`build_dgd` is the one place that knows the v1alpha1 layout (components/dgd_v1beta1.py knows
v1beta1's); both render the plans of components/dgd_parts.py. Pure functions to plain dicts.
"""

from __future__ import annotations

import hashlib

import pulumi

from components.dgd_parts import (  # noqa: F401  (the names components import from here)
    COLOR_LABEL,
    DGD_KIND,
    EFA_RESOURCE,
    ENGINE_CONFIG_DIR,
    ENGINE_CONFIG_VOLUME,
    ENGINE_HASH_ANNOTATION,
    FRONTEND_PORT,
    GPU_TAINT_KEY,
    GPU_TAINT_VALUE,
    MODEL_LABEL,
    MODEL_MOUNT,
    GraphInputs,
    ServicePlan,
    container_security,
    graph_envs,
    graph_metadata,
    pod_labels,
    pod_scheduling,
    pod_volumes,
    service_plans,
    topology_constraint,
    workload_service_account,
)
from components.dgd_v1beta1 import build_dgd_v1beta1
from infra.deployment.resolved import WorkerParallelism, WorkerPlacement  # noqa: F401
from infra.stack.derived_names import (  # noqa: F401  (the names components import from here)
    FRONTEND_SERVICE,
    WORKER_SERVICES,
    dgd_child_names,
    dgd_name,
    engine_config_map_name,
    frontend_service_name,
    service_keys,
)
from infra.stack.dynamo_versions import DGD_V1ALPHA1, DGD_V1BETA1
from infra.stack.model_config import Color, Model

DGD_API_VERSION = DGD_V1ALPHA1
# Labels the operator puts on every pod it creates.
OPERATOR_GRAPH_LABEL = "nvidia.com/dynamo-graph-deployment-name"
OPERATOR_COMPONENT_TYPE_LABEL = "nvidia.com/dynamo-component-type"
# The operator's component-type pod label of a worker: `worker` for every v1alpha1 worker (a
# disaggregated one says prefill/decode in its sub-component type), the component's own `type`
# in v1beta1 (worker, prefill or decode).
WORKER_COMPONENT_TYPES = ("worker", "prefill", "decode")
# The series label our PodMonitors copy the operator's graph label into: one slot's series.
GRAPH_LABEL = "graph"


def engine_config_hash(files: dict[str, str]) -> str:
    """Content hash of a graph's engine configs; in the pod template so a change rolls workers."""
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + files[key].encode() + b"\0")
    return digest.hexdigest()[:16]


def _resources(plan: ServicePlan) -> dict:
    """Dynamo's own resource form: `gpu` for the GPUs, `custom` for any other resource name."""
    requests: dict = {}
    limits: dict = {}
    if plan.gpus:
        requests["gpu"] = limits["gpu"] = str(plan.gpus)
    if plan.efa_resources:
        requests["custom"] = dict(plan.efa_resources)
        limits["custom"] = dict(plan.efa_resources)
    if plan.cpu:
        requests["cpu"] = plan.cpu
    if plan.memory:
        requests["memory"] = limits["memory"] = plan.memory
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _service(plan: ServicePlan) -> dict:
    container: dict = {"image": plan.image}
    if plan.working_dir:
        container["workingDir"] = plan.working_dir
    container |= {"command": plan.command, "args": plan.args}
    container["securityContext"] = container_security(plan)
    if plan.startup_probe is not None:
        # v1alpha1 has no service-level startupProbe (only liveness and readiness): the operator
        # reads it from the main container.
        container["startupProbe"] = plan.startup_probe
    pod: dict = {"mainContainer": container, "serviceAccountName": plan.service_account}
    volumes, mounts = pod_volumes(plan)
    if volumes:
        container["volumeMounts"] = mounts
        pod["volumes"] = volumes
    pod |= pod_scheduling(plan)

    service: dict = {"componentType": "frontend" if plan.role == "frontend" else "worker"}
    if plan.shared_memory is not None:
        service["sharedMemory"] = {"size": plan.shared_memory}
    if plan.replicas is None:
        # The operator's DynamoGraphDeploymentScalingAdapter <dgd>-<service> owns `replicas`:
        # its webhook refuses any other writer (1.1.0 dynamographdeployment.go:233-277), so the
        # field is not ours to send, and KEDA or the HPA scales the adapter.
        service["scalingAdapter"] = {"enabled": True}
    else:
        service["replicas"] = plan.replicas
    if plan.sub_role is not None:
        service["subComponentType"] = plan.sub_role
    if plan.env_secret:
        service["envFromSecret"] = plan.env_secret
    if plan.nodes > 1:
        service["multinode"] = {"nodeCount": plan.nodes}
    if plan.model_pvc is not None:
        # The claim itself is listed once, in spec.pvcs.
        service["volumeMounts"] = [{"name": plan.model_pvc, "mountPoint": MODEL_MOUNT}]
    if plan.envs:
        service["envs"] = plan.envs
    if plan.pod_annotations:
        service["extraPodMetadata"] = {"annotations": dict(plan.pod_annotations)}
    if resources := _resources(plan):
        service["resources"] = resources
    service["extraPodSpec"] = pod
    return service


def build_dgd(model: Model, color: Color, inputs: GraphInputs) -> dict:
    """The nvidia.com/v1alpha1 DynamoGraphDeployment for one model in one color."""
    spec: dict = {
        "backendFramework": "trtllm",
        # Propagated by the operator to every pod: the hash rolls workers on a config change,
        # the labels let the Traffic Service select one color.
        "labels": pod_labels(model, color),
        "annotations": {ENGINE_HASH_ANNOTATION: inputs.engine_config_hash},
        "services": {plan.key: _service(plan) for plan in service_plans(model, color, inputs)},
    }
    if envs := graph_envs(model, inputs):
        spec["envs"] = envs
    if constraint := topology_constraint(model, inputs, "topologyProfile"):
        spec["topologyConstraint"] = constraint
    if inputs.model_pvc is not None:
        # An existing claim (the cache's): the operator only mounts it, never creates it.
        spec["pvcs"] = [{"name": inputs.model_pvc, "create": False}]
    return {
        "apiVersion": DGD_V1ALPHA1,
        "kind": DGD_KIND,
        "metadata": graph_metadata(model, color, inputs),
        "spec": spec,
    }


GRAPH_BUILDERS = {DGD_V1ALPHA1: build_dgd, DGD_V1BETA1: build_dgd_v1beta1}


def build_graph_manifest(model: Model, color: Color, inputs: GraphInputs) -> dict:
    """The graph's manifest in the API version its Dynamo release takes (inputs.dgd_api_version)."""
    try:
        builder = GRAPH_BUILDERS[inputs.dgd_api_version]
    except KeyError:
        known = ", ".join(GRAPH_BUILDERS)
        raise ValueError(
            f"no DynamoGraphDeployment emitter for {inputs.dgd_api_version!r} (known: {known})"
        ) from None
    return builder(model, color, inputs)


def graph_type_aliases(api_version: str) -> list[pulumi.Alias]:
    """The graph's Pulumi type under the other API versions we emit: a Dynamo upgrade that
    changes the version updates the same object instead of creating one and deleting the old
    (which, with the same name, would delete the new one)."""
    return [
        pulumi.Alias(type_=f"kubernetes:{version}:{DGD_KIND}")
        for version in GRAPH_BUILDERS
        if version != api_version
    ]
