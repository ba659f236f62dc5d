"""Autoscaling: KEDA or an HPA scales a role through the DGD's scaling adapter, on frontend metrics."""

from __future__ import annotations

import promql_parser
import pytest

from components.autoscaling import (
    ADAPTER_LABEL_MATCHERS,
    adapter_name,
    build_horizontal_pod_autoscaler,
    build_prometheus_adapter_values,
    build_scaled_object,
    scaled_roles,
)
from components.dgd import GraphInputs, build_dgd
from infra.stack.errors import StackConfigError
from infra.stack.model_config import Model

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
        # One slot's frontends: blue never scales on green's queue.
        assert 'namespace="m",graph="m-blue"' in trigger["metadata"]["query"]
    dgd = build_dgd(m, "blue", GraphInputs(namespace="m"))
    assert dgd["spec"]["services"]["TRTLLMWorker"]["scalingAdapter"] == {"enabled": True}


def test_only_slots_that_take_traffic_autoscale() -> None:
    m = model(slots={"blue": {}, "green": {}}, active="blue")
    assert [(c, r) for c, r, _ in scaled_roles(m)] == [("blue", "agg")]


def test_the_hpa_scales_the_same_adapter_on_the_same_bounds_and_targets() -> None:
    m = model()
    scaling = m.role("agg").autoscaling
    assert scaling is not None
    hpa = build_horizontal_pod_autoscaler(m, "blue", "agg", scaling)
    keda = build_scaled_object(m, "blue", "agg", scaling, "http://prom:9090")
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["metadata"] == keda["metadata"]
    assert hpa["spec"]["scaleTargetRef"] == keda["spec"]["scaleTargetRef"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 6)
    queue, ttft = hpa["spec"]["metrics"]
    assert queue == {
        "type": "External",
        "external": {
            "metric": {
                "name": "dynamo_frontend_queued_requests",
                "selector": {"matchLabels": {"graph": "m-blue"}},
            },
            "target": {"type": "AverageValue", "averageValue": "4"},
        },
    }
    assert ttft["external"]["target"] == {"type": "Value", "value": "0.8"}
    # Without a TTFT objective only the queue drives it, as with KEDA.
    queue_only = model(
        agg={"autoscaling": {"minReplicas": 2, "maxReplicas": 3, "queuedRequestsPerWorker": 2.5}}
    )
    spec = queue_only.role("agg").autoscaling
    assert spec is not None
    hpa = build_horizontal_pod_autoscaler(queue_only, "blue", "agg", spec)["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 3)
    assert [m["external"]["target"] for m in hpa["metrics"]] == [
        {"type": "AverageValue", "averageValue": "2.5"}
    ]


def test_the_prometheus_adapter_serves_what_the_hpa_asks_with_the_keda_queries() -> None:
    m = model()
    scaling = m.role("agg").autoscaling
    assert scaling is not None
    values = build_prometheus_adapter_values(
        "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    ).dump()
    assert values["prometheus"] == {
        "url": "http://kube-prometheus-stack-prometheus.monitoring.svc",
        "port": 9090,
    }
    rules = values["rules"]
    assert rules["default"] is False and "custom" not in rules
    served = {rule["name"]["as"]: rule for rule in rules["external"]}
    asked = [
        metric["external"]["metric"]["name"]
        for metric in build_horizontal_pod_autoscaler(m, "blue", "agg", scaling)["spec"]["metrics"]
    ]
    assert sorted(asked) == sorted(served)
    keda_queries = [
        t["metadata"]["query"]
        for t in build_scaled_object(m, "blue", "agg", scaling, "http://p:9090")["spec"]["triggers"]
    ]
    # The adapter puts the HPA's namespace and its metric selector where the rule says
    # <<.LabelMatchers>>.
    adapter_queries = [
        served[name]["metricsQuery"].replace(ADAPTER_LABEL_MATCHERS, 'namespace="m",graph="m-blue"')
        for name in asked
    ]
    assert adapter_queries == keda_queries
    for rule in rules["external"]:
        assert rule["resources"] == {"overrides": {"namespace": {"resource": "namespace"}}}
        series = rule["name"]["matches"].strip("^$")
        assert rule["seriesQuery"] == f'{series}{{namespace!=""}}'
        assert series in rule["metricsQuery"]
        promql_parser.parse(rule["seriesQuery"])


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("https://prom.example.com", {"url": "https://prom.example.com", "port": 443}),
        (
            "http://thanos.monitoring.svc:10902/prometheus/",
            {"url": "http://thanos.monitoring.svc", "port": 10902, "path": "/prometheus"},
        ),
    ],
)
def test_the_adapter_gets_the_prometheus_address_in_the_charts_parts(
    address: str, expected: dict
) -> None:
    assert build_prometheus_adapter_values(address).dump()["prometheus"] == expected


def test_the_prometheus_address_needs_a_scheme_and_a_host() -> None:
    raw = values(observability={"enabled": True, "prometheusUrl": "http://thanos.svc:10902/p"})
    assert parse(raw).observability.prometheus() == "http://thanos.svc:10902/p"
    raw["observability"]["prometheusUrl"] = "prometheus.monitoring:9090"
    with pytest.raises(StackConfigError, match="observability.prometheusUrl"):
        parse(raw)


def test_the_autoscaler_is_keda_unless_the_stack_says_hpa() -> None:
    raw = values(observability={"enabled": True})
    assert parse(raw).platform.autoscaler == "keda"
    raw["platform"] = {"autoscaler": "hpa"}
    assert parse(raw).platform.autoscaler == "hpa"
    raw["platform"] = {"autoscaler": "vpa"}
    with pytest.raises(StackConfigError, match="platform.autoscaler"):
        parse(raw)


@pytest.mark.parametrize("autoscaler", ["keda", "hpa"])
def test_multinode_roles_cannot_autoscale(autoscaler: str) -> None:
    raw = values(observability={"enabled": True}, platform={"autoscaler": autoscaler})
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


@pytest.mark.parametrize("autoscaler", ["keda", "hpa"])
def test_autoscaling_needs_metrics_and_sane_bounds(autoscaler: str) -> None:
    raw = values(platform={"autoscaler": autoscaler})
    raw["models"][0]["agg"] = {"autoscaling": {"maxReplicas": 2}}
    with pytest.raises(StackConfigError, match="set observability.enabled"):
        parse(raw)
    raw["models"][0]["agg"] = {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}}
    with pytest.raises(StackConfigError, match="minReplicas must not exceed maxReplicas"):
        parse(raw)


def test_pool_capacity_counts_the_autoscaling_maximum() -> None:
    raw = values(observability={"enabled": True})
    raw["nodePools"][0] |= {"desiredSize": 2}  # room for 2 of the 3 at maxReplicas
    raw["models"][0]["agg"] = {"autoscaling": {"maxReplicas": 3}}
    with pytest.raises(StackConfigError, match=r"cannot place qwen3-0-6b/blue agg #3 .* need 3"):
        parse(raw)
