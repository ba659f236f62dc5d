"""RBAC: least privilege for workloads and people, no wildcards, IAM principals via access entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.access import (
    STACK_OWNED_KINDS,
    WORKLOAD_RESOURCES,
    access_entry_groups,
    build_namespace_access,
    deployer_rules,
    discovery_rules,
    promoter_rules,
    viewer_rules,
)
from components.dgd import workload_service_account
from infra.offline.render import render_stack
from infra.stack.errors import StackConfigError
from tests.conftest import ENVIRONMENT_STACKS, Project, Rendered
from tests.unit.helpers import parse, values

# Kinds the Security and Access components own in a model namespace: not the deployer's to write.
SECURITY_KINDS = {"Namespace", "NetworkPolicy", "ServiceAccount", "Role", "RoleBinding", "Secret"}


def allows(
    rules: list[dict], verb: str, group: str, resource: str, name: str | None = None
) -> bool:
    return any(
        group in r["apiGroups"]
        and resource in r["resources"]
        and verb in r["verbs"]
        and (name is None and "resourceNames" not in r or name in r.get("resourceNames", [name]))
        for r in rules
    )


def test_nothing_we_write_uses_a_wildcard(rendered: dict[str, Rendered]) -> None:
    for stack in ENVIRONMENT_STACKS:
        roles = rendered[stack].objects("Role") + rendered[stack].objects("ClusterRole")
        assert roles, stack
        for role in roles:
            for rule in role["rules"]:
                for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                    assert "*" not in rule.get(field, []), (stack, role["metadata"], rule)


def test_deployer_can_write_every_workload_object_the_program_creates(
    rendered: dict[str, Rendered],
) -> None:
    """Each object by its name, with the namespace's rendered deployer Role."""
    checked = 0
    for stack in ENVIRONMENT_STACKS:
        stack_render = rendered[stack]
        roles = {
            r["metadata"]["namespace"]: r["rules"]
            for r in stack_render.objects("Role")
            if r["metadata"]["name"] == "dynamo-trtllm-deployer"
        }
        for entry in stack_render.index:
            rules = roles.get(entry.get("namespace"))
            kind = entry.get("kind")
            if rules is None or kind in SECURITY_KINDS | set(STACK_OWNED_KINDS):
                continue
            group, resource = WORKLOAD_RESOURCES[kind]
            assert allows(rules, "create", group, resource), (stack, kind)
            name = stack_render.load(entry)["metadata"]["name"]
            for verb in ("patch", "delete", "get"):
                assert allows(rules, verb, group, resource, name), (kind, name, verb)
            checked += 1
    assert checked


def test_the_deployer_changes_config_maps_and_services_by_name_only() -> None:
    """Fluid keeps its privileged FUSE pods' environment in a ConfigMap of the namespace, and
    the operator makes each slot's Services: neither is the deployer's to rewrite."""
    rules = deployer_rules("m", ["m-blue-engine-config", "m-green-engine-config"])
    assert allows(rules, "patch", "", "configmaps", "m-green-engine-config")
    assert allows(rules, "patch", "", "services", "m")
    for name in ("weights-blue-alluxio-values", "weights-blue-config"):
        assert not allows(rules, "patch", "", "configmaps", name)
        assert not allows(rules, "update", "", "configmaps", name)
        assert not allows(rules, "delete", "", "configmaps", name)
    assert not allows(rules, "patch", "", "services", "m-blue-frontend")
    assert allows(rules, "list", "", "configmaps") and allows(rules, "list", "", "services")


def test_the_deployer_only_reads_what_the_stack_owns() -> None:
    rules = deployer_rules("m", ["m-blue-engine-config"])
    for kind in STACK_OWNED_KINDS:
        group, resource = WORKLOAD_RESOURCES[kind]
        assert allows(rules, "get", group, resource)
        for verb in ("create", "update", "delete"):
            assert not allows(rules, verb, group, resource), (kind, verb)
    route = ("gateway.networking.k8s.io", "httproutes")
    assert allows(rules, "patch", *route, "m")
    assert not allows(rules, "patch", *route, "another-models-route")
    assert not allows(rules, "patch", "data.fluid.io", "alluxioruntimes", "weights-blue")


def test_secrets_are_reachable_only_by_name() -> None:
    deployer, viewer = deployer_rules("m", []), viewer_rules()
    assert allows(deployer, "update", "", "secrets", "hf-token-secret")
    assert not allows(deployer, "get", "", "secrets", "someone-elses-secret")
    assert not allows(deployer, "list", "", "secrets")
    assert not any("secrets" in r["resources"] for r in viewer)
    assert all(set(r["verbs"]) <= {"get", "list", "watch"} for r in viewer)


def test_promoter_moves_only_its_models_traffic() -> None:
    rules = promoter_rules("qwen3-0-6b", ["qwen3-0-6b-blue-frontend", "qwen3-0-6b-green-frontend"])
    assert allows(rules, "patch", "", "services", "qwen3-0-6b")
    assert not allows(rules, "patch", "", "services", "qwen3-0-6b-green-frontend")
    assert allows(rules, "patch", "gateway.networking.k8s.io", "httproutes", "qwen3-0-6b")
    assert not allows(rules, "patch", "", "services", "other-model")
    assert not allows(rules, "patch", "nvidia.com", "dynamographdeployments")
    assert allows(rules, "get", "nvidia.com", "dynamographdeployments")
    for verb in ("get", "create"):  # the smoke requests (GET, POST) via the Service proxy
        assert allows(rules, verb, "", "services/proxy", "qwen3-0-6b:8000")
        assert allows(rules, verb, "", "services/proxy", "qwen3-0-6b-green-frontend:8000")
        assert not allows(rules, verb, "", "services/proxy", "other-model:8000")
        assert not allows(rules, verb, "", "pods/portforward")  # would pass every policy


def test_workloads_cannot_rewrite_the_pod_labels_isolation_selects_on() -> None:
    for rule in discovery_rules():
        if "pods" in rule["resources"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}


def test_each_graph_role_runs_as_its_own_account_with_discovery_rights(
    rendered: dict[str, Rendered],
) -> None:
    prod = rendered["prod"]
    accounts = {
        (a["metadata"]["namespace"], a["metadata"]["name"]) for a in prod.objects("ServiceAccount")
    }
    for dgd in prod.objects("DynamoGraphDeployment"):
        namespace = dgd["metadata"]["namespace"]
        for service in dgd["spec"]["services"].values():
            account = service["extraPodSpec"]["serviceAccountName"]
            assert (namespace, account) in accounts
    [binding] = [
        b
        for b in prod.objects("RoleBinding")
        if b["metadata"] == {"name": "dynamo-discovery", "namespace": "gpt-oss-120b"}
    ]
    assert {s["name"] for s in binding["subjects"]} == {
        workload_service_account(r) for r in ("frontend", "prefill", "decode")
    }


def test_people_are_bound_through_groups() -> None:
    objects = build_namespace_access(
        "qwen3", "qwen3", ["qwen3-blue-frontend"], ["frontend", "agg"], {"viewer": ["oncall"]}
    )
    bindings = {o["metadata"]["name"]: o for o in objects if o["kind"] == "RoleBinding"}
    viewer = [s["name"] for s in bindings["dynamo-trtllm-viewer"]["subjects"]]
    assert viewer == ["dynamo-trtllm-viewers", "oncall"]
    assert bindings["dynamo-trtllm-deployer"]["roleRef"]["name"] == "dynamo-trtllm-deployer"


def test_a_principal_in_two_levels_gets_one_access_entry() -> None:
    ci = "arn:aws:iam::123456789012:role/ci"
    assert access_entry_groups(
        {"deployer": [ci], "viewer": [ci, "arn:aws:iam::123456789012:user/ana"]}
    ) == {
        ci: ["dynamo-trtllm-deployers", "dynamo-trtllm-viewers"],
        "arn:aws:iam::123456789012:user/ana": ["dynamo-trtllm-viewers"],
    }


def _security(access: dict, **cluster: object) -> dict:
    raw = values(security={"access": access})
    raw["cluster"] |= cluster
    return raw


def test_access_config_errors_name_the_field(tmp_path: Path) -> None:
    role = "arn:aws:iam::123456789012:role/ops"
    cases = {
        "security.access.deployer.principalArns[0]": _security(
            {"deployer": {"principalArns": [role]}}, adminPrincipalArns=[role]
        ),
        "security.access.viewer.groups[0]": _security({"viewer": {"groups": ["system:masters"]}}),
        "security.access.promoter.principalArns[0]": _security(
            {"promoter": {"principalArns": ["arn:aws:iam::12:role/x"]}}
        ),
        "security.access.admin": _security({"admin": {}}),
    }
    for field, raw in cases.items():
        with pytest.raises(StackConfigError) as error:
            parse(raw)
        assert field in str(error.value), (field, str(error.value))


def test_iam_principals_need_an_eks_cluster() -> None:
    raw = values(
        cluster={"mode": "existing", "context": "kind"},
        nodePools=[],
        security={"access": {"deployer": {"principalArns": ["arn:aws:iam::123456789012:role/ci"]}}},
    )
    for model in raw["models"]:
        model.pop("nodePool")
    with pytest.raises(StackConfigError, match=r"security.access.deployer.principalArns\[0\]: IAM"):
        parse(raw)


def test_access_entries_join_principals_to_their_groups(project: Project) -> None:
    config = project.stack_config("dev")
    ci = "arn:aws:iam::123456789012:role/ci-deploy"
    config["dynamo-trtllm:security"] = {
        "access": {
            "deployer": {"principalArns": [ci]},
            "promoter": {"principalArns": [ci], "groups": ["release-managers"]},
        }
    }
    project.write_stack("dev", config)
    render_stack("dev", project.root / "out", project.root)
    dev = Rendered(project.root / "out")
    entries = [dev.load(r) for r in dev.of_type("aws:eks/accessEntry:AccessEntry")]
    ours = [e for e in entries if e["principalArn"] == ci]
    assert len(ours) == 1
    assert ours[0]["kubernetesGroups"] == ["dynamo-trtllm-deployers", "dynamo-trtllm-promoters"]
    assert ours[0]["type"] == "STANDARD"
    [promoters] = [
        b for b in dev.objects("RoleBinding") if b["metadata"]["name"] == "dynamo-trtllm-promoter"
    ]
    assert [s["name"] for s in promoters["subjects"]] == [
        "dynamo-trtllm-promoters",
        "release-managers",
    ]
