"""Read a rendered DynamoGraphDeployment in either layout, as the pods the operator makes of it.

nvidia.com/v1alpha1 (Dynamo 1.1) keys `spec.services` by name, puts the main container in
`extraPodSpec.mainContainer` and has Dynamo's own forms for resources (`gpu`, `custom`), the
secret env (`envFromSecret`) and claims (`spec.pvcs` + service `volumeMounts`). nvidia.com/v1beta1
(Dynamo 1.2) lists `spec.components`, each with a real pod template whose container `main` the
operator completes, in native Kubernetes forms. Tests read both through `services()`, and name a
field's path with `service_path()` / `container_path()`, so they assert facts, not a layout.

The pod labels are the operator's (ai-dynamo/dynamo, deploy/operator): every pod carries the
graph-level `spec.labels`, the component's own pod labels, the graph's name and the component
type. That type is v1alpha1's `componentType` (`worker` for both disaggregation halves, which
`subComponentType` tells apart) and v1beta1's `type` (`prefill`/`decode` for those halves:
`KubeLabelDynamoComponentType: ComponentTypePrefill`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

V1ALPHA1 = "nvidia.com/v1alpha1"
V1BETA1 = "nvidia.com/v1beta1"
# Labels the operator puts on every pod it creates.
OPERATOR_GRAPH_LABEL = "nvidia.com/dynamo-graph-deployment-name"
OPERATOR_COMPONENT_TYPE_LABEL = "nvidia.com/dynamo-component-type"
MAIN_CONTAINER = "main"  # v1beta1: the pod template's container the operator merges into
GPU_RESOURCE = "nvidia.com/gpu"
WORKER_TYPES = ("worker", "prefill", "decode")  # the component types of workers, both layouts

Layout = Literal["v1alpha1", "v1beta1"]
# "diff": infra.offline.diff's paths (named list items as `[name=<name>]`);
# "schema": the schema validator's (list items by index).
PathStyle = Literal["diff", "schema"]
Env = dict[str, Any]


@dataclass(frozen=True)
class Container:
    """The main container, in native Kubernetes forms."""

    image: str | None
    command: list[str]
    args: list[str]
    working_dir: str | None = None
    env: list[Env] = field(default_factory=list)  # graph-level env first, the container's after
    env_from: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # requests/limits

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]

    def arg(self, flag: str) -> str:
        """The value following `flag` in the arguments."""
        return self.args[self.args.index(flag) + 1]

    @property
    def env_values(self) -> dict[str, Any]:
        """Env by name as the container sees it (the container's own entry wins)."""
        return {e["name"]: e.get("value") for e in self.env}


@dataclass(frozen=True)
class PodSpec:
    """The pod-level fields the graph sets."""

    service_account_name: str | None = None
    image_pull_secrets: list[dict[str, Any]] = field(default_factory=list)
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    affinity: dict[str, Any] | None = None
    volumes: list[dict[str, Any]] = field(default_factory=list)  # sorted by name

    def claims(self) -> list[str]:
        """The PersistentVolumeClaims the pod mounts."""
        return [
            v["persistentVolumeClaim"]["claimName"]
            for v in self.volumes
            if "persistentVolumeClaim" in v
        ]


@dataclass(frozen=True)
class ServiceView:
    """One service (v1alpha1) or component (v1beta1) of a graph, as its pods will be."""

    name: str
    component_type: str  # the layout's own type: the pods' component-type label
    sub_type: str | None  # the disaggregation half (prefill/decode) in either layout, else None
    container: Container
    pod: PodSpec
    pod_labels: dict[str, str]
    pod_annotations: dict[str, str]  # the graph's spec.annotations, then the service's own
    replicas: int | None  # None: absent (the scaling adapter owns it)
    scaling_adapter: bool
    nodes: int  # the multinode node count; 1 for a single-node service
    shared_memory: str | None  # the /dev/shm size; "0": disabled; None: the operator default
    raw: dict[str, Any] = field(compare=False, repr=False)  # the object itself, to mutate

    @property
    def is_frontend(self) -> bool:
        return self.component_type == "frontend"

    @property
    def is_worker(self) -> bool:
        return self.component_type in WORKER_TYPES


def layout(dgd: Mapping[str, Any]) -> Layout:
    api_version = dgd.get("apiVersion")
    if api_version == V1ALPHA1:
        return "v1alpha1"
    if api_version == V1BETA1:
        return "v1beta1"
    raise ValueError(f"not a DynamoGraphDeployment layout this reader knows: {api_version!r}")


def services(dgd: Mapping[str, Any]) -> dict[str, ServiceView]:
    """The graph's services by name, in the document's order."""
    if layout(dgd) == "v1alpha1":
        return {name: _v1alpha1(dgd, name, s) for name, s in dgd["spec"]["services"].items()}
    return {c["name"]: _v1beta1(dgd, c) for c in dgd["spec"]["components"]}


def service_object(dgd: dict[str, Any], name: str) -> dict[str, Any]:
    """The service's own mapping inside `dgd` (mutating it mutates the document)."""
    found: dict[str, Any]
    if layout(dgd) == "v1alpha1":
        found = dgd["spec"]["services"][name]
    else:
        found = dgd["spec"]["components"][_component_index(dgd, name)]
    return found


def container_object(dgd: dict[str, Any], name: str) -> dict[str, Any]:
    """The service's main container mapping inside `dgd`."""
    service = service_object(dgd, name)
    found: dict[str, Any]
    if layout(dgd) == "v1alpha1":
        found = service["extraPodSpec"]["mainContainer"]
    else:
        containers = service["podTemplate"]["spec"]["containers"]
        found = containers[_main_index(containers, name)]
    return found


def service_path(
    dgd: Mapping[str, Any], name: str, *fields: str | int, style: PathStyle = "diff"
) -> str:
    """The path of the service's field `fields` (e.g. "replicas") in the layout of `dgd`."""
    if layout(dgd) == "v1alpha1":
        parts: list[str | int] = ["spec", "services", name]
        return _path(parts + list(fields), style)
    if style == "diff":
        return (
            _path(["spec", "components"], style)
            + f"[name={name}]"
            + _path(fields, style, nested=True)
        )
    return _path(["spec", "components", _component_index(dgd, name), *fields], style)


def container_path(
    dgd: Mapping[str, Any], name: str, *fields: str | int, style: PathStyle = "diff"
) -> str:
    """The path of the service's main-container field `fields` (e.g. "image")."""
    if layout(dgd) == "v1alpha1":
        return service_path(dgd, name, "extraPodSpec", "mainContainer", *fields, style=style)
    template = service_path(dgd, name, "podTemplate", "spec", "containers", style=style)
    if style == "diff":
        return template + f"[name={MAIN_CONTAINER}]" + _path(fields, style, nested=True)
    containers = dgd["spec"]["components"][_component_index(dgd, name)]["podTemplate"]["spec"][
        "containers"
    ]
    return template + f"[{_main_index(containers, name)}]" + _path(fields, style, nested=True)


# --- v1alpha1 ------------------------------------------------------------------------------------


def _v1alpha1(dgd: Mapping[str, Any], name: str, service: dict[str, Any]) -> ServiceView:
    spec = dgd["spec"]
    pod = service.get("extraPodSpec", {})
    main = pod.get("mainContainer", {})
    claims = {p["name"] for p in spec.get("pvcs", [])}
    volumes = list(pod.get("volumes", []))
    mounts = list(main.get("volumeMounts", []))
    for mount in service.get("volumeMounts", []):
        # The operator mounts the spec.pvcs entry of that name as a claim of that name.
        if mount["name"] not in claims:
            raise ValueError(f"{name}: volumeMount {mount['name']!r} names no spec.pvcs entry")
        volumes.append(
            {"name": mount["name"], "persistentVolumeClaim": {"claimName": mount["name"]}}
        )
        mounts.append({"name": mount["name"], "mountPath": mount["mountPoint"]})
    env_from = (
        [{"secretRef": {"name": service["envFromSecret"]}}] if "envFromSecret" in service else []
    )
    shared = service.get("sharedMemory")
    shared_memory = (
        None if shared is None else ("0" if shared.get("disabled") else shared.get("size"))
    )
    component_type = service["componentType"]
    own_labels = service.get("labels", {}) | service.get("extraPodMetadata", {}).get("labels", {})
    return ServiceView(
        name=name,
        component_type=component_type,
        sub_type=service.get("subComponentType"),
        container=Container(
            image=main.get("image"),
            command=list(main.get("command", [])),
            args=list(main.get("args", [])),
            working_dir=main.get("workingDir"),
            env=_merged_env(spec.get("envs", []), service.get("envs", [])),
            env_from=env_from,
            volume_mounts=mounts,
            resources={
                kind: _native_resources(name, items)
                for kind, items in service.get("resources", {}).items()
            },
        ),
        pod=_pod_spec(pod, volumes),
        pod_labels=_pod_labels(dgd, own_labels, component_type),
        pod_annotations=spec.get("annotations", {})
        | service.get("extraPodMetadata", {}).get("annotations", {}),
        replicas=service.get("replicas"),
        scaling_adapter=bool(service.get("scalingAdapter", {}).get("enabled", False)),
        nodes=service.get("multinode", {}).get("nodeCount", 1),
        shared_memory=shared_memory,
        raw=service,
    )


def _native_resources(service: str, dynamo: Mapping[str, Any]) -> dict[str, str]:
    """Dynamo's resource form (cpu, memory, gpu, custom) in Kubernetes resource names."""
    native: dict[str, str] = {}
    for key, value in dynamo.items():
        if key in ("cpu", "memory"):
            native[key] = value
        elif key == "gpu":
            native[GPU_RESOURCE] = value
        elif key == "custom":
            native |= value
        else:
            raise ValueError(f"{service}: Dynamo resource {key!r} has no native name here")
    return native


# --- v1beta1 -------------------------------------------------------------------------------------


def _v1beta1(dgd: Mapping[str, Any], component: dict[str, Any]) -> ServiceView:
    spec = dgd["spec"]
    name = component["name"]
    template = component.get("podTemplate", {})
    pod = template.get("spec", {})
    containers = pod.get("containers", [])
    main = containers[_main_index(containers, name)]
    component_type = component["type"]
    return ServiceView(
        name=name,
        component_type=component_type,
        sub_type=component_type if component_type in ("prefill", "decode") else None,
        container=Container(
            image=main.get("image"),
            command=list(main.get("command", [])),
            args=list(main.get("args", [])),
            working_dir=main.get("workingDir"),
            env=_merged_env(spec.get("env", []), main.get("env", [])),
            env_from=list(main.get("envFrom", [])),
            volume_mounts=list(main.get("volumeMounts", [])),
            resources={k: dict(v) for k, v in main.get("resources", {}).items()},
        ),
        pod=_pod_spec(pod, list(pod.get("volumes", []))),
        pod_labels=_pod_labels(dgd, template.get("metadata", {}).get("labels", {}), component_type),
        pod_annotations=spec.get("annotations", {})
        | template.get("metadata", {}).get("annotations", {}),
        replicas=component.get("replicas"),
        scaling_adapter="scalingAdapter" in component,  # present, even empty, means enabled
        nodes=component.get("multinode", {}).get("nodeCount", 1),
        shared_memory=component.get("sharedMemorySize"),
        raw=component,
    )


def _component_index(dgd: Mapping[str, Any], name: str) -> int:
    names = [c["name"] for c in dgd["spec"]["components"]]
    if names.count(name) != 1:
        raise KeyError(f"{name!r} is not one component of {names}")
    return names.index(name)


def _main_index(containers: list[dict[str, Any]], component: str) -> int:
    names = [c.get("name") for c in containers]
    if names.count(MAIN_CONTAINER) != 1:
        raise ValueError(f"{component}: no single container {MAIN_CONTAINER!r} in {names}")
    return names.index(MAIN_CONTAINER)


# --- both ----------------------------------------------------------------------------------------


def _pod_spec(pod: Mapping[str, Any], volumes: list[dict[str, Any]]) -> PodSpec:
    return PodSpec(
        service_account_name=pod.get("serviceAccountName"),
        image_pull_secrets=list(pod.get("imagePullSecrets", [])),
        node_selector=dict(pod.get("nodeSelector", {})),
        tolerations=list(pod.get("tolerations", [])),
        affinity=pod.get("affinity"),
        volumes=sorted(volumes, key=lambda v: str(v["name"])),
    )


def _pod_labels(
    dgd: Mapping[str, Any], own: Mapping[str, str], component_type: str
) -> dict[str, str]:
    """What the operator labels each pod with: the graph's labels, the component's, its own."""
    return (
        dict(dgd["spec"].get("labels", {}))
        | dict(own)
        | {
            OPERATOR_GRAPH_LABEL: dgd["metadata"]["name"],
            OPERATOR_COMPONENT_TYPE_LABEL: component_type,
        }
    )


def _merged_env(graph: list[Env], own: list[Env]) -> list[Env]:
    """Graph-level env, then the container's; an entry of the container replaces its namesake."""
    names = {e["name"] for e in own}
    return [e for e in graph if e["name"] not in names] + list(own)


def _path(parts: Iterable[str | int], style: PathStyle, nested: bool = False) -> str:
    """Join path parts the way the diff (`infra.offline.diff._join`) or the validator does;
    `nested`: the parts continue a path already begun."""
    text = ""
    first = not nested
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif style == "schema" or part.replace("_", "").replace("-", "").isalnum():
            text += part if first else f".{part}"
        else:
            text += f"[{json.dumps(part)}]"
        first = False
    return text
