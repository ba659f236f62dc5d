"""`--out` never costs a file: refusals touch nothing, writes replace only earlier renders."""

from __future__ import annotations

import errno
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.cli import main
from infra.offline.render_output import INDEX_FILE, MARKER_KEY, is_render
from tests.conftest import Project


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} | {root}


def _render(project: Project, out: Path | str, stack: str = "local") -> int:
    return main(["--project-dir", str(project.root), "render", stack, "--out", str(out)])


@pytest.mark.parametrize(
    "where",
    [".", "stacks", "engine_configs", "..", "stacks/new", "Pulumi.yaml", "Pulumi.yaml/below"],
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
    (out / "kubernetes" / "stale.yaml").write_text("from an earlier render")
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
    (render / INDEX_FILE).write_text(f'{{"{MARKER_KEY}": "dynamo-trtllm", "resources": []}}\n')
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
        ours = {p for p in before if p.is_relative_to(places["render"]) and p != places["render"]}
        code = main(COMMANDS[command](project, places[place]))
        assert code in (0, 1, 2)
        lost = before - _tree(top)
        assert lost <= ours, f"{command} --out {place} removed {sorted(map(str, lost - ours))}"
