"""The admission policies, evaluated by a standard CEL evaluator (cel-python) on the objects the
stacks really render, and on malicious variants of them: every rule refuses what it is for, and
lets the stack's own objects and identities through."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.admission_policies import (
    AdmissionRules,
    Exemptions,
    admission_policies,
    binding,
    cache_policies,
    graph_policies,
    route_policy,
    secret_policy,
    service_policy,
)
from infra.offline.cel_rules import evaluate
from tests.conftest import Rendered

DEPLOYER = "arn:aws:sts::111122223333:assumed-role/ml-deployers/alice"
EXEMPT = Exemptions(
    usernames=("kubernetes-admin",),
    prefixes=(
        "arn:aws:sts::111122223333:assumed-role/platform-admins/",
        "system:serviceaccount:dynamo-system:",
    ),
)


def refusals(policy: dict, obj: dict, username: str = DEPLOYER) -> list[str]:
    """The messages of the policy's failed validations, as the API server would apply them."""
    spec = policy["spec"]
    request = {"userInfo": {"username": username}}
    if not all(evaluate(c["expression"], {"request": request}) for c in spec["matchConditions"]):
        return []
    variables: dict[str, Any] = {}
    for variable in spec.get("variables", []):
        value = evaluate(variable["expression"], {"object": obj, "variables": variables})
        variables[variable["name"]] = value
    activation = {"object": obj, "variables": variables, "request": request}
    return [v["message"] for v in spec["validations"] if not evaluate(v["expression"], activation)]


def _rules(render: Rendered) -> AdmissionRules:
    runtimes = render.objects("AlluxioRuntime")
    paths = [level["path"] for r in runtimes for level in r["spec"]["tieredstore"]["levels"]]
    sources = [m["mountPoint"] for d in render.objects("Dataset") for m in d["spec"]["mounts"]]
    return AdmissionRules(EXEMPT, cache_paths=tuple(paths), weight_sources=tuple(sources))


def _policy_for(policies: list[dict], api_version: str) -> dict:
    version = api_version.rpartition("/")[2]
    [policy] = [p for p in policies if p["metadata"]["name"].endswith(version)]
    return policy


@pytest.mark.parametrize("stack", ["staging", "prod", "dev"])
def test_the_stacks_own_objects_pass_every_policy_for_any_user(
    stack: str, rendered: dict[str, Rendered]
) -> None:
    render = rendered[stack]
    rules = _rules(render)
    graphs = graph_policies(rules)
    for dgd in render.objects("DynamoGraphDeployment"):
        assert refusals(_policy_for(graphs, dgd["apiVersion"]), dgd) == []
    for service in render.objects("Service"):
        assert refusals(service_policy(rules), service) == []
    runtime, dataset = cache_policies(rules)
    for obj in render.objects("AlluxioRuntime"):
        assert refusals(runtime, obj) == []
    for obj in render.objects("Dataset"):
        assert refusals(dataset, obj) == []


def _v1beta1_worker(render: Rendered) -> tuple[dict, dict]:
    dgd = copy.deepcopy(render.objects("DynamoGraphDeployment")[0])
    worker = next(c for c in dgd["spec"]["components"] if c["type"] != "frontend")
    return dgd, worker["podTemplate"]["spec"]


def _v1alpha1_worker(render: Rendered) -> tuple[dict, dict]:
    dgd = copy.deepcopy(render.objects("DynamoGraphDeployment")[0])
    name = next(k for k in dgd["spec"]["services"] if k != "Frontend")
    return dgd, dgd["spec"]["services"][name].setdefault("extraPodSpec", {})


ESCALATIONS = {
    "hostNetwork": (lambda pod, main: pod.update(hostNetwork=True), "host's network"),
    "hostPID": (lambda pod, main: pod.update(hostPID=True), "host's network, PID"),
    "hostIPC": (lambda pod, main: pod.update(hostIPC=True), "IPC namespace"),
    "hostPath": (
        lambda pod, main: pod.setdefault("volumes", []).append(
            {"name": "root", "hostPath": {"path": "/"}}
        ),
        "hostPath volumes",
    ),
    "privileged": (
        lambda pod, main: main.setdefault("securityContext", {}).update(privileged=True),
        "privileged containers",
    ),
    "capability": (
        lambda pod, main: main.setdefault("securityContext", {}).update(
            capabilities={"add": ["SYS_ADMIN"]}
        ),
        "added capabilities",
    ),
    "init-container": (
        lambda pod, main: pod.setdefault("initContainers", []).append(
            {"name": "x", "image": "busybox:1", "securityContext": {"privileged": True}}
        ),
        "privileged containers",
    ),
    # The Pod Security baseline, which a namespace holding a Fluid cache (privileged) lacks.
    "hostPort": (
        lambda pod, main: main.setdefault("ports", []).append(
            {"containerPort": 22, "hostPort": 2222}
        ),
        "host ports",
    ),
    "procMount": (
        lambda pod, main: main.setdefault("securityContext", {}).update(procMount="Unmasked"),
        "unmasked /proc",
    ),
    "seccomp": (
        lambda pod, main: pod.setdefault("securityContext", {}).update(
            seccompProfile={"type": "Unconfined"}
        ),
        "unconfined seccomp",
    ),
    "apparmor": (
        lambda pod, main: main.setdefault("securityContext", {}).update(
            appArmorProfile={"type": "Unconfined"}
        ),
        "AppArmor",
    ),
    "selinux": (
        lambda pod, main: main.setdefault("securityContext", {}).update(
            seLinuxOptions={"type": "spc_t"}
        ),
        "SELinux",
    ),
    "sysctl": (
        lambda pod, main: pod.setdefault("securityContext", {}).update(
            sysctls=[{"name": "kernel.core_pattern", "value": "|/tmp/x"}]
        ),
        "unsafe sysctls",
    ),
}


@pytest.mark.parametrize("escalation", sorted(ESCALATIONS))
@pytest.mark.parametrize(("stack", "layout"), [("staging", "v1beta1"), ("prod", "v1alpha1")])
def test_a_deployer_cannot_escalate_through_a_graph(
    escalation: str, stack: str, layout: str, rendered: dict[str, Rendered]
) -> None:
    render = rendered[stack]
    graphs = graph_policies(_rules(render))
    if layout == "v1beta1":
        dgd, pod = _v1beta1_worker(render)
        main = next(c for c in pod["containers"] if c["name"] == "main")
    else:
        dgd, pod = _v1alpha1_worker(render)
        main = pod.setdefault("mainContainer", {})
    change, message = ESCALATIONS[escalation]
    change(pod, main)
    policy = _policy_for(graphs, dgd["apiVersion"])
    assert any(message in m for m in refusals(policy, dgd)), escalation
    # The stack's own identities are not refused (they write what the stack renders).
    assert refusals(policy, dgd, "arn:aws:sts::111122223333:assumed-role/platform-admins/ci") == []
    assert refusals(policy, dgd, "system:serviceaccount:dynamo-system:operator") == []


def test_allowed_capabilities_pass_and_others_do_not(rendered: dict[str, Rendered]) -> None:
    render = rendered["staging"]
    rules = AdmissionRules(EXEMPT, allowed_capabilities=("IPC_LOCK",))
    dgd, pod = _v1beta1_worker(render)
    main = next(c for c in pod["containers"] if c["name"] == "main")
    main["securityContext"] = {"capabilities": {"add": ["IPC_LOCK"]}}
    policy = _policy_for(graph_policies(rules), dgd["apiVersion"])
    assert refusals(policy, dgd) == []
    main["securityContext"]["capabilities"]["add"].append("NET_ADMIN")
    assert refusals(policy, dgd) != []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(externalIPs=["203.0.113.7"]), "externalIPs"),
        (lambda s: s.update(type="LoadBalancer"), "only ClusterIP"),
        (lambda s: s.update(type="NodePort"), "only ClusterIP"),
        (lambda s: s.update(selector={"role": "alluxio-master"}), "the model's graph pods"),
    ],
)
def test_services_stay_inside_the_cluster(
    change: Any, message: str, rendered: dict[str, Rendered]
) -> None:
    service = copy.deepcopy(rendered["staging"].objects("Service")[0])
    change(service["spec"])
    assert any(message in m for m in refusals(service_policy(_rules(rendered["staging"])), service))


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        (
            "AlluxioRuntime",
            lambda o: o["spec"]["tieredstore"]["levels"][0].update(path="/etc"),
            "cache paths",
        ),
        (
            "AlluxioRuntime",
            lambda o: o["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
            "volumes",
        ),
        (
            "AlluxioRuntime",
            lambda o: o["spec"].update(worker={"volumeMounts": [{"name": "h", "mountPath": "/h"}]}),
            "volume mounts",
        ),
        (
            "AlluxioRuntime",
            lambda o: o["spec"].update(fuse={"networkMode": "HostNetwork"}),
            "host network",
        ),
        (
            "Dataset",
            lambda o: o["spec"]["mounts"][0].update(mountPoint="local:///"),
            "weight sources",
        ),
        (
            "Dataset",
            lambda o: o["spec"].update(dataRestoreLocation={"path": "local:///etc"}),
            "restore from a location",
        ),
        (
            "AlluxioRuntime",
            lambda o: o["spec"]["tieredstore"]["levels"][0].update(
                volumeSource={"hostPath": {"path": "/"}}
            ),
            "volume source of its own",
        ),
        (
            "AlluxioRuntime",
            lambda o: o["spec"].update(fuse={"env": {"BASH_ENV": "$(id)"}}),
            "environment or arguments",
        ),
        (
            "AlluxioRuntime",
            lambda o: o["spec"].update(fuse={"image": "evil/fuse", "imageTag": "1"}),
            "may not set images",
        ),
    ],
)
def test_a_deployer_cannot_point_the_cache_at_the_host(
    kind: str, change: Any, message: str, rendered: dict[str, Rendered]
) -> None:
    render = rendered["prod"]
    runtime, dataset = cache_policies(_rules(render))
    obj = copy.deepcopy(render.objects(kind)[0])
    change(obj)
    policy = runtime if kind == "AlluxioRuntime" else dataset
    assert any(message in m for m in refusals(policy, obj))


def test_every_policy_is_bound_to_deny_in_the_stacks_namespaces() -> None:
    for policy in admission_policies(AdmissionRules(EXEMPT), fluid=True):
        bound = binding(policy)
        assert bound["spec"]["policyName"] == policy["metadata"]["name"]
        assert bound["spec"]["validationActions"] == ["Deny"]
        assert policy["spec"]["failurePolicy"] == "Fail"


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_policies_apply_in_the_model_namespaces_only(
    stack: str, rendered: dict[str, Rendered]
) -> None:
    """The controllers of the platform's namespaces (prometheus-operator's Secrets, KEDA's
    certificates, Helm's release Secrets) write objects the policies would refuse; the deployer
    and promoter hold rights in the model namespaces alone."""
    render = rendered[stack]
    models = {g["metadata"]["namespace"] for g in render.objects("DynamoGraphDeployment")}
    namespaces = {
        n["metadata"]["name"]: n["metadata"]["labels"] for n in render.objects("Namespace")
    }
    assert models < set(namespaces)  # the platform's namespaces are there too
    for policy in render.objects("ValidatingAdmissionPolicy"):
        constraint = policy["spec"]["matchConstraints"]["namespaceSelector"]
        selected = {name for name, labels in namespaces.items() if _selects(constraint, labels)}
        assert selected == models, policy["metadata"]["name"]
    for bound in render.objects("ValidatingAdmissionPolicyBinding"):
        selector = bound["spec"]["matchResources"]["namespaceSelector"]
        assert {n for n, labels in namespaces.items() if _selects(selector, labels)} == models


def test_the_deployer_writes_only_the_stacks_secrets_and_never_a_token() -> None:
    policy = secret_policy(AdmissionRules(EXEMPT, secret_names=("hf-token-secret",)))
    own = {"metadata": {"name": "hf-token-secret"}, "type": "Opaque"}
    assert refusals(policy, own) == []
    assert refusals(policy, {"metadata": {"name": "other"}}) == [
        "only the stack's own Secrets may be written here"
    ]
    token = {"metadata": {"name": "hf-token-secret"}, "type": "kubernetes.io/service-account-token"}
    assert refusals(policy, token) == ["service-account token Secrets are not allowed"]
    assert refusals(policy, {"metadata": {"generateName": "x-"}}) != []


ROUTE_CHANGES = {
    "another model's hostname": lambda r: r["spec"]["hostnames"].append("deepseek-r1.x.example"),
    "a wildcard": lambda r: r["spec"].update(hostnames=["*.inference.example.com"]),
    "no hostnames": lambda r: r["spec"].pop("hostnames"),
    "another gateway": lambda r: r["spec"]["parentRefs"][0].update(name="internal"),
    "a gateway elsewhere": lambda r: r["spec"]["parentRefs"][0].update(namespace="other"),
}


@pytest.mark.parametrize("change", ROUTE_CHANGES, ids=list(ROUTE_CHANGES))
def test_a_route_patch_cannot_take_another_models_requests(
    change: str, rendered: dict[str, Rendered]
) -> None:
    render = rendered["prod"]
    (policy,) = [
        p
        for p in render.objects("ValidatingAdmissionPolicy")
        if p["metadata"]["name"] == "dynamo-trtllm-routes"
    ]
    route = copy.deepcopy(render.objects("HTTPRoute")[0])
    assert refusals(policy, route) == []
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 50  # what a promotion patches
    assert refusals(policy, route) == []
    ROUTE_CHANGES[change](route)
    assert refusals(policy, route) != []
    assert refusals(policy, route, username="kubernetes-admin") != []  # not exempt in prod
    rules = AdmissionRules(EXEMPT, gateway=("public", "gateway"), route_domain="x.example")
    assert refusals(route_policy(rules, ("public", "gateway")), route, "kubernetes-admin") == []


KIND_OF_RESOURCE = {
    "dynamographdeployments": "DynamoGraphDeployment",
    "services": "Service",
    "secrets": "Secret",
    "alluxioruntimes": "AlluxioRuntime",
    "datasets": "Dataset",
    "httproutes": "HTTPRoute",
}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "local"])
def test_the_rendered_policies_let_the_stacks_own_objects_through(
    stack: str, rendered: dict[str, Rendered]
) -> None:
    """The policies as `pulumi up` creates them (rules derived from the stack's config) accept
    every object the stack itself writes, whoever writes it, and are each bound to Deny."""
    render = rendered[stack]
    policies = render.objects("ValidatingAdmissionPolicy")
    bindings = {b["spec"]["policyName"] for b in render.objects("ValidatingAdmissionPolicyBinding")}
    assert policies and bindings == {p["metadata"]["name"] for p in policies}
    checked = 0
    for policy in policies:
        rule = policy["spec"]["matchConstraints"]["resourceRules"][0]
        kind = KIND_OF_RESOURCE[rule["resources"][0]]
        for obj in render.objects(kind):
            if obj["apiVersion"].rpartition("/")[2] in rule["apiVersions"]:
                assert refusals(policy, obj) == [], (policy["metadata"]["name"], obj["metadata"])
                checked += 1
    assert checked > 0


def test_prods_admins_and_controllers_are_exempt(rendered: dict[str, Rendered]) -> None:
    policy = rendered["prod"].objects("ValidatingAdmissionPolicy")[0]
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert "arn:aws:sts::111122223333:assumed-role/" in condition
    assert '"system:serviceaccount:dynamo-system:"' in condition


def test_a_cluster_without_admission_policies_v1_is_refused_with_the_choice() -> None:
    from infra.stack.errors import StackConfigError
    from tests.unit.helpers import parse, values

    raw = values()
    raw["cluster"] = {"mode": "existing", "kubernetesVersion": "1.29"}
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    assert any(
        i.path == "security.admissionPolicies" and "1.30 and later" in i.message
        for i in caught.value.issues
    )
