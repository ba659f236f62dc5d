"""The Automation-API updater writes exactly the config keys a promotion means."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi import automation

from infra.live.stack_update import AutomationStack, PolicyPackMissing


class FakeStack:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def set_config(self, key: str, value: automation.ConfigValue, *, path: bool = False) -> None:
        assert path
        self.calls.append(("set", key, value.value))

    def remove_config(self, key: str, *, path: bool = False) -> None:
        assert path
        self.calls.append(("remove", key, None))

    def up(self, on_output: Any, **options: Any) -> None:
        self.calls.append(("up", str(options.get("policy_packs")), None))
        on_output("Updating")

    def outputs(self) -> dict[str, automation.OutputValue]:
        return {"kubeconfig": automation.OutputValue(value={"apiVersion": "v1"}, secret=True)}


def updater(policy: Path = Path("/project/policy")) -> tuple[AutomationStack, FakeStack]:
    stack = FakeStack()
    instance = AutomationStack.__new__(AutomationStack)
    instance._automation = automation
    instance.stack = stack  # type: ignore[assignment]
    instance.policy_pack = policy
    instance.policy_config = None
    return instance, stack


def test_every_update_runs_with_the_policy_pack(tmp_path: Path) -> None:
    (tmp_path / "policy" / "venv").mkdir(parents=True)
    instance, stack = updater(tmp_path / "policy")
    instance.up(lambda line: None)
    assert stack.calls == [("up", f"['{tmp_path / 'policy'}']", None)]


def test_a_missing_policy_pack_virtualenv_says_how_to_make_it_before_an_update(
    tmp_path: Path,
) -> None:
    """Only an update needs the pack: `status` reads the stack without it."""
    (tmp_path / "policy").mkdir()
    instance, stack = updater(tmp_path / "policy")
    with pytest.raises(PolicyPackMissing, match=r"\(cd policy && pulumi install\)"):
        instance.up(lambda line: None)
    assert stack.calls == []


def test_a_policy_pack_configuration_is_passed_to_the_update(tmp_path: Path) -> None:
    (tmp_path / "policy" / "venv").mkdir(parents=True)
    settings = tmp_path / "policy-config.json"
    instance, stack = updater(tmp_path / "policy")
    instance.policy_config = settings
    with pytest.raises(PolicyPackMissing, match="is not a file"):
        instance.up(lambda line: None)
    settings.write_text("{}")
    seen: dict[str, Any] = {}
    stack.up = lambda on_output, **options: seen.update(options)  # type: ignore[method-assign]
    instance.up(lambda line: None)
    assert seen["policy_pack_configs"] == [str(settings)]


def test_a_canary_writes_active_then_weights() -> None:
    instance, stack = updater()
    instance.set_traffic("models[1]", "blue", {"green": 10, "blue": 90})
    assert stack.calls == [
        ("set", "dynamo-trtllm:models[1].active", "blue"),
        ("set", "dynamo-trtllm:models[1].weights.blue", "90"),
        ("set", "dynamo-trtllm:models[1].weights.green", "10"),
    ]


def test_a_full_switch_removes_weights_first() -> None:
    instance, stack = updater()
    instance.set_traffic("", "green", None)
    assert stack.calls == [
        ("remove", "dynamo-trtllm:weights", None),
        ("set", "dynamo-trtllm:active", "green"),
    ]


def test_retiring_a_slot_sets_its_replicas() -> None:
    instance, stack = updater()
    instance.set_slot_replicas(0, "blue", "decode", 0)
    assert stack.calls == [("set", "dynamo-trtllm:models[0].slots.blue.decode.replicas", "0")]


def test_outputs_are_plain_values(tmp_path: Path) -> None:
    (tmp_path / "policy" / "venv").mkdir(parents=True)
    instance, _ = updater(tmp_path / "policy")
    assert instance.outputs() == {"kubeconfig": {"apiVersion": "v1"}}
    lines: list[str] = []
    instance.up(lines.append)
    assert lines == ["Updating"]


def test_missing_weights_are_not_an_error_but_other_failures_are() -> None:
    instance, stack = updater()

    def remove(key: str, *, path: bool = False) -> None:
        raise automation.CommandError(
            automation.CommandResult(
                stdout="", stderr="error: configuration key not found", code=255
            )
        )

    stack.remove_config = remove  # type: ignore[method-assign]
    instance.set_traffic("models[0]", "blue", None)  # nothing to remove: fine

    def broken(key: str, *, path: bool = False) -> None:
        raise automation.CommandError(
            automation.CommandResult(stdout="", stderr="error: backend unreachable", code=255)
        )

    stack.remove_config = broken  # type: ignore[method-assign]
    with pytest.raises(automation.CommandError):
        instance.set_traffic("models[0]", "blue", None)
