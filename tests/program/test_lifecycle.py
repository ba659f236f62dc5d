"""index.json records each resource's Pulumi lifecycle options, and diff reports their changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.offline.diff import diff_renders
from tests.conftest import Rendered


def test_index_records_lifecycle_options(rendered: dict[str, Rendered]) -> None:
    (cluster,) = [r for r in rendered["prod"].index if r["name"] == "cluster-eks"]
    assert cluster["lifecycle"] == {
        "protect": True,
        "ignoreChanges": ["accessConfig.bootstrapClusterCreatorAdminPermissions"],
    }
    (fixed,) = [r for r in rendered["prod"].index if r["name"] == "pool-h100"]
    assert "lifecycle" not in fixed  # only what differs from Pulumi's defaults


def test_diff_reports_a_changed_lifecycle_option(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    head = tmp_path / "head"
    shutil.copytree(rendered["prod"].out, head)
    index = json.loads((head / "index.json").read_text())
    for entry in index["resources"]:
        if entry["name"] == "cluster-eks":
            del entry["lifecycle"]["ignoreChanges"]
    (head / "index.json").write_text(json.dumps(index))
    (change,) = diff_renders(rendered["prod"].out, head).resources
    assert [f.path for f in change.fields] == ["(pulumi options).ignoreChanges"]


def _edited_copy(
    render: Rendered, tmp_path: Path, pick: Any, old: str, new: str, **entry_changes: str
) -> Path:
    """A copy of a render with one resource's file edited (`old` -> `new`, once) and its
    index entry changed as given; `pick` selects the entry."""
    head = tmp_path / "head"
    shutil.copytree(render.out, head)
    index = json.loads((head / "index.json").read_text())
    (entry,) = [e for e in index["resources"] if pick(e)]
    entry.update(entry_changes)
    document = head / entry["file"]
    text = document.read_text()
    assert old in text, old
    document.write_text(text.replace(old, new, 1))
    (head / "index.json").write_text(json.dumps(index))
    return head


def _is_graph(entry: dict) -> bool:
    return entry.get("kind") == "DynamoGraphDeployment"


def test_diff_says_when_a_change_forces_a_replace(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    head = _edited_copy(
        rendered["dev"], tmp_path, _is_graph, "name: qwen3-0-6b-blue", "name: renamed",
        k8sName="renamed",
    )  # fmt: skip
    (change,) = diff_renders(rendered["dev"].out, head).resources
    assert change.replaces


def test_diff_pairs_an_api_version_move_of_the_same_object(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    """A profile change re-emits each DGD under the new API version: the same object, updated."""
    (old_api,) = {e["apiVersion"] for e in rendered["dev"].index if _is_graph(e)}
    head = _edited_copy(
        rendered["dev"], tmp_path, _is_graph, old_api, "nvidia.com/v9",
        apiVersion="nvidia.com/v9", type="kubernetes:nvidia.com/v9:DynamoGraphDeployment",
    )  # fmt: skip
    (change,) = diff_renders(rendered["dev"].out, head).resources
    assert change.status == "changed" and not change.replaces
    assert [f.path for f in change.fields] == ["apiVersion"]
    assert f"moves from {old_api} to nvidia.com/v9" in change.notes[0]


def test_a_graph_is_aliased_to_its_type_under_every_other_api_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changing platform.dynamoVersion changes the DGD's type token; without the alias Pulumi
    would create the (same-named) object and then delete it as the old resource."""
    from infra.offline import render
    from infra.offline.render import render_stack
    from tests.conftest import PROJECT_ROOT

    aliases: dict[str, list[str]] = {}
    register = render.LifecycleMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        if request.type.endswith(":DynamoGraphDeployment"):
            aliases[request.type] = [a.spec.type for a in request.aliases]
        return register(self, request)

    monkeypatch.setattr(render.LifecycleMonitor, "RegisterResource", recording)
    render_stack("staging", tmp_path / "staging", PROJECT_ROOT)  # Dynamo 1.2.0: v1beta1
    render_stack("prod", tmp_path / "prod", PROJECT_ROOT)  # Dynamo 1.1.0: v1alpha1
    assert aliases == {
        "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment": [
            "kubernetes:nvidia.com/v1alpha1:DynamoGraphDeployment"
        ],
        "kubernetes:nvidia.com/v1alpha1:DynamoGraphDeployment": [
            "kubernetes:nvidia.com/v1beta1:DynamoGraphDeployment"
        ],
    }


def test_diff_warns_that_a_capacity_block_pool_has_no_spare_instance(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    def is_h100_pool(entry: dict) -> bool:
        return entry["name"] == "pool-h100"

    (pool,) = [e for e in rendered["prod"].index if is_h100_pool(e)]
    assert "CAPACITY_BLOCK" in (rendered["prod"].out / pool["file"]).read_text()  # prod's block
    head = _edited_copy(
        rendered["prod"], tmp_path, is_h100_pool, "releaseVersion: ", "releaseVersion: 9"
    )
    (change,) = diff_renders(rendered["prod"].out, head).resources
    assert any("capacity-block pool" in note for note in change.notes)


def test_diff_says_a_node_class_change_replaces_a_karpenter_pools_nodes(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    def is_node_class(entry: dict) -> bool:
        return entry.get("kind") == "EC2NodeClass"

    head = _edited_copy(
        rendered["dev"], tmp_path, is_node_class, "volumeSize: 200Gi", "volumeSize: 300Gi"
    )
    (change,) = diff_renders(rendered["dev"].out, head).resources
    assert any("Karpenter replaces this pool's nodes" in note for note in change.notes)


def test_a_karpenter_limit_change_replaces_no_node(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    def is_node_pool(entry: dict) -> bool:
        return entry.get("kind") == "NodePool"

    head = _edited_copy(
        rendered["dev"], tmp_path, is_node_pool, "nvidia.com/gpu: '1'", "nvidia.com/gpu: '2'"
    )
    (change,) = diff_renders(rendered["dev"].out, head).resources
    assert not any("Karpenter replaces" in note for note in change.notes)
