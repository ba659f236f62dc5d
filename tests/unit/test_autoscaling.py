"""Autoscaling: KEDA scales a role through the DGD's scaling adapter, on frontend metrics."""

from __future__ import annotations

import promql_parser
import pytest

from components.autoscaling import adapter_name, build_scaled_object, scaled_roles
from components.dgd import GraphInputs, build_dgd
from infra.config import Model
from infra.errors import StackConfigError

from .helpers import parse, values


def model(**fields: object) -> Model:
    base = {
        "name": "m",
        "source": {"huggingFace": "Qwen/Qwen3-0.6B"},
        "image": "img:1",
        "agg": {"autoscaling": {"minReplicas": 1, "maxReplicas": 6, "ttftP95Seconds": 0.8}},
    }
    return Model.model_validate(base | fields)


def test_scaled_object_targets_the_scaling_adapter_the_operator_creates() -> None:
    m = model()
    scaling = m.role("agg").autoscaling
    assert scaling is not None
    manifest = build_scaled_object(m, "blue", "agg", scaling, "http://prom:9090")
    target = manifest["spec"]["scaleTargetRef"]
    assert target == {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeploymentScalingAdapter",
        "name": "m-blue-trtllmworker",
    }
    assert adapter_name(m, "blue", "agg") == "m-blue-trtllmworker"
    assert (manifest["spec"]["minReplicaCount"], manifest["spec"]["maxReplicaCount"]) == (1, 6)
    queue, ttft = manifest["spec"]["triggers"]
    assert queue["metadata"]["threshold"] == "4" and ttft["metadata"]["threshold"] == "0.8"
    for trigger in (queue, ttft):
        promql_parser.parse(trigger["metadata"]["query"])  # raises on a malformed query
        assert 'namespace="m"' in trigger["metadata"]["query"]
    dgd = build_dgd(m, "blue", GraphInputs(namespace="m"))
    assert dgd["spec"]["services"]["TRTLLMWorker"]["scalingAdapter"] == {"enabled": True}


def test_only_slots_that_take_traffic_autoscale() -> None:
    m = model(slots={"blue": {}, "green": {}}, active="blue")
    assert [(c, r) for c, r, _ in scaled_roles(m)] == [("blue", "agg")]


def test_multinode_roles_cannot_autoscale() -> None:
    raw = values(observability={"enabled": True})
    raw["models"][1]["topology"] = "disagg-multinode"
    raw["models"][1]["source"] = {"s3": {"uri": "s3://models-bucket/gpt", "sizeGib": 65}}
    raw["models"][1]["decode"] = {
        "gpusPerWorker": 8,
        "nodes": 2,
        "autoscaling": {"maxReplicas": 2},
    }
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    assert (
        "models[1].decode.autoscaling: a worker spanning 2 nodes is one gang-scheduled group: "
        "multinode roles cannot autoscale (set replicas instead)"
    ) in caught.value.report()


def test_autoscaling_needs_metrics_and_sane_bounds() -> None:
    raw = values()
    raw["models"][0]["agg"] = {"autoscaling": {"maxReplicas": 2}}
    with pytest.raises(StackConfigError, match="set observability.enabled"):
        parse(raw)
    raw["models"][0]["agg"] = {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}}
    with pytest.raises(StackConfigError, match="minReplicas must not exceed maxReplicas"):
        parse(raw)


def test_pool_capacity_counts_the_autoscaling_maximum() -> None:
    raw = values(observability={"enabled": True})
    raw["models"][0]["agg"] = {"autoscaling": {"maxReplicas": 3}}
    with pytest.raises(StackConfigError, match="ask for 3 GPUs"):
        parse(raw)
