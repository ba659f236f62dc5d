"""Rules an engine config must meet beyond its schema: on its own, and against the stack.

Schema validation (infra/trtllm/engine_config.py) says whether TensorRT-LLM will parse a file; these
rules say whether the worker it configures can start: parallel layout vs the GPUs the pod gets,
CUDA graphs vs the batch limit, disaggregation and KV-aware routing prerequisites.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.trtllm.engine_config import EngineConfigIssue, EngineConfigResult
from infra.trtllm.engine_schema import TorchLlmArgs

DISAGGREGATED_ROLES = ("prefill", "decode")


@dataclass(frozen=True)
class WorkerShape:
    """What the stack gives one worker: GPUs per node and nodes."""

    gpus_per_node: int
    nodes: int

    @property
    def gpus(self) -> int:
        return self.gpus_per_node * self.nodes


def effective_tensor_parallel(args: TorchLlmArgs, raw: dict, gpus: int) -> int:
    """The file's tensor_parallel_size when it states one; else what the worker's command line
    gives it: all its GPUs over the pipeline and context stages (as upstream launches them)."""
    if "tensor_parallel_size" in raw:
        return args.tensor_parallel_size
    stages = args.pipeline_parallel_size * args.context_parallel_size
    return max(1, gpus // stages)


def world_size(args: TorchLlmArgs, tensor: int | None = None) -> int:
    tp = args.tensor_parallel_size if tensor is None else tensor
    return tp * args.pipeline_parallel_size * args.context_parallel_size


def file_rule_issues(result: EngineConfigResult, role: str | None) -> list[EngineConfigIssue]:
    """Problems visible in a valid file alone (role None: role-specific rules are skipped)."""
    args = result.args
    if args is None:
        return []
    issues = _parallel_issues(args) + _cuda_graph_issues(args, result.raw)
    if role in DISAGGREGATED_ROLES and args.cache_transceiver_config is None:
        issues.append(
            EngineConfigIssue(
                "cache_transceiver_config",
                f"a {role} worker of a disaggregated graph needs cache_transceiver_config "
                "(e.g. backend: DEFAULT) to hand KV blocks between prefill and decode",
            )
        )
    return issues


def stack_rule_issues(args: TorchLlmArgs, raw: dict, shape: WorkerShape) -> list[EngineConfigIssue]:
    """Problems only visible next to the stack: the GPUs the worker gets, on its effective layout.

    No rule on kv_cache_config.event_buffer_max_size for KV-routed roles: the worker sets it
    itself when started with --publish-events-and-metrics (Dynamo's trtllm worker).
    """
    issues: list[EngineConfigIssue] = []
    tp = effective_tensor_parallel(args, raw, shape.gpus)
    layout = f"tensor_parallel_size {tp} × pipeline_parallel_size {args.pipeline_parallel_size}"
    if args.context_parallel_size != 1:
        layout += f" × context_parallel_size {args.context_parallel_size}"
    if world_size(args, tp) != shape.gpus:
        issues.append(
            EngineConfigIssue(
                "tensor_parallel_size",
                f"the engine spans {world_size(args, tp)} GPUs ({layout}), but the worker gets "
                f"{shape.gpus} "
                f"(gpusPerWorker {shape.gpus_per_node} × nodes {shape.nodes})",
            )
        )
    if args.enable_attention_dp and tp <= 1:
        issues.append(
            EngineConfigIssue(
                "enable_attention_dp",
                "attention data parallelism splits requests across tensor-parallel ranks; with "
                "tensor_parallel_size 1 it does nothing (TensorRT-LLM accepts it)",
                severity="warning",
            )
        )
    if args.gpus_per_node is not None and args.gpus_per_node != shape.gpus_per_node:
        issues.append(
            EngineConfigIssue(
                "gpus_per_node",
                f"gpus_per_node {args.gpus_per_node} differs from the stack's gpusPerWorker "
                f"{shape.gpus_per_node}",
            )
        )
    return issues


def _parallel_issues(args: TorchLlmArgs) -> list[EngineConfigIssue]:
    issues: list[EngineConfigIssue] = []
    tp = args.tensor_parallel_size
    ep, moe_tp = args.moe_expert_parallel_size, args.moe_tensor_parallel_size
    if ep is not None and tp % ep != 0:
        issues.append(
            EngineConfigIssue(
                "moe_expert_parallel_size",
                f"moe_expert_parallel_size {ep} does not divide tensor_parallel_size {tp} "
                "(the GPUs each MoE layer is spread over)",
            )
        )
    elif ep is not None and moe_tp is not None and ep * moe_tp != tp:
        issues.append(
            EngineConfigIssue(
                "moe_tensor_parallel_size",
                f"moe_tensor_parallel_size {moe_tp} × moe_expert_parallel_size {ep} must equal "
                f"tensor_parallel_size {tp}",
            )
        )
    elif moe_tp is not None and tp % moe_tp != 0:
        issues.append(
            EngineConfigIssue(
                "moe_tensor_parallel_size",
                f"moe_tensor_parallel_size {moe_tp} does not divide tensor_parallel_size {tp}",
            )
        )
    return issues


def _cuda_graph_issues(args: TorchLlmArgs, raw: dict) -> list[EngineConfigIssue]:
    """Only sizes the file states: TensorRT-LLM derives its default graph sizes itself."""
    stated = raw.get("cuda_graph_config")
    limit = args.max_batch_size
    if not isinstance(stated, dict) or limit is None:
        return []
    issues: list[EngineConfigIssue] = []
    too_large = sorted({b for b in stated.get("batch_sizes") or [] if int(b) > limit})
    if too_large:
        issues.append(
            EngineConfigIssue(
                "cuda_graph_config.batch_sizes",
                f"CUDA-graph batch sizes {too_large} exceed max_batch_size {limit}: "
                "those graphs can never run",
            )
        )
    elif int(stated.get("max_batch_size") or 0) > limit:
        issues.append(
            EngineConfigIssue(
                "cuda_graph_config.max_batch_size",
                f"{stated['max_batch_size']} exceeds max_batch_size {limit}",
            )
        )
    return issues
