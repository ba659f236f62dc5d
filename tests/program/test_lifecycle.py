"""index.json records each resource's Pulumi lifecycle options, and diff reports their changes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from infra.offline.diff import diff_renders
from tests.conftest import Rendered


def test_index_records_lifecycle_options(rendered: dict[str, Rendered]) -> None:
    (pool,) = [r for r in rendered["prod"].index if r["name"] == "pool-l40s"]
    assert pool["lifecycle"] == {"ignoreChanges": ["scalingConfig.desiredSize"]}
    (fixed,) = [r for r in rendered["prod"].index if r["name"] == "pool-h100"]
    assert "lifecycle" not in fixed  # only what differs from Pulumi's defaults


def test_diff_reports_a_changed_lifecycle_option(
    rendered: dict[str, Rendered], tmp_path: Path
) -> None:
    head = tmp_path / "head"
    shutil.copytree(rendered["prod"].out, head)
    index = json.loads((head / "index.json").read_text())
    for entry in index["resources"]:
        if entry["name"] == "pool-l40s":
            del entry["lifecycle"]
    (head / "index.json").write_text(json.dumps(index))
    (change,) = diff_renders(rendered["prod"].out, head).resources
    assert [f.path for f in change.fields] == ["(pulumi options).ignoreChanges"]
