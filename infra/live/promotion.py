"""Promotion of a model's slot: gate on the candidate, switch through config + `pulumi up`, verify.

The order is what makes it safe to interrupt: the stack file is only changed after the candidate
passed its gates, and `up` then deploys exactly what the file says. A re-run after an
interruption finds the file already switched, checks the gates again, runs `up` again (a no-op
when it had finished) and verifies — so it converges. A failed verification switches back the
same way and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from infra.live.rollout import Cluster, Environments, StackUpdater
from infra.stack.config import StackConfig, TrafficStackConfig
from infra.stack.derived_names import dgd_name, frontend_service_name
from infra.stack.model_config import COLORS, Color, Model

Say = Callable[[str], None]
Confirm = Callable[[str], bool]


def never_confirm(question: str) -> bool:
    """The default answer when nobody was asked: no (callers pass --yes or a prompt)."""
    return False


class PromotionRefused(Exception):
    """The switch was not made: a gate failed or the request makes no sense. Nothing changed."""


class PromotionFailed(Exception):
    """The switch was made but did not hold; what happened (and any roll-back) is in the text."""


@dataclass(frozen=True)
class Traffic:
    """What the stable entry of a model points at."""

    active: Color
    weights: dict[Color, int] | None

    def describe(self) -> str:
        if self.weights is None:
            return f"all traffic to {self.active}"
        split = ", ".join(f"{c} {w}%" for c, w in sorted(self.weights.items()))
        return f"split {split}"


@dataclass(frozen=True)
class PromotionResult:
    model: str
    before: Traffic
    after: Traffic
    changed_config: bool
    retired: Color | None = None
    log: list[str] = field(default_factory=list)


class SwitchTarget(Protocol):
    """What is being switched: one model's slots, or a traffic stack's environments."""

    @property
    def name(self) -> str: ...

    @property
    def scope(self) -> str:
        """Where its `active`/`weights` live in the stack config ("" = top level)."""
        ...

    def gate(self, candidate: Color, say: Say) -> None:
        """Raise PromotionRefused unless the candidate is Ready and answering."""
        ...

    def verify(self, after: Traffic, candidate: Color) -> str | None:
        """After the update: None when it serves, else what is wrong."""
        ...


@dataclass
class Switcher:
    """Gate, write the config, `pulumi up`, verify, and switch back when verification fails."""

    stack: str
    updater: StackUpdater
    say: Say = print
    confirm: Confirm = never_confirm

    def switch(
        self, target: SwitchTarget, before: Traffic, after: Traffic, candidate: Color
    ) -> tuple[bool, list[str]]:
        """(whether the config changed, what was said); raises Refused or Failed."""
        log: list[str] = []

        def say(line: str) -> None:
            log.append(line)
            self.say(line)

        target.gate(candidate, say)
        changed = before != after
        if changed:
            question = f"{self.stack}/{target.name}: {before.describe()} -> {after.describe()}."
            if not self.confirm(f"{question} Go on?"):
                raise PromotionRefused("not confirmed; nothing changed (use --yes to skip asking)")
            self.updater.set_traffic(target.scope, after.active, after.weights)
            say(f"stack config: {target.name} now {after.describe()}")
        else:
            say(f"stack config already says {after.describe()}: re-applying to converge")
        self.up(say)

        problem = target.verify(after, candidate)
        if problem is not None:
            if not changed:
                raise PromotionFailed(f"{target.name}: verification failed: {problem}")
            say(f"verification failed: {problem}; switching back to {before.describe()}")
            self.updater.set_traffic(target.scope, before.active, before.weights)
            self.up(say)
            raise PromotionFailed(
                f"{target.name}: verification failed ({problem}); rolled back to "
                f"{before.describe()}"
            )
        say(f"verified: {target.name} serves with {after.describe()}")
        return changed, log

    def up(self, say: Say) -> None:
        say(f"pulumi up {self.stack} ...")
        self.updater.up(say)


def requested_traffic(
    name: str,
    current: Traffic,
    defined: Iterable[Color],
    to: Color | None,
    weight: int | None,
    can_split: bool,
) -> tuple[Traffic, Color]:
    """The traffic a promote asks for, and the candidate it moves towards."""
    target = to or _other(current.active)
    if target not in defined:
        raise PromotionRefused(
            f"{name}: {target} is not defined; add it in a pull request and `pulumi up` it first"
        )
    if weight is not None and not 0 < weight <= 100:
        raise PromotionRefused(f"--weight must be between 1 and 100 (got {weight})")
    if weight is None or weight == 100:
        return Traffic(target, None), target
    if not can_split:
        raise PromotionRefused(
            f"{name}: a weighted split needs traffic.gateway in the stack (an HTTPRoute); "
            "without it promote moves all traffic at once"
        )
    if target == current.active:
        raise PromotionRefused(
            f"{name}: {target} is already active; a canary sends part of the traffic to the "
            "other one"
        )
    return Traffic(current.active, {target: weight, current.active: 100 - weight}), target


def rollback_traffic(
    name: str, current: Traffic, defined: Iterable[Color]
) -> tuple[Traffic, Color]:
    """Undo the last step: end a canary (all to active), else switch back to the other one."""
    if current.weights is not None:
        return Traffic(current.active, None), current.active
    target = _other(current.active)
    if target not in defined:
        raise PromotionRefused(f"{name}: there is no {target} to roll back to")
    return Traffic(target, None), target


@dataclass
class ModelTarget:
    """One model's blue/green slots inside an environment stack."""

    cluster: Cluster
    model: Model
    index: int

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def scope(self) -> str:
        return f"models[{self.index}]"

    def gate(self, candidate: Color, say: Say) -> None:
        model = self.model
        graph = dgd_name(model, candidate)
        state = self.cluster.graph_state(model.k8s_namespace, graph)
        if not state.exists:
            raise PromotionRefused(f"{graph} does not exist in namespace {model.k8s_namespace}")
        if not state.ready:
            raise PromotionRefused(f"{graph} is not Ready (state {state.state}: {state.detail})")
        say(f"{graph} is Ready")
        service = frontend_service_name(model, candidate)
        probe = self.cluster.probe(model.k8s_namespace, service, model.display_name)
        if not probe.ok:
            raise PromotionRefused(f"{graph} failed its smoke test: {probe.detail}")
        say(f"{graph} answers: {probe.detail}")

    def verify(self, after: Traffic, candidate: Color) -> str | None:
        """The stable Service (and, in a split, the candidate) still serve after the update."""
        model = self.model
        stable = self.cluster.probe(model.k8s_namespace, model.name, model.display_name)
        if not stable.ok:
            return f"stable Service {model.name}: {stable.detail}"
        if after.weights is not None:
            service = frontend_service_name(model, candidate)
            canary = self.cluster.probe(model.k8s_namespace, service, model.display_name)
            if not canary.ok:
                return f"{service}: {canary.detail}"
        return None


@dataclass
class Promotion:
    """Promotion of one model's slot in an environment stack."""

    stack: str
    config: StackConfig
    cluster: Cluster
    updater: StackUpdater
    say: Say = print
    confirm: Confirm = never_confirm
    sleep: Callable[[float], None] = lambda seconds: None  # noqa: E731

    def model(self, name: str) -> tuple[int, Model]:
        for index, model in enumerate(self.config.models):
            if model.name == name:
                return index, model
        known = ", ".join(m.name for m in self.config.models)
        raise PromotionRefused(f"stack {self.stack!r} has no model {name!r} (models: {known})")

    def promote(
        self,
        model_name: str,
        to: Color | None = None,
        weight: int | None = None,
        retire_after: float | None = None,
    ) -> PromotionResult:
        """Send `weight`% (default all) of the model's traffic to slot `to` (default the other)."""
        index, model = self.model(model_name)
        before = Traffic(model.active, model.weights)
        after, candidate = requested_traffic(
            model.name, before, model.slots, to, weight, self.config.traffic.gateway is not None
        )
        result = self._switch(index, model, before, after, candidate)
        if retire_after is not None and after.weights is None and before.active != after.active:
            retired = self._retire(index, model, before.active, retire_after, result.log)
            return replace(result, retired=retired)
        return result

    def rollback(self, model_name: str) -> PromotionResult:
        index, model = self.model(model_name)
        before = Traffic(model.active, model.weights)
        after, candidate = rollback_traffic(model.name, before, model.slots)
        return self._switch(index, model, before, after, candidate)

    def _switcher(self) -> Switcher:
        return Switcher(self.stack, self.updater, self.say, self.confirm)

    def _switch(
        self, index: int, model: Model, before: Traffic, after: Traffic, candidate: Color
    ) -> PromotionResult:
        target = ModelTarget(self.cluster, model, index)
        changed, log = self._switcher().switch(target, before, after, candidate)
        return PromotionResult(model.name, before, after, changed, None, log)

    def _retire(self, index: int, model: Model, old: Color, grace: float, log: list[str]) -> Color:
        def say(line: str) -> None:
            log.append(line)
            self.say(line)

        say(f"retiring slot {old} in {grace:g} s (its workers scale to 0; the slot stays defined)")
        self.sleep(grace)
        for role in model.topology.roles:
            self.updater.set_slot_replicas(index, old, role, 0)
        self._switcher().up(say)
        say(f"slot {old} scaled to 0")
        return old


@dataclass
class EnvironmentTarget:
    """The environments a traffic stack weights: each a whole environment stack."""

    environments: Environments
    config: TrafficStackConfig
    name: str = "environments"
    scope: str = ""

    def problems(self, color: Color) -> list[str]:
        """Every model of the environment Ready and answering through its stable Service."""
        reference = self.config.environments[color]
        models = self.environments.models(reference)
        if not models:
            return [f"environment {reference} exports no models"]
        cluster = self.environments.cluster(reference)
        problems = []
        for name, model in sorted(models.items()):
            namespace, active = model["namespace"], model["active"]
            state = cluster.graph_state(namespace, f"{name}-{active}")
            if not state.ready:
                problems.append(f"{name}-{active} is not Ready ({state.state}: {state.detail})")
                continue
            probe = cluster.probe(namespace, name, model["servedModelName"])
            if not probe.ok:
                problems.append(f"{name}: {probe.detail}")
        return problems

    def gate(self, candidate: Color, say: Say) -> None:
        reference = self.config.environments[candidate]
        problems = self.problems(candidate)
        if problems:
            raise PromotionRefused(f"environment {reference} is not ready: {'; '.join(problems)}")
        say(f"environment {reference}: every model Ready and answering")

    def verify(self, after: Traffic, candidate: Color) -> str | None:
        problems = self.problems(candidate)
        return "; ".join(problems) if problems else None


@dataclass
class EnvironmentPromotion:
    """Promotion between whole environments, on a traffic stack."""

    stack: str
    config: TrafficStackConfig
    environments: Environments
    updater: StackUpdater
    say: Say = print
    confirm: Confirm = never_confirm

    def promote(self, to: Color | None = None, weight: int | None = None) -> PromotionResult:
        before = Traffic(self.config.active, self.config.weights)
        after, candidate = requested_traffic(
            "environments", before, self.config.environments, to, weight, can_split=True
        )
        return self._switch(before, after, candidate)

    def rollback(self) -> PromotionResult:
        before = Traffic(self.config.active, self.config.weights)
        after, candidate = rollback_traffic("environments", before, self.config.environments)
        return self._switch(before, after, candidate)

    def _switch(self, before: Traffic, after: Traffic, candidate: Color) -> PromotionResult:
        switcher = Switcher(self.stack, self.updater, self.say, self.confirm)
        target = EnvironmentTarget(self.environments, self.config)
        changed, log = switcher.switch(target, before, after, candidate)
        return PromotionResult(self.stack, before, after, changed, None, log)


def _other(color: Color) -> Color:
    return next(c for c in COLORS if c != color)


@dataclass(frozen=True)
class SlotStatus:
    color: Color
    share: int
    replicas: dict[str, int]
    state: str
    ready: bool
    detail: str


def model_status(cluster: Cluster, model: Model) -> list[SlotStatus]:
    """Each defined slot: its share of traffic, configured replicas and the DGD's readiness."""
    shares = model.traffic_weights()
    rows = []
    for color in sorted(model.slots):
        state = cluster.graph_state(model.k8s_namespace, dgd_name(model, color))
        rows.append(
            SlotStatus(
                color=color,
                share=shares.get(color, 0),
                replicas={r: model.replicas(r, color) for r in model.topology.roles},
                state=state.state,
                ready=state.ready,
                detail=state.detail,
            )
        )
    return rows
