"""Fuzzed stack files and engine configs: a clear refusal naming the file, never a traceback.

Whatever the input, a command exits 0, 1 or 2, prints no traceback, names the file when it
refuses, leaves no output directory behind on failure and removes no file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.cli import main
from tests.conftest import PROJECT_ROOT, Project

BASE_STACK = yaml.safe_load((PROJECT_ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
ENGINE_KEYS = [
    "tensor_parallel_size",
    "kv_cache_config",
    "free_gpu_memory_fraction",
    "max_batch_size",
    "lora_config",
    "speculative_config",
    "decoding_type",
    "cache_transceiver_config",
]
STACK_KEYS = [
    "dynamo-trtllm:models",
    "dynamo-trtllm:cluster",
    "dynamo-trtllm:nodePools",
    "dynamo-trtllm:hfToken",
    "dynamo-trtlm:platform",
    "aws:region",
    "name",
    "gpusPerWorker",
    "engineConfig",
    "source",
    "huggingFace",
    "topology",
    "secure",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "1.30", "../x.yaml", "/etc/passwd", "agg", "l4", "", "é√∂"]),
)


def values(keys: list[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(keys), st.text(max_size=8)), inner, max_size=4
            ),
        ),
        max_leaves=25,
    )


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_stacks(draw: st.DrawFn) -> str:
    """The dev stack with a few random edits, rendered as YAML text (sometimes raw text edits)."""
    document = copy.deepcopy(BASE_STACK)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace":
            parent[path[-1]] = draw(values(STACK_KEYS))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(STACK_KEYS))] = parent.pop(path[-1])
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    edit = draw(st.sampled_from(["none", "duplicate", "truncate", "nest", "bytes"]))
    lines = text.splitlines(keepends=True)
    if edit == "duplicate" and len(lines) > 2:
        index = draw(st.integers(min_value=1, max_value=len(lines) - 1))
        lines.insert(index, lines[index])
    elif edit == "truncate":
        lines = lines[: draw(st.integers(min_value=0, max_value=len(lines)))]
    elif edit == "nest":
        lines.append("  dynamo-trtllm:x: " + "[" * 200 + "]" * 200 + "\n")
    elif edit == "bytes":
        lines.append(draw(st.binary(max_size=8)).decode("latin-1"))
    return "".join(lines)


def _tree(root: Path) -> set[Path]:
    return set(root.rglob("*"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=mutated_stacks())
def test_fuzzed_stack_files_are_refused_cleanly(text: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        top = Path(scratch)
        (top / "project").mkdir()
        project = Project(top / "project")
        (project.root / "stacks" / "Pulumi.fuzz.yaml").write_text(
            text, encoding="utf-8", errors="surrogateescape"
        )
        before = _tree(top)
        out = top / "out"
        with _captured() as err:
            code = main(["--project-dir", str(project.root), "render", "fuzz", "--out", str(out)])
        assert code in (0, 1, 2)
        assert "Traceback" not in err.getvalue()
        if code != 0:
            assert "stacks/Pulumi.fuzz.yaml" in err.getvalue()
            assert not out.exists()
        assert before <= _tree(top)


@settings(max_examples=80, deadline=None)
@given(document=values(ENGINE_KEYS), duplicate=st.booleans())
def test_fuzzed_engine_configs_are_refused_cleanly(document: Any, duplicate: bool) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    if duplicate and isinstance(document, dict) and document:
        text += text.splitlines(keepends=True)[0]
    with tempfile.TemporaryDirectory() as scratch:
        engine = Path(scratch) / "engine.yaml"
        engine.write_text(text, encoding="utf-8")
        with _captured() as err:
            code = main(["check-engine-config", str(engine)])
        assert code in (0, 1)
        assert "Traceback" not in err.getvalue()
        if code == 1:
            assert str(engine) in err.getvalue()


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    """stderr of one in-process run (capsys is per test, Hypothesis runs many examples)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        yield err


def test_the_fuzz_base_is_a_valid_stack(tmp_path: Path) -> None:
    """The mutations start from a stack that renders: a refusal is the mutation's doing."""
    out = tmp_path / "out"
    assert main(["--project-dir", str(PROJECT_ROOT), "render", "dev", "--out", str(out)]) == 0
