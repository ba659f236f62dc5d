"""The DynamoGraphDeployment nvidia.com/v1beta1 emitter (Dynamo 1.2+): the one place that knows
that layout. It renders the same plans as the v1alpha1 emitter (components/dgd_parts.py).

v1beta1 speaks Kubernetes where v1alpha1 had Dynamo's own forms: each component carries a real
pod template whose container `main` the operator completes, with native resources, env,
envFrom and volumes.
"""

from __future__ import annotations

from components.dgd_parts import (
    DGD_KIND,
    ENGINE_HASH_ANNOTATION,
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
)
from infra.stack.dynamo_versions import DGD_V1BETA1
from infra.stack.model_config import Color, Model

MAIN_CONTAINER = "main"  # the container the operator merges its defaults into
GPU_RESOURCE = "nvidia.com/gpu"


def _component_type(plan: ServicePlan) -> str:
    if plan.role == "frontend":
        return "frontend"
    # prefill and decode are types of their own here (v1alpha1: worker + subComponentType).
    return plan.sub_role or "worker"


def _resources(plan: ServicePlan) -> dict:
    requests: dict = {}
    limits: dict = {}
    if plan.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(plan.gpus)
    requests |= plan.efa_resources
    limits |= plan.efa_resources
    if plan.cpu:
        requests["cpu"] = plan.cpu
    if plan.memory:
        requests["memory"] = limits["memory"] = plan.memory
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def _volumes(plan: ServicePlan) -> tuple[list[dict], list[dict]]:
    """The pod's volumes and the main container's mounts of them."""
    volumes, mounts = pod_volumes(plan)
    if plan.model_pvc is not None:
        # v1beta1 has no spec.pvcs: the cache's existing claim is a plain pod volume.
        volumes.append(
            {"name": plan.model_pvc, "persistentVolumeClaim": {"claimName": plan.model_pvc}}
        )
        mounts.append({"name": plan.model_pvc, "mountPath": MODEL_MOUNT})
    return volumes, mounts


def _container(plan: ServicePlan, mounts: list[dict]) -> dict:
    container: dict = {"name": MAIN_CONTAINER, "image": plan.image}
    if plan.working_dir:
        container["workingDir"] = plan.working_dir
    container |= {"command": plan.command, "args": plan.args}
    if plan.envs:
        container["env"] = plan.envs
    if plan.env_secret:
        container["envFrom"] = [{"secretRef": {"name": plan.env_secret}}]
    if resources := _resources(plan):
        container["resources"] = resources
    if mounts:
        container["volumeMounts"] = mounts
    container["securityContext"] = container_security(plan)
    if plan.startup_probe is not None:
        container["startupProbe"] = plan.startup_probe
    return container


def _component(plan: ServicePlan) -> dict:
    volumes, mounts = _volumes(plan)
    pod: dict = {
        "containers": [_container(plan, mounts)],
        "serviceAccountName": plan.service_account,
    }
    if volumes:
        pod["volumes"] = volumes
    pod |= pod_scheduling(plan)

    component: dict = {"name": plan.key, "type": _component_type(plan)}
    if plan.replicas is None:
        # Present (even empty) means enabled: the operator's scaling adapter then owns
        # `replicas`, so we leave the field to it, as in v1alpha1.
        component["scalingAdapter"] = {}
    else:
        component["replicas"] = plan.replicas
    if plan.nodes > 1:
        component["multinode"] = {"nodeCount": plan.nodes}
    if plan.shared_memory is not None:
        component["sharedMemorySize"] = plan.shared_memory
    component["podTemplate"] = {"spec": pod}
    if plan.pod_annotations:
        component["podTemplate"]["metadata"] = {"annotations": dict(plan.pod_annotations)}
    return component


def build_dgd_v1beta1(model: Model, color: Color, inputs: GraphInputs) -> dict:
    """The nvidia.com/v1beta1 DynamoGraphDeployment for one model in one color."""
    spec: dict = {
        "backendFramework": "trtllm",
        # As in v1alpha1: the operator propagates these to every pod.
        "labels": pod_labels(model, color),
        "annotations": {ENGINE_HASH_ANNOTATION: inputs.engine_config_hash},
        "components": [_component(plan) for plan in service_plans(model, color, inputs)],
    }
    if envs := graph_envs(model, inputs):
        spec["env"] = envs
    if constraint := topology_constraint(model, inputs, "clusterTopologyName"):
        spec["topologyConstraint"] = constraint
    return {
        "apiVersion": DGD_V1BETA1,
        "kind": DGD_KIND,
        "metadata": graph_metadata(model, color, inputs),
        "spec": spec,
    }
