"""Files a stack file names (engine configs, config.json) must be files of this project."""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class OutsideProject(ValueError):
    """A path that is absolute, climbs out of the project, or is a symlink to outside it."""


def project_file(project_root: Path, relative: str) -> Path:
    """`relative` resolved inside the project (symlinks followed); refused when it leaves it.

    What a stack file names is read and shipped into the cluster (engine configs become a
    ConfigMap), so a path must not reach the rest of the machine that runs `pulumi up`.
    """
    if not relative or not relative.strip():
        raise OutsideProject("an empty path")
    if PurePosixPath(relative).is_absolute() or Path(relative).is_absolute():
        raise OutsideProject(f"{relative!r} is absolute: give a path relative to the project root")
    root = project_root.resolve()
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        how = "through a symlink" if ".." not in PurePosixPath(relative).parts else "with .."
        raise OutsideProject(f"{relative!r} leads out of the project {how}: keep it inside")
    return resolved
