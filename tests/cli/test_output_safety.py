"""`--out` never costs a file: refusals touch nothing, writes replace only earlier renders."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.cli import main
from infra.offline.render_output import INDEX_FILE, MARKER_KEY, PROJECT_ENTRIES, is_render
from tests.conftest import PROJECT_ROOT, Project


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} | {root}


def _render(project: Project, out: Path | str, stack: str = "local") -> int:
    return main(["--project-dir", str(project.root), "render", stack, "--out", str(out)])


@pytest.mark.parametrize(
    "where",
    [
        ".",
        "stacks",
        "engine_configs",
        "..",
        "stacks/new",
        "docs/new",
        "schemas/new",
        "Pulumi.yaml",
        "Pulumi.yaml/below",
    ],
)
def test_render_refuses_the_project_its_folders_parents_and_files(
    project: Project,
    where: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(project.root)
    before = _tree(project.root.parent)
    assert _render(project, where) == 2
    assert "refused" in capsys.readouterr().err
    assert _tree(project.root.parent) == before


def test_every_folder_the_project_ships_is_refused_as_output() -> None:
    """The refusal list keeps up with the tree: each top-level folder in git is on it."""
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout: the shipped folders cannot be listed")
    listed = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = {name.split("/", 1)[0] for name in listed if "/" in name}
    assert folders <= PROJECT_ENTRIES


def test_render_refuses_a_directory_that_is_not_a_render(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    assert _render(project, notes) == 2
    assert "holds other files" in capsys.readouterr().err
    assert (notes / "todo.txt").read_text() == "keep me"
    assert sorted(notes.iterdir()) == [notes / "todo.txt"]


def test_render_replaces_its_own_earlier_render_and_fills_an_empty_directory(
    project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert _render(project, out) == 0
    assert is_render(out)
    # A file the earlier render wrote (its index lists it) that this render does not.
    (out / "kubernetes" / "stale.yaml").write_text("from an earlier render")
    index = json.loads((out / INDEX_FILE).read_text())
    index["resources"].append({"file": "kubernetes/stale.yaml"})
    (out / INDEX_FILE).write_text(json.dumps(index))
    assert _render(project, out) == 0
    assert not (out / "kubernetes" / "stale.yaml").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _render(project, empty) == 0
    assert is_render(empty)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_validate_out_holds_renders_only(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "renders"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    code = main(["--project-dir", str(project.root), "validate", "local", "--out", str(out)])
    assert code == 2
    assert "not a render of ours" in capsys.readouterr().err
    assert (out / "mine.txt").read_text() == "keep me"


def test_validate_out_writes_nothing_when_one_stack_fails(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "stacks" / "Pulumi.zbad.yaml").write_text(
        "config:\n  dynamo-trtllm:cluster: {mode: nowhere}\n"
    )
    out = tmp_path / "new"
    root = ["--project-dir", str(project.root)]
    assert main([*root, "validate", "local", "zbad", "--out", str(out)]) == 1
    assert "nothing written to" in capsys.readouterr().err
    assert not out.exists()
    assert main([*root, "validate", "local", "--out", str(out)]) == 0
    assert is_render(out / "local")


def test_a_render_directory_gets_the_permissions_of_a_plain_mkdir(
    project: Project, tmp_path: Path
) -> None:
    """Staged with mkdtemp (owner-only), published as `mkdir` would make it."""
    umask = os.umask(0o022)
    try:
        assert _render(project, tmp_path / "r") == 0
    finally:
        os.umask(umask)
    assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755


def test_a_failed_write_is_a_message_and_leaves_nothing(
    project: Project,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_write = Path.write_text
    written: list[Path] = []

    def disk_full(self: Path, *args: object, **kwargs: object) -> int:
        written.append(self)
        if len(written) > 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", disk_full)
    out = tmp_path / "a" / "b" / "out"
    assert _render(project, out) == 1
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [project.root]  # not even the parents we made


def test_an_unwritable_parent_is_a_message(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = _render(project, locked / "out")
    finally:
        locked.chmod(0o700)
    if code == 0:
        pytest.skip("running as a user who can write a read-only directory (root)")
    assert code == 1
    assert "cannot write the render" in capsys.readouterr().err
    assert list(locked.iterdir()) == []


def test_a_render_holding_files_it_did_not_write_is_not_replaced(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r1"
    assert _render(project, out) == 0
    (out / "NOTES.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "link").symlink_to(tmp_path)
    before = _tree(out)
    assert _render(project, out) == 2
    err = capsys.readouterr().err
    assert "holds what that render did not write (link/, mine/, NOTES.txt)" in err
    assert _tree(out) == before
    for added in ("NOTES.txt", "mine", "link"):
        path = out / added
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    assert _render(project, out) == 0  # only what it wrote: replaced


# --- property: whatever --out is, nothing that existed disappears unless it was our render --


def _sandbox(top: Path) -> tuple[Project, dict[str, Path]]:
    root = top / "project"
    root.mkdir()
    project = Project(root)
    (top / "notes").mkdir()
    (top / "notes" / "a.txt").write_text("a")
    (top / "empty").mkdir()
    (top / "file.txt").write_text("f")
    render = top / "old-render"
    (render / "kubernetes").mkdir(parents=True)
    (render / "kubernetes" / "x.yaml").write_text("x: 1\n")
    index = {MARKER_KEY: "dynamo-trtllm", "resources": [{"file": "kubernetes/x.yaml"}]}
    (render / INDEX_FILE).write_text(json.dumps(index))
    (top / "render-with-notes").mkdir()
    for relative in ("kubernetes/x.yaml", INDEX_FILE):
        (top / "render-with-notes" / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(render / relative, top / "render-with-notes" / relative)
    (top / "render-with-notes" / "NOTES.txt").write_text("mine")  # added by hand: not ours
    (top / "render-with-notes" / "mine").mkdir()
    places = {
        "root": root,
        "parent": top,
        "stacks": root / "stacks",
        "engine": root / "engine_configs" / "new",
        "file": top / "file.txt",
        "under-file": top / "file.txt" / "out",
        "notes": top / "notes",
        "empty": top / "empty",
        "render": render,
        "render-with-notes": top / "render-with-notes",
        "new": top / "new" / "deeper",
        "inside-project": root / "build",
        "dot": Path("."),
    }
    return project, places


COMMANDS: dict[str, Callable[[Project, Path], list[str]]] = {
    "render": lambda p, out: ["--project-dir", str(p.root), "render", "local", "--out", str(out)],
    "validate": lambda p, out: [
        "--project-dir",
        str(p.root),
        "validate",
        "local",
        "--out",
        str(out),
    ],
}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    place=st.sampled_from(
        [
            "root",
            "parent",
            "stacks",
            "engine",
            "file",
            "under-file",
            "notes",
            "empty",
            "render",
            "render-with-notes",
            "new",
            "inside-project",
            "dot",
        ]
    ),
    command=st.sampled_from(sorted(COMMANDS)),
    cwd_in_project=st.booleans(),
)
def test_no_out_removes_a_path_it_did_not_create(
    place: str, command: str, cwd_in_project: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        top = Path(scratch).resolve()
        project, places = _sandbox(top)
        monkeypatch.chdir(project.root if cwd_in_project else top)
        before = _tree(top)
        render = places["render"]  # its files are the ones its index lists, and the index
        ours = {render / "kubernetes", render / "kubernetes" / "x.yaml", render / INDEX_FILE}
        code = main(COMMANDS[command](project, places[place]))
        assert code in (0, 1, 2)
        lost = before - _tree(top)
        assert lost <= ours, f"{command} --out {place} removed {sorted(map(str, lost - ours))}"
