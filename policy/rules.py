"""Security invariants of our stacks, checked on every `pulumi preview --policy-pack policy`.

Each rule is a pure function from a resource's Pulumi type token and props to violation messages,
each naming the resource and the field at fault. The policies at the end only wrap them.
A DynamoGraphDeployment is read in either API version (v1alpha1 `spec.services`, v1beta1
`spec.components`) through `pod_views`, so each rule has one body for every layout.

Props arrive as read-only Mapping/Sequence proxies (never dict/list) that raise on values unknown
during preview, so rules read only the keys they need, through the abstract collection types.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# Equal to components.dgd's (a test keeps them so): the pack runs in its own environment,
# without the project installed.
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

DGD_V1ALPHA1_TYPE = "kubernetes:nvidia.com/v1alpha1:DynamoGraphDeployment"
DGD_V1BETA1_TYPE = "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment"
HELM_RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"
SERVICE_TYPE = "kubernetes:core/v1:Service"
NAMESPACE_TYPE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY_TYPE = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
FLUID_TYPE_PREFIX = "kubernetes:data.fluid.io/"

_TEMPLATE = ("spec", "template", "spec")
# Where each core workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:core/v1:ReplicationController": _TEMPLATE,
    "kubernetes:apps/v1:Deployment": _TEMPLATE,
    "kubernetes:apps/v1:StatefulSet": _TEMPLATE,
    "kubernetes:apps/v1:DaemonSet": _TEMPLATE,
    "kubernetes:apps/v1:ReplicaSet": _TEMPLATE,
    "kubernetes:batch/v1:Job": _TEMPLATE,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
_SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

Rule = Callable[[str, Mapping[str, Any]], list[str]]


# --- reading props ------------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence) and not isinstance(value, str) else ()


def _at(props: Mapping[str, Any], path: Sequence[str]) -> Mapping[str, Any]:
    for key in path:
        props = _mapping(props.get(key))
    return props


def describe(resource_type: str, props: Mapping[str, Any]) -> str:
    """`Kind namespace/name`; Helm releases keep name and namespace at the top of their props."""
    kind = resource_type.rsplit(":", 1)[-1]
    metadata = _mapping(props.get("metadata"))
    name = metadata.get("name") or props.get("name") or "(unnamed)"
    namespace = metadata.get("namespace") or props.get("namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def _quantity(value: Any) -> str | None:
    """A resource quantity as text; None when absent or zero (no GPU asked)."""
    text = "" if value is None else str(value).strip()
    return None if text in ("", "0") else text


def _gpus(holder: Mapping[str, Any], kind: str, key: str) -> str | None:
    """GPUs in `resources.<kind>.<key>`: a container's nvidia.com/gpu, a v1alpha1 service's gpu."""
    return _quantity(_at(holder, ("resources", kind)).get(key))


# --- the pods a resource declares, in every layout ----------------------------------------------


@dataclass(frozen=True)
class GpuAsk:
    """The GPUs one holder asks for, and where their limit belongs."""

    limit_path: str
    requested: str | None
    limit: str | None


@dataclass(frozen=True)
class PodView:
    """One pod a resource declares, whatever its layout: a workload's pod template, a v1alpha1
    DGD service's `extraPodSpec` or a v1beta1 DGD component's `podTemplate`."""

    path: str  # where the pod spec sits in the props, for messages
    spec: Mapping[str, Any]
    containers: list[tuple[str, Mapping[str, Any]]]  # (path, container)
    gpus: list[GpuAsk]
    # (where the limit belongs, its value) per container whose memory the layout says
    memory_limits: list[tuple[str, str | None]]

    @property
    def asks_for_gpus(self) -> bool:
        return any(ask.requested or ask.limit for ask in self.gpus)


def _listed_containers(spec: Mapping[str, Any], path: str) -> list[tuple[str, Mapping[str, Any]]]:
    return [
        (f"{path}.{field}[{index}]", _mapping(container))
        for field in ("initContainers", "containers", "ephemeralContainers")
        for index, container in enumerate(_sequence(spec.get(field)))
    ]


def _pod(path: str, spec: Mapping[str, Any]) -> PodView:
    """A real pod spec: GPUs are its containers' `nvidia.com/gpu`."""
    containers = _listed_containers(spec, path)
    gpus = [
        GpuAsk(
            f"{at}.resources.limits[{GPU_RESOURCE}]",
            _gpus(container, "requests", GPU_RESOURCE),
            _gpus(container, "limits", GPU_RESOURCE),
        )
        for at, container in containers
    ]
    memory = [
        (
            f"{at}.resources.limits.memory",
            _quantity(_at(container, ("resources", "limits")).get("memory")),
        )
        for at, container in containers
    ]
    return PodView(path, spec, containers, gpus, memory)


def _v1alpha1_pods(props: Mapping[str, Any]) -> Iterator[PodView]:
    """`spec.services`, a map: the main container and the frontend sidecar sit outside the pod's
    container lists, and GPUs are the service's own `resources.*.gpu`."""
    for name, service in _mapping(_at(props, ("spec",)).get("services")).items():
        service = _mapping(service)
        path = f"spec.services.{name}"
        spec = _mapping(service.get("extraPodSpec"))
        main = spec.get("mainContainer")
        containers = (
            [(f"{path}.extraPodSpec.mainContainer", main)] if isinstance(main, Mapping) else []
        )
        containers += _listed_containers(spec, f"{path}.extraPodSpec")
        sidecar = service.get("frontendSidecar")
        if isinstance(sidecar, Mapping):
            containers.append((f"{path}.frontendSidecar", sidecar))
        gpus = [
            GpuAsk(
                f"{path}.resources.limits.gpu",
                _gpus(service, "requests", "gpu"),
                _gpus(service, "limits", "gpu"),
            )
        ]
        # Dynamo's own resource form: the service's limits are its main container's.
        memory = [
            (
                f"{path}.resources.limits.memory",
                _quantity(_at(service, ("resources", "limits")).get("memory")),
            )
        ]
        yield PodView(f"{path}.extraPodSpec", spec, containers, gpus, memory)


def _v1beta1_pods(props: Mapping[str, Any]) -> Iterator[PodView]:
    """`spec.components`, a list keyed by name, each with a real pod template (the frontend
    sidecar is one of its containers, by name)."""
    for index, component in enumerate(_sequence(_at(props, ("spec",)).get("components"))):
        component = _mapping(component)
        name = component.get("name")
        path = f"spec.components[name={name}]" if name else f"spec.components[{index}]"
        yield _pod(f"{path}.podTemplate.spec", _at(component, ("podTemplate", "spec")))


DGD_LAYOUTS: dict[str, Callable[[Mapping[str, Any]], Iterator[PodView]]] = {
    DGD_V1ALPHA1_TYPE: _v1alpha1_pods,
    DGD_V1BETA1_TYPE: _v1beta1_pods,
}


def pod_views(resource_type: str, props: Mapping[str, Any]) -> list[PodView]:
    """Pods a resource declares: a core workload's template, or each DGD service's."""
    layout = DGD_LAYOUTS.get(resource_type)
    if layout is not None:
        return list(layout(props))
    path = POD_SPEC_PATHS.get(resource_type)
    return [] if path is None else [_pod(".".join(path), _at(props, path))]


# --- GPU workloads ------------------------------------------------------------------------------


def tolerates_gpu_taint(toleration: Mapping[str, Any]) -> bool:
    """Kubernetes' matching of one toleration against the GPU nodes' NoSchedule taint."""
    if toleration.get("effect") not in (None, "", "NoSchedule"):
        return False
    key = toleration.get("key") or ""
    if toleration.get("operator") == "Exists":
        return key in ("", GPU_TAINT_KEY)
    return (
        toleration.get("operator") in (None, "", "Equal")
        and key == GPU_TAINT_KEY
        and toleration.get("value") == GPU_TAINT_VALUE
    )


def gpu_toleration_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Pods asking for GPUs must tolerate the taint every GPU node pool carries, or never start."""
    return [
        f"{describe(resource_type, props)}: {pod.path}.tolerations must tolerate the GPU taint "
        f"{GPU_TAINT_KEY}={GPU_TAINT_VALUE}:NoSchedule "
        f"(operator Exists, or Equal with value {GPU_TAINT_VALUE!r})"
        for pod in pod_views(resource_type, props)
        if pod.asks_for_gpus
        and not any(
            tolerates_gpu_taint(_mapping(t)) for t in _sequence(pod.spec.get("tolerations"))
        )
    ]


def _limit_problem(ask: GpuAsk) -> str | None:
    if ask.requested is None:
        return None
    if ask.limit is None:
        return f"{ask.limit_path} must be set: GPUs are requested as limits"
    if ask.limit != ask.requested:
        return f"{ask.limit_path} ({ask.limit}) must equal the GPUs requested ({ask.requested})"
    return None


def gpu_limit_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """GPUs are extended resources: a request without the same limit does not schedule as meant."""
    label = describe(resource_type, props)
    return [
        f"{label}: {problem}"
        for pod in pod_views(resource_type, props)
        for ask in pod.gpus
        if (problem := _limit_problem(ask))
    ]


# --- images -------------------------------------------------------------------------------------


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None: a version tag or a sha256 digest pins it."""
    reference, at, digest = image.partition("@")
    if at:
        return None if _SHA256_DIGEST.fullmatch(digest) else "has a malformed digest"
    # The tag follows the last path segment's colon; an earlier colon is a registry port.
    _, colon, tag = reference.rsplit("/", 1)[-1].partition(":")
    if not (colon and tag):
        return "has no tag (Kubernetes pulls :latest)"
    if tag == "latest":
        return "uses the :latest tag"
    return None


def _helm_image_tags(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, tag) of every `image: {tag: ...}` mapping in Helm values, the common chart layout."""
    if isinstance(value, Mapping):
        for key in value:
            child = value[key]
            if key == "image" and isinstance(child, Mapping) and "tag" in child:
                yield f"{path}.image.tag", child["tag"]
            yield from _helm_image_tags(child, f"{path}.{key}")
    else:
        for index, item in enumerate(_sequence(value)):
            yield from _helm_image_tags(item, f"{path}[{index}]")


def _helm_release_problems(props: Mapping[str, Any]) -> list[str]:
    # A chart's images follow its version; an empty or absent image tag means the chart's own.
    problems = [] if props.get("version") else ["version must pin the chart, and so its images"]
    problems += [
        f"{path} is 'latest'"
        for path, tag in _helm_image_tags(props.get("values"), "values")
        if tag == "latest"
    ]
    return problems


def image_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Images are pinned, so a preview shows every change of what runs."""
    label = describe(resource_type, props)
    if resource_type == HELM_RELEASE_TYPE:
        return [f"{label}: {problem}" for problem in _helm_release_problems(props)]
    return [
        f"{label}: {path}.image {image!r} {problem}"
        for pod in pod_views(resource_type, props)
        for path, container in pod.containers
        if isinstance(image := container.get("image"), str) and (problem := image_problem(image))
    ]


# --- exposure and host access -------------------------------------------------------------------


def _cidr_problem(entry: Any) -> str | None:
    try:
        network = ipaddress.ip_network(str(entry), strict=False)
    except ValueError:
        return "is not a CIDR"
    return "admits every address" if network.prefixlen == 0 else None


def load_balancer_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A LoadBalancer Service is reachable from outside the cluster: say from where."""
    spec = _at(props, ("spec",))
    if resource_type != SERVICE_TYPE or spec.get("type") != "LoadBalancer":
        return []
    label = describe(resource_type, props)
    ranges = _sequence(spec.get("loadBalancerSourceRanges"))
    if not ranges:
        return [f"{label}: spec.loadBalancerSourceRanges must list the CIDRs allowed in"]
    return [
        f"{label}: spec.loadBalancerSourceRanges[{index}] {entry!r} {problem}"
        for index, entry in enumerate(ranges)
        if (problem := _cidr_problem(entry))
    ]


def privileged_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A privileged container has every device and capability of its node."""
    label = describe(resource_type, props)
    return [
        f"{label}: {path}.securityContext.privileged must not be true"
        for pod in pod_views(resource_type, props)
        for path, container in pod.containers
        if _at(container, ("securityContext",)).get("privileged") is True
    ]


HOST_NAMESPACE_FIELDS = ("hostNetwork", "hostPID", "hostIPC")


def host_namespace_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A pod in the node's network is outside every NetworkPolicy; in its PID or IPC namespace
    it sees the node's processes. Either undoes the isolation between models and slots."""
    label = describe(resource_type, props)
    return [
        f"{label}: {pod.path}.{field} must not be true"
        for pod in pod_views(resource_type, props)
        for field in HOST_NAMESPACE_FIELDS
        if pod.spec.get(field) is True
    ]


def _host_paths(volumes: Any, path: str) -> Iterator[tuple[str, Any]]:
    for index, volume in enumerate(_sequence(volumes)):
        host_path = _mapping(volume).get("hostPath")
        if host_path is not None:
            yield f"{path}[{index}].hostPath", _mapping(host_path).get("path")


def host_path_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No node paths in what we declare.

    Fluid needs node paths, but in pods Fluid itself creates (its CSI plugin, cache workers),
    which are no Pulumi resources; what we declare for it is a runtime's tiered store
    (`spec.tieredstore.levels[].path`), which this rule leaves alone. A Fluid runtime's extra
    `spec.volumes` get no such pass.
    """
    found = [
        hit
        for pod in pod_views(resource_type, props)
        for hit in _host_paths(pod.spec.get("volumes"), f"{pod.path}.volumes")
    ]
    if resource_type.startswith(FLUID_TYPE_PREFIX) and resource_type.endswith("Runtime"):
        found += _host_paths(_at(props, ("spec",)).get("volumes"), "spec.volumes")
    label = describe(resource_type, props)
    return [f"{label}: {path} mounts node path {node!r}" for path, node in found]


CONFINED_SECCOMP = ("RuntimeDefault", "Localhost")


def graph_pod_hardening_violations(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A DynamoGraphDeployment's pods run under a seccomp profile, gain no privileges, and have a
    memory limit (one runaway worker cannot take its node's memory from the others)."""
    if resource_type not in DGD_LAYOUTS:
        return []
    label = describe(resource_type, props)
    found = []
    for pod in pod_views(resource_type, props):
        seccomp = _at(pod.spec, ("securityContext", "seccompProfile")).get("type")
        if seccomp not in CONFINED_SECCOMP:
            found.append(
                f"{label}: {pod.path}.securityContext.seccompProfile.type must be RuntimeDefault"
            )
        for path, container in pod.containers:
            context = _at(container, ("securityContext",))
            # A privileged container is no-privileged-containers' to report.
            escalation = context.get("allowPrivilegeEscalation")
            if context.get("privileged") is not True and escalation is not False:
                found.append(
                    f"{label}: {path}.securityContext.allowPrivilegeEscalation must be false"
                )
        found += [f"{label}: {path} must be set" for path, limit in pod.memory_limits if not limit]
    return found


# --- namespaces (whole stack) -------------------------------------------------------------------


class StackResource(Protocol):
    @property
    def resource_type(self) -> str: ...

    @property
    def props(self) -> Mapping[str, Any]: ...


R = TypeVar("R", bound=StackResource)


def _empty_selector(selector: Any) -> bool:
    selector = _mapping(selector)
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def is_default_deny(props: Mapping[str, Any]) -> bool:
    """Selects every pod, isolates both directions, allows nothing."""
    spec = _at(props, ("spec",))
    return (
        _empty_selector(spec.get("podSelector"))
        and {"Ingress", "Egress"} <= set(_sequence(spec.get("policyTypes")))
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def namespaces_without_default_deny(resources: Sequence[R]) -> list[tuple[R, str]]:
    """Namespaces we own (labelled managed-by pulumi) that no default-deny NetworkPolicy covers."""
    denied = {
        _at(r.props, ("metadata",)).get("namespace")
        for r in resources
        if r.resource_type == NETWORK_POLICY_TYPE and is_default_deny(r.props)
    }
    missing: list[tuple[R, str]] = []
    for resource in resources:
        metadata = _at(resource.props, ("metadata",))
        owned = _mapping(metadata.get("labels")).get(MANAGED_BY_LABEL) == "pulumi"
        name = metadata.get("name")
        if resource.resource_type == NAMESPACE_TYPE and owned and name not in denied:
            message = (
                f"Namespace {name}: metadata.labels[{MANAGED_BY_LABEL}] is pulumi, but no "
                "NetworkPolicy in it has spec.podSelector {}, spec.policyTypes [Ingress, Egress] "
                "and no ingress or egress rules"
            )
            missing.append((resource, message))
    return missing


# --- the policies -------------------------------------------------------------------------------


def resource_policy(name: str, description: str, rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule(args.resource_type, args.props):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _validate_default_deny(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for namespace, message in namespaces_without_default_deny(args.resources):
        report_violation(message, namespace.urn)


POLICIES: list[Policy] = [
    resource_policy(
        "gpu-pods-tolerate-gpu-taint",
        "Pods and DynamoGraphDeployment services that ask for GPUs tolerate the GPU nodes' taint.",
        gpu_toleration_violations,
    ),
    resource_policy(
        "gpus-requested-as-limits",
        "GPUs are set as limits, equal to any GPU request.",
        gpu_limit_violations,
    ),
    resource_policy(
        "images-pinned",
        "Container images carry a version tag or digest (never :latest); Helm charts a version.",
        image_violations,
    ),
    resource_policy(
        "load-balancers-restrict-sources",
        "LoadBalancer Services list loadBalancerSourceRanges, none open to every address.",
        load_balancer_violations,
    ),
    resource_policy(
        "no-privileged-containers",
        "No container, in a pod template or a DynamoGraphDeployment, runs privileged.",
        privileged_violations,
    ),
    resource_policy(
        "no-host-namespaces",
        "No pod template or DynamoGraphDeployment joins the node's network, PID or IPC namespace.",
        host_namespace_violations,
    ),
    resource_policy(
        "no-host-path-volumes",
        "No hostPath volumes; node paths only as Fluid runtimes' tiered stores.",
        host_path_violations,
    ),
    resource_policy(
        "graph-pods-hardened",
        "DynamoGraphDeployment pods: a seccomp profile, no privilege escalation, memory limits.",
        graph_pod_hardening_violations,
    ),
    StackValidationPolicy(
        name="owned-namespaces-default-deny",
        description="Every namespace the stack owns has a default-deny NetworkPolicy.",
        validate=_validate_default_deny,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
]
