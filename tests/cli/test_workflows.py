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
FILES = sorted([*GITHUB.glob("workflows/*.yml"), *GITHUB.glob("actions/*/action.yml")])
# Every action we use, pinned to the commit of its current (node24) major's newest release: a
# moved tag cannot change what runs. Each commit was read from the action's repository at that
# release tag; a bump changes the commit and the release in the comment together.
ACTION_PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
    "pulumi/actions": ("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0"),
    "pulumi/auth-actions": ("141415910c3beb54e03b48e9057c204c97b956f2", "v2.1.0"),
    "marocchino/sticky-pull-request-comment": (
        "5770ad5eb8f42dd2c4f34da00c94c5381e49af88",
        "v3.0.5",
    ),
}
TEAM_TOKEN = "urn:pulumi:token-type:access_token:team"


def load(relative: str) -> dict:
    # PyYAML reads the `on:` key as True (YAML 1.1); map it back for readability.
    document = yaml.safe_load((GITHUB / relative).read_text())
    if True in document:
        document["on"] = document.pop(True)
    return document


def steps_of(document: dict) -> list[dict]:
    """Every step of a workflow's jobs or of a composite action."""
    if "runs" in document:
        return document["runs"]["steps"]
    return [s for job in document["jobs"].values() for s in job.get("steps", [])]


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


def test_offline_validation_uses_the_schemas_shipped_in_the_repository() -> None:
    workflow = load("workflows/preview.yml")
    steps = workflow["jobs"]["offline-diff"]["steps"]
    validate = next(s for s in steps if "dynamo-infra validate" in s.get("run", ""))
    assert validate["run"] == ".venv/bin/dynamo-infra validate ${{ matrix.stack }}"
    # Nothing fetched from upstream repositories, no pins left for it.
    assert "--crd-dir" not in (GITHUB / "workflows" / "preview.yml").read_text()
    assert not [s for s in steps if "repository" in s.get("with", {})]
    assert "env" not in workflow


def test_every_action_is_pinned_to_a_commit_naming_its_release() -> None:
    for path in FILES:
        text = path.read_text()
        for step in steps_of(yaml.safe_load(text)):
            if "uses" not in step or step["uses"].startswith("./"):
                continue
            action, _, commit = step["uses"].partition("@")
            assert action in ACTION_PINS, f"{path.name}: {action}: pin it here"
            pinned, release = ACTION_PINS[action]
            assert commit == pinned, f"{path.name}: {step['uses']}"
            assert f"uses: {action}@{pinned}  # {release}\n" in text, f"{path.name}: {action}"


def test_pulumi_cloud_tokens_come_from_oidc_not_secrets() -> None:
    for path in FILES:
        referenced = set(re.findall(r"secrets\.([A-Za-z0-9_]+)", path.read_text()))
        assert referenced <= {"GITHUB_TOKEN"}, f"{path.name} uses secrets {referenced}"
    pulumi_jobs = 0
    for workflow in ("preview.yml", "deploy.yml", "pulumi-up.yml"):
        document = load(f"workflows/{workflow}")
        for name, job in document["jobs"].items():
            steps = job.get("steps", [])
            uses = [s.get("uses", "").partition("@")[0] for s in steps]
            if "pulumi/actions" not in uses:
                continue
            pulumi_jobs += 1
            auth = uses.index("pulumi/auth-actions") if "pulumi/auth-actions" in uses else None
            assert auth is not None and auth < uses.index("pulumi/actions"), f"{workflow}: {name}"
            login = steps[auth]["with"]
            assert login["organization"] == "${{ vars.PULUMI_ORG }}"
            # Never the organization's token: the deploy team of the job's environment (its own
            # stack only) for `up`, the read-only preview team for previews and drift checks.
            assert login["requested-token-type"] == TEAM_TOKEN, f"{workflow}: {name}"
            team = "PULUMI_DEPLOY_TEAM" if workflow == "pulumi-up.yml" else "PULUMI_PREVIEW_TEAM"
            assert login["scope"] == f"team:${{{{ vars.{team} }}}}", f"{workflow}: {name}"
            # The exchange needs GitHub's OIDC token; job permissions replace the workflow's.
            permissions = job.get("permissions", document.get("permissions", {}))
            assert permissions.get("id-token") == "write", f"{workflow}: {name}"
            assert "PULUMI_ACCESS_TOKEN" not in steps[uses.index("pulumi/actions")].get("env", {})
    assert pulumi_jobs == 3  # cloud-preview, drift, up


def test_deploy_calls_pulumi_up_with_exactly_its_interface() -> None:
    interface = load("workflows/pulumi-up.yml")["on"]["workflow_call"]
    assert "secrets" not in interface
    inputs = interface["inputs"]
    deploy = load("workflows/deploy.yml")
    # A called workflow gets at most its caller's permissions: up needs id-token: write.
    assert deploy["permissions"]["id-token"] == "write"
    callers = [j for j in deploy["jobs"].values() if j.get("uses", "").endswith("pulumi-up.yml")]
    assert callers
    for job in callers:
        assert "secrets" not in job
        assert set(job["with"]) <= set(inputs)
        assert {name for name, spec in inputs.items() if spec.get("required")} <= set(job["with"])


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
