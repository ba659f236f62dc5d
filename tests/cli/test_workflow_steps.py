"""preview.yml's offline `run:` steps, run as written on a clean copy of the repository.

Every `run:` step of the `tests` and `offline-diff` jobs runs for every stack of the
offline-diff matrix, with GitHub's default shell, `${{ matrix.stack }}` and
`${{ github.base_ref }}` substituted, from the root of a fresh git repository holding the
working tree's files (tracked and untracked, not ignored), the way `actions/checkout` leaves a
pull request's merge commit. Two things stand in for `uses:` steps:

- `./.github/actions/setup` installs the project into `.venv` and checkov into `.venv-scanner`:
  the copy gets symlinks to this checkout's virtualenvs, with the copy first on PYTHONPATH so
  its own code runs, not the code the editable install points at (checked below).
- `actions/checkout` with `fetch-depth: 0` gives the diff its `origin/<base_ref>`: the copy's
  `refs/remotes/origin/<base_ref>` points at its only commit, so the base render is real.

The `tests` job's pytest step is not run here (it would run this test again); it must be
README's test command. Unlike a GitHub job, a failed step does not stop the next ones, so one
run names every failing step.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

PREVIEW = PROJECT_ROOT / ".github" / "workflows" / "preview.yml"
SETUP = PROJECT_ROOT / ".github" / "actions" / "setup" / "action.yml"
OFFLINE_JOBS = ("tests", "offline-diff")
MATRIX_JOB = "offline-diff"
VIRTUALENVS = (".venv", ".venv-scanner")  # what the setup action makes
# `uses:` steps of the offline jobs and what stands in for each here.
STAND_INS = {
    "actions/checkout": "the copy (a fresh repository with origin/<base_ref>)",
    "./.github/actions/setup": "symlinks to this checkout's virtualenvs",
    "marocchino/sticky-pull-request-comment": "nothing: it only posts diff.md",
}
STEP_TIMEOUT = 600  # seconds, far above what any step takes
# GitHub runs a `run:` step as a script file; the shell's arguments by its `shell:` value.
SHELLS = {None: ["bash", "-e"], "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail"]}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_preview() -> dict[str, Any]:
    document = yaml.safe_load(PREVIEW.read_text())
    if True in document:  # PyYAML reads `on:` as True (YAML 1.1)
        document["on"] = document.pop(True)
    return document


WORKFLOW = load_preview()
JOBS = WORKFLOW["jobs"]
STACKS = list(JOBS[MATRIX_JOB]["strategy"]["matrix"]["stack"])
# A pull request's base_ref is the branch it targets; preview.yml runs for these.
BASE_REF = WORKFLOW["on"]["pull_request"]["branches"][0]


def readme_test_command() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    found = re.search(r"Run the tests:\n\n```bash\n(.+)\n```", readme)
    assert found is not None, "README has no 'Run the tests:' command block"
    return found.group(1)


def is_pytest_step(job: str, step: dict[str, Any]) -> bool:
    return job == "tests" and "pytest" in step.get("run", "")


def runnable_steps(job: str) -> list[dict[str, Any]]:
    """The job's `run:` steps this test runs (all but the tests job's pytest)."""
    return [s for s in JOBS[job]["steps"] if "run" in s and not is_pytest_step(job, s)]


def run_default(job: str, key: str) -> Any:
    """`defaults.run.<key>` of the job, else of the workflow."""
    for level in (JOBS[job], WORKFLOW):
        if key in level.get("defaults", {}).get("run", {}):
            return level["defaults"]["run"][key]
    return None


def step_name(step: dict[str, Any]) -> str:
    return step.get("name") or step["run"].splitlines()[0]


def substitute(text: str, job: str, stack: str | None) -> str:
    """`text` with the expressions an offline step may use replaced; any other one fails."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "github.base_ref":
            return BASE_REF
        if expression == "matrix.stack" and stack is not None:
            return stack
        pytest.fail(f"{job}: {match.group(0)} in {text!r} has no offline value in this test")

    return EXPRESSION.sub(value, str(text))


# (job, stack): the matrix job once per stack, a job without a matrix once.
RUNS = [
    pytest.param(job, stack, id=f"{job}-{stack}" if stack else job)
    for job in OFFLINE_JOBS
    for stack in (STACKS if "strategy" in JOBS[job] else [None])
    if runnable_steps(job)
]


def clean_git_env() -> dict[str, str]:
    """This process's environment without git variables that would point at another repo."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=ci", "-c", "user.email=ci@localhost",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True, env=clean_git_env(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh repository of the working tree's files, with the virtualenvs linked in."""
    missing = [v for v in VIRTUALENVS if not (PROJECT_ROOT / v / "bin").is_dir()]
    if missing:
        pytest.skip(f"no {', '.join(missing)} in {PROJECT_ROOT} (README quick start makes them)")
    root = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "ls-files", "-z", "-co", "--exclude-standard"],
        check=True, capture_output=True, env=clean_git_env(),
    ).stdout.decode().split("\0")  # fmt: skip
    for relative in filter(None, listed):
        source = PROJECT_ROOT / relative
        if not source.is_symlink() and not source.is_file():
            continue  # tracked but deleted in the working tree
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, root / relative, follow_symlinks=False)
    git(root, "init", "-q", "-b", f"pr-into-{BASE_REF}")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the working tree")
    git(root, "update-ref", f"refs/remotes/origin/{BASE_REF}", "HEAD")
    for venv in VIRTUALENVS:  # after the commit: .gitignore keeps them out anyway
        (root / venv).symlink_to(PROJECT_ROOT / venv, target_is_directory=True)
    return root


def step_environment(checkout: Path, *layers: dict[str, Any]) -> dict[str, str]:
    """The process environment, the copy first on PYTHONPATH, then workflow/job/step `env:`."""
    env = clean_git_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout), env.get("PYTHONPATH")]))
    for layer in layers:
        env.update({str(k): str(v) for k, v in layer.items()})
    return env


def test_the_copys_code_is_what_runs(checkout: Path) -> None:
    probe = "import components, infra; print(infra.__file__); print(components.__file__)"
    result = subprocess.run(
        [".venv/bin/python", "-c", probe],
        cwd=checkout, env=step_environment(checkout), capture_output=True, text=True, check=True,
    )  # fmt: skip
    for module_file in result.stdout.split():
        assert Path(module_file).resolve().is_relative_to(checkout.resolve()), module_file


def test_the_tests_job_runs_readmes_test_command() -> None:
    pytest_steps = [s for s in JOBS["tests"]["steps"] if is_pytest_step("tests", s)]
    assert [s["run"].strip() for s in pytest_steps] == [readme_test_command()]
    assert readme_test_command() == ".venv/bin/python -m pytest"


def test_what_stands_in_for_the_uses_steps() -> None:
    for job in OFFLINE_JOBS:
        for step in JOBS[job]["steps"]:
            if "uses" in step:
                action = step["uses"].split("@")[0]
                assert action in STAND_INS, f"{job}: teach this test what stands in for {action}"
                if action == "./.github/actions/setup":  # offline: no AWS role, no secrets
                    assert not step.get("with"), f"{job}: the setup step takes no inputs offline"
    install = next(
        s["run"] for s in yaml.safe_load(SETUP.read_text())["runs"]["steps"] if "run" in s
    )
    for venv in VIRTUALENVS:
        assert f"python3 -m venv {venv} " in install, f"setup no longer makes {venv}"


@pytest.mark.parametrize(("job", "stack"), RUNS)
def test_offline_steps_pass_as_written(checkout: Path, job: str, stack: str | None) -> None:
    definition = JOBS[job]
    failures = []
    for step in runnable_steps(job):
        shell = step.get("shell", run_default(job, "shell"))
        assert shell in SHELLS, f"{job}: {step_name(step)}: shell {shell!r} is not handled here"
        directory = step.get("working-directory", run_default(job, "working-directory") or ".")
        command = substitute(step["run"], job, stack)
        env = step_environment(
            checkout,
            *(
                {k: substitute(v, job, stack) for k, v in layer.get("env", {}).items()}
                for layer in (WORKFLOW, definition, step)
            ),
        )
        script = checkout.parent / f"{checkout.name}-step.sh"
        script.write_text(command + "\n")
        result = subprocess.run(
            [*SHELLS[shell], str(script)],
            cwd=checkout / substitute(directory, job, stack),
            env=env, capture_output=True, text=True, check=False, timeout=STEP_TIMEOUT,
        )  # fmt: skip
        if result.returncode != 0:
            failures.append(
                f"step {step_name(step)!r} of job {job!r}, stack {stack!r}, exit "
                f"{result.returncode}:\n$ {command.strip()}\n{result.stderr.strip()[-3000:]}"
            )
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
