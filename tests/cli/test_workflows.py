"""The GitHub workflows: valid for GitHub, and in step with the stacks and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, STACKS, TRAFFIC_STACKS, stack_values

GITHUB = PROJECT_ROOT / ".github"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def load(relative: str) -> dict:
    # PyYAML reads the `on:` key as True (YAML 1.1); map it back for readability.
    document = yaml.safe_load((GITHUB / relative).read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


def cloud_stacks() -> list[str]:
    """Stacks with cloud resources to preview: EKS environments and traffic stacks."""
    return sorted(
        stack
        for stack in STACKS
        if stack in TRAFFIC_STACKS
        or stack_values(stack).get("dynamo-trtllm:cluster", {}).get("mode", "eks") == "eks"
    )


@pytest.mark.parametrize(
    ("schema", "files"),
    [
        ("vendor.github-workflows", sorted(GITHUB.glob("workflows/*.yml"))),
        ("vendor.github-actions", sorted(GITHUB.glob("actions/*/action.yml"))),
    ],
)
def test_files_are_valid_against_githubs_schemas(schema: str, files: list[Path]) -> None:
    assert files
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_preview_diffs_every_stack_and_previews_every_cloud_stack() -> None:
    jobs = load("workflows/preview.yml")["jobs"]
    assert sorted(jobs["offline-diff"]["strategy"]["matrix"]["stack"]) == STACKS
    assert sorted(jobs["cloud-preview"]["strategy"]["matrix"]["stack"]) == cloud_stacks()
    steps = jobs["offline-diff"]["steps"]
    diff = next(s for s in steps if "dynamo-infra diff" in s.get("run", ""))
    assert "--output markdown" in diff["run"] and "--base origin/" in diff["run"]
    comment = next(s for s in steps if s.get("uses", "").startswith("marocchino/"))
    # One comment per stack, found again and updated on each push.
    assert "${{ matrix.stack }}" in comment["with"]["header"]
    preview = next(
        s for s in jobs["cloud-preview"]["steps"] if "pulumi/actions" in s.get("uses", "")
    )
    assert preview["with"]["command"] == "preview" and preview["with"]["comment-on-pr"] is True
    assert any("dynamo-infra scan" in s.get("run", "") for s in steps)


def test_previews_and_deploys_enforce_the_policy_pack() -> None:
    for workflow, job in (("preview.yml", "cloud-preview"), ("pulumi-up.yml", None)):
        jobs = load(f"workflows/{workflow}")["jobs"]
        steps = jobs[job]["steps"] if job else next(iter(jobs.values()))["steps"]
        pulumi = next(s for s in steps if "pulumi/actions" in s.get("uses", ""))
        assert pulumi["with"]["policyPacks"] == "policy"
        assert (PROJECT_ROOT / pulumi["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()


def test_deploy_goes_dev_then_staging_then_prod_behind_environments() -> None:
    jobs = load("workflows/deploy.yml")["jobs"]
    assert jobs["staging"]["needs"] == "dev" and jobs["prod"]["needs"] == "staging"
    assert jobs["prod-traffic"]["needs"] == "prod"
    for stack in ("dev", "staging", "prod", "prod-traffic"):
        assert jobs[stack]["uses"] == "./.github/workflows/pulumi-up.yml"
        assert jobs[stack]["with"]["stack"] == stack
    up = load("workflows/pulumi-up.yml")["jobs"]["up"]
    assert up["environment"] == "${{ inputs.stack }}"
    drift = jobs["drift"]
    assert load("workflows/deploy.yml")["on"]["schedule"]
    step = next(s for s in drift["steps"] if "pulumi/actions" in s.get("uses", ""))
    assert step["with"]["expect-no-changes"] is True
    assert sorted(drift["strategy"]["matrix"]["stack"]) == cloud_stacks()


def test_ci_installs_the_way_readme_says() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    quick_start = re.search(r"```bash\n(python3 -m venv .*)\n```", readme)
    assert quick_start is not None
    install = load("actions/setup/action.yml")["runs"]["steps"][1]["run"]
    assert quick_start.group(1).startswith(install)
