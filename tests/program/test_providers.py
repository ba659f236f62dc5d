"""Every stack disables the default provider of each package whose default would read the
machine's own configuration (`kubernetes`: ~/.kube/config; `aws`: the ambient region and
profile), so every resource of those packages must name the stack's explicit provider: the
engine refuses any that does not. Environment and traffic stacks alike."""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from infra.offline import render
from infra.offline.render import render_stack
from tests.conftest import PROJECT_ROOT, STACKS, stack_values

# The packages whose default provider picks up ambient configuration. pulumi-random's default
# reads nothing from the machine, so the stacks leave it enabled.
AMBIENT = ("kubernetes", "aws")


@dataclass(frozen=True)
class Registration:
    """One resource as the program registers it."""

    urn: str
    type: str
    name: str
    custom: bool
    provider: str  # `urn::id` of the provider it names; empty: the package's default
    dependencies: frozenset[str]  # URNs it waits for: depends_on, its inputs' sources, provider
    inputs: dict[str, Any]

    @property
    def package(self) -> str:
        return self.type.split(":", 1)[0]


@functools.cache
def registrations(stack: str) -> tuple[Registration, ...]:
    """Every resource the stack's program registers, rendered once under the offline mocks."""
    recorded: list[Registration] = []
    register = render.LifecycleMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        response = register(self, request)
        waits = set(request.dependencies) | {
            urn for sources in request.propertyDependencies.values() for urn in sources.urns
        }
        if request.provider:
            waits.add(request.provider.rsplit("::", 1)[0])
        recorded.append(
            Registration(
                response.urn,
                request.type,
                request.name,
                request.custom,
                request.provider,
                frozenset(waits),
                json_format.MessageToDict(request.object),
            )
        )
        return response

    render.LifecycleMonitor.RegisterResource = recording  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as out:
            render_stack(stack, Path(out) / stack, PROJECT_ROOT)
    finally:
        render.LifecycleMonitor.RegisterResource = register  # type: ignore[method-assign]
    return tuple(recorded)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_disables_the_default_kubernetes_provider(stack: str) -> None:
    assert "kubernetes" in stack_values(stack)["pulumi:disable-default-providers"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_kubernetes_and_aws_resource_names_an_explicit_provider(stack: str) -> None:
    disabled = set(stack_values(stack)["pulumi:disable-default-providers"])
    ambient = [r for r in registrations(stack) if r.custom and r.package in AMBIENT]
    assert ambient, f"{stack} registers no Kubernetes or AWS resource"
    # A package the stack uses but does not disable would fall back to the machine's config.
    assert {r.package for r in ambient} <= disabled
    defaulted = [f"{r.type} {r.name}" for r in ambient if not _ours(r.provider, r.package)]
    assert defaulted == []


def _ours(reference: str, package: str) -> bool:
    """A provider reference `urn:pulumi:stack::project::parents$type::name::id` of an explicit
    provider of `package` (the engine names default providers `default` or `default_<version>`)."""
    if not reference:
        return False
    urn = reference.rsplit("::", 1)[0]
    _, _, types, name = urn.split("::", 3)
    return types.split("$")[-1] == f"pulumi:providers:{package}" and not name.startswith("default")
