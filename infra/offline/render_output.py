"""Where render output may go, and how it is written: never over anything we did not write.

A render goes into a directory that is new, empty, or an earlier render of ours (recognised by
the marker in its `index.json`). Anything else — the project itself, one of its parents or
source folders, a file, a directory holding other things — is refused before any work is done,
and nothing is touched. Writes are staged beside the target and swapped in, so a reader never
sees a half-written render, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# index.json carries this key and value: the proof that a directory is a render of ours.
MARKER_KEY = "renderedBy"
MARKER_VALUE = "dynamo-trtllm"
INDEX_FILE = "index.json"

# The project's own folders and files: output never goes into (or over) them.
PROJECT_ENTRIES = frozenset(
    {
        ".ci",
        ".git",
        ".github",
        ".venv",
        ".venv-scanner",
        ".hypothesis",
        ".ruff_cache",
        "benchmarks",
        "components",
        "docs",
        "engine_configs",
        "infra",
        "policy",
        "schemas",
        "stacks",
        "tests",
    }
)


class OutputRefused(Exception):
    """The output directory is not one we may write (a usage error: nothing was touched)."""


class OutputFailed(Exception):
    """Writing the output failed (disk full, permissions); what we had written is gone."""


def is_render(directory: Path) -> bool:
    """A directory whose index.json carries our marker."""
    try:
        index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(index, dict) and index.get(MARKER_KEY) == MARKER_VALUE


def foreign_entries(render: Path) -> list[str]:
    """What an earlier render's directory holds that its index.json does not list: files someone
    added there (and symlinks, never ours), which replacing the render would delete."""
    try:
        index = json.loads((render / INDEX_FILE).read_text(encoding="utf-8"))
        written = {INDEX_FILE, *(str(entry["file"]) for entry in index.get("resources", []))}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return [INDEX_FILE]
    folders = {str(parent) for name in written for parent in Path(name).parents}
    foreign = []
    for base, directories, files in os.walk(render):
        relative = Path(base).relative_to(render)
        for name in sorted(directories):
            path = str(relative / name)
            if (Path(base) / name).is_symlink() or path not in folders:
                foreign.append(path + "/")
        directories[:] = [d for d in directories if str(relative / d) in folders]
        foreign += sorted(
            str(relative / name) for name in files if str(relative / name) not in written
        )
    return foreign


def render_dir_refusal(out: Path, project_root: Path) -> str | None:
    """Why `out` may not receive a render, or None when it may (new, empty, or a render of
    ours holding nothing it did not write)."""
    target = out.resolve()
    if problem := _placement_refusal(out, target, project_root.resolve()):
        return problem
    if not target.is_dir() or not any(target.iterdir()):
        return None
    if not is_render(target):
        return (
            f"{out} is a directory that holds other files (no {INDEX_FILE} of an earlier "
            "render): give a new directory, or one an earlier render wrote"
        )
    if foreign := foreign_entries(target):
        listed = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        return (
            f"{out} is an earlier render, but holds what that render did not write ({listed}): "
            "a new render replaces the directory, so move them out or give another directory"
        )
    return None


def renders_dir_refusal(out: Path, project_root: Path, stacks: list[str]) -> str | None:
    """Why `out` may not hold one render per stack (`validate --out`), or None when it may."""
    target = out.resolve()
    if problem := _placement_refusal(out, target, project_root.resolve()):
        return problem
    if target.is_dir():
        for entry in sorted(target.iterdir()):
            if not (entry.is_dir() and not entry.is_symlink() and is_render(entry)):
                return (
                    f"{out} holds {entry.name!r}, which is not a render of ours: give a new "
                    "directory, or one that an earlier `validate --out` wrote"
                )
    for stack in stacks:
        if problem := render_dir_refusal(out / stack, project_root):
            return problem
    return None


def _placement_refusal(out: Path, target: Path, root: Path) -> str | None:
    if target == root or root.is_relative_to(target):
        return f"{out} is the project directory or one of its parents: give a directory of its own, e.g. build/"
    if target.is_relative_to(root):
        top = target.relative_to(root).parts[0]
        if top in PROJECT_ENTRIES or top.endswith(".egg-info") or (root / top).is_file():
            return (
                f"{out} is inside the project's own {top}: give a directory of its own, e.g. build/"
            )
    if target.exists() and not target.is_dir():
        return f"{out} is a file, not a directory"
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                return f"{out} is under {parent}, which is a file"
            break
    return None


def write_render(
    out: Path, index: dict[str, Any], files: dict[str, str], project_root: Path
) -> None:
    """Write a render into `out` atomically, after the same refusal rules as before the render."""
    with _staged(out, project_root) as staging:
        for relative, body in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(body, encoding="utf-8")
        marked = {MARKER_KEY: MARKER_VALUE, **index}
        (staging / INDEX_FILE).write_text(
            json.dumps(marked, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )


def publish_render(rendered: Path, out: Path, project_root: Path) -> None:
    """Put a finished render (made elsewhere, e.g. in a scratch directory) at `out`, by the
    same rules and with the same atomic swap as write_render."""
    with _staged(out, project_root) as staging:
        shutil.copytree(rendered, staging, dirs_exist_ok=True)


@contextmanager
def _staged(out: Path, project_root: Path) -> Iterator[Path]:
    """A staging directory beside `out` to fill: swapped in whole when the block ends, removed
    with what it holds when it fails; refused first, touching nothing, if `out` is not ours."""
    if problem := render_dir_refusal(out, project_root):
        raise OutputRefused(problem)
    target = out.resolve()
    with _reported(out), _created_parents(target.parent):
        staging = _staging_dir(target)
        try:
            yield staging
            _swap_in(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _staging_dir(target: Path) -> Path:
    """A new directory beside `target` (same file system, so the swap is a rename), with the
    permissions a plain mkdir would give (mkdtemp's are the owner's only)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _swap_in(staging: Path, target: Path) -> None:
    """Put the staged render at `target`: replace an earlier render, or fill a new/empty dir."""
    if not target.exists():
        staging.rename(target)
        return
    if is_render(target):
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        target.rename(retired / "previous")
        staging.rename(target)
        shutil.rmtree(retired)
        return
    # An empty directory someone made: keep it, move our entries in, index.json last so a reader
    # only sees a render once it is whole.
    moved: list[Path] = []
    try:
        entries = sorted(staging.iterdir(), key=lambda p: p.name == INDEX_FILE)
        for entry in entries:
            destination = target / entry.name
            entry.rename(destination)
            moved.append(destination)
    except BaseException:
        for destination in moved:
            _remove_written(destination)
        raise
    staging.rmdir()


def _remove_written(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def _created_parents(directory: Path) -> Iterator[None]:
    """Make `directory` and its missing parents; on failure remove only those we made."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException:
        for made in missing:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break
        raise


@contextmanager
def _reported(out: Path) -> Iterator[None]:
    """OS errors while writing become one clear OutputFailed."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or str(error)
        if error.errno == errno.ENOSPC:
            reason = "no space left on the device"
        where = f" ({error.filename})" if error.filename and os.fspath(error.filename) else ""
        raise OutputFailed(f"cannot write the render to {out}: {reason}{where}") from None
