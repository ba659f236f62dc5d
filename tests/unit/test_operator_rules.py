"""The Dynamo operator's webhook, mirrored at 1.1.0 and 1.2.0: name lengths with Grove, zero
shared memory, and the update-only rules `diff` reports, on DGDs in either layout."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from infra.deployment.operator_rules import (
    GROVE_NAME_LIMIT,
    WEBHOOK_RULES,
    grove_name_share,
    operator_create_issues,
    operator_update_refusals,
    pcs_name_length,
    webhook_rules_of,
)
from infra.deployment.resolved import Deployment, ProjectFiles, resolve
from infra.stack.derived_names import FRONTEND_SERVICE, WORKER_SERVICES
from infra.stack.dynamo_versions import DGD_V1ALPHA1, DGD_V1BETA1, PROFILES
from infra.stack.errors import StackConfigError
from tests.conftest import Rendered

from .helpers import PROJECT_ROOT, parse, values

RELEASES = sorted(WEBHOOK_RULES)
MULTINODE = {
    "topology": "disagg-multinode",
    "nodePool": "h100",
    "source": {"s3": {"uri": "s3://bucket/model", "sizeGib": 10}},
    "prefill": {"gpusPerWorker": 8, "nodes": 2},
    "decode": {"gpusPerWorker": 8, "nodes": 2},
}
LONG_NAME = "deepseek-r1-distill-llama-x"


def _multinode(name: str) -> dict:
    raw = values()
    model = copy.deepcopy(raw["models"][1]) | MULTINODE | {"name": name}
    model["image"] += "-efa-amd64"  # multinode on EFA: the plain image is refused
    raw["models"] = [model]
    raw["nodePools"][1] |= {
        "desiredSize": 8,
        "maxSize": 8,
        "efa": True,
        "availabilityZone": "us-west-2a",
    }
    return raw


def _deployment(raw: dict, index: int, **model_changes: object) -> Deployment:
    """The resolved deployment of a stack that checks, with models[index] then changed: what the
    (1.1.0) checks would have refused cannot be parsed."""
    deployment = resolve(parse(raw), ProjectFiles(PROJECT_ROOT))
    models = list(deployment.models)
    models[index] = dataclasses.replace(
        models[index], model=models[index].model.model_copy(update=model_changes)
    )
    return dataclasses.replace(deployment, models=tuple(models))


def _node_counts(dgd: dict) -> dict[str, int]:
    """Each service's node count, read from the manifest in its layout."""
    spec = dgd["spec"]
    services = (
        spec["services"].items()
        if "services" in spec
        else ((c["name"], c) for c in spec["components"])
    )
    return {name: (s.get("multinode") or {}).get("nodeCount", 1) for name, s in services}


def test_every_profile_s_webhook_rules_are_mirrored() -> None:
    assert {profile.webhook_rules for profile in PROFILES.values()} <= set(WEBHOOK_RULES)
    # Each release cites every rule: a rule mirrored for one is mirrored for all.
    assert len({frozenset(rules.sources) for rules in WEBHOOK_RULES.values()}) == 1
    with pytest.raises(ValueError, match="no webhook rules mirrored for operator '9.9.9'"):
        webhook_rules_of("9.9.9")


@pytest.mark.parametrize("webhook_rules", RELEASES)
def test_every_rendered_graph_fits_the_grove_name_limit(
    rendered: dict[str, Rendered], webhook_rules: str
) -> None:
    """Computed from the manifests themselves, as the webhook computes it."""
    rules = webhook_rules_of(webhook_rules)
    for stack in rendered.values():
        for dgd in stack.objects("DynamoGraphDeployment"):
            name = dgd["metadata"]["name"]
            shares = {key: grove_name_share(key, n) for key, n in _node_counts(dgd).items()}
            pcs = pcs_name_length(name, shares.values(), rules)
            for key, share in shares.items():
                assert pcs + share <= GROVE_NAME_LIMIT, (name, key, pcs + share)


def test_prod_multinode_keys_were_too_long_for_any_name() -> None:
    """Upstream's long key: 'x-green' + 'trtllmprefillworker' + its '-ldr' is already 49."""
    key = "trtllmprefillworker"
    assert len("x-green") + len(key) + len(f"{key}-ldr") > GROVE_NAME_LIMIT


def test_a_multinode_model_name_too_long_for_grove_is_refused() -> None:
    parse(_multinode("deepseek-r1"))  # 17 + 7 + 11 = 35: fine
    on_1_1 = _multinode(LONG_NAME)
    on_1_1.setdefault("platform", {})["dynamoVersion"] = "1.1.0"
    with pytest.raises(StackConfigError) as caught:
        parse(on_1_1)
    assert any(
        f"with Grove, {LONG_NAME}-blue + prefill + prefill-ldr is 50 characters, the limit is 45 "
        "(operator 1.1.0, dynamographdeployment.go:317-353): shorten the model name by 5"
        in issue.message
        and issue.path == "models[0].name"
        for issue in caught.value.issues
    )


def test_at_1_2_0_the_operator_cuts_a_long_graph_name_to_what_its_services_leave() -> None:
    deployment = _deployment(_multinode("deepseek-r1"), 0, name=LONG_NAME)
    refused = operator_create_issues(deployment)  # 1.1.0: prefill's 50 characters, decode's 48
    assert len(refused) == 2 and {i.path for i in refused} == {"models[0].name"}
    # 1.2.0's webhook accepts it, but the cut name is not what our monitors address.
    (cut,) = operator_create_issues(deployment, webhook_rules="1.2.0")
    assert "Dynamo 1.2.0 would cut DGD" in cut.message and "shorten the model name by 5" in (
        cut.message
    )
    # prefill's share (prefill + prefill-ldr, 18) is the largest: 27 characters are left.
    shares = [grove_name_share("Frontend", 1), grove_name_share("prefill", 2)]
    assert pcs_name_length(f"{LONG_NAME}-blue", shares, WEBHOOK_RULES["1.2.0"]) == 27


def test_at_1_2_0_only_a_service_key_can_be_too_long_and_ours_never_are() -> None:
    rules = WEBHOOK_RULES["1.2.0"]
    assert rules.shortest_pcs_name is not None
    # The cut stops at 8 characters, so a share over 37 overflows whatever the graph's name.
    assert pcs_name_length("a-long-graph-name-blue", [38], rules) + 38 > GROVE_NAME_LIMIT
    assert pcs_name_length("m-blue", [38], rules) + 38 <= GROVE_NAME_LIMIT
    keys = [FRONTEND_SERVICE, *WORKER_SERVICES.values()]
    assert (
        max(grove_name_share(key, 2) for key in keys) <= GROVE_NAME_LIMIT - rules.shortest_pcs_name
    )


def test_a_zero_shared_memory_is_refused() -> None:
    raw = values()
    raw["models"][1]["prefill"]["sharedMemory"] = "0Gi"
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    assert any(i.path == "models[1].prefill.sharedMemory" for i in caught.value.issues)


@pytest.mark.parametrize("webhook_rules", RELEASES)
def test_a_zero_shared_memory_is_refused_by_either_release(webhook_rules: str) -> None:
    """The same rule at both (NOTES #17), cited where each release has it."""
    raw = values()
    prefill = parse(raw).models[1].prefill
    assert prefill is not None
    zero = prefill.model_copy(update={"shared_memory": "0Gi"})
    deployment = _deployment(raw, 1, prefill=zero)
    [issue] = operator_create_issues(deployment, webhook_rules=webhook_rules)
    assert issue.path == "models[1].prefill.sharedMemory"
    assert f"(operator {webhook_rules}, shared.go:" in issue.message


def test_autoscaled_roles_leave_replicas_to_the_scaling_adapter(
    rendered: dict[str, Rendered],
) -> None:
    (graph,) = [
        d
        for d in rendered["prod"].objects("DynamoGraphDeployment")
        if d["metadata"]["name"] == "qwen3-0-6b-blue"
    ]
    spec = graph["spec"]
    if graph["apiVersion"] == DGD_V1BETA1:
        worker = next(c for c in spec["components"] if c["name"] == "TRTLLMWorker")
        assert worker["scalingAdapter"] == {}  # there: on
    else:
        worker = spec["services"]["TRTLLMWorker"]
        assert worker["scalingAdapter"] == {"enabled": True}
    assert "replicas" not in worker  # the second `pulumi up` sends nothing the webhook refuses


def _services_graph(*others: str, **prefill: object) -> dict:
    services = {"Frontend": {}, **{name: {} for name in others}, "prefill": prefill}
    return {
        "apiVersion": DGD_V1ALPHA1,
        "kind": "DynamoGraphDeployment",
        "spec": {"backendFramework": "trtllm", "services": services},
    }


def _components_graph(*others: str, **prefill: object) -> dict:
    components = [{"name": name} for name in ("Frontend", *others)] + [
        {"name": "prefill", **prefill}
    ]
    return {
        "apiVersion": DGD_V1BETA1,
        "kind": "DynamoGraphDeployment",
        "spec": {"backendFramework": "trtllm", "components": components},
    }


@dataclass(frozen=True)
class Layout:
    graph: Callable[..., dict]  # (other service names, **prefill's fields) -> the DGD
    adapter_on: dict  # `scalingAdapter` turning the adapter on
    prefill: str  # the prefill service's field
    collection: str


LAYOUTS = [
    pytest.param(
        Layout(_services_graph, {"enabled": True}, "spec.services.prefill", "spec.services"),
        id="v1alpha1",
    ),
    pytest.param(
        Layout(_components_graph, {}, "spec.components[name=prefill]", "spec.components"),
        id="v1beta1",
    ),
]


@pytest.mark.parametrize("webhook_rules", RELEASES)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_update_rules_the_operator_enforces(layout: Layout, webhook_rules: str) -> None:
    def refusals(before: dict, after: dict) -> list[str]:
        return operator_update_refusals(before, after, webhook_rules=webhook_rules)

    cited = f"(operator {webhook_rules}, dynamographdeployment.go:"
    idle = layout.graph(replicas=0)
    scaled = layout.graph(scalingAdapter=layout.adapter_on)
    assert refusals(scaled, scaled) == []
    (refusal,) = refusals(idle, scaled)
    assert refusal.startswith(
        f"{layout.prefill}.replicas cannot change (0 -> 1) while its scaling adapter is on"
    )
    assert cited in refusal
    assert refusals(layout.graph(replicas=1), scaled) == []  # absent counts as 1
    multinode = layout.graph(multinode={"nodeCount": 2}, replicas=1)
    (refusal,) = refusals(layout.graph(replicas=1), multinode)
    assert refusal.startswith(f"{layout.prefill} cannot switch between single-node and multinode")
    assert cited in refusal
    (refusal,) = refusals(idle, layout.graph("decode", replicas=0))
    assert refusal.startswith(
        f"{layout.collection} entries cannot be added or removed on a running graph "
        "(added ['decode'], removed none)"
    )
    assert cited in refusal
    vllm = layout.graph(replicas=0)
    vllm["spec"]["backendFramework"] = "vllm"
    (refusal,) = refusals(idle, vllm)
    assert refusal.startswith("spec.backendFramework cannot change ('trtllm' -> 'vllm')")
    assert cited in refusal


def test_an_upgrade_to_v1beta1_compares_the_same_graph_service_by_service() -> None:
    """1.1.0 profiles emit v1alpha1, 1.2.0 ones v1beta1: the webhook sees both as v1alpha1, so the
    same graph in the new layout changes nothing it guards; a change is named in the new one."""
    before = _services_graph(scalingAdapter={"enabled": True})
    same = _components_graph(scalingAdapter={})
    assert operator_update_refusals(before, same, webhook_rules="1.2.0") == []
    (refusal,) = operator_update_refusals(
        before, _components_graph(scalingAdapter={}, replicas=2), webhook_rules="1.2.0"
    )
    assert refusal.startswith("spec.components[name=prefill].replicas cannot change (1 -> 2)")


def test_multinode_without_a_node_count_spans_two_nodes() -> None:
    """Both CRDs default nodeCount to 2 (and allow no fewer)."""
    for graph in (_services_graph, _components_graph):
        (refusal,) = operator_update_refusals(graph(), graph(multinode={}))
        assert "cannot switch between single-node and multinode" in refusal
