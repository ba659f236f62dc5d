"""Every stack sets `pulumi:disable-default-providers: [kubernetes]`, so every Kubernetes
resource must name the stack's explicit provider: the engine refuses any that does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.offline import render
from infra.offline.render import render_stack
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, stack_values


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_stack_disables_the_default_kubernetes_provider(stack: str) -> None:
    assert "kubernetes" in stack_values(stack)["pulumi:disable-default-providers"]


@pytest.mark.parametrize("stack", ["dev", "local"])  # a new cluster's provider, and a kubeconfig's
def test_every_kubernetes_resource_names_an_explicit_provider(
    stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered: list[tuple[str, str, str]] = []
    register = render.LifecycleMonitor.RegisterResource

    def recording(self: Any, request: Any) -> Any:
        registered.append((request.type, request.name, request.provider))
        return register(self, request)

    monkeypatch.setattr(render.LifecycleMonitor, "RegisterResource", recording)
    render_stack(stack, tmp_path / stack, PROJECT_ROOT)
    kubernetes = [r for r in registered if r[0].startswith("kubernetes:")]
    assert kubernetes
    defaulted = [f"{kind} {name}" for kind, name, provider in kubernetes if not _ours(provider)]
    assert defaulted == []


def _ours(reference: str) -> bool:
    """A provider reference `urn:pulumi:stack::project::parents$type::name::id` of an explicit
    Kubernetes provider (the engine names default providers `default` or `default_<version>`)."""
    if not reference:
        return False
    urn = reference.rsplit("::", 1)[0]
    _, _, types, name = urn.split("::", 3)
    return types.split("$")[-1] == "pulumi:providers:kubernetes" and not name.startswith("default")
