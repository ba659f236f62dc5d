"""One pass over one model: a render reads each stack file and each engine config exactly once."""

from __future__ import annotations

import builtins
import io
from collections import Counter
from pathlib import Path

import pytest

from infra.deployment.checked import load_stack_config
from infra.offline.render import render_stack
from tests.conftest import PROJECT_ROOT


def test_render_reads_each_project_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_stack_config(PROJECT_ROOT, "prod")
    named = {
        model.engine_config(role, color)
        for model in config.models
        for color in model.slots
        for role in model.topology.roles
    }
    reads: Counter[str] = Counter()
    real_open = io.open

    def counting_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        if isinstance(file, str | Path) and "r" in mode:
            path = Path(file).resolve()
            if path.is_relative_to(PROJECT_ROOT) and path.suffix in (".yaml", ".json"):
                reads[str(path.relative_to(PROJECT_ROOT))] += 1
        return real_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(io, "open", counting_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    render_stack("prod", tmp_path / "prod", PROJECT_ROOT)

    assert reads["stacks/Pulumi.prod.yaml"] == 1
    assert {p for p in reads if p.startswith("engine_configs/")} == named
    assert {p: n for p, n in reads.items() if n != 1} == {}
