"""The GPU-memory plan of a stack: every model × slot × worker role, on the GPUs of its pool.

`dynamo-infra plan` prints it; the config checks (so `validate` and `pulumi up`) refuse a stack
whose weights cannot fit before any GPU node is paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.stack.config import Color, Model, StackConfig
from infra.stack.errors import ConfigIssue
from infra.stack.instances import pool_gpus
from infra.stack.project_paths import OutsideProject, project_file
from infra.trtllm.engine_config import check_engine_config_file
from infra.trtllm.memory_plan import EngineSettings, RolePlan, plan_role
from infra.trtllm.model_catalog import ModelFacts, facts_from_hf_config, lookup_model


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


class UnknownArchitecture(ValueError):
    """plan.architecture names neither a catalog model nor a readable config.json."""


def resolve_facts(
    model: Model, project_root: Path, fetched: Mapping[str, ModelFacts] | None = None
) -> ModelFacts | None:
    """Architecture facts: plan.architecture, else the Hugging Face id, else the served name.

    fetched: facts read from Hugging Face by `plan --fetch`, by model name.
    """
    explicit = model.plan.architecture
    if explicit is not None:
        try:
            file = project_file(project_root, explicit)
        except OutsideProject as error:
            raise UnknownArchitecture(str(error)) from None
        if explicit.endswith(".json") or file.is_dir():
            if not file.exists():
                raise UnknownArchitecture(f"{explicit!r} does not exist")
            try:
                return facts_from_hf_config(file)
            except (OSError, ValueError) as error:
                raise UnknownArchitecture(f"{explicit!r}: {error}") from None
        facts = lookup_model(explicit)
        if facts is None:
            raise UnknownArchitecture(
                f"{explicit!r} is not in the model catalog; give a path to its config.json"
            )
        return facts
    for key in (model.source.hugging_face, model.served_model_name):
        if key and (facts := lookup_model(key)):
            return facts
    return (fetched or {}).get(model.name)


def plan_stack(
    config: StackConfig,
    project_root: Path,
    isl: int | None = None,
    osl: int | None = None,
    model_indexes: list[int] | None = None,
    fetched: Mapping[str, ModelFacts] | None = None,
) -> list[PlanRow]:
    """Plan rows for every TensorRT-LLM worker role; isl/osl override each model's plan."""
    indexes = model_indexes or list(range(len(config.models)))
    rows: list[PlanRow] = []
    for index, model in zip(indexes, config.models, strict=True):
        if model.engine != "trtllm":
            continue
        bad_architecture = False
        try:
            facts = resolve_facts(model, project_root, fetched)
            skipped = None if facts else "no architecture facts (set plan.architecture)"
        except UnknownArchitecture as error:
            facts, skipped, bad_architecture = None, f"plan.architecture: {error}", True
        for color in sorted(model.slots):
            for role in model.topology.roles:
                plan, reason = (
                    (None, skipped)
                    if facts is None
                    else _plan(config, model, color, role, facts, project_root, isl, osl)
                )
                rows.append(
                    PlanRow(
                        model.name, color, role, f"models[{index}]", plan, reason, bad_architecture
                    )
                )
    return rows


def _plan(
    config: StackConfig,
    model: Model,
    color: Color,
    role: str,
    facts: ModelFacts,
    project_root: Path,
    isl: int | None,
    osl: int | None,
) -> tuple[RolePlan | None, str | None]:
    pool_name = model.role_pool(role)
    pool = config.pool(pool_name) if pool_name else None
    gpus = pool_gpus(pool) if pool else None
    if gpus is None:
        return None, "no GPU facts for the role's node pool"
    result = check_engine_config_file(project_file(project_root, model.engine_config(role, color)))
    if result.args is None:
        return None, "engine config is invalid (see validate)"
    spec = model.role(role)
    try:
        plan = plan_role(
            facts,
            EngineSettings.from_llm_args(result.raw),
            gpus.gpu_memory_gib,
            spec.gpus_per_worker,
            spec.nodes,
            isl or model.plan.input_tokens,
            osl or model.plan.output_tokens,
            role=role,
            model=f"{model.name}/{color}",
            gpu=gpus.gpu_product,
        )
    except ValueError as error:
        return None, str(error)
    return plan, None


def fit_issues(
    config: StackConfig, project_root: Path, model_indexes: list[int] | None = None
) -> list[ConfigIssue]:
    """Roles that cannot run at all on their GPUs, and architectures named but not found."""
    issues = []
    for row in plan_stack(config, project_root, model_indexes=model_indexes):
        if row.bad_architecture and row.skipped:
            issues.append(
                ConfigIssue(
                    f"{row.model_path}.plan.architecture",
                    row.skipped.removeprefix("plan.architecture: "),
                )
            )
        elif row.plan is not None and not row.plan.fits:
            issues.append(
                ConfigIssue(
                    f"{row.path}.gpusPerWorker",
                    f"{row.color} slot does not fit on {row.plan.gpu}: {row.plan.reason} "
                    "(see `dynamo-infra plan`)",
                )
            )
    return issues
