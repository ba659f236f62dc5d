"""Diffing against a git ref: the base side rendered by that commit's own code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from infra.offline.diff import DiffError, RenderDiff, diff_renders
from infra.offline.render import render_stack


def render_at_ref(project_root: Path, ref: str, stack: str, out_dir: Path) -> bool:
    """Render `stack` as committed at `ref`, with that commit's own code. False: no such stack.

    The commit is checked out in a temporary git worktree and rendered by a separate Python
    process whose import path starts at the worktree, so the base side is what its code made.
    """
    top = _git(project_root, "rev-parse", "--show-toplevel").strip()
    inside = project_root.resolve().relative_to(Path(top).resolve())
    _git(project_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    scratch = Path(tempfile.mkdtemp(prefix="dynamo-infra-base-"))  # ours: removed at the end
    worktree = scratch / "tree"
    added = False
    try:
        _git(project_root, "worktree", "add", "--detach", "--quiet", str(worktree), ref)
        added = True
        base_root = worktree / inside
        if not (base_root / "stacks" / f"Pulumi.{stack}.yaml").is_file():
            return False
        env = {**os.environ, "PYTHONPATH": str(base_root)}
        command = [
            sys.executable, "-m", "infra.cli", "--project-dir", str(base_root),
            "render", stack, "--out", str(out_dir),
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=base_root, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DiffError(f"rendering {stack!r} at {ref} failed:\n{result.stderr.strip()}")
        return True
    finally:
        if added:  # only the worktree this call added, inside its own scratch directory
            subprocess.run(
                ["git", "-C", str(project_root), "worktree", "remove", "--force", str(worktree)],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(scratch, ignore_errors=True)


def diff_against_ref(project_root: Path, ref: str, stack: str) -> RenderDiff:
    """The working tree's render of `stack` against its render at git `ref`."""
    with tempfile.TemporaryDirectory(prefix="dynamo-infra-diff-") as scratch:
        base, head = Path(scratch) / "base", Path(scratch) / "head"
        has_base = render_at_ref(project_root, ref, stack, base)
        render_stack(stack, head, project_root)
        return diff_renders(base if has_base else None, head)


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = result.stderr.strip() or f"git {' '.join(args)} failed"
        raise DiffError(detail)
    return result.stdout
