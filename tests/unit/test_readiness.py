"""`pulumi up` waits for every DGD's Ready condition, for as long as its cold start needs."""

from __future__ import annotations

from infra.deployment.checked import check_stack
from infra.deployment.readiness import (
    HUGGING_FACE_GIB_PER_MINUTE,
    OPERATOR_STARTUP_SECONDS,
    S3_CACHE_GIB_PER_MINUTE,
    STARTUP_MARGIN,
    ready_timeout_seconds,
    weights_gib,
    worker_start_seconds,
)
from tests.conftest import PROJECT_ROOT, Rendered
from tests.dgd_layouts import container_object, services


def test_every_dgd_waits_for_ready(rendered: dict[str, Rendered]) -> None:
    for stack, render in rendered.items():
        for dgd in render.objects("DynamoGraphDeployment"):
            annotations = dgd["metadata"]["annotations"]
            assert annotations["pulumi.com/waitFor"] == "condition=Ready", stack
            assert int(annotations["pulumi.com/timeoutSeconds"]) >= 20 * 60, stack


def test_timeout_grows_with_the_weights_and_the_source_rate() -> None:
    deployment = check_stack(PROJECT_ROOT, "prod").deployment
    by_name = {m.model.name: m for m in deployment.models}
    small, large = by_name["qwen3-0-6b"], by_name["deepseek-r1"]
    assert ready_timeout_seconds(large) > ready_timeout_seconds(small)
    # DeepSeek-R1 comes from S3 through the cache: its weights at the cache's rate.
    size = weights_gib(large)
    assert size is not None and large.model.source.s3 is not None
    assert ready_timeout_seconds(large) >= 60 * (30 + size / S3_CACHE_GIB_PER_MINUTE)
    assert small.model.source.hugging_face is not None
    small_size = weights_gib(small)
    assert small_size is not None
    assert ready_timeout_seconds(small) >= 60 * (30 + small_size / HUGGING_FACE_GIB_PER_MINUTE)


def test_no_worker_is_killed_by_its_startup_probe_before_its_load_can_finish(
    rendered: dict[str, Rendered],
) -> None:
    """Each worker's startup probe (its own, or the operator's 720 x 10 s) outlasts the load the
    cold-start estimate gives it, with the margin: the kubelet does not restart it mid-load."""
    for stack, render in rendered.items():
        for dgd in render.objects("DynamoGraphDeployment"):
            timeout = int(dgd["metadata"]["annotations"]["pulumi.com/timeoutSeconds"])
            for name, view in services(dgd).items():
                if not view.is_worker:
                    continue
                probe = container_object(dgd, name).get("startupProbe")
                budget = (
                    OPERATOR_STARTUP_SECONDS
                    if probe is None
                    else probe["periodSeconds"] * probe["failureThreshold"]
                )
                assert budget >= STARTUP_MARGIN * worker_start_seconds(timeout), (stack, name)
