"""Registrations as the Pulumi engine would receive them (RegisterResource), from a render."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.offline import render
from infra.offline.render import render_stack
from tests.conftest import Rendered


@dataclass(frozen=True)
class Registration:
    type: str
    name: str
    provider: str
    protect: bool
    dependencies: tuple[str, ...]

    @property
    def urn_suffix(self) -> str:
        return f"{self.type}::{self.name}"


class Registrations:
    def __init__(self, recorded: list[Registration], out: Path) -> None:
        self.all = recorded
        self.render = Rendered(out)

    def one(self, type_: str, name: str) -> Registration:
        (found,) = [r for r in self.all if r.type == type_ and r.name == name]
        return found

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.all if r.type == type_]

    def inputs(self, type_: str, name: str) -> dict[str, Any]:
        (entry,) = [e for e in self.render.index if e["type"] == type_ and e["name"] == name]
        return self.render.load(entry)


def record_render(stack: str, out: Path, root: Path) -> Registrations:
    recorded: list[Registration] = []
    register = render.LifecycleMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        recorded.append(
            Registration(
                request.type,
                request.name,
                request.provider,
                bool(request.protect),
                tuple(request.dependencies),
            )
        )
        return register(self, request)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(render.LifecycleMonitor, "RegisterResource", recording)
        render_stack(stack, out, root)
    return Registrations(recorded, out)
