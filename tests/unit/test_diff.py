"""The offline diff on crafted changes: what a reviewer sees for each kind of edit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from infra.offline.diff import RenderDiff, diff_documents, diff_renders
from infra.offline.diff_format import SECRET_CHANGE, format_json, format_markdown, format_text
from infra.offline.render import render_stack
from infra.stack.dynamo_versions import PROFILES
from tests.conftest import Project
from tests.dgd_layouts import container_path, service_path

Edit = Callable[[dict], None]


def render_pair(project: Project, tmp_path: Path, edit: Edit, stack: str = "dev") -> RenderDiff:
    """Render the stack, apply `edit` to its config, render again, and diff the two."""
    render_stack(stack, tmp_path / "base", project.root)
    config = project.stack_config(stack)
    edit(config)
    project.write_stack(stack, config)
    render_stack(stack, tmp_path / "head", project.root)
    return diff_renders(tmp_path / "base", tmp_path / "head")


def changed(diff: RenderDiff) -> dict[str, list[str]]:
    return {
        c.resource.label: [f.path for f in c.fields]
        for c in diff.resources
        if c.status == "changed"
    }


def labels(diff: RenderDiff, status: str) -> set[str]:
    return {c.resource.label for c in diff.resources if c.status == status}


def models(config: dict) -> list[dict]:
    return config["dynamo-trtllm:models"]


# Each Dynamo release, so each DGD layout: 1.2.0 emits v1beta1, 1.1.0 v1alpha1.
RELEASES = sorted(PROFILES)


def on_release(project: Project, stack: str, release: str) -> None:
    """Pin the project copy's stack to a Dynamo release (and so to its DGD layout)."""
    config = project.stack_config(stack)
    config.setdefault("dynamo-trtllm:platform", {})["dynamoVersion"] = release
    project.write_stack(stack, config)


@pytest.mark.parametrize("release", RELEASES)
def test_image_bump_changes_only_the_graphs_images(
    project: Project, tmp_path: Path, release: str
) -> None:
    def bump(config: dict) -> None:
        models(config)[0]["image"] = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.1"

    on_release(project, "dev", release)
    diff = render_pair(project, tmp_path, bump)
    (change,) = diff.resources
    dgd = change.resource.document
    assert dgd["apiVersion"] == PROFILES[release].dgd_api_version
    assert changed(diff) == {
        "DynamoGraphDeployment qwen3-0-6b/qwen3-0-6b-blue": [
            container_path(dgd, "Frontend", "image"),
            container_path(dgd, "TRTLLMWorker", "image"),
        ]
    }
    (field, _) = change.fields
    assert field.before.endswith(":1.2.0") and field.after.endswith(":1.2.1")
    # An in-place update that restarts both services' pods, which the operator accepts.
    assert not change.replaces and change.refusals == []
    assert change.rolls == ("Frontend", "TRTLLMWorker")


@pytest.mark.parametrize("release", RELEASES)
def test_replica_change_is_one_field(project: Project, tmp_path: Path, release: str) -> None:
    def scale(config: dict) -> None:
        models(config)[0]["agg"] = {"replicas": 3}

    on_release(project, "staging", release)
    diff = render_pair(project, tmp_path, scale, stack="staging")
    (change,) = diff.resources
    dgd = change.resource.document
    assert dgd["apiVersion"] == PROFILES[release].dgd_api_version
    assert changed(diff) == {
        "DynamoGraphDeployment qwen3-0-6b/qwen3-0-6b-blue": [
            service_path(dgd, "TRTLLMWorker", "replicas")
        ]
    }
    assert "-   2\n    +   3" in format_text(diff)
    # More pods of the same template: nothing running restarts.
    assert not change.replaces and change.refusals == [] and change.rolls == ()


def test_new_model_adds_its_namespace_graph_and_service(project: Project, tmp_path: Path) -> None:
    def add(config: dict) -> None:
        second = dict(models(config)[0], name="qwen3-b", servedModelName="Qwen/Qwen3-0.6B-b")
        second["agg"] = {"engineConfig": "engine_configs/qwen3-0-6b/agg.yaml"}
        models(config).append(second)
        config["dynamo-trtllm:nodePools"][0]["maxSize"] = 2  # room for its GPU

    diff = render_pair(project, tmp_path, add)
    added = labels(diff, "added")
    assert {
        "Namespace qwen3-b",
        "DynamoGraphDeployment qwen3-b/qwen3-b-blue",
        "ConfigMap qwen3-b/qwen3-b-blue-engine-config",
        "Service qwen3-b/qwen3-b",
    } <= added
    assert labels(diff, "removed") == set()


def test_removed_model_lists_what_goes(project: Project, tmp_path: Path) -> None:
    def remove(config: dict) -> None:
        del models(config)[1:]

    diff = render_pair(project, tmp_path, remove, stack="staging")
    removed = labels(diff, "removed")
    assert "DynamoGraphDeployment qwen3-disagg/qwen3-disagg-blue" in removed
    assert "Namespace qwen3-disagg" in removed
    assert labels(diff, "added") == set()


def test_engine_config_change_shows_the_config_map_lines_and_the_rolling_hash(
    project: Project, tmp_path: Path
) -> None:
    render_stack("dev", tmp_path / "base", project.root)
    engine = project.root / "engine_configs" / "qwen3-0-6b" / "agg.yaml"
    engine.write_text(engine.read_text().replace("max_num_tokens: 8192", "max_num_tokens: 4096"))
    render_stack("dev", tmp_path / "head", project.root)
    diff = diff_renders(tmp_path / "base", tmp_path / "head")
    assert changed(diff) == {
        "ConfigMap qwen3-0-6b/qwen3-0-6b-blue-engine-config": ['data["agg.yaml"]'],
        "DynamoGraphDeployment qwen3-0-6b/qwen3-0-6b-blue": [
            'metadata.annotations["dynamo-trtllm.io/engine-config-hash"]',
            'spec.annotations["dynamo-trtllm.io/engine-config-hash"]',
        ],
    }
    text = format_text(diff)
    assert "-   max_num_tokens: 8192" in text and "+   max_num_tokens: 4096" in text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"secure": "v1:Y2lwaGVydGV4dC1vbmU="}, {"secure": "v1:Y2lwaGVydGV4dC10d28="}),
        ({"secure": "v1:c2hvcnQ="}, {"secure": "v1:bXVjaC1sb25nZXItY2lwaGVydGV4dA=="}),
    ],
    ids=["rotated", "rotated-longer"],
)
def test_secret_change_is_reported_but_never_printed(
    project: Project, tmp_path: Path, before: object, after: object
) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:hfToken"] = before
    project.write_stack("dev", config)

    def rotate(config: dict) -> None:
        config["dynamo-trtllm:hfToken"] = after

    diff = render_pair(project, tmp_path, rotate)
    assert [(c.resource.label, c.fields, c.secret_changed) for c in diff.resources] == [
        ("Secret qwen3-0-6b/hf-token-secret", [], True)
    ]
    for output in (format_text(diff), format_markdown(diff), format_json(diff)):
        assert SECRET_CHANGE in output or '"secretChanged": true' in output
        for secret in (before, after):
            assert str(secret["secure"]) not in output  # type: ignore[index]


def test_named_lists_are_matched_by_name_not_position() -> None:
    before = {"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}
    after = {"env": [{"name": "B", "value": "3"}, {"name": "A", "value": "1"}]}
    (change,) = diff_documents(before, after)
    assert (change.path, change.before, change.after) == ("env[name=B].value", "2", "3")


def test_no_change_is_an_empty_diff(project: Project, tmp_path: Path) -> None:
    diff = render_pair(project, tmp_path, lambda config: None)
    assert diff.empty
    assert "No change to any resource." in format_markdown(diff)
