"""The GPU-memory plan of a stack: every model × slot × worker role, on the GPUs of its pool.

`dynamo-infra plan` prints it; the config checks (so `validate` and `pulumi up`) refuse a stack
whose weights cannot fit before any GPU node is paid for.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.deployment.resolved import Deployment, ResolvedModel, ResolvedRole
from infra.stack.errors import ConfigIssue
from infra.stack.model_config import Color, Model
from infra.trtllm.engine_settings import EngineSettings
from infra.trtllm.memory_plan import RolePlan, plan_role
from infra.trtllm.model_catalog import ModelFacts


@dataclass(frozen=True)
class PlanRow:
    """One worker role of one slot: its plan, or why there is none."""

    model: str
    color: Color
    role: str
    model_path: str  # YAML path of the model in the stack file, e.g. models[2]
    plan: RolePlan | None
    skipped: str | None = None
    # plan.architecture names something that cannot be found: a config error, not just a gap
    bad_architecture: bool = False

    @property
    def path(self) -> str:
        return f"{self.model_path}.{self.role}"

    def to_dict(self) -> dict:
        row: dict = {"model": self.model, "color": self.color, "role": self.role}
        if self.plan is not None:
            row |= self.plan.to_dict()
            row["model"] = self.model
        else:
            row["skipped"] = self.skipped
        return row


def plan_stack(
    deployment: Deployment,
    isl: int | None = None,
    osl: int | None = None,
    models: list[ResolvedModel] | None = None,
) -> list[PlanRow]:
    """Plan rows for every TensorRT-LLM worker role; isl/osl override each model's plan."""
    rows: list[PlanRow] = []
    for resolved in deployment.models if models is None else models:
        model = resolved.model
        if model.engine != "trtllm":
            continue
        skipped = None
        if resolved.facts is None:
            skipped = (
                f"plan.architecture: {resolved.facts_problem}"
                if resolved.facts_problem
                else "no architecture facts (set plan.architecture)"
            )
        for role in sorted(resolved.roles.values(), key=lambda r: (r.color, _order(model, r))):
            plan, reason = (
                (None, skipped)
                if resolved.facts is None
                else _plan(resolved, role, resolved.facts, isl, osl)
            )
            rows.append(
                PlanRow(
                    model.name,
                    role.color,
                    role.role,
                    resolved.path,
                    plan,
                    reason,
                    resolved.facts_problem is not None,
                )
            )
    return rows


def _order(model: Model, role: ResolvedRole) -> int:
    return model.topology.roles.index(role.role)


def _plan(
    resolved: ResolvedModel,
    role: ResolvedRole,
    facts: ModelFacts,
    isl: int | None,
    osl: int | None,
) -> tuple[RolePlan | None, str | None]:
    model = resolved.model
    if role.gpus is None:
        return None, "no GPU facts for the role's node pool"
    if role.engine is None or not role.engine.valid or role.engine.result is None:
        return None, "engine config is invalid (see validate)"
    spec = model.role(role.role)
    try:
        plan = plan_role(
            facts,
            EngineSettings.from_llm_args(role.engine.result.raw),
            role.gpus.gpu_memory_gib,
            spec.gpus_per_worker,
            spec.nodes,
            isl or model.plan.input_tokens,
            osl or model.plan.output_tokens,
            role=role.role,
            model=f"{model.name}/{role.color}",
            gpu=role.gpus.gpu_product,
        )
    except ValueError as error:
        return None, str(error)
    return plan, None


def fit_issues(deployment: Deployment, models: list[ResolvedModel]) -> list[ConfigIssue]:
    """Roles of `models` that cannot run at all on their GPUs."""
    issues = []
    for row in plan_stack(deployment, models=models):
        if row.plan is not None and not row.plan.fits:
            issues.append(
                ConfigIssue(
                    f"{row.path}.gpusPerWorker",
                    f"{row.color} slot does not fit on {row.plan.gpu}: {row.plan.reason} "
                    "(see `dynamo-infra plan`)",
                )
            )
    return issues
