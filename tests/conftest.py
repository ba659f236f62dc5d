"""Shared fixtures: a throwaway copy of the project to write stack files into."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = PROJECT_ROOT.parent / "shared" / "reference"
STACKS = sorted(
    p.name.removeprefix("Pulumi.").removesuffix(".yaml")
    for p in (PROJECT_ROOT / "stacks").glob("Pulumi.*.yaml")
)


# Stacks that own only a public entry (role: traffic): no cluster, no Kubernetes object.
def stack_values(stack: str) -> dict:
    """The `config:` mapping of stacks/Pulumi.<stack>.yaml, as written."""
    return yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


TRAFFIC_STACKS = [s for s in STACKS if stack_values(s).get("dynamo-trtllm:role") == "traffic"]
ENVIRONMENT_STACKS = [s for s in STACKS if s not in TRAFFIC_STACKS]


@pytest.fixture
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"upstream reference data not present at {REFERENCE}")
    return REFERENCE


class Project:
    """A copy of Pulumi.yaml, stacks/ and engine_configs/ in a temp dir, to edit freely."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copy(PROJECT_ROOT / "Pulumi.yaml", root / "Pulumi.yaml")
        shutil.copytree(PROJECT_ROOT / "stacks", root / "stacks")
        shutil.copytree(PROJECT_ROOT / "engine_configs", root / "engine_configs")

    def stack_config(self, stack: str) -> dict:
        return yaml.safe_load((self.root / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]

    def write_stack(self, stack: str, config: dict) -> Path:
        path = self.root / "stacks" / f"Pulumi.{stack}.yaml"
        path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        return path


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "project"
    root.mkdir()
    return Project(root)


class Rendered:
    """A render directory: index.json entries and the manifests they point at."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.index = json.loads((out / "index.json").read_text())["resources"]

    def of_type(self, prefix: str) -> list[dict]:
        return [r for r in self.index if r["type"].startswith(prefix)]

    def objects(self, kind: str) -> list[dict]:
        return [self.load(r) for r in self.index if r.get("kind") == kind]

    def load(self, entry: dict) -> dict:
        return yaml.safe_load((self.out / entry["file"]).read_text())


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    """Every stack rendered once per test session (rendering is the slow part)."""
    from infra.offline.render import render_stack

    base = tmp_path_factory.mktemp("render")
    for stack in STACKS:
        render_stack(stack, base / stack, PROJECT_ROOT)
    return {stack: Rendered(base / stack) for stack in STACKS}
