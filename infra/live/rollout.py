"""The seams of a promotion: what it asks of the cluster and of Pulumi, as small interfaces.

`infra/live/promotion.py` decides; these protocols do. Tests drive the decisions with fakes; the real
implementations are `infra/live/cluster_access.py` (the official kubernetes client) and
`infra/live/stack_update.py` (the Pulumi Automation API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from infra.stack.model_config import Color


@dataclass(frozen=True)
class GraphState:
    """A DynamoGraphDeployment as the operator reports it."""

    exists: bool
    ready: bool  # status.state == "successful" and the Ready condition is True
    state: str  # status.state, or "absent"
    detail: str  # the Ready condition's reason/message, for humans


@dataclass(frozen=True)
class ProbeResult:
    """Whether a frontend serves: /health, /v1/models lists the name, one completion works."""

    ok: bool
    detail: str  # what was checked, or the first check that failed and why


class Cluster(Protocol):
    def graph_state(self, namespace: str, name: str) -> GraphState:
        """The DGD's readiness; exists=False when there is no such DGD."""
        ...

    def probe(self, namespace: str, service: str, served_model_name: str) -> ProbeResult:
        """Smoke-test the frontend pods behind a Service (a DGD's `<dgd>-frontend` or the stable
        `<model>` Service): /health answers 200, /v1/models lists served_model_name, and a
        one-token completion for that model succeeds."""
        ...


class StackUpdater(Protocol):
    def set_traffic(self, scope: str, active: Color, weights: dict[Color, int] | None) -> None:
        """Write `<scope>.active` and `<scope>.weights` (None removes it) into the stack's config
        file; scope is `models[i]` for a model, "" for a traffic stack's own keys."""
        ...

    def set_slot_replicas(self, model_index: int, color: Color, role: str, replicas: int) -> None:
        """Write `models[i].slots.<color>.<role>.replicas`."""
        ...

    def up(self, on_output: Callable[[str], None]) -> None:
        """Run `pulumi up` for the stack; raise on failure."""
        ...

    def outputs(self) -> dict[str, Any]:
        """The stack's outputs (kubeconfig, endpoints, ...)."""
        ...


class Environments(Protocol):
    """What a traffic stack needs of the environment stacks it points at."""

    def models(self, reference: str) -> dict[str, dict[str, Any]]:
        """The environment stack's `models` output: name -> namespace, servedModelName, active."""
        ...

    def cluster(self, reference: str) -> Cluster:
        """Access to the environment's cluster (from its exported kubeconfig)."""
        ...
