"""The Dynamo operator's webhook (1.1.0), mirrored: name lengths with Grove, replicas under the
scaling adapter, and the update-only rules `diff` reports."""

from __future__ import annotations

import copy

import pytest

from infra.deployment.operator_rules import GROVE_NAME_LIMIT, operator_update_refusals
from infra.stack.errors import StackConfigError
from tests.conftest import Rendered

from .helpers import parse, values

MULTINODE = {
    "topology": "disagg-multinode",
    "nodePool": "h100",
    "source": {"s3": {"uri": "s3://bucket/model", "sizeGib": 10}},
    "prefill": {"gpusPerWorker": 8, "nodes": 2},
    "decode": {"gpusPerWorker": 8, "nodes": 2},
}


def _multinode(name: str) -> dict:
    raw = values()
    model = copy.deepcopy(raw["models"][1]) | MULTINODE | {"name": name}
    raw["models"] = [model]
    raw["nodePools"][1] |= {"maxSize": 8, "efa": True, "availabilityZone": "us-west-2a"}
    return raw


def test_every_rendered_graph_fits_the_grove_name_limit(rendered: dict[str, Rendered]) -> None:
    """Computed from the manifests themselves, as the webhook computes it."""
    for stack in rendered.values():
        for dgd in stack.objects("DynamoGraphDeployment"):
            name = dgd["metadata"]["name"]
            for key, service in dgd["spec"]["services"].items():
                length = len(name) + len(key.lower())
                if (service.get("multinode") or {}).get("nodeCount", 1) > 1:
                    length += len(key.lower()) + len("-ldr")
                assert length <= GROVE_NAME_LIMIT, (name, key, length)


def test_prod_multinode_keys_were_too_long_for_any_name() -> None:
    """Upstream's long key: 'x-green' + 'trtllmprefillworker' + its '-ldr' is already 49."""
    key = "trtllmprefillworker"
    assert len("x-green") + len(key) + len(f"{key}-ldr") > GROVE_NAME_LIMIT


def test_a_multinode_model_name_too_long_for_grove_is_refused() -> None:
    parse(_multinode("deepseek-r1"))  # 17 + 7 + 11 = 35: fine
    with pytest.raises(StackConfigError) as caught:
        parse(_multinode("deepseek-r1-distill-llama-x"))
    assert any(
        "with Grove, deepseek-r1-distill-llama-x-blue + prefill + prefill-ldr is 50 characters, "
        "the limit is 45"
        in issue.message
        and issue.path == "models[0].name"
        for issue in caught.value.issues
    )


def test_a_zero_shared_memory_is_refused() -> None:
    raw = values()
    raw["models"][1]["prefill"]["sharedMemory"] = "0Gi"
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    assert any(i.path == "models[1].prefill.sharedMemory" for i in caught.value.issues)


def test_autoscaled_roles_leave_replicas_to_the_scaling_adapter(
    rendered: dict[str, Rendered],
) -> None:
    (graph,) = [
        d
        for d in rendered["prod"].objects("DynamoGraphDeployment")
        if d["metadata"]["name"] == "qwen3-0-6b-blue"
    ]
    worker = graph["spec"]["services"]["TRTLLMWorker"]
    assert worker["scalingAdapter"] == {"enabled": True}
    assert "replicas" not in worker  # the second `pulumi up` sends nothing the webhook refuses


def _graph(**worker: object) -> dict:
    return {
        "kind": "DynamoGraphDeployment",
        "spec": {"backendFramework": "trtllm", "services": {"Frontend": {}, "prefill": worker}},
    }


def test_update_rules_the_operator_enforces() -> None:
    idle = _graph(replicas=0)
    scaled = _graph(scalingAdapter={"enabled": True})
    assert operator_update_refusals(scaled, scaled) == []
    (refusal,) = operator_update_refusals(idle, scaled)
    assert "replicas cannot change (0 -> 1) while its scaling adapter is on" in refusal
    assert operator_update_refusals(_graph(replicas=1), scaled) == []  # absent counts as 1
    multinode = _graph(multinode={"nodeCount": 2}, replicas=1)
    assert "single-node and multinode" in operator_update_refusals(_graph(replicas=1), multinode)[0]
    grown = copy.deepcopy(idle)
    grown["spec"]["services"]["decode"] = {}
    assert "cannot be added or removed" in operator_update_refusals(idle, grown)[0]
    vllm = copy.deepcopy(idle)
    vllm["spec"]["backendFramework"] = "vllm"
    assert "backendFramework cannot change" in operator_update_refusals(idle, vllm)[0]
