"""Promotion decisions, driven with a fake cluster and a fake stack updater."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from infra.live.promotion import Promotion, PromotionFailed, PromotionRefused, model_status
from infra.live.rollout import GraphState, ProbeResult
from infra.stack.config import StackConfig

from .helpers import BASE, parse

READY = GraphState(True, True, "successful", "all_resources_are_ready")
PENDING = GraphState(True, False, "pending", "some_resources_are_not_ready")
OK = ProbeResult(True, "health ok, model listed, completion ok")


def stack_values(gateway: bool = False) -> dict[str, Any]:
    values = copy.deepcopy(BASE)
    values["models"] = [values["models"][0]]
    values["nodePools"][0] |= {"desiredSize": 2, "maxSize": 2}
    values["models"][0]["slots"] = {"blue": {}, "green": {"image": "img:new"}}
    if gateway:
        values["traffic"] = {
            "gateway": {
                "name": "inference",
                "namespace": "gateway",
                "domain": "inference.example.com",
            }
        }
    return values


class FakeCluster:
    """DGD states and probe answers by name; `after_up` lets a test change them per update."""

    def __init__(self) -> None:
        self.graphs = {"qwen3-0-6b-blue": READY, "qwen3-0-6b-green": READY}
        self.probes: dict[str, ProbeResult] = {}
        self.probed: list[str] = []

    def graph_state(self, namespace: str, name: str) -> GraphState:
        assert namespace == "qwen3-0-6b"
        return self.graphs.get(name, GraphState(False, False, "absent", "no such DGD"))

    def probe(self, namespace: str, service: str, served_model_name: str) -> ProbeResult:
        assert served_model_name == "Qwen/Qwen3-0.6B"
        self.probed.append(service)
        return self.probes.get(service, OK)


class FakeUpdater:
    """Holds the stack file's values; `up` can be made to fail (an interruption)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
        self.ups = 0
        self.fail_next_up: Exception | None = None
        self.on_up: Callable[[dict[str, Any]], None] | None = None

    @property
    def model(self) -> dict[str, Any]:
        return self.values["models"][0]

    def set_traffic(self, scope: str, active: str, weights: dict | None) -> None:
        index = int(scope.removeprefix("models[").removesuffix("]"))
        model = self.values["models"][index]
        model["active"] = active
        if weights is None:
            model.pop("weights", None)
        else:
            model["weights"] = dict(weights)

    def set_slot_replicas(self, model_index: int, color: str, role: str, replicas: int) -> None:
        slot = self.values["models"][model_index]["slots"].setdefault(color, {})
        slot.setdefault(role, {})["replicas"] = replicas

    def up(self, on_output: Callable[[str], None]) -> None:
        self.ups += 1
        on_output("Updating (fake)")
        if self.fail_next_up is not None:
            error, self.fail_next_up = self.fail_next_up, None
            raise error
        if self.on_up is not None:
            self.on_up(self.model)

    def outputs(self) -> dict[str, Any]:
        return {}


def promotion(cluster: FakeCluster, updater: FakeUpdater, yes: bool = True) -> Promotion:
    config: StackConfig = parse(copy.deepcopy(updater.values))
    lines: list[str] = []
    return Promotion(
        "test", config, cluster, updater, say=lines.append, confirm=lambda question: yes
    )


def test_happy_path_switches_after_the_gates_and_verifies() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    result = promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    assert updater.model["active"] == "green" and updater.ups == 1
    assert (result.before.active, result.after.active, result.changed_config) == (
        "blue",
        "green",
        True,
    )
    # candidate frontend first (gate), then the stable Service (verification)
    assert cluster.probed == ["qwen3-0-6b-green-frontend", "qwen3-0-6b"]
    assert any("verified" in line for line in result.log)


@pytest.mark.parametrize(
    "state",
    [PENDING, GraphState(False, False, "absent", "no such DGD")],
    ids=["pending", "absent"],
)
def test_candidate_not_ready_is_refused_and_nothing_changes(state: GraphState) -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    cluster.graphs["qwen3-0-6b-green"] = state
    with pytest.raises(PromotionRefused, match="qwen3-0-6b-green"):
        promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    assert updater.model.get("active", "blue") == "blue" and updater.ups == 0
    assert cluster.probed == []


def test_failing_smoke_request_is_refused() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    cluster.probes["qwen3-0-6b-green-frontend"] = ProbeResult(False, "completion: HTTP 500")
    with pytest.raises(PromotionRefused, match="smoke test: completion: HTTP 500"):
        promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    assert updater.ups == 0 and "active" not in updater.model


def test_failed_verification_switches_back_and_says_so() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())

    def break_stable(model: dict[str, Any]) -> None:
        healthy = model.get("active", "blue") == "blue"
        cluster.probes["qwen3-0-6b"] = OK if healthy else ProbeResult(False, "health: timeout")

    updater.on_up = break_stable
    with pytest.raises(PromotionFailed, match="rolled back to all traffic to blue"):
        promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    assert updater.model["active"] == "blue" and updater.ups == 2


def test_interrupted_after_the_config_write_a_rerun_converges() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    updater.fail_next_up = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    # The file already says green: it describes what was being deployed.
    assert updater.model["active"] == "green"
    result = promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    assert result.changed_config is False and updater.ups == 2
    assert updater.model["active"] == "green"
    assert any("re-applying to converge" in line for line in result.log)


def test_weight_steps_10_50_100() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values(gateway=True))
    for step in (10, 50):
        result = promotion(cluster, updater).promote("qwen3-0-6b", to="green", weight=step)
        assert updater.model["active"] == "blue"
        assert updater.model["weights"] == {"green": step, "blue": 100 - step}
        assert result.after.describe() == f"split blue {100 - step}%, green {step}%"
    promotion(cluster, updater).promote("qwen3-0-6b", to="green", weight=100)
    assert updater.model["active"] == "green" and "weights" not in updater.model
    assert updater.ups == 3
    # each step checked the canary through its own frontend after the update
    assert cluster.probed.count("qwen3-0-6b-green-frontend") == 5


def test_weights_need_a_gateway() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    with pytest.raises(PromotionRefused, match="traffic.gateway"):
        promotion(cluster, updater).promote("qwen3-0-6b", to="green", weight=10)


def test_not_confirmed_changes_nothing() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    with pytest.raises(PromotionRefused, match="not confirmed"):
        promotion(cluster, updater, yes=False).promote("qwen3-0-6b", to="green")
    assert updater.ups == 0 and "active" not in updater.model


def test_rollback_ends_a_canary_then_switches_back() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values(gateway=True))
    promotion(cluster, updater).promote("qwen3-0-6b", to="green", weight=10)
    promotion(cluster, updater).rollback("qwen3-0-6b")
    assert updater.model["active"] == "blue" and "weights" not in updater.model
    promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    promotion(cluster, updater).rollback("qwen3-0-6b")
    assert updater.model["active"] == "blue"


def test_rollback_refuses_a_slot_that_is_not_ready() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    promotion(cluster, updater).promote("qwen3-0-6b", to="green")
    cluster.graphs["qwen3-0-6b-blue"] = PENDING
    with pytest.raises(PromotionRefused, match="qwen3-0-6b-blue is not Ready"):
        promotion(cluster, updater).rollback("qwen3-0-6b")
    assert updater.model["active"] == "green"


def test_retire_scales_the_old_slot_to_zero_after_the_grace_period() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    slept: list[float] = []
    run = promotion(cluster, updater)
    run.sleep = slept.append
    result = run.promote("qwen3-0-6b", to="green", retire_after=600)
    assert slept == [600] and result.retired == "blue"
    assert updater.model["slots"]["blue"]["agg"]["replicas"] == 0
    assert updater.ups == 2
    parse(copy.deepcopy(updater.values))  # the retired stack file is still a valid stack


def test_unknown_model_and_slot_are_refused() -> None:
    cluster, updater = FakeCluster(), FakeUpdater(stack_values())
    with pytest.raises(PromotionRefused, match="no model 'nope'"):
        promotion(cluster, updater).promote("nope")
    values = stack_values()
    values["models"][0]["slots"] = {"blue": {}}
    with pytest.raises(PromotionRefused, match="green is not defined"):
        promotion(cluster, FakeUpdater(values)).promote("qwen3-0-6b")


def test_status_reports_share_replicas_and_readiness() -> None:
    cluster = FakeCluster()
    cluster.graphs["qwen3-0-6b-green"] = PENDING
    model = parse(stack_values()).models[0]
    rows = {row.color: row for row in model_status(cluster, model)}
    assert (rows["blue"].share, rows["blue"].ready) == (100, True)
    assert (rows["green"].share, rows["green"].ready, rows["green"].state) == (0, False, "pending")
    assert rows["green"].replicas == {"agg": 1}


# --- whole environments, through a traffic stack --------------------------------------------


class FakeEnvironments:
    """Environment stacks' `models` outputs and one fake cluster per environment."""

    def __init__(self) -> None:
        model = {"namespace": "qwen3-0-6b", "servedModelName": "Qwen/Qwen3-0.6B", "active": "blue"}
        self.outputs = {"prod": {"qwen3-0-6b": model}, "prod-green": {"qwen3-0-6b": model}}
        self.clusters = {"prod": FakeCluster(), "prod-green": FakeCluster()}

    def models(self, reference: str) -> dict[str, dict[str, Any]]:
        return self.outputs[reference]

    def cluster(self, reference: str) -> FakeCluster:
        return self.clusters[reference]


class FakeTrafficUpdater(FakeUpdater):
    def set_traffic(self, scope: str, active: str, weights: dict | None) -> None:
        assert scope == ""
        self.values["active"] = active
        if weights is None:
            self.values.pop("weights", None)
        else:
            self.values["weights"] = dict(weights)


def traffic_values() -> dict[str, Any]:
    return {
        "role": "traffic",
        "environments": {"blue": "prod", "green": "prod-green"},
        "dns": {"hostedZoneId": "Z0123456789EXAMPLE", "recordName": "inference.example.com"},
        "active": "blue",
    }


def environment_promotion(environments: FakeEnvironments, updater: FakeTrafficUpdater) -> Any:
    from infra.live.promotion import EnvironmentPromotion
    from infra.stack.config import TrafficStackConfig

    config = TrafficStackConfig.model_validate(copy.deepcopy(updater.values))
    return EnvironmentPromotion(
        "prod-traffic", config, environments, updater, say=lambda line: None, confirm=lambda q: True
    )


def test_environment_weights_shift_only_when_every_model_there_serves() -> None:
    environments, updater = FakeEnvironments(), FakeTrafficUpdater(traffic_values())
    for step in (10, 50):
        environment_promotion(environments, updater).promote(to="green", weight=step)
        assert updater.values["weights"] == {"green": step, "blue": 100 - step}
    environment_promotion(environments, updater).promote(to="green", weight=100)
    assert updater.values["active"] == "green" and "weights" not in updater.values
    # the candidate environment was checked through each model's stable Service
    assert "qwen3-0-6b" in environments.clusters["prod-green"].probed
    assert environments.clusters["prod"].probed == []


def test_an_environment_with_an_unready_model_is_refused() -> None:
    environments, updater = FakeEnvironments(), FakeTrafficUpdater(traffic_values())
    environments.clusters["prod-green"].graphs["qwen3-0-6b-blue"] = PENDING
    with pytest.raises(PromotionRefused, match="environment prod-green is not ready"):
        environment_promotion(environments, updater).promote(to="green", weight=10)
    assert updater.ups == 0 and "weights" not in updater.values
