"""Writing what `init` and `add-model` produce: the stack checked in a staging copy of the project
first, then each file created or replaced atomically; on a failure nothing is left behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from itertools import takewhile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from infra.stack.project_paths import project_file

if TYPE_CHECKING:
    from infra.deployment.checked import CheckedStack
    from infra.deployment.resolved import Deployment


class UsageProblem(Exception):
    """An answer the starter cannot use, or a file it will not overwrite: exit 2."""


def files_read(deployment: Deployment) -> set[str]:
    """Project files a stack's checks read besides the stack file: engine configs, config.json."""
    engines = {
        role.engine.path
        for resolved in deployment.models
        for role in resolved.roles.values()
        if role.engine is not None
    }
    return engines | {
        resolved.model.plan.architecture
        for resolved in deployment.models
        if resolved.model.plan.architecture
    }


def in_project(root: Path, relative: str, command: str) -> Path:
    """Where `relative` is under the project root; refused when the way there passes a symlink
    or leaves the project, since a link would put what we write wherever it points."""
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or ".." in parts:
        raise UsageProblem(f"{relative}: not a path inside the project; nothing written")
    path = root
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise UsageProblem(
                f"{relative}: {PurePosixPath(*path.relative_to(root).parts)} is a symlink, and "
                f"{command} writes only inside the project, never through a link; nothing written"
            )
    if not path.resolve().is_relative_to(root.resolve()):
        raise UsageProblem(f"{relative}: outside the project; nothing written")
    return path


def taken(root: Path, files: dict[str, str], command: str) -> list[str]:
    """The paths of `files` already holding something else (a file saying the same is not)."""
    return [
        relative
        for relative, text in files.items()
        if (path := in_project(root, relative, command)).exists()
        and (not path.is_file() or path.read_bytes() != text.encode("utf-8"))
    ]


def not_yet_written(root: Path, files: dict[str, str], command: str) -> dict[str, str]:
    """The files to create; one already there is kept when it says the same, else refused."""
    if clash := taken(root, files, command):
        raise UsageProblem(
            f"{clash[0]} exists: {command} never overwrites a file; nothing written "
            "(give the model another name with --name)"
        )
    return {
        relative: text
        for relative, text in files.items()
        if not in_project(root, relative, command).exists()
    }


def checked_in_staging(
    root: Path, stack: str, files: dict[str, str], read_by_stack: Iterable[str]
) -> CheckedStack:
    """check_stack on a scratch project: what the stack reads today, plus the new files."""
    from infra.deployment.checked import check_stack as check_stack_files

    with tempfile.TemporaryDirectory(prefix="dynamo-infra-starter-") as scratch:
        staged = Path(scratch)
        for relative in read_by_stack:
            source = project_file(root, relative)
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.is_file():  # else a catalog key, not a file
                shutil.copy2(source, target)
        for relative, text in files.items():
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        return check_stack_files(staged, stack, fit_check=True)


def write_files(
    root: Path,
    new_files: dict[str, str],
    stack_path: str,
    stack_data: bytes,
    stack_before: bytes | None,
) -> None:
    """On any failure the files and folders this run created are removed, and only those."""
    created: list[Path] = []
    try:
        for relative, text in new_files.items():
            _create(root / relative, text.encode("utf-8"), created)
        if stack_before is None:
            _create(root / stack_path, stack_data, created)
        else:
            _replace(root / stack_path, stack_data, stack_before)
    except BaseException:
        for path in reversed(created):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
        raise


def _create(path: Path, data: bytes, created: list[Path]) -> None:
    for folder in reversed(list(takewhile(lambda p: not p.exists(), path.parents))):
        folder.mkdir()
        created.append(folder)
    with path.open("xb") as handle:  # exclusive: never over a file that appeared meanwhile
        created.append(path)
        handle.write(data)


def _replace(path: Path, data: bytes, before: bytes) -> None:
    """Atomically, and only over the bytes the model was inserted into."""
    if path.read_bytes() != before:
        raise UsageProblem(f"{path.name} changed while the model was added; nothing written")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
