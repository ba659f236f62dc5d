"""`pulumi install` / `pulumi up` from a plain clone: what Pulumi's pip toolchain does, reproduced.

The toolchain (pulumi/pulumi sdk/python/toolchain/pip.go, InstallDependencies) creates the
virtualenv Pulumi.yaml names with `python -m venv`, upgrades pip, setuptools and wheel in it, and
runs `pip install -r requirements.txt` in the project root. The program then runs from that
virtualenv alone; here it runs under the recording mocks (`render`), so every import and every
resource registration of the real program happens in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT


def _clean_copy(target: Path) -> None:
    """The tracked and new files as they are in the working tree (no virtualenvs, no caches)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name.decode()
        if source.is_file():
            (target / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            (target / name.decode()).write_bytes(source.read_bytes())


# What the toolchain's processes see: the caller's environment without a PYTHONPATH, which would
# let another copy of the project stand in for the installed one.
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=_ENV)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def test_pulumi_install_makes_a_virtualenv_that_runs_the_program(tmp_path: Path) -> None:
    project = tmp_path / "clone"
    _clean_copy(project)
    options = yaml.safe_load((project / "Pulumi.yaml").read_text())["runtime"]["options"]
    assert options["toolchain"] == "pip"
    venv = project / options["virtualenv"]
    python = str(venv / "bin" / "python")

    _run([sys.executable, "-m", "venv", str(venv)], project)
    _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip", "setuptools", "wheel"], project)
    _run([python, "-m", "pip", "install", "-q", "-r", "requirements.txt"], project)

    out = tmp_path / "render"
    _run([str(venv / "bin" / "dynamo-infra"), "render", "dev", "--out", str(out)], project)
    assert (out / "index.json").is_file()
    located = subprocess.run(
        [python, "-c", "import infra, components; print(infra.__file__, components.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    ).stdout.split()
    assert all(Path(path).is_relative_to(project) for path in located), located
