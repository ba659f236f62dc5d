"""Admission policies: what the API server refuses from anyone but the stack's own identities.

The policy pack sees only what Pulumi writes. A principal with the deployer Role could otherwise
write a DynamoGraphDeployment whose pods the operator builds privileged, in the host's
namespaces or with host paths; or a Service with external IPs (CVE-2020-8554). These
ValidatingAdmissionPolicies (admissionregistration.k8s.io/v1, GA in Kubernetes 1.30) refuse such
objects at admission for every user except the deploy identities and the controllers that
write them back (the Dynamo operator, Fluid). CEL sticks to the standard macros (has, all,
exists, filter, map), so a standard CEL evaluator can check every branch in tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.dgd_parts import MODEL_LABEL
from components.network_policies import NAMESPACE_KIND_LABEL, NamespaceKind

ADMISSION_API = "admissionregistration.k8s.io/v1"
# Only the model namespaces, where the deployer and promoter Roles hold rights: the platform's
# namespaces run controllers (prometheus-operator, KEDA, Helm's release Secrets) that write
# objects these policies would refuse.
SERVING_NAMESPACES = {"matchLabels": {NAMESPACE_KIND_LABEL: NamespaceKind.SERVING.value}}


@dataclass(frozen=True)
class Exemptions:
    """Who the policies do not apply to: exact usernames and username prefixes (e.g. an IAM
    role's `arn:aws:sts::<account>:assumed-role/<name>/`, a controller's service accounts)."""

    usernames: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def match_condition(self) -> dict:
        exact = f"request.userInfo.username in {_cel_list(self.usernames)}"
        prefixed = f"{_cel_list(self.prefixes)}.exists(p, request.userInfo.username.startsWith(p))"
        return {"name": "not-a-stack-identity", "expression": f"!({exact} || {prefixed})"}


@dataclass(frozen=True)
class AdmissionRules:
    """What our own objects need, so the policies allow exactly that."""

    exemptions: Exemptions
    allowed_capabilities: tuple[str, ...] = ()  # added Linux capabilities our workers need
    cache_paths: tuple[str, ...] = ()  # tiered-store paths of our Fluid runtimes
    weight_sources: tuple[str, ...] = field(default=())  # Dataset mount points (s3://...)
    secret_names: tuple[str, ...] = ()  # the Secrets the deployer may write
    # The Gateway every model's HTTPRoute attaches to (name, namespace), and the domain under
    # which each route answers `<route name>.<domain>`; None: the stack writes no routes.
    gateway: tuple[str, str] | None = None
    route_domain: str = ""


def _cel_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in sorted(set(items))) + "]"


def _container_ok(c: str, allowed: str) -> str:
    """A container that is not privileged and adds no capability outside `allowed`."""
    return (
        f"!(has({c}.securityContext) && has({c}.securityContext.privileged) && "
        f"{c}.securityContext.privileged) && "
        f"!(has({c}.securityContext) && has({c}.securityContext.capabilities) && "
        f"has({c}.securityContext.capabilities.add) && "
        f"{c}.securityContext.capabilities.add.exists(x, !(x in {allowed})))"
    )


# Pod Security "baseline" (kubernetes.io/docs/concepts/security/pod-security-standards): what a
# model namespace holding a Fluid cache cannot enforce by label, since it must be `privileged`.
SELINUX_TYPES = ("container_t", "container_init_t", "container_kvm_t", "container_engine_t")
SAFE_SYSCTLS = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_syncookies",
)


def _security_context_baseline(context: str) -> str:
    """A pod's or container's securityContext within baseline: no unconfined seccomp or
    AppArmor, SELinux only a container type with no user or role."""
    selinux = f"{context}.seLinuxOptions"
    return (
        f"!(has({context}) && ("
        f"(has({context}.seccompProfile) && {context}.seccompProfile.type == 'Unconfined') || "
        f"(has({context}.appArmorProfile) && {context}.appArmorProfile.type == 'Unconfined') || "
        f"(has({selinux}) && ((has({selinux}.type) && !({selinux}.type in "
        f"{_cel_list(SELINUX_TYPES)})) || has({selinux}.user) || has({selinux}.role)))))"
    )


def _container_baseline(c: str) -> str:
    """No host ports, no unmasked /proc, and its securityContext within baseline."""
    return (
        f"!(has({c}.ports) && {c}.ports.exists(p, has(p.hostPort) && p.hostPort != 0)) && "
        f"!(has({c}.securityContext) && has({c}.securityContext.procMount) && "
        f"{c}.securityContext.procMount == 'Unmasked') && "
        + _security_context_baseline(f"{c}.securityContext")
    )


def _each_container(
    pod: str, lists: Iterable[str], single: Iterable[str], check: Callable[[str], str]
) -> str:
    checks = [f"(!has({pod}.{name}) || {check(f'{pod}.{name}')})" for name in single]
    checks += [f"(!has({pod}.{name}) || {pod}.{name}.all(c, {check('c')}))" for name in lists]
    return " && ".join(checks)


def _containers_ok(pod: str, lists: Iterable[str], single: Iterable[str], allowed: str) -> str:
    return _each_container(pod, lists, single, lambda c: _container_ok(c, allowed))


def _pod_validations(pods: str, containers: str, baseline: str) -> list[dict]:
    sysctls = "p.securityContext.sysctls"
    return [
        {
            "expression": f"{pods}.all(p, !(has(p.hostNetwork) && p.hostNetwork) && "
            "!(has(p.hostPID) && p.hostPID) && !(has(p.hostIPC) && p.hostIPC))",
            "message": "pods in the host's network, PID or IPC namespace are not allowed",
        },
        {
            "expression": f"{pods}.all(p, !has(p.volumes) || p.volumes.all(v, !has(v.hostPath)))",
            "message": "hostPath volumes are not allowed",
        },
        {
            "expression": f"{pods}.all(p, {containers})",
            "message": "privileged containers and added capabilities beyond what the stack's "
            "workers need are not allowed",
        },
        {
            "expression": f"{pods}.all(p, {baseline} && "
            f"{_security_context_baseline('p.securityContext')} && "
            f"!(has(p.securityContext) && has({sysctls}) && "
            f"{sysctls}.exists(s, !(s.name in {_cel_list(SAFE_SYSCTLS)}))))",
            "message": "host ports, unmasked /proc, unconfined seccomp or AppArmor, SELinux "
            "options beyond the container types and unsafe sysctls are not allowed (the Pod "
            "Security baseline, which a namespace holding a Fluid cache cannot enforce)",
        },
    ]


def _policy(name: str, rules: list[dict], exemptions: Exemptions, **spec: object) -> dict:
    return {
        "apiVersion": ADMISSION_API,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                # Exact: each policy reads one API version's layout.
                "matchPolicy": "Exact",
                "namespaceSelector": SERVING_NAMESPACES,
                "resourceRules": rules,
            },
            "matchConditions": [exemptions.match_condition()],
            **spec,
        },
    }


def _rule(group: str, version: str, resource: str) -> dict:
    return {
        "apiGroups": [group],
        "apiVersions": [version],
        "operations": ["CREATE", "UPDATE"],
        "resources": [resource],
    }


def graph_policies(rules: AdmissionRules) -> list[dict]:
    """Pod safety of DynamoGraphDeployments, one policy per layout."""
    allowed = _cel_list(rules.allowed_capabilities)
    v1alpha1_pods = (
        "(has(object.spec.services) ? object.spec.services.filter(k, "
        "has(object.spec.services[k].extraPodSpec)).map(k, object.spec.services[k].extraPodSpec)"
        " : [])"
    )
    v1beta1_pods = (
        "(has(object.spec.components) ? object.spec.components.filter(c, has(c.podTemplate) "
        "&& has(c.podTemplate.spec)).map(c, c.podTemplate.spec) : [])"
    )
    containers_of = {
        "v1alpha1": (["containers", "initContainers"], ["mainContainer"]),
        "v1beta1": (["containers", "initContainers", "ephemeralContainers"], []),
    }
    pods_of = {"v1alpha1": v1alpha1_pods, "v1beta1": v1beta1_pods}
    return [
        _policy(
            f"dynamo-trtllm-graph-pods-{version}",
            [_rule("nvidia.com", version, "dynamographdeployments")],
            rules.exemptions,
            variables=[{"name": "pods", "expression": pods_of[version]}],
            validations=_pod_validations(
                "variables.pods",
                _containers_ok("p", lists, single, allowed),
                _each_container("p", lists, single, _container_baseline),
            ),
        )
        for version, (lists, single) in containers_of.items()
    ]


def cache_policies(rules: AdmissionRules) -> list[dict]:
    """Fluid objects as the stack makes them: its cache paths, its weight sources, no volumes."""
    components = ("master", "worker", "fuse", "jobMaster", "jobWorker")
    no_mounts = " && ".join(
        f"(!has(object.spec.{c}) || !has(object.spec.{c}.volumeMounts))" for c in components
    )
    no_host_network = " && ".join(
        f"(!has(object.spec.{c}) || !has(object.spec.{c}.networkMode) || "
        f"object.spec.{c}.networkMode != 'HostNetwork')"
        for c in components
    )
    runtime = _policy(
        "dynamo-trtllm-cache-runtimes",
        [_rule("data.fluid.io", "v1alpha1", "alluxioruntimes")],
        rules.exemptions,
        validations=[
            {
                "expression": "!has(object.spec.tieredstore) || "
                "!has(object.spec.tieredstore.levels) || object.spec.tieredstore.levels.all(l, "
                f"l.path in {_cel_list(rules.cache_paths)})",
                "message": "the cache's tiered store may only use the stack's cache paths",
            },
            {
                "expression": "!has(object.spec.tieredstore) || "
                "!has(object.spec.tieredstore.levels) || object.spec.tieredstore.levels.all(l, "
                "!has(l.volumeSource) && !has(l.volumeType))",
                "message": "the cache's tiered store is a path of the node, never a volume "
                "source of its own (a hostPath of /, say)",
            },
            {
                "expression": f"!has(object.spec.volumes) && {no_mounts}",
                "message": "cache runtimes may not add volumes or volume mounts",
            },
            {
                # Images, Alluxio properties and pod metadata change what runs privileged on
                # the node; the stack sets none of them.
                "expression": " && ".join(
                    f"!has(object.spec.{key})"
                    for key in (
                        "properties",
                        "podMetadata",
                        "initUsers",
                        "alluxioVersion",
                        "runAs",
                        "hadoopConfig",
                        "jvmOptions",
                    )
                )
                + " && (!has(object.spec.fuse) || ("
                + " && ".join(
                    f"!has(object.spec.fuse.{key})"
                    for key in (
                        "image",
                        "imageTag",
                        "properties",
                        "env",
                        "args",
                        "jvmOptions",
                        "podMetadata",
                    )
                )
                + "))",  # fmt: skip
                "message": "cache runtimes may not set images, users, Alluxio properties, the "
                "FUSE pod's environment or arguments, or pod metadata",
            },
            {
                "expression": no_host_network,
                "message": "cache runtimes may not ask for the host network",
            },
        ],
    )
    dataset = _policy(
        "dynamo-trtllm-cache-datasets",
        [_rule("data.fluid.io", "v1alpha1", "datasets")],
        rules.exemptions,
        validations=[
            {
                "expression": "!has(object.spec.mounts) || object.spec.mounts.all(m, "
                f"m.mountPoint in {_cel_list(rules.weight_sources)})",
                "message": "datasets may only mount the stack's weight sources (no local:// or "
                "other host paths)",
            },
            {
                "expression": "!has(object.spec.dataRestoreLocation)",
                "message": "datasets may not restore from a location (local:// reads the node)",
            },
        ],
    )
    return [runtime, dataset]


def service_policy(rules: AdmissionRules) -> dict:
    """Services stay inside the cluster: no external IPs, no node ports, no load balancers."""
    return _policy(
        "dynamo-trtllm-services",
        [_rule("", "v1", "services")],
        rules.exemptions,
        validations=[
            {
                "expression": "!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0",
                "message": "Services with externalIPs are not allowed (CVE-2020-8554)",
            },
            {
                "expression": "!has(object.spec.type) || object.spec.type == 'ClusterIP'",
                "message": "only ClusterIP Services are allowed; traffic enters through the "
                "stack's gateway",
            },
            {
                # Graph pods carry the model label; Fluid's cache pods (host network, root) and
                # anything else of the namespace do not, and stay behind no Service of ours.
                "expression": "!has(object.spec.selector) || "
                f"{json.dumps(MODEL_LABEL)} in object.spec.selector",
                "message": f"a Service selects the model's graph pods ({MODEL_LABEL} in its "
                "selector), nothing else of the namespace",
            },
        ],
    )


def secret_policy(rules: AdmissionRules) -> dict:
    """The deployer's unnamed `create` on Secrets (RBAC cannot name a create) is narrowed here:
    only the stack's Secret names, and never a service-account token (which would mint
    credentials for any service account of the namespace)."""
    return _policy(
        "dynamo-trtllm-secrets",
        [_rule("", "v1", "secrets")],
        rules.exemptions,
        validations=[
            {
                "expression": "has(object.metadata.name) && object.metadata.name in "
                f"{_cel_list(rules.secret_names)}",
                "message": "only the stack's own Secrets may be written here",
            },
            {
                "expression": "!has(object.type) || "
                "object.type != 'kubernetes.io/service-account-token'",
                "message": "service-account token Secrets are not allowed",
            },
        ],
    )


def route_policy(rules: AdmissionRules, gateway: tuple[str, str]) -> dict:
    """The deployer and promoter patch their model's HTTPRoute by name (weights). A patch that
    added another model's hostname, or moved the route to another listener, would take that
    model's requests (a longer path match wins): a route answers its own hostname only, on the
    stack's Gateway."""
    name, namespace = gateway
    own_host = f"object.metadata.name + {json.dumps('.' + rules.route_domain)}"
    return _policy(
        "dynamo-trtllm-routes",
        [_rule("gateway.networking.k8s.io", "v1", "httproutes")],
        rules.exemptions,
        validations=[
            {
                "expression": f"has(object.spec.hostnames) && object.spec.hostnames == [{own_host}]",
                "message": "a model's route answers only <model>.<domain>",
            },
            {
                "expression": "has(object.spec.parentRefs) && object.spec.parentRefs.all(p, "
                f"p.name == {json.dumps(name)} && has(p.namespace) && "
                f"p.namespace == {json.dumps(namespace)})",
                "message": "a model's route attaches to the stack's Gateway only",
            },
        ],
    )


def admission_policies(rules: AdmissionRules, fluid: bool) -> list[dict]:
    policies = graph_policies(rules) + [service_policy(rules), secret_policy(rules)]
    if rules.gateway is not None:
        policies.append(route_policy(rules, rules.gateway))
    return policies + (cache_policies(rules) if fluid else [])


def binding(policy: dict) -> dict:
    """Deny (not only warn or audit) in the model namespaces."""
    name = policy["metadata"]["name"]
    return {
        "apiVersion": ADMISSION_API,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {"namespaceSelector": SERVING_NAMESPACES},
        },
    }


COMPONENT_TYPE = "dynamo-trtllm:security:AdmissionPolicies"


class AdmissionPolicies(pulumi.ComponentResource):
    """The policies and their Deny bindings, cluster-scoped."""

    def __init__(
        self,
        name: str,
        rules: AdmissionRules,
        fluid: bool,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for policy in admission_policies(rules, fluid):
            policy_name = policy["metadata"]["name"]
            created = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                policy_name, metadata=policy["metadata"], spec=policy["spec"], opts=child
            )
            bound = binding(policy)
            k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{policy_name}-binding",
                metadata=bound["metadata"],
                spec=bound["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[created]),
            )
        self.register_outputs({})
