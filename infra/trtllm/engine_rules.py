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


# TensorRT-LLM reads an empty document as {} and starts on its defaults alone (max_batch_size
# 2048, tensor_parallel_size 1, no cache transceiver): never what a file named for a worker
# meant, mostly one that was truncated or never filled in. `{}` still says so on purpose.
EMPTY_FILE_MESSAGE = (
    "the engine config is empty (no options, only comments or null): TensorRT-LLM would start "
    "this worker on its defaults alone; give the options it needs, or `{}` to take every default "
    "on purpose"
)


def file_rule_issues(result: EngineConfigResult, role: str | None) -> list[EngineConfigIssue]:
    """Problems visible in a valid file alone (role None: role-specific rules are skipped)."""
    args = result.args
    if args is None:
        return []
    if result.empty:
        return [EngineConfigIssue("", EMPTY_FILE_MESSAGE, line=1, column=1)]
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


def disaggregated_pair_issues(
    prefill: EngineConfigResult, decode: EngineConfigResult
) -> list[tuple[str, EngineConfigIssue]]:
    """Problems between the prefill and decode engine configs of one graph, each as (the role
    whose file it is located in, issue); nothing when either file is invalid.

    TensorRT-LLM's KV-cache transfer refuses a peer whose blocks hold another number of tokens
    (CacheFormatter::inquireSupport in cpp/tensorrt_llm/batch_manager/cacheFormatter.cpp: "only
    support same tokens per block"), so every request would fail at the hand-over.
    """
    if prefill.args is None or decode.args is None:
        return []
    ours = {
        "prefill": prefill.args.kv_cache_config.tokens_per_block,
        "decode": decode.args.kv_cache_config.tokens_per_block,
    }
    if ours["prefill"] == ours["decode"]:
        return []
    states = {
        role: "tokens_per_block" in (result.raw.get("kv_cache_config") or {})
        for role, result in (("prefill", prefill), ("decode", decode))
    }
    # At the decode file's key when it states one (it receives the blocks), else at prefill's.
    role = "decode" if states["decode"] or not states["prefill"] else "prefill"
    other = "prefill" if role == "decode" else "decode"
    spelled = "" if states[other] else " (TensorRT-LLM's default)"
    message = (
        f"{ours[role]} tokens per KV block here, {ours[other]}{spelled} in the {other} engine "
        "config: TensorRT-LLM hands KV blocks from prefill to decode only between workers with "
        "the same tokens_per_block, so every disaggregated request would fail at the transfer"
    )
    return [(role, EngineConfigIssue("kv_cache_config.tokens_per_block", message))]


def _parallel_issues(args: TorchLlmArgs) -> list[EngineConfigIssue]:
    issues: list[EngineConfigIssue] = []
    tp = args.tensor_parallel_size
    # The schema keeps stated sizes > 0; `or None` still reads a 0 from elsewhere as "unset"
    # rather than dividing by it.
    ep = args.moe_expert_parallel_size or None
    moe_tp = args.moe_tensor_parallel_size or None
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
    """Graph sizes above max_batch_size: said, not refused.

    TensorRT-LLM keeps only the sizes a decode batch can reach (bs <= min(max_batch_size,
    max_num_tokens / (1 + draft tokens)); `_filter_cuda_graph_batch_sizes` in
    tensorrt_llm/_torch/pyexecutor/model_engine.py) and, with enable_padding, pads to that
    limit instead; a worker starts either way. Upstream's own recipes rely on this (Qwen3-32B's
    disaggregated prefill: max_batch_size 1 beside decode's graph sizes). Only sizes the file
    states are looked at: TensorRT-LLM derives its default sizes itself.
    """
    graphs = args.cuda_graph_config
    limit = args.max_batch_size
    stated = raw.get("cuda_graph_config")
    if not isinstance(stated, dict) or graphs is None or limit is None:
        return []
    kept = "TensorRT-LLM does not capture them, as no batch grows past max_batch_size"
    if graphs.enable_padding:
        kept += f" (padded batches stop at {limit})"
    too_large = sorted({b for b in graphs.batch_sizes or [] if b > limit})
    if "batch_sizes" in stated and too_large:
        return [
            EngineConfigIssue(
                "cuda_graph_config.batch_sizes",
                f"CUDA-graph batch sizes {too_large} exceed max_batch_size {limit}: {kept}",
                severity="warning",
            )
        ]
    if "max_batch_size" in stated and graphs.max_batch_size > limit:
        return [
            EngineConfigIssue(
                "cuda_graph_config.max_batch_size",
                f"{graphs.max_batch_size} exceeds max_batch_size {limit}: TensorRT-LLM drops "
                f"the graph sizes it generates above {limit}, as no batch grows past it",
                severity="warning",
            )
        ]
    return []
