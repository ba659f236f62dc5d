"""The engine-config fields that decide a worker's memory use, read from a parsed engine config
with TensorRT-LLM's LLM-API defaults for what it leaves out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# TensorRT-LLM LLM-API defaults (TorchLlmArgs / KvCacheConfig)
DEFAULT_MAX_BATCH_SIZE = 2048


DEFAULT_MAX_NUM_TOKENS = 8192


DEFAULT_TOKENS_PER_BLOCK = 32


DEFAULT_FREE_GPU_MEMORY_FRACTION = 0.9


@dataclass(frozen=True)
class EngineSettings:
    """The engine-config fields that decide memory use (TensorRT-LLM LLM-API names).

    moe_expert_parallel_size / moe_tensor_parallel_size None mean TRT-LLM's default: when
    both are unset, experts are split by MoE TP = tensor_parallel_size and EP = 1; when one
    is set, the other is tensor_parallel_size divided by it.
    """

    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    context_parallel_size: int = 1
    moe_expert_parallel_size: int | None = None
    moe_tensor_parallel_size: int | None = None
    enable_attention_dp: bool = False
    enable_lm_head_tp_in_adp: bool = False
    kv_cache_dtype: str = "auto"
    free_gpu_memory_fraction: float = DEFAULT_FREE_GPU_MEMORY_FRACTION
    max_tokens: int | None = None
    max_gpu_total_bytes: int | None = None
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_seq_len: int | None = None
    max_num_tokens: int = DEFAULT_MAX_NUM_TOKENS
    tokens_per_block: int = DEFAULT_TOKENS_PER_BLOCK
    # kv_cache_config.max_attention_window (per-layer windows, repeated over the layers):
    # noted, not credited; every layer is still counted at full length (an upper bound).
    max_attention_window: tuple[int, ...] | None = None
    # speculative_config.decoding_type. MTP (with mtp_enabled) is counted; other drafters
    # (Eagle3, draft-target, ...) bring weights and KV this plan does not count.
    speculative_decoding_type: str | None = None
    # MTP speculation loads (and caches KV for) the checkpoint's next-n prediction layers.
    mtp_enabled: bool = False
    # moe_config.load_balancer.num_slots: expert slots per layer (>= experts) with EPLB.
    moe_num_slots: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "context_parallel_size",
            "max_batch_size",
            "max_num_tokens",
            "tokens_per_block",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("moe_expert_parallel_size", "moe_tensor_parallel_size", "moe_num_slots"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ValueError(f"max_tokens must not be negative, got {self.max_tokens}")
        if not 0 <= self.free_gpu_memory_fraction <= 1:
            raise ValueError(
                f"free_gpu_memory_fraction must be within [0, 1], got {self.free_gpu_memory_fraction}"
            )
        ep, moe_tp = self.moe_expert_parallel_size, self.moe_tensor_parallel_size
        tp = self.tensor_parallel_size
        if (ep or 1) * (moe_tp or 1) > tp or tp % ((ep or 1) * (moe_tp or 1)) != 0:
            raise ValueError(
                f"moe_expert_parallel_size ({ep}) x moe_tensor_parallel_size ({moe_tp}) must "
                f"divide tensor_parallel_size ({tp})"
            )
        if ep is not None and moe_tp is not None and ep * moe_tp != tp:
            raise ValueError(
                f"moe_expert_parallel_size ({ep}) x moe_tensor_parallel_size ({moe_tp}) must "
                f"equal tensor_parallel_size ({tp})"
            )

    @property
    def world_size(self) -> int:
        return self.tensor_parallel_size * self.pipeline_parallel_size * self.context_parallel_size

    @property
    def attention_dp_size(self) -> int:
        return self.tensor_parallel_size if self.enable_attention_dp else 1

    @property
    def moe_split(self) -> tuple[int, int]:
        """(MoE TP, MoE EP) as TensorRT-LLM's Mapping resolves them."""
        tp = self.tensor_parallel_size
        ep, moe_tp = self.moe_expert_parallel_size, self.moe_tensor_parallel_size
        if ep is None and moe_tp is None:
            return tp, 1
        if moe_tp is None:
            assert ep is not None
            return tp // ep, ep
        if ep is None:
            return moe_tp, tp // moe_tp
        return moe_tp, ep

    @classmethod
    def from_llm_args(cls, args: Mapping[str, Any]) -> EngineSettings:
        """Settings from a parsed LLM-API YAML dict; other keys are ignored (checked elsewhere)."""
        kv = args.get("kv_cache_config") or {}
        spec = args.get("speculative_config") or {}
        moe = args.get("moe_config") or {}
        balancer = moe.get("load_balancer") if isinstance(moe, Mapping) else None
        slots = balancer.get("num_slots") if isinstance(balancer, Mapping) else None
        fraction = kv.get("free_gpu_memory_fraction")
        window = kv.get("max_attention_window")
        decoding = spec.get("decoding_type") if isinstance(spec, Mapping) else None
        return cls(
            tensor_parallel_size=int(args.get("tensor_parallel_size") or 1),
            pipeline_parallel_size=int(args.get("pipeline_parallel_size") or 1),
            context_parallel_size=int(args.get("context_parallel_size") or 1),
            moe_expert_parallel_size=_opt_int(args.get("moe_expert_parallel_size")),
            moe_tensor_parallel_size=_opt_int(args.get("moe_tensor_parallel_size")),
            enable_attention_dp=bool(args.get("enable_attention_dp", False)),
            enable_lm_head_tp_in_adp=bool(args.get("enable_lm_head_tp_in_adp", False)),
            kv_cache_dtype=str(kv.get("dtype") or "auto"),
            free_gpu_memory_fraction=(
                DEFAULT_FREE_GPU_MEMORY_FRACTION if fraction is None else float(fraction)
            ),
            max_tokens=_opt_int(kv.get("max_tokens")),
            max_gpu_total_bytes=_opt_int(kv.get("max_gpu_total_bytes")) or None,
            max_batch_size=int(args.get("max_batch_size") or DEFAULT_MAX_BATCH_SIZE),
            max_seq_len=_opt_int(args.get("max_seq_len")),
            max_num_tokens=int(args.get("max_num_tokens") or DEFAULT_MAX_NUM_TOKENS),
            tokens_per_block=int(kv.get("tokens_per_block") or DEFAULT_TOKENS_PER_BLOCK),
            max_attention_window=tuple(int(w) for w in window) if window else None,
            speculative_decoding_type=str(decoding) if decoding else None,
            mtp_enabled=decoding == "MTP",
            moe_num_slots=_opt_int(slots),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
