"""Scale to zero: minReplicas 0 lets KEDA take an autoscaled role to no worker, and a request
arriving at the frontend brings it back; an HPA cannot, and the first request waits."""

from __future__ import annotations

import promql_parser
import pytest

from components.autoscaling import build_horizontal_pod_autoscaler, build_scaled_object
from infra.deployment.checked import check_stack, check_stack_values
from infra.deployment.readiness import ready_timeout_seconds
from infra.stack.errors import StackConfigError
from infra.stack.model_config import Model
from tests.conftest import Rendered

from .helpers import PROJECT_ROOT, parse, values

SELECTOR = 'namespace="m",graph="m-blue"'


def model(**autoscaling: object) -> Model:
    return Model.model_validate(
        {
            "name": "m",
            "source": {"huggingFace": "Qwen/Qwen3-0.6B"},
            "image": "img:1",
            "agg": {"autoscaling": {"maxReplicas": 2} | autoscaling},
        }
    )


def scaled_object(m: Model) -> dict:
    scaling = m.role("agg").autoscaling
    assert scaling is not None
    return build_scaled_object(m, "blue", "agg", scaling, "http://prom:9090")


def scale_to_zero(**changes: object) -> dict:
    raw = values(observability={"enabled": True}, **changes)
    raw["models"][0]["agg"] = {"autoscaling": {"minReplicas": 0, "maxReplicas": 1}}
    return raw


def test_keda_scales_to_zero_and_wakes_on_requests_arriving_at_the_frontend() -> None:
    spec = scaled_object(model(minReplicas=0))["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 2)
    assert spec["cooldownPeriod"] == 300
    wake, queue = spec["triggers"]
    assert wake["name"] == "requests-arriving" and queue["name"] == "queued-requests"
    # Above 0 wakes it; the trigger asks for one worker, and the queue for any more.
    assert wake["metadata"]["activationThreshold"] == "0"
    assert wake["metadata"]["threshold"] == "1"
    query = wake["metadata"]["query"]
    promql_parser.parse(query)
    assert SELECTOR in query
    # With no worker the frontend answers 404 at once: the request is counted, never queued.
    assert "dynamo_frontend_requests_total" in query
    assert "queued_requests" not in query
    # rate() and increase() miss the first 404, which creates its series; a difference does not.
    assert "rate(" not in query and "increase(" not in query
    assert "offset 2m" in query and "or vector(0)" in query
    assert query.startswith("clamp(") and query.endswith(", 0, 1)")


def test_a_role_that_keeps_a_worker_gets_no_wake_trigger() -> None:
    spec = scaled_object(model(minReplicas=1))["spec"]
    assert spec["minReplicaCount"] == 1 and "cooldownPeriod" not in spec
    assert [t["name"] for t in spec["triggers"]] == ["queued-requests"]


def test_minreplicas_zero_validates_with_keda() -> None:
    config = parse(scale_to_zero())
    scaling = config.models[0].role("agg").autoscaling
    assert scaling is not None and scaling.scales_to_zero
    raw = scale_to_zero()
    raw["models"][0]["agg"]["autoscaling"]["minReplicas"] = -1
    with pytest.raises(StackConfigError, match="greater than or equal to 0"):
        parse(raw)


def test_the_hpa_cannot_scale_to_zero() -> None:
    with pytest.raises(StackConfigError) as caught:
        parse(scale_to_zero(platform={"autoscaler": "hpa"}))
    report = caught.value.report()
    assert (
        "models[0].agg.autoscaling.minReplicas: minReplicas 0 needs platform.autoscaler keda"
        in (report)
    )
    assert "HPAScaleToZero" in report
    m = model(minReplicas=0)
    scaling = m.role("agg").autoscaling
    assert scaling is not None
    with pytest.raises(ValueError, match="cannot scale to zero"):
        build_horizontal_pod_autoscaler(m, "blue", "agg", scaling)


def test_a_slot_taking_requests_with_no_worker_is_a_cold_start_warning_not_an_error() -> None:
    checked = check_stack_values(scale_to_zero(), "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (warning,) = [w for w in checked.warnings if w.path == "models[0].agg.autoscaling.minReplicas"]
    assert warning.severity == "warning"
    assert checked.deployment is not None
    minutes = ready_timeout_seconds(checked.deployment.models[0]) // 60
    assert f"up to {minutes} minutes" in warning.message
    assert "scales its agg workers to zero" in warning.message
    assert "clients must retry" in warning.message
    # replicas 0 is still the error: that slot never has a worker.
    raw = scale_to_zero()
    raw["models"][0]["agg"]["replicas"] = 0
    with pytest.raises(StackConfigError, match="receives 100% of requests but has no agg workers"):
        parse(raw)


def test_a_managed_pool_that_keeps_its_node_is_said() -> None:
    checked = check_stack_values(scale_to_zero(), "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (kept,) = [w for w in checked.warnings if w.path == "nodePools[0].provisioner"]
    assert "keeps 1 node(s) (desiredSize)" in kept.message
    raw = scale_to_zero()
    raw["nodePools"][0] |= {"provisioner": "karpenter", "maxSize": 2}
    for key in ("minSize", "desiredSize"):
        del raw["nodePools"][0][key]
    checked = check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    assert not [w for w in checked.warnings if w.path == "nodePools[0].provisioner"]


def test_dev_scales_its_model_to_zero_on_its_karpenter_pool(rendered: dict[str, Rendered]) -> None:
    checked = check_stack(PROJECT_ROOT, "dev")
    (warning,) = [w for w in checked.warnings if w.path == "models[0].agg.autoscaling.minReplicas"]
    assert warning.file == "stacks/Pulumi.dev.yaml" and warning.line is not None
    dev = rendered["dev"]
    (scaled,) = dev.objects("ScaledObject")
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["triggers"][0]["metadata"]["activationThreshold"] == "0"
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "DynamoGraphDeploymentScalingAdapter"
