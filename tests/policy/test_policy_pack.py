"""The policy pack (policy/): each rule on built resources, its wiring into pulumi-policy, and
every rendered stack passing it."""

from __future__ import annotations

import copy
import runpy
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pulumi_policy
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import unknown_checking_proxy

from components.dgd import DGD_API_VERSION, DGD_KIND, GPU_TAINT_KEY, GPU_TAINT_VALUE
from infra.offline.crd_bundle import ShippedSchemas
from infra.offline.validate import strict_schema
from infra.stack.dynamo_versions import DGD_V1BETA1, PROFILES
from policy import rules
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, STACKS, Rendered, stack_values

IMAGE = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.1.0"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ALLUXIO_RUNTIME = "kubernetes:data.fluid.io/v1alpha1:AlluxioRuntime"
TOLERATE_GPU = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
OWNED = {"app.kubernetes.io/managed-by": "pulumi"}
V1ALPHA1 = rules.DGD_V1ALPHA1_TYPE
V1BETA1 = rules.DGD_V1BETA1_TYPE
WORKER = "TRTLLMWorker"


# --- resources to check ---------------------------------------------------------------------------


def dgd(**services: dict) -> dict:
    return {
        "apiVersion": DGD_API_VERSION,
        "kind": DGD_KIND,
        "metadata": {"name": "m-blue", "namespace": "m"},
        "spec": {"services": services},
    }


# What every graph pod of ours carries (graph-pods-hardened): other rules' cases start from it.
MEMORY_LIMIT = {"memory": "2Gi"}


def seccomp() -> dict:
    return {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}}


def no_escalation() -> dict:
    return {"securityContext": {"allowPrivilegeEscalation": False}}


def frontend(**pod: Any) -> dict:
    return {
        "componentType": "frontend",
        "resources": {"limits": dict(MEMORY_LIMIT)},
        "extraPodSpec": {"mainContainer": {"image": IMAGE, **no_escalation()}, **seccomp(), **pod},
    }


def gpu_resources(key: str, requests: str | int | None, limits: str | int | None) -> dict:
    pairs = (("requests", requests), ("limits", limits))
    return {kind: {key: gpus} for kind, gpus in pairs if gpus is not None}


def gpu_worker(
    requests: str | None = "1",
    limits: str | None = "1",
    tolerations: list | None = None,
    **pod: Any,
) -> dict:
    resources = _with_memory(gpu_resources("gpu", requests, limits))
    tolerations = [TOLERATE_GPU] if tolerations is None else tolerations
    main = {"image": IMAGE, **no_escalation()}
    extra = {"mainContainer": main, "tolerations": tolerations, **seccomp()}
    return {"componentType": "worker", "resources": resources, "extraPodSpec": extra | pod}


def container(image: str = IMAGE, **fields: Any) -> dict:
    hardened = {"resources": {"limits": dict(MEMORY_LIMIT)}, **no_escalation()}
    return {"name": "c", "image": image, **hardened, **fields}


def _with_memory(resources: dict) -> dict:
    return resources | {"limits": resources.get("limits", {}) | MEMORY_LIMIT}


def gpu_container(requests: int | None = 1, limits: int | None = 1) -> dict:
    return container(resources=_with_memory(gpu_resources(rules.GPU_RESOURCE, requests, limits)))


def dgd_v1beta1(*components: dict) -> dict:
    return {
        "apiVersion": DGD_V1BETA1,
        "kind": DGD_KIND,
        "metadata": {"name": "m-blue", "namespace": "m"},
        "spec": {"components": list(components)},
    }


def component(name: str, component_type: str, *containers: dict, **pod: Any) -> dict:
    """A v1beta1 component: a real pod template, whose main container is the one named `main`."""
    spec = {"containers": list(containers) or [container(name="main")], **seccomp(), **pod}
    return {"name": name, "type": component_type, "podTemplate": {"spec": spec}}


def gpu_component(
    requests: str | None = "1",
    limits: str | None = "1",
    tolerations: list | None = None,
    **pod: Any,
) -> dict:
    resources = _with_memory(gpu_resources(rules.GPU_RESOURCE, requests, limits))
    main = container(name="main", resources=resources)
    tolerations = [TOLERATE_GPU] if tolerations is None else tolerations
    return component(WORKER, "worker", main, tolerations=tolerations, **pod)


@dataclass(frozen=True)
class Layout:
    """A DGD API version as the tests build it: a frontend and one GPU worker, and the worker's
    fields as messages name them."""

    resource_type: str
    # (requests, limits, tolerations, **pod fields) -> the DGD
    graph: Callable[..., dict]
    pod: str  # the worker's pod spec
    gpu_limit: str  # where the worker's GPU limit belongs


V1ALPHA1_LAYOUT = Layout(
    V1ALPHA1,
    lambda *worker, **pod: dgd(Frontend=frontend(), **{WORKER: gpu_worker(*worker, **pod)}),
    f"spec.services.{WORKER}.extraPodSpec",
    f"spec.services.{WORKER}.resources.limits.gpu",
)
V1BETA1_LAYOUT = Layout(
    V1BETA1,
    lambda *worker, **pod: dgd_v1beta1(
        component("Frontend", "frontend"), gpu_component(*worker, **pod)
    ),
    f"spec.components[name={WORKER}].podTemplate.spec",
    f"spec.components[name={WORKER}].podTemplate.spec.containers[0]"
    f".resources.limits[{rules.GPU_RESOURCE}]",
)
LAYOUTS = [
    pytest.param(V1ALPHA1_LAYOUT, id="v1alpha1"),
    pytest.param(V1BETA1_LAYOUT, id="v1beta1"),
]


def deployment(**pod: Any) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n"},
        "spec": {"template": {"spec": {"containers": [container()], **pod}}},
    }


def service(**spec: Any) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": spec,
    }


def helm_release(**props: Any) -> dict:
    return {
        "name": "nats",
        "namespace": "dynamo-system",
        "chart": "nats",
        "version": "1.2.3",
    } | props


def alluxio_runtime(**spec: Any) -> dict:
    tieredstore = {"levels": [{"mediumtype": "SSD", "path": "/opt/dynamo/model-cache"}]}
    return {
        "apiVersion": "data.fluid.io/v1alpha1",
        "kind": "AlluxioRuntime",
        "metadata": {"name": "weights-blue", "namespace": "m"},
        "spec": {"tieredstore": tieredstore, **spec},
    }


# --- GPU taint and limits -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gpu_service_without_the_toleration_is_named_with_its_field(layout: Layout) -> None:
    graph = layout.graph(tolerations=[{"key": "x"}])
    [message] = rules.gpu_toleration_violations(layout.resource_type, graph)
    assert message.startswith(f"DynamoGraphDeployment m/m-blue: {layout.pod}.tolerations")
    assert rules.gpu_toleration_violations(layout.resource_type, layout.graph()) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_services_without_gpus_need_no_toleration(layout: Layout) -> None:
    graph = layout.graph(requests="0", limits=None, tolerations=[])
    assert rules.gpu_toleration_violations(layout.resource_type, graph) == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_gpu_limit_alone_asks_for_gpus_too(layout: Layout) -> None:
    graph = layout.graph(requests=None, limits="2", tolerations=[])
    assert rules.gpu_toleration_violations(layout.resource_type, graph)


def test_v1beta1_gpus_are_asked_by_any_container_of_the_template() -> None:
    """Not only `main`: an init container asking for GPUs needs the toleration too."""
    init = gpu_container()
    graph = dgd_v1beta1(component(WORKER, "worker", container(name="main"), initContainers=[init]))
    [message] = rules.gpu_toleration_violations(V1BETA1, graph)
    assert f"spec.components[name={WORKER}].podTemplate.spec.tolerations" in message


@pytest.mark.parametrize(
    ("toleration", "tolerates"),
    [
        (TOLERATE_GPU, True),
        ({"key": GPU_TAINT_KEY, "operator": "Exists"}, True),  # every effect
        ({"key": GPU_TAINT_KEY, "operator": "Equal", "value": GPU_TAINT_VALUE}, True),
        ({"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": "NoSchedule"}, True),
        ({"operator": "Exists"}, True),  # an empty key with Exists tolerates every taint
        ({"key": GPU_TAINT_KEY, "operator": "Equal", "value": "false"}, False),
        ({"key": GPU_TAINT_KEY, "operator": "Equal"}, False),
        ({"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "dedicated", "operator": "Exists"}, False),
    ],
)
def test_toleration_matching_follows_kubernetes(toleration: dict, tolerates: bool) -> None:
    assert rules.tolerates_gpu_taint(toleration) is tolerates


def test_core_pods_asking_for_gpus_need_the_toleration() -> None:
    props = deployment(containers=[container(), gpu_container()])
    [message] = rules.gpu_toleration_violations(DEPLOYMENT, props)
    assert message.startswith("Deployment n/d: spec.template.spec.tolerations must tolerate")
    props["spec"]["template"]["spec"]["tolerations"] = [TOLERATE_GPU]
    assert rules.gpu_toleration_violations(DEPLOYMENT, props) == []


def test_cron_jobs_are_read_at_their_job_template() -> None:
    job = {"template": {"spec": {"containers": [gpu_container()]}}}
    props = {"metadata": {"name": "j", "namespace": "n"}, "spec": {"jobTemplate": {"spec": job}}}
    [message] = rules.gpu_toleration_violations("kubernetes:batch/v1:CronJob", props)
    assert "spec.jobTemplate.spec.template.spec.tolerations" in message


@pytest.mark.parametrize(
    ("requests", "limits", "problem"),
    [
        ("8", None, "must be set: GPUs are requested as limits"),
        ("8", "4", "(4) must equal the GPUs requested (8)"),
        ("8", "8", None),
        (None, "8", None),
    ],
)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_dgd_gpus_are_requested_as_limits(
    layout: Layout, requests: str | None, limits: str | None, problem: str | None
) -> None:
    found = rules.gpu_limit_violations(layout.resource_type, layout.graph(requests, limits))
    expected = f"DynamoGraphDeployment m/m-blue: {layout.gpu_limit} {problem}"
    assert found == ([expected] if problem else [])


def test_core_containers_set_gpu_limits() -> None:
    props = deployment(
        containers=[gpu_container()],
        initContainers=[gpu_container(requests=2, limits=None)],
        tolerations=[TOLERATE_GPU],
    )
    [message] = rules.gpu_limit_violations(DEPLOYMENT, props)
    assert "spec.template.spec.initContainers[0].resources.limits[nvidia.com/gpu] must be set" in (
        message
    )


# --- images ---------------------------------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (IMAGE, None),
        (f"nvcr.io/nvidia/dynamo@{DIGEST}", None),
        (f"nvcr.io/nvidia/dynamo:latest@{DIGEST}", None),  # the digest decides
        ("registry.local:5000/dynamo:1.1.0", None),
        ("nvcr.io/nvidia/dynamo", "has no tag"),
        ("registry.local:5000/dynamo", "has no tag"),  # a port is no tag
        ("dynamo:", "has no tag"),
        ("dynamo:latest", "uses the :latest tag"),
        ("dynamo@sha256:abc", "has a malformed digest"),
    ],
)
def test_image_pinning(image: str, problem: str | None) -> None:
    found = rules.image_problem(image)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(problem)


def test_every_dgd_container_image_is_pinned() -> None:
    worker = gpu_worker(initContainers=[container("busybox")])
    worker["frontendSidecar"] = {"image": "frontend:latest"}
    graph = dgd(Frontend=frontend(containers=[container(IMAGE)]), W=worker)
    graph["spec"]["services"]["Frontend"]["extraPodSpec"]["mainContainer"]["image"] = "dynamo"
    assert [m.split(" '")[0] for m in rules.image_violations(V1ALPHA1, graph)] == [
        "DynamoGraphDeployment m/m-blue: spec.services.Frontend.extraPodSpec.mainContainer.image",
        "DynamoGraphDeployment m/m-blue: spec.services.W.extraPodSpec.initContainers[0].image",
        "DynamoGraphDeployment m/m-blue: spec.services.W.frontendSidecar.image",
    ]


def test_every_v1beta1_container_image_is_pinned() -> None:
    """Every container of the template, the frontend sidecar (a container it names) included."""
    sidecar = container("frontend:latest", name="sidecar")
    worker = component(
        WORKER,
        "worker",
        container("dynamo", name="main"),
        sidecar,
        initContainers=[container("busybox")],
        ephemeralContainers=[container(f"debug@{DIGEST}")],
    )
    worker["frontendSidecar"] = "sidecar"
    graph = dgd_v1beta1(component("Frontend", "frontend"), worker)
    pod = f"spec.components[name={WORKER}].podTemplate.spec"
    assert rules.image_violations(V1BETA1, graph) == [
        f"DynamoGraphDeployment m/m-blue: {pod}.initContainers[0].image 'busybox' has no tag "
        "(Kubernetes pulls :latest)",
        f"DynamoGraphDeployment m/m-blue: {pod}.containers[0].image 'dynamo' has no tag "
        "(Kubernetes pulls :latest)",
        f"DynamoGraphDeployment m/m-blue: {pod}.containers[1].image 'frontend:latest' uses the "
        ":latest tag",
    ]


def test_core_pod_images_are_pinned() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n"}, "spec": {"containers": [container("x")]}}
    assert rules.image_violations("kubernetes:core/v1:Pod", pod) == [
        "Pod n/p: spec.containers[0].image 'x' has no tag (Kubernetes pulls :latest)"
    ]


def test_helm_releases_pin_their_chart_and_never_ask_for_latest_images() -> None:
    values = {"nats": {"container": {"image": {"tag": "latest"}}}, "jobs": [{"image": {"tag": ""}}]}
    release = helm_release(values=values)
    release.pop("version")
    assert rules.image_violations(rules.HELM_RELEASE_TYPE, release) == [
        "Release dynamo-system/nats: version must pin the chart, and so its images",
        "Release dynamo-system/nats: values.nats.container.image.tag is 'latest'",
    ]
    pinned = helm_release(values={"image": {"repository": "nats", "tag": "2.10"}})
    assert rules.image_violations(rules.HELM_RELEASE_TYPE, pinned) == []


# --- LoadBalancers, privileges, host paths --------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"type": "ClusterIP"}, []),
        ({"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]}, []),
        (
            {"type": "LoadBalancer"},
            ["spec.loadBalancerSourceRanges must list the CIDRs allowed in"],
        ),
        (
            {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8", "0.0.0.0/0"]},
            ["spec.loadBalancerSourceRanges[1] '0.0.0.0/0' admits every address"],
        ),
        (
            {"type": "LoadBalancer", "loadBalancerSourceRanges": ["::/0", "office"]},
            [
                "spec.loadBalancerSourceRanges[0] '::/0' admits every address",
                "spec.loadBalancerSourceRanges[1] 'office' is not a CIDR",
            ],
        ),
    ],
)
def test_load_balancers_restrict_their_sources(spec: dict, problems: list[str]) -> None:
    found = rules.load_balancer_violations(rules.SERVICE_TYPE, service(**spec))
    assert found == [f"Service n/s: {problem}" for problem in problems]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_host_namespaces_are_found_in_dgds(layout: Layout) -> None:
    graph = layout.graph(hostNetwork=True, hostPID=False)
    assert rules.host_namespace_violations(layout.resource_type, graph) == [
        f"DynamoGraphDeployment m/m-blue: {layout.pod}.hostNetwork must not be true"
    ]


def test_host_namespaces_are_found_in_pod_templates() -> None:
    assert rules.host_namespace_violations(DEPLOYMENT, deployment()) == []
    [message] = rules.host_namespace_violations(DEPLOYMENT, deployment(hostIPC=True))
    assert message.endswith("spec.template.spec.hostIPC must not be true")


def test_privileged_containers_are_found_in_dgds_and_pod_templates() -> None:
    privileged = {"securityContext": {"privileged": True}}
    worker = gpu_worker(containers=[container(**privileged)])
    worker["extraPodSpec"]["mainContainer"] |= privileged
    assert rules.privileged_violations(V1ALPHA1, dgd(W=worker)) == [
        f"DynamoGraphDeployment m/m-blue: spec.services.W.extraPodSpec.{field}"
        ".securityContext.privileged must not be true"
        for field in ("mainContainer", "containers[0]")
    ]
    props = deployment(initContainers=[container(securityContext={"privileged": False})])
    assert rules.privileged_violations(DEPLOYMENT, props) == []
    props = deployment(initContainers=[container(**privileged)])
    [message] = rules.privileged_violations(DEPLOYMENT, props)
    assert "spec.template.spec.initContainers[0].securityContext.privileged" in message


def test_privileged_v1beta1_containers_are_found_in_the_template() -> None:
    privileged = {"securityContext": {"privileged": True}}
    worker = component(
        WORKER, "worker", container(name="main", **privileged), initContainers=[container()]
    )
    assert rules.privileged_violations(V1BETA1, dgd_v1beta1(worker)) == [
        f"DynamoGraphDeployment m/m-blue: spec.components[name={WORKER}].podTemplate.spec"
        ".containers[0].securityContext.privileged must not be true"
    ]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_graph_pods_need_seccomp_no_escalation_and_memory_limits(layout: Layout) -> None:
    assert rules.graph_pod_hardening_violations(layout.resource_type, layout.graph()) == []
    [message] = rules.graph_pod_hardening_violations(
        layout.resource_type, layout.graph(securityContext={})
    )
    assert message.endswith(
        f"{layout.pod}.securityContext.seccompProfile.type must be RuntimeDefault"
    )
    escalating = layout.graph()
    worker = rules.pod_views(layout.resource_type, escalating)[1]
    for _, container in worker.containers:
        container["securityContext"]["allowPrivilegeEscalation"] = True  # type: ignore[index]
    [message] = rules.graph_pod_hardening_violations(layout.resource_type, escalating)
    assert "allowPrivilegeEscalation must be false" in message


def test_a_graph_without_memory_limits_is_named_at_the_limit() -> None:
    graph = dgd(W=gpu_worker())
    del graph["spec"]["services"]["W"]["resources"]["limits"]["memory"]
    assert rules.graph_pod_hardening_violations(V1ALPHA1, graph) == [
        "DynamoGraphDeployment m/m-blue: spec.services.W.resources.limits.memory must be set"
    ]


HOST_PATH_VOLUMES = [
    {"name": "cfg", "configMap": {"name": "c"}},
    {"name": "h", "hostPath": {"path": "/"}},
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_host_path_volumes_are_found_in_dgds(layout: Layout) -> None:
    graph = layout.graph(volumes=HOST_PATH_VOLUMES)
    assert rules.host_path_violations(layout.resource_type, graph) == [
        f"DynamoGraphDeployment m/m-blue: {layout.pod}.volumes[1].hostPath mounts node path '/'"
    ]


def test_host_path_volumes_are_found_in_pod_templates() -> None:
    daemon_set = deployment(volumes=HOST_PATH_VOLUMES)
    [message] = rules.host_path_violations("kubernetes:apps/v1:DaemonSet", daemon_set)
    assert "spec.template.spec.volumes[1].hostPath" in message


def test_fluid_tiered_stores_are_the_only_node_paths_allowed() -> None:
    assert rules.host_path_violations(ALLUXIO_RUNTIME, alluxio_runtime()) == []
    extra = alluxio_runtime(volumes=[{"name": "h", "hostPath": {"path": "/var/lib"}}])
    assert rules.host_path_violations(ALLUXIO_RUNTIME, extra) == [
        "AlluxioRuntime m/weights-blue: spec.volumes[0].hostPath mounts node path '/var/lib'"
    ]


# --- default deny (whole stack) -------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    resource_type: str
    props: Mapping[str, Any]


def namespace(name: str, labels: dict | None = None) -> Resource:
    return Resource(
        rules.NAMESPACE_TYPE,
        {"metadata": {"name": name, "labels": OWNED if labels is None else labels}},
    )


def network_policy(in_namespace: str, **spec: Any) -> Resource:
    spec = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]} | spec
    metadata = {"name": "default-deny", "namespace": in_namespace}
    return Resource(rules.NETWORK_POLICY_TYPE, {"metadata": metadata, "spec": spec})


@pytest.mark.parametrize(
    ("spec", "denies"),
    [
        ({}, True),
        ({"podSelector": {"matchLabels": {}}}, True),
        ({"podSelector": {"matchLabels": {"app": "x"}}}, False),
        ({"policyTypes": ["Ingress"]}, False),
        ({"ingress": [{"from": [{"podSelector": {}}]}]}, False),
        ({"egress": [{"ports": [{"port": 53}]}]}, False),
    ],
)
def test_default_deny_selects_all_pods_both_ways_and_allows_nothing(
    spec: dict, denies: bool
) -> None:
    assert rules.is_default_deny(network_policy("n", **spec).props) is denies


def test_owned_namespaces_without_default_deny_are_reported() -> None:
    covered, bare, foreign = namespace("m"), namespace("gpu-system"), namespace("kube-system", {})
    elsewhere = network_policy("other")
    resources = [covered, bare, foreign, network_policy("m"), elsewhere]
    [(resource, message)] = rules.namespaces_without_default_deny(resources)
    assert resource is bare
    assert message.startswith("Namespace gpu-system: metadata.labels[app.kubernetes.io/managed-by]")
    assert "spec.podSelector {}" in message


# --- wiring into pulumi-policy --------------------------------------------------------------------

OPTIONS = PolicyResourceOptions(
    protect=False,
    ignore_changes=[],
    delete_before_replace=None,
    aliases=[],
    custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
    additional_secret_outputs=[],
)


def urn(resource_type: str, name: str) -> str:
    return f"urn:pulumi:test::dynamo-trtllm::{resource_type}::{name}"


def policy_named(name: str) -> pulumi_policy.Policy:
    [policy] = [p for p in rules.POLICIES if p.name == name]
    return policy


def resource_violations(
    policy: ResourceValidationPolicy, resource_type: str, props: Mapping[str, Any]
) -> list[str]:
    """What the policy reports for one resource, given as pulumi-policy gives it: proxied props."""
    reported: list[tuple[str, str | None]] = []
    args = ResourceValidationArgs(
        resource_type,
        unknown_checking_proxy(dict(props)),
        urn(resource_type, "r"),
        "r",
        OPTIONS,
        None,
    )
    policy.validate(args, lambda message, at=None: reported.append((message, at)))
    assert all(at is None for _, at in reported)  # the engine attaches the resource's URN itself
    return [message for message, _ in reported]


def stack_violations(resources: list[Resource]) -> list[tuple[str, str | None]]:
    stack_policy = policy_named("owned-namespaces-default-deny")
    assert isinstance(stack_policy, StackValidationPolicy)
    policy_resources = [
        PolicyResource(
            r.resource_type,
            unknown_checking_proxy(dict(r.props)),
            urn(r.resource_type, f"r{index}"),
            f"r{index}",
            OPTIONS,
            None,
            None,
            [],
            {},
        )
        for index, r in enumerate(resources)
    ]
    reported: list[tuple[str, str | None]] = []
    stack_policy.validate(
        StackValidationArgs(policy_resources),
        lambda message, at=None: reported.append((message, at)),
    )
    return reported


def resource_policies() -> list[ResourceValidationPolicy]:
    return [p for p in rules.POLICIES if isinstance(p, ResourceValidationPolicy)]


def test_every_policy_is_mandatory_and_named_once() -> None:
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names))
    assert {p.enforcement_level for p in rules.POLICIES} == {EnforcementLevel.MANDATORY}


FAILING = [
    (
        "gpu-pods-tolerate-gpu-taint",
        rules.gpu_toleration_violations,
        V1ALPHA1,
        dgd(W=gpu_worker(tolerations=[{"key": "x"}])),
    ),
    (
        "gpus-requested-as-limits",
        rules.gpu_limit_violations,
        V1ALPHA1,
        dgd(W=gpu_worker(limits=None)),
    ),
    ("images-pinned", rules.image_violations, rules.HELM_RELEASE_TYPE, helm_release(version="")),
    (
        "load-balancers-restrict-sources",
        rules.load_balancer_violations,
        rules.SERVICE_TYPE,
        service(type="LoadBalancer"),
    ),
    (
        "no-privileged-containers",
        rules.privileged_violations,
        DEPLOYMENT,
        deployment(containers=[container(securityContext={"privileged": True})]),
    ),
    (
        "no-host-namespaces",
        rules.host_namespace_violations,
        DEPLOYMENT,
        deployment(hostNetwork=True),
    ),
    (
        "no-host-path-volumes",
        rules.host_path_violations,
        ALLUXIO_RUNTIME,
        alluxio_runtime(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
    ),
    (
        "graph-pods-hardened",
        rules.graph_pod_hardening_violations,
        V1ALPHA1,
        dgd(F=frontend(securityContext={})),
    ),
]


# Every policy that reads DGDs, on a v1beta1 DGD that fails it alone.
V1BETA1_FAILING = [
    (
        "gpu-pods-tolerate-gpu-taint",
        rules.gpu_toleration_violations,
        V1BETA1,
        dgd_v1beta1(gpu_component(tolerations=[{"key": "x"}])),
    ),
    (
        "gpus-requested-as-limits",
        rules.gpu_limit_violations,
        V1BETA1,
        dgd_v1beta1(gpu_component(limits=None)),
    ),
    (
        "images-pinned",
        rules.image_violations,
        V1BETA1,
        dgd_v1beta1(component("Frontend", "frontend", container("dynamo:latest", name="main"))),
    ),
    (
        "no-privileged-containers",
        rules.privileged_violations,
        V1BETA1,
        dgd_v1beta1(
            gpu_component(initContainers=[container(securityContext={"privileged": True})])
        ),
    ),
    (
        "no-host-namespaces",
        rules.host_namespace_violations,
        V1BETA1,
        dgd_v1beta1(gpu_component(hostPID=True)),
    ),
    (
        "no-host-path-volumes",
        rules.host_path_violations,
        V1BETA1,
        dgd_v1beta1(gpu_component(volumes=HOST_PATH_VOLUMES)),
    ),
    (
        "graph-pods-hardened",
        rules.graph_pod_hardening_violations,
        V1BETA1,
        dgd_v1beta1(component("Frontend", "frontend", container(name="main", resources={}))),
    ),
]


@pytest.mark.parametrize(("name", "rule", "resource_type", "props"), FAILING + V1BETA1_FAILING)
def test_each_resource_policy_reports_its_rule_through_pulumi_args(
    name: str, rule: rules.Rule, resource_type: str, props: dict
) -> None:
    policy = policy_named(name)
    assert isinstance(policy, ResourceValidationPolicy)
    found = resource_violations(policy, resource_type, props)
    assert found
    assert found == rule(resource_type, props)
    # and every other policy lets the resource be
    others = [p for p in resource_policies() if p.name != name]
    assert [m for p in others for m in resource_violations(p, resource_type, props)] == []


def test_every_resource_policy_has_a_failing_case() -> None:
    assert [name for name, *_ in FAILING] == [p.name for p in resource_policies()]
    reading_dgds = [
        p.name for p in resource_policies() if p.name != "load-balancers-restrict-sources"
    ]
    assert [name for name, *_ in V1BETA1_FAILING] == reading_dgds


def test_the_v1beta1_dgds_built_here_are_valid_ones() -> None:
    """Against the v1beta1 schema shipped for Dynamo 1.2.0: the rules are tested on what the API
    server would take."""
    shipped = ShippedSchemas.for_pins({"dynamo_platform": PROFILES["1.2.0"].platform_chart})
    validator = jsonschema.Draft202012Validator(strict_schema(shipped.get(DGD_V1BETA1, DGD_KIND)))
    graphs = [props for *_, props in V1BETA1_FAILING] + [V1BETA1_LAYOUT.graph()]
    assert [error.message for graph in graphs for error in validator.iter_errors(graph)] == []


def test_the_stack_policy_reports_each_bare_namespace_at_its_urn() -> None:
    reported = stack_violations([namespace("m"), namespace("keda"), network_policy("m")])
    assert [(message.split(":")[0], at) for message, at in reported] == [
        ("Namespace keda", urn(rules.NAMESPACE_TYPE, "r1"))
    ]


def test_the_pack_entry_point_builds_one_pack_of_every_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: list[dict] = []
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.append(kwargs))
    try:
        # As Pulumi's python policy host does: run the pack directory as a script.
        runpy.run_path(str(PROJECT_ROOT / "policy"), run_name="__main__")
    finally:
        sys.modules.pop("rules", None)  # the script's own import of rules.py
    [pack] = built
    assert pack["name"] == "dynamo-trtllm-security"
    assert [p.name for p in pack["policies"]] == [p.name for p in rules.POLICIES]


def test_the_pack_agrees_with_the_program_and_pins_its_sdk_like_the_dev_extra() -> None:
    assert (rules.GPU_TAINT_KEY, rules.GPU_TAINT_VALUE) == (GPU_TAINT_KEY, GPU_TAINT_VALUE)
    # Every DGD API version the program emits, for any Dynamo release, is one the pack reads.
    emitted = {DGD_API_VERSION} | {profile.dgd_api_version for profile in PROFILES.values()}
    assert {f"kubernetes:{version}:{DGD_KIND}" for version in emitted} <= set(rules.DGD_LAYOUTS)
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    dev = pyproject["project"]["optional-dependencies"]["dev"]
    requirements = (PROJECT_ROOT / "policy" / "requirements.txt").read_text().split()
    assert requirements == [r for r in dev if r.startswith("pulumi-policy")]


# --- rendered stacks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedStack:
    network_policies: bool
    resources: list[Resource]


@pytest.fixture(scope="module")
def policy_view(rendered: dict[str, Rendered]) -> dict[str, RenderedStack]:
    """Each stack's resources as a policy pack sees them: Kubernetes objects render as their props;
    Helm releases render with the `name`, `namespace`, `version` and `values` the rules read."""
    stacks = {}
    for stack, render in rendered.items():
        resources = [Resource(entry["type"], render.load(entry)) for entry in render.index]
        security = stack_values(stack).get("dynamo-trtllm:security", {})
        stacks[stack] = RenderedStack(security.get("networkPolicies", True), resources)
    return stacks


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_stacks_pass_every_resource_policy(
    policy_view: dict[str, RenderedStack], stack: str
) -> None:
    found = [
        message
        for policy in resource_policies()
        for r in policy_view[stack].resources
        for message in resource_violations(policy, r.resource_type, r.props)
    ]
    assert found == []


def gpu_pod_specs(graph: dict) -> list[dict]:
    """The pod spec of each service asking for GPUs, read straight from the DGD, in its layout."""
    spec = graph["spec"]
    if "services" in spec:  # v1alpha1: the service's own resources
        return [
            service["extraPodSpec"]
            for service in spec["services"].values()
            if "gpu" in service.get("resources", {}).get("limits", {})
        ]
    pods = [component["podTemplate"]["spec"] for component in spec["components"]]
    return [
        pod
        for pod in pods
        if any(
            rules.GPU_RESOURCE in c.get("resources", {}).get("limits", {})
            for c in pod["containers"]
        )
    ]


def toleration_violations(graphs: list[dict]) -> list[str]:
    policy = policy_named("gpu-pods-tolerate-gpu-taint")
    assert isinstance(policy, ResourceValidationPolicy)
    return [
        m
        for g in graphs
        for m in resource_violations(policy, f"kubernetes:{g['apiVersion']}:{DGD_KIND}", g)
    ]


def test_the_rules_read_the_program_s_real_dgd_layout(
    policy_view: dict[str, RenderedStack],
) -> None:
    """Without their tolerations, prod's GPU workers are each reported: the rules are not vacuous."""
    graphs = [
        copy.deepcopy(r.props)
        for r in policy_view["prod"].resources
        if r.resource_type in rules.DGD_LAYOUTS
    ]
    gpu_pods = [pod for graph in graphs for pod in gpu_pod_specs(graph)]
    for pod in gpu_pods:
        pod.pop("tolerations")
    assert gpu_pods
    assert len(toleration_violations(graphs)) == len(gpu_pods)


def test_the_rules_read_upstream_v1beta1_dgds(reference: Path) -> None:
    """Dynamo 1.2.0's own v1beta1 TRT-LLM examples tolerate no taint: each GPU component is
    reported, and once it tolerates the GPU taint no policy has anything to say."""
    examples = sorted(
        (reference / "dynamo-1.2.0" / "examples" / "deploy" / "v1beta1").glob("*.yaml")
    )
    graphs = [
        document
        for path in examples
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == DGD_KIND
    ]
    assert {graph["apiVersion"] for graph in graphs} == {DGD_V1BETA1}
    gpu_pods = [pod for graph in graphs for pod in gpu_pod_specs(graph)]
    assert gpu_pods
    assert len(toleration_violations(graphs)) == len(gpu_pods)
    for pod in gpu_pods:
        pod["tolerations"] = [TOLERATE_GPU]
    # Upstream's examples set no seccomp profile, escalation or memory limit: the one policy
    # that speaks about what our emitter adds.
    hardening = policy_named("graph-pods-hardened")
    assert isinstance(hardening, ResourceValidationPolicy)
    unhardened = [m for g in graphs for m in resource_violations(hardening, V1BETA1, g)]
    assert any("seccompProfile" in m for m in unhardened)
    others = [p for p in resource_policies() if p is not hardening]
    found = [m for p in others for g in graphs for m in resource_violations(p, V1BETA1, g)]
    assert found == []


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_rendered_owned_namespaces_have_default_deny(
    policy_view: dict[str, RenderedStack], stack: str
) -> None:
    """A stack that turns NetworkPolicies off is skipped: its owner disables the policy instead."""
    if not policy_view[stack].network_policies:
        pytest.skip("security.networkPolicies is false: disable the policy in the policy config")
    resources = policy_view[stack].resources
    assert any(r.resource_type == rules.NAMESPACE_TYPE for r in resources)
    assert [message for message, _ in stack_violations(resources)] == []
