"""The GitHub workflows: valid for GitHub, and in step with the stacks and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, STACKS, TRAFFIC_STACKS, stack_values
from tests.program.test_providers import Registration, registrations

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

# How long `pulumi up` may wait on one resource where the program sets no timeout of its own.
# AWS: the Terraform AWS provider's default timeouts (pulumi-aws bridges it), the longer of
# create and update, since one `up` does either (aws_eks_cluster create 30m / update 60m,
# aws_eks_node_group 60m / 60m, aws_eks_addon 20m / 20m, aws_nat_gateway 10m / 10m).
AWS_WAIT_SECONDS = {
    "aws:eks/cluster:Cluster": 60 * 60,
    "aws:eks/nodeGroup:NodeGroup": 60 * 60,
    "aws:eks/addon:Addon": 20 * 60,
    "aws:ec2/natGateway:NatGateway": 10 * 60,
}
# pulumi-kubernetes waits for these kinds to be ready, 10 minutes unless annotated otherwise.
AWAITED_KINDS = ("Deployment", "StatefulSet", "Service", "Ingress", "Job", "Pod")
KUBERNETES_AWAIT_SECONDS = 10 * 60
HELM_RELEASE_DEFAULT_TIMEOUT = 300  # a helm.v3.Release without `timeout`
# The deploy job's steps before `up` waits on anything: install, plan, the policy pack's venv,
# provider plugins and the preview `up` begins with.
DEPLOY_SETUP_SECONDS = 15 * 60
GITHUB_HOSTED_JOB_MAX_MINUTES = 360
PULUMI_OIDC_MAX_EXPIRATION = 25 * 3600  # an OIDC issuer's default "Max expiration"
AWS_MAX_SESSION_SECONDS = 12 * 3600  # the most an IAM role's MaxSessionDuration allows


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


def wait_seconds(resource: Registration) -> int:
    """The longest `up` can wait on the resource itself (its dependencies not counted)."""
    if resource.type in AWS_WAIT_SECONDS:
        return AWS_WAIT_SECONDS[resource.type]
    if resource.type == "kubernetes:helm.sh/v3:Release":
        return int(resource.inputs.get("timeout", HELM_RELEASE_DEFAULT_TIMEOUT))
    if resource.package != "kubernetes":
        return 0
    annotations = (resource.inputs.get("metadata") or {}).get("annotations") or {}
    if "pulumi.com/timeoutSeconds" in annotations:  # a DGD's wait for Ready, among others
        return int(annotations["pulumi.com/timeoutSeconds"])
    awaited = resource.type.rsplit(":", 1)[-1] in AWAITED_KINDS
    return (
        KUBERNETES_AWAIT_SECONDS if awaited and not annotations.get("pulumi.com/skipAwait") else 0
    )


def longest_wait(stack: str) -> tuple[int, list[Registration]]:
    """The longest chain of waits one `up` of the stack can go through, each resource starting
    only once what it depends on is done: its seconds, and the resources that wait on it."""
    by_urn = {r.urn: r for r in registrations(stack)}
    done: dict[str, tuple[int, list[Registration]]] = {}

    def finished(urn: str) -> tuple[int, list[Registration]]:
        if urn not in done:
            resource = by_urn[urn]
            before = max(
                (finished(d) for d in resource.dependencies if d in by_urn),
                key=lambda chain: chain[0],
                default=(0, []),
            )
            done[urn] = (before[0] + wait_seconds(resource), [*before[1], resource])
        return done[urn]

    return max((finished(urn) for urn in by_urn), key=lambda chain: chain[0], default=(0, []))


def test_a_deploy_job_outlasts_the_longest_up_of_any_stack() -> None:
    """A job killed at its timeout, or whose Pulumi token or AWS session expires, leaves the
    stack locked with pending operations: each must outlast the longest `up` of any stack."""
    waits = {stack: longest_wait(stack) for stack in STACKS}
    stack, (seconds, chain) = max(waits.items(), key=lambda item: item[1][0])
    waited = [f"{r.name} {wait_seconds(r)}s" for r in chain if wait_seconds(r)]
    # The chain is real: a first prod `up` waits for the cluster, then nodes, charts, models.
    types = {r.type.rsplit(":", 1)[-1] for r in waits["prod"][1]}
    assert {"Cluster", "NodeGroup", "Release", "DynamoGraphDeployment"} <= types, waited
    up = load("workflows/pulumi-up.yml")["jobs"]["up"]
    timeout = up["timeout-minutes"] * 60
    needed = seconds + DEPLOY_SETUP_SECONDS
    assert needed <= timeout, f"{stack} may wait {seconds}s in one up: {', '.join(waited)}"
    assert up["timeout-minutes"] <= GITHUB_HOSTED_JOB_MAX_MINUTES
    steps = {s.get("uses", "").partition("@")[0]: s for s in up["steps"]}
    token = int(steps["pulumi/auth-actions"]["with"]["token-expiration"])
    assert timeout <= token <= PULUMI_OIDC_MAX_EXPIRATION
    session = int(steps["./.github/actions/setup"]["with"]["aws-session-seconds"])
    assert timeout <= session <= AWS_MAX_SESSION_SECONDS
    setup = load("actions/setup/action.yml")
    aws = next(
        s for s in setup["runs"]["steps"] if "configure-aws-credentials" in s.get("uses", "")
    )
    assert aws["with"]["role-duration-seconds"] == "${{ inputs.aws-session-seconds }}"


def test_pull_request_code_gets_cloud_tokens_only_after_a_maintainer_approves() -> None:
    """Reading a stack in Pulumi Cloud decrypts its config secrets, and a pull request runs its
    own workflow file: every job that can mint an OIDC token waits for the `preview`
    environment's reviewers, and README has the trust accept that environment only."""
    workflow = load("workflows/preview.yml")
    minting = {
        name: job
        for name, job in workflow["jobs"].items()
        if job.get("permissions", workflow.get("permissions", {})).get("id-token") == "write"
    }
    assert "cloud-preview" in minting
    for name, job in minting.items():
        assert job.get("environment") == "preview", name
    assert workflow["permissions"].get("id-token") is None  # offline jobs mint nothing
    readme = (PROJECT_ROOT / "README.md").read_text()
    # A job without the gate has the plain pull_request subject, which nothing may trust.
    assert "repo:<org>/<repo>:environment:preview" in readme
    assert "repo:<org>/<repo>:pull_request" not in readme
    # A pull request's job naming a deploy environment must be refused by the branch rule.
    assert "deployment branch rule" in readme and "`main` only" in readme
