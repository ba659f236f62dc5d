"""A worker whose load outlasts the operator's startup probe gets one that covers it.

The Dynamo operator gives every worker container a startup probe of 720 x 10 s (2 h); the
kubelet kills a container still loading after that, and it starts the load over, forever. The
render states a longer probe exactly where the cold-start estimate (with its margin) needs one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.deployment.readiness import (
    OPERATOR_STARTUP_SECONDS,
    S3_CACHE_GIB_PER_MINUTE,
    STARTUP_MARGIN,
    startup_failure_threshold,
)
from infra.offline.crd_bundle import ShippedSchemas
from infra.offline.render import render_stack
from infra.offline.validate import CrdSchemas, StackSchemas, validate_render
from infra.stack.platform_config import PlatformSpec
from tests.conftest import Project
from tests.dgd_layouts import container_object, services

# DeepSeek-R1 with a checkpoint twice prod's: 20 min node and image + 10 min engine start +
# 134 min of S3 reads through the cache; the container itself needs 144 min of the probe's 120.
LARGE_GIB = 1340
OPERATOR_PROBE_HANDLER = {"httpGet": {"path": "/live", "port": "system"}}


def _dgd(out: Path, name: str) -> dict:
    return yaml.safe_load(
        (
            out / "kubernetes" / name.rsplit("-", 1)[0] / f"DynamoGraphDeployment-{name}.yaml"
        ).read_text()
    )


def _render_prod(project: Project, out: Path, *, size_gib: int | None, release: str) -> Path:
    config = project.stack_config("prod")
    config["dynamo-trtllm:platform"]["dynamoVersion"] = release
    if size_gib is not None:
        (deepseek,) = [m for m in config["dynamo-trtllm:models"] if m["name"] == "deepseek-r1"]
        deepseek["source"]["s3"]["sizeGib"] = size_gib
    project.write_stack("prod", config)
    render_stack("prod", out, project.root)
    return out


@pytest.mark.parametrize("release", ["1.1.0", "1.2.0"])
def test_a_load_past_two_hours_gets_a_covering_startup_probe_on_every_worker(
    release: str, project: Project, tmp_path: Path
) -> None:
    out = _render_prod(project, tmp_path / "prod", size_gib=LARGE_GIB, release=release)
    dgd = _dgd(out, "deepseek-r1-blue")
    load_seconds = 60 * (10 + LARGE_GIB / S3_CACHE_GIB_PER_MINUTE)
    views = services(dgd)
    workers = [name for name, view in views.items() if view.is_worker]
    assert sorted(workers) == ["decode", "prefill"]
    for name in workers:
        probe = container_object(dgd, name)["startupProbe"]
        # The operator's own handler and period: only the number of failures is ours.
        assert probe["httpGet"] == OPERATOR_PROBE_HANDLER["httpGet"]
        assert probe["periodSeconds"] == 10 and probe["timeoutSeconds"] == 5
        budget = probe["periodSeconds"] * probe["failureThreshold"]
        assert budget > OPERATOR_STARTUP_SECONDS
        assert budget >= STARTUP_MARGIN * load_seconds
    assert "startupProbe" not in container_object(dgd, "Frontend")
    # The CRD of the release takes it (the main container's startupProbe is a core Probe).
    schemas = StackSchemas(
        CrdSchemas(), ShippedSchemas.for_pins(PlatformSpec(dynamo_version=release).chart_pins())
    )
    report = validate_render(out, "prod", schemas, "1.33")
    assert report.failures == [] and report.no_schema == []


def test_models_that_load_within_the_operator_probe_render_byte_for_byte_as_before(
    project: Project, tmp_path: Path
) -> None:
    base = _render_prod(project, tmp_path / "base", size_gib=None, release="1.1.0")
    large = _render_prod(project, tmp_path / "large", size_gib=LARGE_GIB, release="1.1.0")
    graphs = sorted((base / "kubernetes").glob("*/DynamoGraphDeployment-*.yaml"))
    assert graphs
    for path in graphs:
        text = path.read_text()
        # prod's own DeepSeek-R1 (690 GiB, 79 min in the container) fits the 2 h default too.
        assert "startupProbe" not in text, path.name
        if "deepseek-r1" not in path.name:
            assert (large / path.relative_to(base)).read_text() == text, path.name


def test_the_threshold_is_the_estimate_with_margin_at_the_operators_period() -> None:
    minutes = 60
    assert startup_failure_threshold(0) is None  # no wait at all: nothing to cover
    # prod's DeepSeek-R1: 99 min in all, 79 of them in the container; x1.5 = 118.5 < 120
    assert startup_failure_threshold(99 * minutes) is None
    assert startup_failure_threshold(164 * minutes) == 144 * minutes * STARTUP_MARGIN / 10
