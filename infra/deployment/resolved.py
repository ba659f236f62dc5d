"""The resolved deployment: everything one stack will run, built once per run.

From a checked stack config, each engine config is read and checked once, each model's facts
are looked up once, and each model × slot × role gets its effective settings: pool and GPUs,
replicas, engine file and parallel layout, placement. The deployment checks, `plan`, the Pulumi
program and `render` all read this one model; nothing downstream reads a file again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from infra.stack.config import NodePool, StackConfig
from infra.stack.instances import (
    GpuInstance,
    efa_hugepages_mib,
    efa_per_pod,
    pool_gpus,
    pool_node_selector,
    worker_memory_mib,
)
from infra.stack.model_config import Color, Model
from infra.stack.platform_config import PlatformSpec
from infra.stack.project_paths import OutsideProject, project_file
from infra.trtllm.engine_config import EngineConfigResult, Runtime, check_engine_config_file
from infra.trtllm.engine_rules import effective_tensor_parallel
from infra.trtllm.model_catalog import ModelFacts, facts_from_hf_config, lookup_model


@dataclass(frozen=True)
class WorkerPlacement:
    """Where a role's workers run: the pool's node selector and what its nodes offer."""

    node_selector: dict[str, str]
    efa_interfaces: int = 0
    hugepages_mib: int = 0  # 2 MiB huge pages for EFA's libfabric
    efa_rdma_read: bool = False  # the pool's EFA devices read peer GPU memory directly
    karpenter: bool = False  # the pool's nodes come and go with Karpenter
    # A worker's memory when its role sets none: its GPUs' share of the node (None: unknown).
    memory_mib: int | None = None


@dataclass(frozen=True)
class WorkerParallelism:
    """A worker's parallel layout, read from its validated engine config.

    Passed as flags too, so what Dynamo registers and what the engine config says always agree.
    """

    tensor: int = 1
    pipeline: int = 1
    expert: int | None = None
    gpus_per_node: int = 1
    # kv_cache_config.tokens_per_block: the worker registers its KV blocks at this size, so the
    # KV router's block hashes match the engine's (a mismatch ruins prefix hit rates).
    kv_block_size: int = 32


@dataclass(frozen=True)
class EngineFile:
    """One engine config as the stack names it: its text (shipped as is) and its check."""

    path: str  # relative to the project root, as written in the stack file
    text: str | None  # None when it could not be read
    result: EngineConfigResult | None  # None when it could not be read
    problem: str | None = None  # why it could not be read

    @property
    def valid(self) -> bool:
        return self.result is not None and self.result.args is not None


class ProjectFiles:
    """Reads each project file a stack names once per run (engine configs, config.json)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._engines: dict[tuple[str, Runtime | None], EngineFile] = {}
        self._facts: dict[str, ModelFacts | str] = {}

    def engine_config(self, relative: str, runtime: Runtime | None = None) -> EngineFile:
        """The file checked for `runtime`'s TensorRT-LLM (None: against the schema alone)."""
        key = (relative, runtime)
        if key not in self._engines:
            self._engines[key] = self._read_engine(relative, runtime)
        return self._engines[key]

    def _read_engine(self, relative: str, runtime: Runtime | None) -> EngineFile:
        try:
            path = project_file(self.root, relative)
        except OutsideProject as error:
            return EngineFile(relative, None, None, f"engine config {error}")
        if not path.is_file():
            return EngineFile(relative, None, None, f"engine config file {relative!r} not found")
        result = check_engine_config_file(path, runtime)
        return EngineFile(relative, result.text, result)

    def model_config(self, relative: str) -> ModelFacts | str:
        """Facts from a config.json in the project, or why they cannot be read."""
        if relative not in self._facts:
            self._facts[relative] = self._read_facts(relative)
        return self._facts[relative]

    def _read_facts(self, relative: str) -> ModelFacts | str:
        try:
            file = project_file(self.root, relative)
        except OutsideProject as error:
            return str(error)
        if not file.exists():
            return f"{relative!r} does not exist"
        try:
            return facts_from_hf_config(file)
        except (OSError, ValueError) as error:
            return f"{relative!r}: {error}"


@dataclass(frozen=True)
class ResolvedRole:
    """One worker role of one slot, with everything that decides how it runs."""

    role: str
    color: Color
    pool: NodePool | None
    gpus: GpuInstance | None
    replicas: int
    peak_replicas: int  # the autoscaling maximum, else replicas
    engine: EngineFile | None  # None for the mocker engine
    engine_key: str  # the YAML path naming the engine config
    placement: WorkerPlacement | None  # None without a pool (the mocker engine may have none)

    @property
    def hub_draft(self) -> str | None:
        """A speculative draft model its engine config names by Hugging Face id (fetched at
        start); None without one, or with a path."""
        result = self.engine.result if self.engine else None
        spec = result.args.speculative_config if result and result.args else None
        draft = getattr(spec, "speculative_model", None)
        return draft if draft and not draft.startswith("/") else None

    def parallelism(self, gpus_per_node: int, nodes: int) -> WorkerParallelism | None:
        """The layout the worker runs: the file's, with tensor parallelism over all its GPUs
        when the file leaves it to the command line."""
        result = self.engine.result if self.engine else None
        if result is None or result.args is None:
            return None
        args = result.args
        return WorkerParallelism(
            tensor=effective_tensor_parallel(args, result.raw, gpus_per_node * nodes),
            pipeline=args.pipeline_parallel_size,
            expert=args.moe_expert_parallel_size,
            gpus_per_node=gpus_per_node,
            kv_block_size=args.kv_cache_config.tokens_per_block,
        )


@dataclass(frozen=True)
class ResolvedModel:
    """One model of the stack: its config, its facts, and every slot's roles."""

    index: int  # models[index] in the stack file
    model: Model
    facts: ModelFacts | None
    facts_problem: str | None  # plan.architecture names something that cannot be read
    roles: dict[tuple[Color, str], ResolvedRole] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"models[{self.index}]"

    def slot_roles(self, color: Color) -> list[ResolvedRole]:
        return [r for (c, _), r in sorted(self.roles.items()) if c == color]

    def downloading_colors(self) -> list[Color]:
        """Slots whose pods fetch from the Hugging Face hub: the weights (workers) with the
        tokenizer and config (the frontend too), or a speculative draft named by id."""
        return [
            color
            for color in sorted(self.model.slots)
            if self.model.source_for(color).hugging_face is not None
            or any(role.hub_draft for role in self.slot_roles(color))
        ]

    def engine_files(self, color: Color) -> dict[str, str]:
        """`<role>.yaml` -> text, for the slot's engine-config ConfigMap."""
        return {
            f"{r.role}.yaml": r.engine.text
            for r in self.slot_roles(color)
            if r.engine is not None and r.engine.text is not None
        }

    def parallelism(self, color: Color) -> dict[str, WorkerParallelism]:
        layouts = {}
        for role in self.slot_roles(color):
            spec = self.model.role(role.role)
            layout = role.parallelism(spec.gpus_per_worker, spec.nodes)
            if layout is not None:
                layouts[role.role] = layout
        return layouts

    def placements(self) -> dict[str, WorkerPlacement]:
        """Each role's placement (the same in both slots: slots differ in replicas and files)."""
        return {
            name: role.placement
            for (_, name), role in sorted(self.roles.items(), reverse=True)
            if role.placement is not None
        }


@dataclass(frozen=True)
class Deployment:
    """The whole stack as it will run."""

    config: StackConfig
    models: tuple[ResolvedModel, ...]
    secrets: frozenset[str] = frozenset()  # the secret keys the stack sets (values unseen)
    environments: tuple[str, ...] = ()  # Pulumi ESC environments that may set more config

    def model(self, name: str) -> ResolvedModel:
        return next(m for m in self.models if m.model.name == name)


def resolve(
    config: StackConfig,
    files: ProjectFiles,
    model_indexes: list[int] | None = None,
    fetched: Mapping[str, ModelFacts] | None = None,
    secrets: frozenset[str] = frozenset(),
    environments: tuple[str, ...] = (),
) -> Deployment:
    """The deployment of a (possibly partial) checked config; model_indexes map back to the file.

    fetched: model facts read from Hugging Face by `plan --fetch`, by model name.
    """
    indexes = model_indexes or list(range(len(config.models)))
    return Deployment(
        config,
        tuple(
            _resolve_model(config, files, index, model, fetched or {})
            for index, model in zip(indexes, config.models, strict=True)
        ),
        secrets,
        environments,
    )


def _resolve_model(
    config: StackConfig,
    files: ProjectFiles,
    index: int,
    model: Model,
    fetched: Mapping[str, ModelFacts],
) -> ResolvedModel:
    facts, facts_problem = _model_facts(model, files, fetched)
    runtime = platform_runtime(config.platform)
    roles: dict[tuple[Color, str], ResolvedRole] = {}
    for color in sorted(model.slots):
        for role in model.topology.roles:
            pool_name = model.role_pool(role)
            pool = config.pool(pool_name) if pool_name else None
            key = engine_config_key(index, model, role, color)
            gpus = pool_gpus(pool) if pool else None
            roles[(color, role)] = ResolvedRole(
                role=role,
                color=color,
                pool=pool,
                gpus=gpus,
                replicas=model.replicas(role, color),
                peak_replicas=model.peak_replicas(role, color),
                engine=files.engine_config(model.engine_config(role, color), runtime)
                if model.engine == "trtllm"
                else None,
                engine_key=key,
                placement=_placement(pool, gpus, model.role(role).gpus_per_worker),
            )
    return ResolvedModel(index, model, facts, facts_problem, roles)


def platform_runtime(platform: PlatformSpec) -> Runtime:
    """What engine configs are checked against: the TensorRT-LLM of the platform's Dynamo
    release, whose runtime the operator runs (another image is warned about by the checks)."""
    profile = platform.profile
    return Runtime(profile.trtllm_version, f"Dynamo {profile.version}'s runtime")


def engine_config_key(index: int, model: Model, role: str, color: Color) -> str:
    """The YAML path that names a role's engine config in a slot: the slot's override, if any."""
    if model.slot_role(role, color).engine_config:
        return f"models[{index}].slots.{color}.{role}.engineConfig"
    return f"models[{index}].{role}.engineConfig"


def _placement(
    pool: NodePool | None, gpus: GpuInstance | None, gpus_per_worker: int
) -> WorkerPlacement | None:
    """Where a role's workers run, and the EFA share their GPUs give them on an EFA pool."""
    if pool is None:
        return None
    efa = efa_per_pod(gpus, gpus_per_worker) if pool.efa else 0
    # Karpenter knows no instance type offering huge pages and launches no node for a pod that
    # asks for them (aws/karpenter-provider-aws#3315): its EFA workers run libfabric without.
    hugepages = efa and not pool.karpenter_managed
    return WorkerPlacement(
        node_selector=pool_node_selector(pool),
        efa_interfaces=efa,
        hugepages_mib=efa_hugepages_mib(gpus, gpus_per_worker) if hugepages else 0,
        efa_rdma_read=bool(efa) and gpus is not None and gpus.efa_rdma_read,
        karpenter=pool.karpenter_managed,
        memory_mib=worker_memory_mib(gpus, gpus_per_worker, bool(pool.efa)),
    )


def _model_facts(
    model: Model, files: ProjectFiles, fetched: Mapping[str, ModelFacts]
) -> tuple[ModelFacts | None, str | None]:
    """plan.architecture, else the Hugging Face id, else the served name, else fetched facts."""
    explicit = model.plan.architecture
    if explicit is not None:
        if explicit.endswith(".json") or (files.root / explicit).is_dir():
            found = files.model_config(explicit)
            return (found, None) if isinstance(found, ModelFacts) else (None, found)
        facts = lookup_model(explicit)
        if facts is None:
            return None, f"{explicit!r} is not in the model catalog; give a path to its config.json"
        return facts, None
    for key in (model.source.hugging_face, model.served_model_name):
        if key and (facts := lookup_model(key)):
            return facts, None
    return fetched.get(model.name), None
