"""The real StackUpdater: the Pulumi Automation API on this project's stack.

Config is written with `pulumi config set --path` semantics into stacks/Pulumi.<stack>.yaml, so
the file in the repository is always what was deployed or what is being deployed; commit it
after a promotion.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.stack.errors import CONFIG_NAMESPACE
from infra.stack.model_config import Color


class PolicyPackMissing(RuntimeError):
    pass


class AutomationStack:
    """A selected stack of the project in `project_root` (needs the Pulumi CLI and a login).

    Every `up` runs with the project's policy pack, as every CI `up` does: a promotion is no way
    around the invariants.
    """

    def __init__(self, project_root: Path, stack: str, policy_config: Path | None = None) -> None:
        from pulumi import automation

        self._automation = automation
        self.policy_pack = project_root / "policy"
        self.policy_config = policy_config
        self.stack = automation.select_stack(stack_name=stack, work_dir=str(project_root))

    def _set(self, path: str, value: str) -> None:
        key = f"{CONFIG_NAMESPACE}:{path}"
        self.stack.set_config(key, self._automation.ConfigValue(value), path=True)

    def set_traffic(self, scope: str, active: Color, weights: dict[Color, int] | None) -> None:
        prefix = f"{scope}." if scope else ""
        # Weights go first when removed and last when added, so every intermediate file is a
        # valid stack (weights only ever name defined slots).
        if weights is None:
            self._remove(f"{prefix}weights")
            self._set(f"{prefix}active", active)
            return
        self._set(f"{prefix}active", active)
        for color, share in sorted(weights.items()):
            self._set(f"{prefix}weights.{color}", str(share))

    def set_slot_replicas(self, model_index: int, color: Color, role: str, replicas: int) -> None:
        self._set(f"models[{model_index}].slots.{color}.{role}.replicas", str(replicas))

    def _remove(self, path: str) -> None:
        key = f"{CONFIG_NAMESPACE}:{path}"
        try:
            self.stack.remove_config(key, path=True)
        except self._automation.CommandError as error:
            if "not found" not in str(error).lower():
                raise

    def up(self, on_output: Callable[[str], None]) -> None:
        # Checked here, not on selecting the stack: `status` reads it and runs no `up`.
        if not (self.policy_pack / "venv").is_dir():
            raise PolicyPackMissing(
                f"the policy pack's virtualenv {self.policy_pack / 'venv'} is missing: run "
                "`(cd policy && pulumi install)` once"
            )
        if self.policy_config is not None and not self.policy_config.is_file():
            raise PolicyPackMissing(
                f"the policy pack configuration {self.policy_config} is not a file"
            )
        self.stack.up(
            on_output=on_output,
            policy_packs=[str(self.policy_pack)],
            policy_pack_configs=[str(self.policy_config)] if self.policy_config else None,
        )

    def outputs(self) -> dict[str, Any]:
        return {key: output.value for key, output in self.stack.outputs().items()}


class StackEnvironments:
    """Environment stacks read through the Automation API, their clusters through kubeconfig."""

    def __init__(self, project_root: Path) -> None:
        self.project_root = project_root
        self._outputs: dict[str, dict[str, Any]] = {}

    def _read(self, reference: str) -> dict[str, Any]:
        if reference not in self._outputs:
            from pulumi import automation

            stack = automation.select_stack(stack_name=reference, work_dir=str(self.project_root))
            self._outputs[reference] = {k: v.value for k, v in stack.outputs().items()}
        return self._outputs[reference]

    def models(self, reference: str) -> dict[str, dict[str, Any]]:
        return dict(self._read(reference).get("models", {}))

    def cluster(self, reference: str) -> Any:
        from infra.live.cluster_access import KubernetesCluster

        return KubernetesCluster.from_kubeconfig(self._read(reference)["kubeconfig"])
