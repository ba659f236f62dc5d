"""How many GPUs a model's workers take on an instance type, and the engine configs that say so.

A worker's tensor parallelism spans all its GPUs (gpusPerWorker × nodes), as the engine rules
require. Each role gets the smallest worker whose weights and KV cache fit by the memory plan
`dynamo-infra plan` prints, so the starter writes what the checks accept, or, when nothing fits,
the largest worker it may, for the checks to say why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.stack.instances import GpuInstance
from infra.stack.model_config import PlanSpec, Topology
from infra.stack.yaml_source import load_trusted
from infra.trtllm.engine_rules import DISAGGREGATED_ROLES
from infra.trtllm.engine_settings import EngineSettings
from infra.trtllm.memory_plan import plan_role
from infra.trtllm.model_catalog import ModelFacts

# Whole nodes a multinode worker may span; upstream's multinode example spans two 8-GPU nodes.
MULTINODE_NODES = (2, 4)
# Sequences in flight per worker: prefill workers take a few long prompts at a time.
MAX_BATCH_SIZE = {"agg": 64, "prefill": 16, "decode": 64}
MAX_NUM_TOKENS = 8192
FREE_GPU_MEMORY_FRACTION = 0.85


@dataclass(frozen=True)
class WorkerSize:
    gpus_per_worker: int
    nodes: int = 1

    @property
    def gpus(self) -> int:
        return self.gpus_per_worker * self.nodes

    def describe(self) -> str:
        gpus = f"{self.gpus_per_worker} GPU{'s' if self.gpus_per_worker > 1 else ''}"
        return f"{self.nodes} nodes × {gpus}" if self.nodes > 1 else gpus


@dataclass(frozen=True)
class SizedRole:
    role: str
    size: WorkerSize
    engine_config: str  # LLM-API YAML, tensor parallel over the worker's GPUs
    fits: bool  # the memory plan's verdict on this size


@dataclass(frozen=True)
class SizedModel:
    """The model's roles on one instance type; the topology turns multinode when a worker spans nodes."""

    topology: Topology
    roles: tuple[SizedRole, ...]

    @property
    def fits(self) -> bool:
        return all(role.fits for role in self.roles)

    def nodes_needed(self, gpus_per_node: int) -> int:
        """Nodes for one worker of each role: gangs take whole nodes, single-node workers pack."""
        spanning = sum(r.size.nodes for r in self.roles if r.size.nodes > 1)
        packed = sum(r.size.gpus_per_worker for r in self.roles if r.size.nodes == 1)
        return spanning + math.ceil(packed / gpus_per_node)


def size_model(
    facts: ModelFacts, instance: GpuInstance, topology: Topology, max_nodes: int | None = None
) -> SizedModel:
    """Each role of `topology` sized on `instance`; only disaggregated workers may span nodes
    (at most `max_nodes`), and then the topology is disagg-multinode."""
    spans = topology.roles == DISAGGREGATED_ROLES
    sizes = worker_sizes(facts, instance, spans, max_nodes)
    roles = tuple(_size_role(facts, instance, role, sizes) for role in topology.roles)
    if any(role.size.nodes > 1 for role in roles):
        topology = Topology.DISAGG_MULTINODE
    return SizedModel(topology, roles)


def worker_sizes(
    facts: ModelFacts, instance: GpuInstance, span_nodes: bool, max_nodes: int | None
) -> list[WorkerSize]:
    """Smallest first: the divisors of a node's GPUs, then whole nodes side by side."""
    count = instance.gpu_count
    sizes = [WorkerSize(gpus) for gpus in range(1, count + 1) if count % gpus == 0]
    if span_nodes:
        sizes += [
            WorkerSize(count, nodes)
            for nodes in MULTINODE_NODES
            if max_nodes is None or nodes <= max_nodes
        ]
    # TensorRT-LLM splits the attention heads evenly over the tensor-parallel ranks.
    return [size for size in sizes if facts.num_attention_heads % size.gpus == 0]


def _size_role(
    facts: ModelFacts, instance: GpuInstance, role: str, sizes: list[WorkerSize]
) -> SizedRole:
    shape = PlanSpec()
    candidates = []
    for size in sizes:
        text = engine_config_text(facts, role, size)
        plan = plan_role(
            facts,
            EngineSettings.from_llm_args(load_trusted(text)),
            instance.gpu_memory_gib,
            size.gpus_per_worker,
            size.nodes,
            shape.input_tokens,
            shape.output_tokens,
            role=role,
        )
        candidates.append(SizedRole(role, size, text, plan.fits))
    return next((c for c in candidates if c.fits), candidates[-1])


def engine_config_text(facts: ModelFacts, role: str, size: WorkerSize) -> str:
    """A TensorRT-LLM LLM-API file for one worker of `role` with `size` GPUs."""
    batch = MAX_BATCH_SIZE[role]
    lines = [
        f"# {facts.hf_id}, {role} worker on {size.describe()}: tensor_parallel_size is all its GPUs.",
        "# Written by dynamo-infra; `dynamo-infra plan STACK` shows its GPU-memory plan.",
        "backend: pytorch",
        f"tensor_parallel_size: {size.gpus}",
    ]
    if facts.is_moe:
        lines += [
            "# Whole experts spread over every GPU.",
            f"moe_expert_parallel_size: {size.gpus}",
        ]
    lines += [f"max_batch_size: {batch}", f"max_num_tokens: {MAX_NUM_TOKENS}"]
    if role != "decode":
        lines += [
            "# Prompts longer than max_num_tokens are prefilled in chunks.",
            "enable_chunked_prefill: true",
        ]
    if role == "prefill":
        lines += [
            "# A prefill-only worker has no decode steps to overlap.",
            "disable_overlap_scheduler: true",
        ]
    lines += [
        "kv_cache_config:",
        "  # What the weights and the runtime leave is mostly KV cache.",
        f"  free_gpu_memory_fraction: {FREE_GPU_MEMORY_FRACTION}",
    ]
    if role != "prefill":
        lines += ["cuda_graph_config:", f"  max_batch_size: {batch}"]
    if role in DISAGGREGATED_ROLES:
        lines += [
            "cache_transceiver_config:",
            "  # Hands the KV blocks of each prompt from prefill to decode.",
            "  backend: DEFAULT",
        ]
    return "\n".join(lines) + "\n"
