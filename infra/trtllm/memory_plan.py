"""GPU-memory plan for one worker role: weights per GPU, KV-cache capacity, concurrency.

Pure arithmetic (no Pulumi, no I/O) over ModelFacts and the engine's parallel and KV-cache
settings, so a stack can be judged before any GPU starts. Everything is counted in bytes;
GiB appears only in display fields.

How TensorRT-LLM spends GPU memory, as modelled here (per GPU, on the most loaded rank):
1. Weights. Attention, dense MLPs, shared experts and routers are split across TP; with
   attention DP they are replicated on every rank (conservative: TRT-LLM replicates
   attention and, for most models, the dense MLPs under attention DP). Routed experts are
   split by expert parallelism (whole experts, ceil(experts / EP) per rank) and then by MoE
   TP. Pipeline parallelism gives each rank ceil(layers / PP) layers. Embedding and lm_head
   are split across TP (replicated under attention DP, unless `enable_lm_head_tp_in_adp`);
   with PP they sit on the first and last rank, and the vision tower (replicated, never
   sharded) on the first. Context parallelism does not shard weights here (conservative).
2. A runtime reserve: CUDA context, cuBLAS/NCCL workspaces, allocator slack, the activation
   peak TRT-LLM measures with a max_num_tokens forward pass, and CUDA graphs. Rule:
   `RuntimeReserve` = 2 GiB fixed (context, workspaces, communication buffers: roughly
   1-2 GiB per process) + 5% of GPU memory for activations and CUDA graphs, which grow
   with the GPU's size class (6 GiB in all on an 80 GiB GPU, 3.1 GiB on a 22 GiB L4).
   TRT-LLM measures the real figure at start-up; this is a deliberately generous rule,
   not a measurement, so the plan errs low on KV capacity. Very large max_num_tokens or
   wide-EP all-to-all buffers can need more: pass a bigger RuntimeReserve.
3. KV cache: `free_gpu_memory_fraction` x (GPU - weights - reserve), capped by
   `max_gpu_total_bytes` and `max_tokens`, in whole blocks of `tokens_per_block`.
   Bytes per token per GPU: GQA 2 x layers/PP x kv_heads/TP (at least one head; not split
   under attention DP) x head_dim x dtype bytes; MLA layers/PP x (kv_lora_rank +
   qk_rope_head_dim) x dtype bytes, never split by TP. Sliding-window and chunked-attention
   layers are counted as full attention, an upper bound on KV use.
4. Concurrency: sequences of ISL+OSL tokens (ISL+1 on a disaggregated prefill worker, which
   generates one token and hands the KV cache over) that fit in the per-rank blocks, capped
   by max_batch_size (per rank), times the attention-DP size. With context parallelism
   each CP rank is taken to hold 1/CP of every sequence (Helix-style).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from infra.trtllm.engine_settings import EngineSettings
from infra.trtllm.model_catalog import DTYPE_BYTES, ModelFacts, dtype_bytes, normalize_dtype

GiB = 1 << 30

# DeepSeek sparse-MLA packed FP8 cache: 512 fp8 latent + 4 fp32 scales + 64 bf16 rope values.
FP8_DS_MLA_BYTES_PER_LAYER = 512 + 4 * 4 + 64 * 2


@dataclass(frozen=True)
class RuntimeReserve:
    """GPU memory kept for everything but weights and KV cache: fixed + a share of the GPU."""

    fixed_bytes: int = 2 * GiB
    gpu_fraction: float = 0.05

    def bytes_for(self, gpu_memory_bytes: int) -> int:
        return self.fixed_bytes + math.ceil(gpu_memory_bytes * _exact(self.gpu_fraction))


DEFAULT_RESERVE = RuntimeReserve()


@dataclass(frozen=True)
class RolePlan:
    """The memory plan of one worker role; all sizes in bytes, per GPU unless named otherwise."""

    model: str
    role: str
    gpu: str
    gpu_memory_bytes: int
    gpus_per_worker: int
    nodes: int
    world_size: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    context_parallel_size: int
    moe_tensor_parallel_size: int
    moe_expert_parallel_size: int
    attention_dp_size: int
    weight_bytes_per_gpu: int
    reserve_bytes: int
    free_bytes_after_weights: int  # GPU - weights - reserve; negative when it does not fit
    kv_cache_budget_bytes: int
    kv_cache_dtype: str
    kv_bytes_per_token: int
    kv_cache_tokens: int  # per attention-DP rank (per KV-cache instance)
    kv_cache_blocks: int
    kv_limited_by: str  # "memory", "max_tokens" or "max_gpu_total_bytes"
    isl: int
    osl: int
    tokens_per_sequence: int
    max_concurrent_sequences: int  # whole worker: per-rank sequences x attention-DP size
    concurrency_limited_by: str  # "kv_cache" or "max_batch_size"
    fits: bool
    reason: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def weight_gib_per_gpu(self) -> float:
        return self.weight_bytes_per_gpu / GiB

    @property
    def gpu_memory_gib(self) -> float:
        return self.gpu_memory_bytes / GiB

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: integers stay integers, GiB figures rounded to two decimals."""
        return {
            "model": self.model,
            "role": self.role,
            "gpu": self.gpu,
            "gpuMemoryGib": round(self.gpu_memory_gib, 2),
            "gpusPerWorker": self.gpus_per_worker,
            "nodes": self.nodes,
            "worldSize": self.world_size,
            "tensorParallelSize": self.tensor_parallel_size,
            "pipelineParallelSize": self.pipeline_parallel_size,
            "contextParallelSize": self.context_parallel_size,
            "moeTensorParallelSize": self.moe_tensor_parallel_size,
            "moeExpertParallelSize": self.moe_expert_parallel_size,
            "attentionDpSize": self.attention_dp_size,
            "weightBytesPerGpu": self.weight_bytes_per_gpu,
            "weightGibPerGpu": round(self.weight_gib_per_gpu, 2),
            "reserveBytes": self.reserve_bytes,
            "reserveGib": round(self.reserve_bytes / GiB, 2),
            "freeBytesAfterWeights": self.free_bytes_after_weights,
            "kvCacheBudgetBytes": self.kv_cache_budget_bytes,
            "kvCacheBudgetGib": round(self.kv_cache_budget_bytes / GiB, 2),
            "kvCacheDtype": self.kv_cache_dtype,
            "kvBytesPerToken": self.kv_bytes_per_token,
            "kvCacheTokens": self.kv_cache_tokens,
            "kvCacheBlocks": self.kv_cache_blocks,
            "kvLimitedBy": self.kv_limited_by,
            "isl": self.isl,
            "osl": self.osl,
            "tokensPerSequence": self.tokens_per_sequence,
            "maxConcurrentSequences": self.max_concurrent_sequences,
            "concurrencyLimitedBy": self.concurrency_limited_by,
            "fits": self.fits,
            "reason": self.reason,
            "notes": list(self.notes),
        }


def resolve_kv_cache_dtype(facts: ModelFacts, kv_cache_dtype: str) -> str:
    """'auto' -> the checkpoint's KV dtype (its kv_cache_quant_algo, else torch_dtype)."""
    name = kv_cache_dtype.strip().lower()
    if name == "auto":
        return facts.kv_cache_dtype
    if name == "fp8_ds_mla":
        if not facts.is_mla:
            raise ValueError("kv_cache_config.dtype fp8_ds_mla applies to MLA models only")
        return name
    return normalize_dtype(name)


def kv_bytes_per_token(facts: ModelFacts, settings: EngineSettings) -> int:
    """KV-cache bytes one token occupies on one GPU (the rank with the most layers)."""
    dtype = resolve_kv_cache_dtype(facts, settings.kv_cache_dtype)
    layers = _ceil_div(facts.num_hidden_layers, settings.pipeline_parallel_size)
    if settings.mtp_enabled:
        layers += facts.num_nextn_predict_layers
    if dtype == "fp8_ds_mla":
        return layers * FP8_DS_MLA_BYTES_PER_LAYER
    if facts.is_mla:
        values = facts.kv_lora_rank + facts.qk_rope_head_dim
    else:
        attn_tp = 1 if settings.enable_attention_dp else settings.tensor_parallel_size
        heads = max(1, _ceil_div(facts.num_key_value_heads, attn_tp))
        values = 2 * heads * facts.head_dim
    return math.ceil(layers * values * DTYPE_BYTES[dtype])


def weight_bytes_per_gpu(facts: ModelFacts, settings: EngineSettings) -> int:
    """Weight bytes on the most loaded GPU of one worker (see the module docstring)."""
    tp, pp = settings.tensor_parallel_size, settings.pipeline_parallel_size
    adp = settings.enable_attention_dp
    attn_split = 1 if adp else tp
    moe_tp, moe_ep = settings.moe_split
    linear, experts_dt, plain = (
        dtype_bytes(facts.linear_weight_dtype),
        dtype_bytes(facts.expert_weight_dtype),
        dtype_bytes(facts.dtype),
    )

    layers = facts.num_hidden_layers
    dense = Fraction(facts.attention_params + facts.mlp_params) * _ceil_div(layers, pp) / layers
    dense /= attn_split

    experts = Fraction(0)
    experts_per_rank = 0
    if facts.is_moe:
        slots = max(settings.moe_num_slots or facts.num_experts, facts.num_experts)
        experts_per_rank = _ceil_div(slots, moe_ep)
        per_layer = Fraction(experts_per_rank * facts.params_per_expert, moe_tp)
        experts = per_layer * _ceil_div(facts.num_moe_layers, pp)

    first = Fraction(facts.embedding_params, attn_split) * plain + facts.vision_params * plain
    lm_split = tp if (not adp or settings.enable_lm_head_tp_in_adp) else 1
    # Tied embeddings share one tensor on a single rank; with PP the last rank needs its own copy.
    lm_params = (
        facts.embedding_params if (facts.tie_word_embeddings and pp > 1) else facts.lm_head_params
    )
    last = Fraction(lm_params, lm_split) * plain
    if settings.mtp_enabled and facts.num_nextn_predict_layers:
        n = facts.num_nextn_predict_layers
        last += Fraction(n * facts.mtp_params_per_layer, attn_split) * linear
        if facts.is_moe:
            last += Fraction(n * experts_per_rank * facts.params_per_expert, moe_tp) * experts_dt
    edges = first + last if pp == 1 else max(first, last)
    return math.ceil(dense * linear + experts * experts_dt + edges)


def plan_role(
    facts: ModelFacts,
    settings: EngineSettings,
    gpu_memory_gib: float,
    gpus_per_worker: int,
    nodes: int = 1,
    isl: int = 2048,
    osl: int = 512,
    *,
    role: str = "agg",
    model: str | None = None,
    gpu: str = "",
    reserve: RuntimeReserve = DEFAULT_RESERVE,
) -> RolePlan:
    """Plan one worker role of `gpus_per_worker` GPUs on each of `nodes` nodes.

    isl/osl: the request shape concurrency is counted for; role "prefill" counts ISL+1.
    model/gpu: display names (default: the catalog alias). Raises ValueError when the
    settings cannot apply to the model (e.g. an unknown KV dtype).
    """
    if gpus_per_worker < 1 or nodes < 1 or isl < 1 or osl < 0:
        raise ValueError("gpus_per_worker, nodes and isl must be at least 1, osl at least 0")
    gpu_bytes = int(_exact(gpu_memory_gib) * GiB)
    notes: list[str] = []
    kv_dtype = resolve_kv_cache_dtype(facts, settings.kv_cache_dtype)
    moe_tp, moe_ep = settings.moe_split

    weights = weight_bytes_per_gpu(facts, settings)
    reserve_bytes = reserve.bytes_for(gpu_bytes)
    free = gpu_bytes - weights - reserve_bytes
    per_token = kv_bytes_per_token(facts, settings)

    budget = math.floor(max(free, 0) * _exact(settings.free_gpu_memory_fraction))
    limited_by = "memory"
    if settings.max_gpu_total_bytes and settings.max_gpu_total_bytes < budget:
        budget, limited_by = settings.max_gpu_total_bytes, "max_gpu_total_bytes"
    tokens = budget // per_token
    if settings.max_tokens is not None and settings.max_tokens < tokens:
        tokens, limited_by = settings.max_tokens, "max_tokens"
    block = settings.tokens_per_block
    blocks = tokens // block
    tokens = blocks * block

    seq_tokens = isl + (1 if role == "prefill" else osl)
    cp = settings.context_parallel_size
    blocks_per_seq = _ceil_div(_ceil_div(seq_tokens, cp), block)
    per_rank = blocks // blocks_per_seq
    concurrency_by = "kv_cache"
    if per_rank > settings.max_batch_size:
        per_rank, concurrency_by = settings.max_batch_size, "max_batch_size"
    dp = settings.attention_dp_size
    concurrent = per_rank * dp

    fits, reason = True, None
    if weights > gpu_bytes:
        fits = False
        reason = (
            f"weights alone need {weights / GiB:.1f} GiB per GPU, more than the "
            f"{gpu_bytes / GiB:.1f} GiB GPU"
        )
    elif free <= 0:
        fits = False
        reason = (
            f"weights {weights / GiB:.1f} GiB + runtime reserve {reserve_bytes / GiB:.1f} GiB "
            f"exceed the {gpu_bytes / GiB:.1f} GiB GPU"
        )
    elif blocks_per_seq > blocks:
        fits = False
        reason = (
            f"KV cache holds {tokens} tokens per rank, less than one sequence of "
            f"{seq_tokens} tokens"
        )

    if settings.world_size != gpus_per_worker * nodes:
        notes.append(
            f"engine world size TPxPPxCP = {settings.world_size} but the role has "
            f"{gpus_per_worker} GPUs x {nodes} nodes = {gpus_per_worker * nodes}"
        )
    if facts.num_sliding_window_layers:
        notes.append(
            f"{facts.num_sliding_window_layers} of {facts.num_hidden_layers} layers keep only a "
            f"{facts.sliding_window}-token window; counted as full attention (upper bound)"
        )
    attn_tp = 1 if settings.enable_attention_dp else settings.tensor_parallel_size
    if not facts.is_mla and attn_tp > facts.num_key_value_heads:
        notes.append(
            f"TP {attn_tp} exceeds the {facts.num_key_value_heads} KV heads: KV heads are "
            "replicated, one per rank"
        )
    if facts.is_moe and (settings.moe_num_slots or facts.num_experts) % moe_ep:
        notes.append(f"{facts.num_experts} experts do not divide evenly over EP {moe_ep}")
    total_seq = isl + osl
    if settings.max_seq_len is not None and total_seq > settings.max_seq_len:
        notes.append(f"ISL+OSL = {total_seq} exceeds max_seq_len {settings.max_seq_len}")
    if facts.max_position_embeddings and total_seq > facts.max_position_embeddings:
        notes.append(
            f"ISL+OSL = {total_seq} exceeds the model's {facts.max_position_embeddings} positions"
        )
    if settings.max_attention_window:
        notes.append("max_attention_window is set: windowed layers need less KV than counted here")
    drafter = settings.speculative_decoding_type
    if drafter and drafter != "MTP":
        notes.append(
            f"the {drafter} draft model's weights and KV cache are not counted: keep headroom"
        )
    if settings.mtp_enabled and not facts.num_nextn_predict_layers:
        notes.append("MTP speculation asked for, but the checkpoint has no next-n layers")

    return RolePlan(
        model=model or facts.alias or facts.hf_id,
        role=role,
        gpu=gpu,
        gpu_memory_bytes=gpu_bytes,
        gpus_per_worker=gpus_per_worker,
        nodes=nodes,
        world_size=settings.world_size,
        tensor_parallel_size=settings.tensor_parallel_size,
        pipeline_parallel_size=settings.pipeline_parallel_size,
        context_parallel_size=cp,
        moe_tensor_parallel_size=moe_tp,
        moe_expert_parallel_size=moe_ep,
        attention_dp_size=dp,
        weight_bytes_per_gpu=weights,
        reserve_bytes=reserve_bytes,
        free_bytes_after_weights=free,
        kv_cache_budget_bytes=budget,
        kv_cache_dtype=kv_dtype,
        kv_bytes_per_token=per_token,
        kv_cache_tokens=tokens,
        kv_cache_blocks=blocks,
        kv_limited_by=limited_by,
        isl=isl,
        osl=osl,
        tokens_per_sequence=seq_tokens,
        max_concurrent_sequences=concurrent if fits else 0,
        concurrency_limited_by=concurrency_by,
        fits=fits,
        reason=reason,
        notes=tuple(notes),
    )


_COLUMNS = (
    "model",
    "role",
    "GPUs×nodes",
    "GPU",
    "weights/GPU GiB",
    "KV B/token",
    "KV tokens",
    "max seqs @ ISL/OSL",
    "fits",
)
_RIGHT_ALIGNED = {"weights/GPU GiB", "KV B/token", "KV tokens", "max seqs @ ISL/OSL"}


def format_plan_table(rows: Sequence[RolePlan]) -> str:
    """An aligned text table of plans, one line per role (reasons follow on their own lines)."""
    cells = [
        (
            plan.model,
            plan.role,
            f"{plan.gpus_per_worker}×{plan.nodes}",
            f"{plan.gpu} {plan.gpu_memory_gib:g} GiB".strip(),
            f"{plan.weight_gib_per_gpu:.1f}",
            f"{plan.kv_bytes_per_token:,}",
            f"{plan.kv_cache_tokens:,}",
            f"{plan.max_concurrent_sequences:,} @ {plan.isl}/{plan.osl}",
            "yes" if plan.fits else "NO",
        )
        for plan in rows
    ]
    widths = [
        max([len(title), *(len(row[i]) for row in cells)]) for i, title in enumerate(_COLUMNS)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if title in _RIGHT_ALIGNED else value.ljust(width)
            for title, value, width in zip(_COLUMNS, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(_COLUMNS), line(["-" * width for width in widths])]
    out += [line(row) for row in cells]
    for plan in rows:
        if plan.reason:
            out.append(f"{plan.model} {plan.role}: {plan.reason}")
    return "\n".join(out)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _exact(fraction: float) -> Fraction:
    """0.9 as exactly 9/10, so byte figures do not depend on binary float rounding."""
    return Fraction(str(fraction))
