"""The policy pack (policy/): each rule on built resources, its wiring into pulumi-policy, and
every rendered stack passing it."""

from __future__ import annotations

import copy
import runpy
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi_policy
import pytest
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
from policy import rules
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, STACKS, Rendered, stack_values

IMAGE = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.1.0"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ALLUXIO_RUNTIME = "kubernetes:data.fluid.io/v1alpha1:AlluxioRuntime"
TOLERATE_GPU = {"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}
OWNED = {"app.kubernetes.io/managed-by": "pulumi"}


# --- resources to check ---------------------------------------------------------------------------


def dgd(**services: dict) -> dict:
    return {
        "apiVersion": DGD_API_VERSION,
        "kind": DGD_KIND,
        "metadata": {"name": "m-blue", "namespace": "m"},
        "spec": {"services": services},
    }


def frontend(**pod: Any) -> dict:
    return {"componentType": "frontend", "extraPodSpec": {"mainContainer": {"image": IMAGE}, **pod}}


def gpu_resources(key: str, requests: str | int | None, limits: str | int | None) -> dict:
    pairs = (("requests", requests), ("limits", limits))
    return {kind: {key: gpus} for kind, gpus in pairs if gpus is not None}


def gpu_worker(
    requests: str | None = "1",
    limits: str | None = "1",
    tolerations: list | None = None,
    **pod: Any,
) -> dict:
    resources = gpu_resources("gpu", requests, limits)
    tolerations = [TOLERATE_GPU] if tolerations is None else tolerations
    extra = {"mainContainer": {"image": IMAGE}, "tolerations": tolerations}
    return {"componentType": "worker", "resources": resources, "extraPodSpec": extra | pod}


def container(image: str = IMAGE, **fields: Any) -> dict:
    return {"name": "c", "image": image, **fields}


def gpu_container(requests: int | None = 1, limits: int | None = 1) -> dict:
    return container(resources=gpu_resources(rules.GPU_RESOURCE, requests, limits))


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


def test_gpu_service_without_the_toleration_is_named_with_its_field() -> None:
    graph = dgd(Frontend=frontend(), decode=gpu_worker(tolerations=[{"key": "x"}]))
    [message] = rules.gpu_toleration_violations(rules.DGD_TYPE, graph)
    assert message.startswith(
        "DynamoGraphDeployment m/m-blue: spec.services.decode.extraPodSpec.tolerations"
    )


def test_services_without_gpus_need_no_toleration() -> None:
    graph = dgd(Frontend=frontend(), Mocker=gpu_worker(requests="0", limits=None, tolerations=[]))
    assert rules.gpu_toleration_violations(rules.DGD_TYPE, graph) == []


def test_a_gpu_limit_alone_asks_for_gpus_too() -> None:
    worker = gpu_worker(requests=None, limits="2", tolerations=[])
    assert rules.gpu_toleration_violations(rules.DGD_TYPE, dgd(W=worker))


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
        (
            "8",
            None,
            "spec.services.W.resources.limits.gpu must be set: GPUs are requested as limits",
        ),
        ("8", "4", "spec.services.W.resources.limits.gpu (4) must equal the GPUs requested (8)"),
        ("8", "8", None),
        (None, "8", None),
    ],
)
def test_dgd_gpus_are_requested_as_limits(
    requests: str | None, limits: str | None, problem: str | None
) -> None:
    found = rules.gpu_limit_violations(rules.DGD_TYPE, dgd(W=gpu_worker(requests, limits)))
    assert found == ([f"DynamoGraphDeployment m/m-blue: {problem}"] if problem else [])


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
    assert [m.split(" '")[0] for m in rules.image_violations(rules.DGD_TYPE, graph)] == [
        "DynamoGraphDeployment m/m-blue: spec.services.Frontend.extraPodSpec.mainContainer.image",
        "DynamoGraphDeployment m/m-blue: spec.services.W.extraPodSpec.initContainers[0].image",
        "DynamoGraphDeployment m/m-blue: spec.services.W.frontendSidecar.image",
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


def test_host_namespaces_are_found_in_dgds_and_pod_templates() -> None:
    worker = gpu_worker()
    worker["extraPodSpec"] |= {"hostNetwork": True, "hostPID": False}
    assert rules.host_namespace_violations(rules.DGD_TYPE, dgd(W=worker)) == [
        "DynamoGraphDeployment m/m-blue: spec.services.W.extraPodSpec.hostNetwork must not be true"
    ]
    assert rules.host_namespace_violations(DEPLOYMENT, deployment()) == []
    [message] = rules.host_namespace_violations(DEPLOYMENT, deployment(hostIPC=True))
    assert message.endswith("spec.template.spec.hostIPC must not be true")


def test_privileged_containers_are_found_in_dgds_and_pod_templates() -> None:
    privileged = {"securityContext": {"privileged": True}}
    worker = gpu_worker(containers=[container(**privileged)])
    worker["extraPodSpec"]["mainContainer"] |= privileged
    assert rules.privileged_violations(rules.DGD_TYPE, dgd(W=worker)) == [
        f"DynamoGraphDeployment m/m-blue: spec.services.W.extraPodSpec.{field}"
        ".securityContext.privileged must not be true"
        for field in ("mainContainer", "containers[0]")
    ]
    props = deployment(initContainers=[container(securityContext={"privileged": False})])
    assert rules.privileged_violations(DEPLOYMENT, props) == []
    props = deployment(initContainers=[container(**privileged)])
    [message] = rules.privileged_violations(DEPLOYMENT, props)
    assert "spec.template.spec.initContainers[0].securityContext.privileged" in message


def test_host_path_volumes_are_found_in_dgds_and_pod_templates() -> None:
    volumes = [
        {"name": "cfg", "configMap": {"name": "c"}},
        {"name": "h", "hostPath": {"path": "/"}},
    ]
    assert rules.host_path_violations(rules.DGD_TYPE, dgd(W=gpu_worker(volumes=volumes))) == [
        "DynamoGraphDeployment m/m-blue: spec.services.W.extraPodSpec.volumes[1].hostPath "
        "mounts node path '/'"
    ]
    daemon_set = deployment(volumes=volumes)
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
        rules.DGD_TYPE,
        dgd(W=gpu_worker(tolerations=[{"key": "x"}])),
    ),
    (
        "gpus-requested-as-limits",
        rules.gpu_limit_violations,
        rules.DGD_TYPE,
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
]


@pytest.mark.parametrize(("name", "rule", "resource_type", "props"), FAILING)
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
    assert f"kubernetes:{DGD_API_VERSION}:{DGD_KIND}" == rules.DGD_TYPE
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


def test_the_rules_read_the_program_s_real_dgd_layout(
    policy_view: dict[str, RenderedStack],
) -> None:
    """Without their tolerations, prod's GPU workers are each reported: the rules are not vacuous."""
    graphs = [
        copy.deepcopy(r.props)
        for r in policy_view["prod"].resources
        if r.resource_type == rules.DGD_TYPE
    ]
    gpu_services = 0
    for graph in graphs:
        for service_spec in graph["spec"]["services"].values():
            if "gpu" in service_spec.get("resources", {}).get("limits", {}):
                gpu_services += 1
                service_spec["extraPodSpec"].pop("tolerations")
    policy = policy_named("gpu-pods-tolerate-gpu-taint")
    assert isinstance(policy, ResourceValidationPolicy)
    found = [m for g in graphs for m in resource_violations(policy, rules.DGD_TYPE, g)]
    assert gpu_services > 0
    assert len(found) == gpu_services


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
