"""Our own pydantic schema of TensorRT-LLM's LLM-API YAML (PyTorch backend).

Engine configs are checked before anything is deployed, on machines without
TensorRT-LLM. This schema mirrors the field inventory in
``../shared/reference/trtllm/llm_args_fields.json`` (names, types, defaults,
bounds, enums, discriminated unions) and the parse-level validators that decide
whether TensorRT-LLM accepts a YAML file. Every model forbids unknown keys at
every depth, as TensorRT-LLM does, and uses pydantic's default (lax) mode so
the same scalars coerce the same way, with two refusals TensorRT-LLM does not make: a boolean
where a number belongs (YAML's `yes` read as 1), and runtime sizes that cannot start a worker
(see RuntimeSize). Which TensorRT-LLM release takes which key is data kept apart from this
schema (``infra.trtllm.field_versions``); the schema takes what any of them takes.

Left out on purpose (they need the GPU, the model checkpoint, the worker's
filesystem or Python imports, or they only adjust values without rejecting):

- GPU: ``gpus_per_node`` auto-detection, ``dtype`` on pre-SM80 GPUs, CuTe DSL
  bf16 on SM<100, DeepSeek ``indexer_k_dtype='fp4'`` on SM<100, the FlashInfer
  requirement of rejection sampling.
- Checkpoint: MTP ``max_draft_len`` from the checkpoint, Eagle3 default capture
  layers, DFlash/PARD values read from the draft model config, MTP mode choice.
- Filesystem / imports: ``kv_cache_config.disk_cache_path`` must exist,
  ``moe_config.load_balancer`` path must exist, ``custom_tokenizer`` import,
  tokenizer loading, KV connector preset registry (its names are not in the
  inventory, so any ``connector`` name is accepted), ``MODEL_EXPRESS_URL``.
- Value adjustments only: generated CUDA-graph batch sizes, draft-length
  schedule merged into CUDA-graph batch sizes, early-first-token auto-disable,
  ``checkpoint_format`` default, KV dtype -> quant config sync, MoE parallel
  sizes -> -1, per-conversation block reuse zeroing snapshots, warnings.
- ``max_attention_window`` values: only positive windows are accepted; the
  recurrent-state sentinel of the C++ enum is not in the inventory.
"""

from __future__ import annotations

import ast
import functools
import math
import re
import types
from enum import Enum, IntEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    StrictInt,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType as ErrorTypeLiteral

from infra.stack.spec import boolean_for_number

# --- enums (values are TensorRT-LLM's) ---------------------------------------

CapacitySchedulerPolicy = Literal["MAX_UTILIZATION", "GUARANTEED_NO_EVICT", "STATIC_BATCH"]
ContextChunkingPolicy = Literal["FIRST_COME_FIRST_SERVED", "EQUAL_PROGRESS", "FORCE_CHUNK"]
WaitingQueuePolicy = Literal["fcfs", "priority"]
AdvancedSamplingMode = Literal["full", "no_topk", "no_topp", "no_topk_no_topp"]
MultimodalEncoderSchedulingPolicy = Literal["DISABLED", "DEFAULT", "EAGER"]
PrefillCudaGraphBackend = Literal["disabled", "piecewise", "breakable"]
RestoreMode = Literal["NONE", "MEMSET", "CPU", "PINNED"]
# Keys of SleepConfig.restore_modes (TensorRT-LLM's ExecutorMemoryType values).
ExecutorMemoryType = Literal[
    "sampler",
    "drafter",
    "guided_decoder",
    "spec_resource_manager",
    "_no_capture_init_kv_cache",
    "_no_capture_init_extra_resources",
    "model_extra",
    "executor_extra",
    "kv_cache",
    "model",
    "draft_model",
    "model_weights",
    "draft_model_weights",
]


class LoadFormat(Enum):
    """How TorchLlmArgs loads weights; YAML gives the member name in any case."""

    AUTO = 0
    DUMMY = 1
    VISION_ONLY = 2
    GMS = 3


class CpType(IntEnum):
    """Context-parallel flavour; YAML gives the member name in any case."""

    ULYSSES = 0
    STAR = 1
    RING = 2
    HELIX = 3


class GuidedDecodingBackend(IntEnum):
    XGRAMMAR = 0
    LLGUIDANCE = 1


# kv_cache_config.dtype: special names plus the torch dtype names TensorRT-LLM maps.
KV_CACHE_DTYPES = frozenset(
    {"auto", "fp8", "fp8_ds_mla", "nvfp4"}
    | {"bfloat16", "float16", "float32", "int64", "int32", "int8", "bool"}
)

# Deprecated input keys that TensorRT-LLM renames before validation (old -> new).
DEPRECATED_INPUT_KEYS: dict[str, str] = {
    "num_nextn_predict_layers": "max_draft_len",
    "hf_revision": "revision",
}

# Unknown keys that used to exist: (model name, key) -> hint shown to the user.
RENAMED_KEYS: dict[tuple[str, str], str] = {
    ("BlockReuseConfig", "block_reuse_policy"): "renamed to 'policy'",
    ("KvCacheConfig", "block_reuse_policy"): "moved to 'block_reuse_config.policy'",
    ("DecodingConfig", "decoding_mode"): (
        "a DecodingMode object has no YAML form; choose the method with speculative_config"
    ),
}


def field_error(field: str, message: str) -> PydanticCustomError:
    """A cross-field error that names the offending key relative to the model."""
    return PydanticCustomError("engine_config", "{message}", {"field": field, "message": message})


class EngineSpec(BaseModel):
    """Base of every engine-config model: unknown keys are errors, as in TensorRT-LLM."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _no_boolean_numbers(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Lax pydantic (TensorRT-LLM's too) reads true as 1, and YAML reads yes/on as true: in an
        engine config `tensor_parallel_size: yes` is always a slip, so a number must be one.

        A model validator, not a field one: pydantic allows no field validator on the tag of a
        discriminated union. The other keys are still validated, so their problems are reported
        in the same run.
        """
        if not isinstance(data, dict):
            return handler(data)
        wrong: dict[str, str] = {}
        for key, value in data.items():
            field = _field_for_key(cls, key)
            if field is None:
                continue
            if boolean_for_number(field.annotation, value):
                # A scalar's value is appended by the loader; a list's is named here.
                got = "" if isinstance(value, bool) else f" (got {value!r})"
                wrong[key] = f"expected a number, not a boolean{got}"
            elif _beyond_int64(value):
                wrong[key] = "is beyond any size TensorRT-LLM takes (at most 2**63 - 1)"
        if not wrong:
            return handler(data)
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("engine_config", "{message}", {"message": message}),
                loc=(key,),
                input=data[key],
            )
            for key, message in wrong.items()
        ]
        try:
            handler({k: v for k, v in data.items() if k not in wrong})
        except ValidationError as exc:
            errors += [
                _rebuilt(e) for e in exc.errors() if not e["loc"] or e["loc"][0] not in wrong
            ]
        raise ValidationError.from_exception_data(cls.__name__, errors)


def _field_for_key(model: type[BaseModel], key: Any) -> FieldInfo | None:
    """The field a YAML key sets (by name or by alias)."""
    return _fields_by_key(model).get(key) if isinstance(key, str) else None


@functools.cache
def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    found = {name: model.model_fields[name] for name in model.model_fields}
    for name, keys in yaml_keys(model).items():
        found.update(dict.fromkeys(keys, model.model_fields[name]))
    return found


def _rebuilt(error: Any) -> InitErrorDetails:
    """A pydantic error as reported, to raise again beside ours (custom types by message)."""
    ctx = error.get("ctx") or {}
    kind: Any = error["type"]
    if kind in _CUSTOM_ERROR_TYPES or kind not in _BUILTIN_ERROR_TYPES:
        kind = PydanticCustomError(kind, "{message}", {**ctx, "message": error["msg"]})
        return InitErrorDetails(type=kind, loc=tuple(error["loc"]), input=error.get("input"))
    return InitErrorDetails(type=kind, loc=tuple(error["loc"]), input=error.get("input"), ctx=ctx)


_BUILTIN_ERROR_TYPES = frozenset(get_args(ErrorTypeLiteral))
_CUSTOM_ERROR_TYPES = frozenset({"engine_config", "load_balancer_type"})


_INT64_MAX = 2**63 - 1


def _beyond_int64(value: Any) -> bool:
    """An integer no TensorRT-LLM field can hold (10**30 is a typo, not a size)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return not -_INT64_MAX - 1 <= value <= _INT64_MAX
    if isinstance(value, list | tuple):
        return any(_beyond_int64(v) for v in value)
    if isinstance(value, dict):
        return any(_beyond_int64(v) for v in value.values())
    return False


PositiveWindow = Annotated[int, Field(gt=0)]


def _stated_moe_size(value: int) -> int:
    if value <= 0:
        raise ValueError(
            "must be > 0; leave it out and TensorRT-LLM derives it from tensor_parallel_size"
        )
    return value


MoeParallelSize = Annotated[int, AfterValidator(_stated_moe_size)]

# Sizes TensorRT-LLM hands to its C++ runtime as SizeType32 (int32): ExecutorConfig refuses a
# max batch size, max number of tokens or max beam width that is not > 0 (TLLM_CHECK in
# cpp/tensorrt_llm/executor/executorConfig.cpp), and an int32 holds at most 2**31 - 1.
INT32_MAX = 2**31 - 1
RuntimeSize = Annotated[int, Field(gt=0, le=INT32_MAX)]

# --- small nested configs -----------------------------------------------------


class DynamicBatchConfig(EngineSpec):
    enable_batch_size_tuning: bool = True
    enable_max_num_tokens_tuning: bool = False
    dynamic_batch_moving_average_window: int = 128


class SchedulerConfig(EngineSpec):
    capacity_scheduler_policy: CapacitySchedulerPolicy = "GUARANTEED_NO_EVICT"
    context_chunking_policy: ContextChunkingPolicy | None = None
    dynamic_batch_config: DynamicBatchConfig | None = None
    waiting_queue_policy: WaitingQueuePolicy = "fcfs"
    use_python_scheduler: bool = False
    enable_prefix_aware_scheduling: bool = True


class AttentionDpConfig(EngineSpec):
    enable_balance: bool = False
    timeout_iters: int = 50
    batching_wait_iters: int = 10
    enable_kv_cache_aware_routing: bool = False
    kv_cache_routing_load_balance_weight: float = 1.0
    kv_cache_routing_match_rate_threshold: float = 0.1
    kv_cache_routing_fair_share_multiplier: float = 2.0
    kv_cache_routing_cold_start_warmup: bool = False
    kv_cache_routing_account_for_in_transfer: bool = False
    kv_cache_routing_conversation_affinity: bool = False
    kv_cache_routing_max_sessions: int = 65536
    kv_cache_routing_new_conv_placement: Literal["round_robin", "least_queued"] = "round_robin"

    @model_validator(mode="after")
    def _balance_needs_non_negative_waits(self) -> AttentionDpConfig:
        if self.enable_balance:
            for name in ("timeout_iters", "batching_wait_iters"):
                if getattr(self, name) < 0:
                    raise field_error(name, "must be >= 0 when enable_balance is true")
        return self


class TorchCompileConfig(EngineSpec):
    enable_fullgraph: bool = True
    enable_inductor: bool = False
    enable_piecewise_cuda_graph: bool = False  # deprecated: prefill_cuda_graph_backend
    capture_num_tokens: list[PositiveInt] | None = None  # deprecated: prefill_capture_num_tokens
    enable_userbuffers: bool = True
    max_num_streams: PositiveInt = 3

    @field_validator("capture_num_tokens")
    @classmethod
    def _dedupe_descending(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else sorted(set(v), reverse=True)


class MoeLoadBalancerConfig(EngineSpec):
    num_slots: int | None = None
    initial_global_assignments: dict[int, list[int]] | None = None
    layer_updates_per_iter: int = 0


def _load_balancer_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "path"
    if isinstance(value, dict | MoeLoadBalancerConfig):
        return "config"
    return None


# A mapping of load-balancer settings, or a path to a YAML file holding them.
LoadBalancer = Annotated[
    Annotated[MoeLoadBalancerConfig, Tag("config")] | Annotated[str, Tag("path")],
    Discriminator(
        _load_balancer_kind,
        custom_error_type="load_balancer_type",
        custom_error_message="expected a mapping of load-balancer settings or a path to one",
    ),
]


# `sampler_type` values of the TensorRT-LLM releases that still have the field.
SAMPLER_TYPES = ("auto", "TorchSampler", "TRTLLMSampler")

# Values our schema accepts beyond the inventory (TensorRT-LLM main), with the reason: TensorRT-LLM
# main dropped the WIDEEP MoE backend, but the releases Dynamo 1.1-1.2 images run still take it
# and Dynamo's current wide-EP recipes use it; refusing it would refuse graphs that work.
INVENTORY_EXTENSIONS: dict[str, set[str]] = {"MoeConfig.backend": {"WIDEEP"}}


class MoeConfig(EngineSpec):
    backend: Literal[
        "WIDEEP",
        "AUTO",
        "CUTLASS",
        "CUTEDSL",
        "TRTLLM",
        "DEEPGEMM",
        "DENSEGEMM",
        "VANILLA",
        "TRITON",
        "MARLIN",
        "MEGAMOE_DEEPGEMM",
        "MEGAMOE_CUTEDSL",
    ] = "AUTO"
    max_num_tokens: int | None = None
    load_balancer: LoadBalancer | None = None
    disable_finalize_fusion: bool = False
    use_low_precision_moe_combine: bool = False


class CacheTransceiverConfig(EngineSpec):
    backend: Literal["DEFAULT", "UCX", "NIXL", "MOONCAKE", "MPI"] | None = None
    transceiver_runtime: Literal["CPP", "PYTHON", "auto"] | None = "auto"
    max_tokens_in_buffer: int | None = None
    kv_transfer_timeout_ms: PositiveInt | None = 60000
    kv_transfer_sender_future_timeout_ms: PositiveInt | None = 1000
    kv_transfer_poll_interval_ms: PositiveInt | None = 5000
    kv_cache_bounce_size_mb: int = Field(default=0, ge=0)
    enable_pipelined_transfer: bool = False


class KVEventsConfig(EngineSpec):
    enable_kv_cache_events: bool = False
    publisher: Literal["null", "zmq"] | None = None
    endpoint: str = Field(default="tcp://*:5557", min_length=1)
    replay_endpoint: str | None = Field(default=None, min_length=1)
    buffer_steps: int = Field(default=10000, gt=0)
    hwm: int = Field(default=100000, gt=0)
    max_queue_size: int = Field(default=100000, gt=0)
    topic: str = ""

    @model_validator(mode="after")
    def _default_publisher(self) -> KVEventsConfig:
        if self.publisher is None:
            self.publisher = "zmq" if self.enable_kv_cache_events else "null"
        return self


class MambaStateConfig(EngineSpec):
    periodic_snapshot_interval: NonNegativeInt = 0
    additional_snapshot_offsets_from_start: list[Annotated[StrictInt, Field(gt=0)]] = Field(
        default_factory=list
    )
    additional_snapshot_offsets_from_end: list[Annotated[StrictInt, Field(ge=0)]] = Field(
        default_factory=list
    )
    enable_branch_snapshot: bool = False


class BlockReuseConfig(EngineSpec):
    policy: Literal["all_reusable", "per_request", "per_conversation"] = "all_reusable"
    max_num_turns: PositiveInt = 1


class KvCacheConfig(EngineSpec):
    enable_block_reuse: bool = True
    max_tokens: int | None = None
    max_attention_window: list[PositiveWindow] | None = Field(default=None, min_length=1)
    sink_token_length: int | None = None  # deprecated; ignored on PyTorch
    free_gpu_memory_fraction: float | None = Field(default=0.9, ge=0, le=1)
    host_cache_size: int | None = None
    disk_cache_size: NonNegativeInt | None = None
    disk_cache_path: str | None = None
    cross_kv_cache_fraction: float | None = Field(default=None, ge=0, le=1)
    secondary_offload_min_priority: int | None = None
    event_buffer_max_size: int = 0
    attention_dp_events_gather_period_ms: int = 5
    kv_events_config: KVEventsConfig | None = None
    enable_partial_reuse: bool = True
    copy_on_partial_reuse: bool = True
    use_uvm: bool = False
    max_gpu_total_bytes: NonNegativeInt = 0
    iteration_stats_interval: PositiveInt = 1
    dtype: str = "auto"
    mamba_ssm_cache_dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    mamba_ssm_stochastic_rounding: bool = False
    mamba_ssm_philox_rounds: int = Field(default=10, ge=1)
    tokens_per_block: int = 32
    # Deprecated spelling of mamba_state_config.periodic_snapshot_interval.
    mamba_state_cache_interval: NonNegativeInt | None = None
    mamba_state_config: MambaStateConfig = Field(default_factory=MambaStateConfig)
    use_kv_cache_manager_v2: bool | Literal["auto"] = "auto"
    enable_swa_scratch_reuse: bool = False
    kv_cache_event_hash_algo: Literal["auto", "v1_block_key", "v2_sha256", "v2_sha256_64"] = "auto"
    max_util_for_resume: float = Field(default=0.95, gt=0, le=1)
    enable_kv_pool_rebalance: bool = False
    kv_pool_rebalance_min_sampled_kv_caches: int = Field(default=2000, ge=0)
    kv_pool_rebalance_cooldown_secs: float = Field(default=120.0, ge=0, allow_inf_nan=False)
    kv_pool_rebalance_target_ratio_update_interval: int = Field(default=100, gt=0)
    kv_pool_rebalance_ratio_threshold: float = Field(default=1.25, gt=1.0, allow_inf_nan=False)
    kv_pool_rebalance_moving_average_decay: float = Field(default=0.9999, gt=0, lt=1)
    kv_pool_rebalance_check_interval: int = Field(default=10, gt=0)
    disk_prefetch_num_reqs: int = Field(default=0, ge=0)
    fp8_context_mla_kv_len_cap: int | None = None
    pool_ratio: list[float] | None = Field(default=None, min_length=1)
    avg_seq_len: PositiveInt | None = None
    block_reuse_config: BlockReuseConfig = Field(default_factory=BlockReuseConfig)

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, v: str) -> str:
        v = v.lower()
        if v not in KV_CACHE_DTYPES:
            raise ValueError(f"must be one of {', '.join(sorted(KV_CACHE_DTYPES))}")
        return v

    @field_validator("pool_ratio")
    @classmethod
    def _ratios_sum_to_one(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if any(r <= 0 for r in v):
            raise ValueError("values must be positive")
        if not math.isclose(sum(v), 1.0, rel_tol=0.0, abs_tol=1e-6):
            raise ValueError(f"values must sum to 1.0 (they sum to {sum(v):g})")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> KvCacheConfig:
        if self.dtype == "fp8_ds_mla" and self.enable_kv_pool_rebalance:
            raise field_error("enable_kv_pool_rebalance", "cannot be used with dtype 'fp8_ds_mla'")
        if self.disk_cache_size and not self.disk_cache_path:
            raise field_error("disk_cache_path", "is required when disk_cache_size > 0")
        if self.mamba_state_cache_interval is not None:
            if "periodic_snapshot_interval" in self.mamba_state_config.model_fields_set:
                raise field_error(
                    "mamba_state_cache_interval",
                    "is the deprecated spelling of "
                    "mamba_state_config.periodic_snapshot_interval; set only one",
                )
            self.mamba_state_config.periodic_snapshot_interval = self.mamba_state_cache_interval
        mamba = self.mamba_state_config
        if self.use_kv_cache_manager_v2 is False and (
            mamba.additional_snapshot_offsets_from_start
            or mamba.additional_snapshot_offsets_from_end
            or mamba.enable_branch_snapshot
        ):
            raise field_error(
                "mamba_state_config",
                "additional snapshots and branch snapshots need use_kv_cache_manager_v2",
            )
        return self


class CpConfig(EngineSpec):
    cp_type: CpType = CpType.ULYSSES
    tokens_per_block: int | None = None
    use_nccl_for_alltoall: bool | None = None
    fifo_version: int | None = None

    @field_validator("cp_type", mode="before")
    @classmethod
    def _name_any_case(cls, v: Any) -> Any:
        if isinstance(v, str) and v.upper() in CpType.__members__:
            return CpType[v.upper()]
        return v


class PeftCacheConfig(EngineSpec):
    num_host_module_layer: int = 0
    num_device_module_layer: int = 0
    optimal_adapter_size: int = 8
    max_adapter_size: int = 64
    num_put_workers: int = 1
    num_ensure_workers: int = 1
    num_copy_streams: int = 1
    max_pages_per_block_host: int = 24
    max_pages_per_block_device: int = 8
    device_cache_percent: float = 0.02
    host_cache_size: int = 1024**3
    lora_prefetch_dir: str | None = None


def _check_buckets(v: list[float]) -> list[float]:
    if not v:
        raise ValueError("must not be empty")
    if any(a >= b for a, b in zip(v, v[1:], strict=False)):
        raise ValueError("must be strictly increasing")
    return v


# Histogram bucket bounds in seconds.
Buckets = Annotated[list[float], AfterValidator(_check_buckets)]


class PrometheusMetricsConfig(EngineSpec):
    e2e_request_latency_buckets: Buckets | None = None
    time_to_first_token_buckets: Buckets | None = None
    time_per_output_token_buckets: Buckets | None = None
    request_queue_time_buckets: Buckets | None = None
    request_prefill_time_buckets: Buckets | None = None
    request_decode_time_buckets: Buckets | None = None
    request_inference_time_buckets: Buckets | None = None


class MultimodalEncoderCudaGraphConfig(EngineSpec):
    # (total_tokens, num_contexts) pairs.
    buckets: list[tuple[PositiveInt, PositiveInt]] = Field(min_length=1)
    enable_padding: bool = True
    warmup_steps: PositiveInt = 2
    enable_replay_stats: bool = False

    @field_validator("buckets")
    @classmethod
    def _tokens_cover_contexts(cls, v: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for tokens, contexts in v:
            if tokens < contexts:
                raise ValueError(f"bucket ({tokens}, {contexts}): total_tokens < num_contexts")
        return sorted(set(v))


_BYTE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_BYTE_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_byte_size(value: Any) -> Any:
    """'512MB', '1GiB', '1024' -> bytes (binary units); other values pass through."""
    if not isinstance(value, str):
        return value
    match = _BYTE_SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a byte size such as 512MB or 1GiB")
    number, prefix, _ = match.groups()
    return int(float(number) * _BYTE_UNITS[prefix.lower()])


ByteSize = Annotated[NonNegativeInt, BeforeValidator(parse_byte_size)]


class MultimodalConfig(EngineSpec):
    encoder_cuda_graph: dict[str, MultimodalEncoderCudaGraphConfig] | None = None
    encoder_side_stream_max_ahead: NonNegativeInt = 0
    encoder_cache_max_bytes: ByteSize = 128 * 1024**2
    encoder_scheduling_policy: MultimodalEncoderSchedulingPolicy = "DEFAULT"
    video_pruning_rate: float | None = Field(default=None, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_encoder_overlap_mode(self) -> MultimodalConfig:
        if self.encoder_cuda_graph is not None and self.encoder_side_stream_max_ahead > 0:
            raise field_error(
                "encoder_side_stream_max_ahead", "cannot be > 0 together with encoder_cuda_graph"
            )
        return self


Nvfp4GemmBackend = Literal["cutlass", "cublaslt", "cutedsl", "cuda_core", "marlin"]


def _default_gemm_backends() -> list[Nvfp4GemmBackend]:
    return ["cutlass", "cublaslt", "cuda_core"]


class Nvfp4GemmConfig(EngineSpec):
    allowed_backends: list[Nvfp4GemmBackend] = Field(
        default_factory=_default_gemm_backends, min_length=1
    )


class DwdpConfig(EngineSpec):
    dwdp_size: int = 1
    num_groups: int = 1
    num_experts_per_worker: int = 0
    num_prefetch_experts: int = 0
    contention_opt: bool = False


class GmsConfig(EngineSpec):
    socket_path: str | None = None
    mode: Literal["auto", "rw", "ro"] = "auto"
    tag: str = "weights"

    @field_validator("tag")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must be a non-empty string")
        return v


class ModelExpressConfig(EngineSpec):
    server_url: str | None = None
    server_query_timeout_s: NonNegativeInt | None = None  # deprecated, ignored
    preshard_strategy: str = "per_module"

    @field_validator("preshard_strategy")
    @classmethod
    def _per_module_only(cls, v: str) -> str:
        if v != "per_module":
            raise ValueError("only 'per_module' is supported")
        return v


class KvCacheConnectorConfig(EngineSpec):
    connector: str | None = None
    connector_module: str | None = None
    connector_scheduler_class: str | None = None
    connector_worker_class: str | None = None
    server_url: str | None = None

    @model_validator(mode="after")
    def _explicit_classes_without_preset(self) -> KvCacheConnectorConfig:
        if self.connector is None:
            for name in ("connector_module", "connector_scheduler_class", "connector_worker_class"):
                if getattr(self, name) is None:
                    raise field_error(name, "is required unless a 'connector' preset is named")
        return self


class LayerwiseBenchmarksConfig(EngineSpec):
    calibration_mode: Literal["NONE", "MARK", "COLLECT"] = "NONE"
    calibration_file_path: str | None = None
    calibration_layer_indices: list[int] | None = None

    @model_validator(mode="after")
    def _collect_needs_file(self) -> LayerwiseBenchmarksConfig:
        if self.calibration_mode == "COLLECT" and not self.calibration_file_path:
            raise field_error("calibration_file_path", "is required in COLLECT mode")
        return self


class RayPlacementConfig(EngineSpec):
    defer_workers_init: bool = False
    placement_groups: None = None  # Ray PlacementGroup objects: Python API only
    placement_bundle_indices: list[list[int]] | None = None
    per_worker_gpu_share: float | None = None

    @model_validator(mode="after")
    def _groups_and_share(self) -> RayPlacementConfig:
        if (self.placement_groups is None) != (self.placement_bundle_indices is None):
            raise field_error(
                "placement_bundle_indices", "must be given together with placement_groups"
            )
        if self.per_worker_gpu_share is not None and not 0 < self.per_worker_gpu_share <= 1:
            raise field_error("per_worker_gpu_share", "must be in (0, 1]")
        return self


def _default_restore_modes() -> dict[ExecutorMemoryType, RestoreMode]:
    # KV cache contents are dropped on sleep; other memory is restored from host.
    return {"kv_cache": "NONE"}


class SleepConfig(EngineSpec):
    restore_modes: dict[ExecutorMemoryType, RestoreMode] = Field(
        default_factory=_default_restore_modes
    )


class AgentTreeConfig(EngineSpec):
    agent_percentage: float = 0.0
    agent_types: list[str] | None = None
    agent_inflight_seq_num: int = 2**31 - 1


class ReorderRequestPolicyConfig(EngineSpec):
    policy_name: Literal["AgentTree"] | None = None
    policy_args: AgentTreeConfig = Field(default_factory=AgentTreeConfig)


# TensorRT-engine backend only; kept so the drift test covers the inventory.
class CalibConfig(EngineSpec):
    device: Literal["cuda", "cpu"] = "cuda"
    calib_dataset: str = "cnn_dailymail"
    calib_batches: int = 512
    calib_batch_size: int = 1
    calib_max_seq_length: int = 512
    random_seed: int = 1234
    tokenizer_max_seq_length: int = 2048


class ExtendedRuntimePerfKnobConfig(EngineSpec):
    multi_block_mode: bool = True
    enable_context_fmha_fp32_acc: bool = False
    cuda_graph_mode: bool = False
    cuda_graph_cache_size: int = 0


class GuidedDecodingConfig(EngineSpec):
    backend: GuidedDecodingBackend = GuidedDecodingBackend.XGRAMMAR
    encoded_vocab: list[str] | None = None
    tokenizer_str: str | None = None
    stop_token_ids: list[int] | None = None


# --- CUDA graphs (discriminated by `mode`, inferred when absent) --------------


def _consistent_max(values: list[int] | None, declared: int, name: str, of: str) -> int:
    """TensorRT-LLM derives `name` from max(`of`); an explicit non-zero one must agree."""
    if not values:
        return declared
    if declared not in (0, max(values)):
        raise field_error(name, f"is {declared} but max({of}) is {max(values)}")
    return max(values)


class BaseCudaGraphConfig(EngineSpec):
    # A graph is captured for each size: a batch of 0 or fewer requests cannot be captured, and
    # TensorRT-LLM compares each with the executor's int32 max batch size.
    batch_sizes: list[RuntimeSize] | None = None
    max_batch_size: Annotated[int, Field(ge=0, le=INT32_MAX)] = 0  # 0: 128, or max(batch_sizes)
    enable_padding: bool = False

    @model_validator(mode="after")
    def _batch_sizes_and_max(self) -> BaseCudaGraphConfig:
        if self.batch_sizes:
            self.batch_sizes = sorted(self.batch_sizes)
        elif self.max_batch_size == 0:
            self.max_batch_size = 128
        self.max_batch_size = _consistent_max(
            self.batch_sizes, self.max_batch_size, "max_batch_size", "batch_sizes"
        )
        return self


class DecodeCudaGraphConfig(BaseCudaGraphConfig):
    mode: Literal["decode"] = "decode"


CudaGraphConfig = DecodeCudaGraphConfig


class EncodeCudaGraphConfig(BaseCudaGraphConfig):
    mode: Literal["encode"] = "encode"
    num_tokens: list[PositiveInt] | None = Field(default=None, min_length=1)
    max_num_token: NonNegativeInt = 0
    seq_lens: list[PositiveInt] | None = Field(default=None, min_length=1)
    max_seq_len: NonNegativeInt = 0

    @model_validator(mode="after")
    def _encoder_axes(self) -> EncodeCudaGraphConfig:
        if self.num_tokens:
            self.num_tokens = sorted(self.num_tokens)
        self.max_num_token = _consistent_max(
            self.num_tokens, self.max_num_token, "max_num_token", "num_tokens"
        )
        if self.seq_lens:
            self.seq_lens = sorted(self.seq_lens)
        self.max_seq_len = _consistent_max(
            self.seq_lens, self.max_seq_len, "max_seq_len", "seq_lens"
        )
        return self


_ENCODER_GRAPH_KEYS = ("num_tokens", "max_num_token", "seq_lens", "max_seq_len")

CudaGraphConfigType = Annotated[
    DecodeCudaGraphConfig | EncodeCudaGraphConfig, Field(discriminator="mode")
]

# --- speculative decoding (discriminated by `decoding_type`) -------------------


class SAEnhancerConfig(EngineSpec):
    threshold: PositiveInt = 4
    enable_global_pool: bool = False


class DecodingBaseConfig(EngineSpec):
    max_draft_len: NonNegativeInt | None = None
    max_total_draft_tokens: int | None = None
    speculative_model: str | None = Field(
        default=None, validation_alias=AliasChoices("speculative_model", "speculative_model_dir")
    )
    max_concurrency: PositiveInt | None = None
    draft_len_schedule: dict[int, int] | None = None
    load_format: str | None = None
    acceptance_rate_window_size: NonNegativeInt | None = None
    acceptance_rate_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    use_rejection_sampling: bool = False
    allow_advanced_sampling: bool = False  # deprecated no-op
    advanced_sampling_mode: AdvancedSamplingMode = "full"
    enable_penalty: bool = False

    @field_validator("draft_len_schedule")
    @classmethod
    def _schedule(cls, v: dict[int, int] | None, info: ValidationInfo) -> dict[int, int] | None:
        if v is None:
            return v
        for batch_size, draft_len in v.items():
            if batch_size < 1:
                raise ValueError(f"batch-size key {batch_size} must be >= 1")
            if draft_len < 0:
                raise ValueError(f"draft length {draft_len} must be >= 0")
        max_draft_len = info.data.get("max_draft_len")
        if max_draft_len is not None and v:
            smallest = min(v)
            if v[smallest] != max_draft_len:
                raise ValueError(
                    f"entry for the smallest key {smallest} must equal max_draft_len "
                    f"({max_draft_len}), got {v[smallest]}"
                )
            if any(d > max_draft_len for d in v.values()):
                raise ValueError(f"draft lengths must be <= max_draft_len ({max_draft_len})")
        return dict(sorted(v.items()))

    @model_validator(mode="after")
    def _concurrency_or_schedule(self) -> DecodingBaseConfig:
        if self.max_concurrency is not None and self.draft_len_schedule is not None:
            raise field_error("max_concurrency", "cannot be combined with draft_len_schedule")
        return self

    def _require_draft_len(self) -> int:
        if self.max_draft_len is None or self.max_draft_len <= 0:
            raise field_error("max_draft_len", "must be > 0")
        return self.max_draft_len

    def _linear_tree(self) -> None:
        self.max_total_draft_tokens = self.max_draft_len


def _check_dynamic_tree(config: _EagleFields | MTPDecodingConfig) -> None:
    if config.max_draft_len is None or config.max_draft_len <= 0:
        raise field_error("max_draft_len", "must be > 0 with use_dynamic_tree")
    top_k = config.dynamic_tree_max_topK
    if top_k is None or top_k <= 0:
        raise field_error("dynamic_tree_max_topK", "must be > 0 with use_dynamic_tree")
    upper = top_k * config.max_draft_len
    if config.max_total_draft_tokens is None:
        config.max_total_draft_tokens = upper
    elif not config.max_draft_len <= config.max_total_draft_tokens <= upper:
        raise field_error(
            "max_total_draft_tokens",
            f"must be in [max_draft_len, dynamic_tree_max_topK * max_draft_len] "
            f"= [{config.max_draft_len}, {upper}]",
        )


class _EagleFields(DecodingBaseConfig):
    """Fields and checks shared by `Eagle` and `Eagle3` (one type in TensorRT-LLM)."""

    eagle_choices: list[list[int]] | None = None  # deprecated static tree
    greedy_sampling: bool | None = True
    posterior_threshold: float | None = None
    use_dynamic_tree: bool | None = False
    dynamic_tree_max_topK: int | None = None  # noqa: N815 - TensorRT-LLM's key
    num_eagle_layers: int | None = None  # overwritten with max_draft_len
    max_non_leaves_per_layer: int | None = None
    eagle3_one_model: bool | None = True  # False is ignored
    eagle3_layers_to_capture: set[int] | None = None
    eagle3_model_arch: Literal["llama3", "mistral_large3"] = "llama3"

    @field_validator("eagle_choices", mode="before")
    @classmethod
    def _choices_from_string(cls, v: Any) -> Any:
        if isinstance(v, str):
            try:
                return ast.literal_eval(v.replace(" ", ""))
            except (ValueError, SyntaxError) as exc:
                raise ValueError("must be a list of lists such as [[0], [1], [0, 0]]") from exc
        return v

    @model_validator(mode="after")
    def _eagle_checks(self) -> _EagleFields:
        self._require_draft_len()
        if self.speculative_model is None:
            raise field_error("speculative_model", "(the draft model) is required")
        self.eagle3_one_model = True
        self.num_eagle_layers = self.max_draft_len
        if self.eagle_choices is not None:
            if self.use_dynamic_tree:
                raise field_error("eagle_choices", "cannot be combined with use_dynamic_tree")
            choices = sorted({tuple(c) for c in self.eagle_choices}, key=lambda c: (len(c), c))
            known = set(choices)
            for choice in choices:
                if len(choice) > 1 and choice[:-1] not in known:
                    raise field_error(
                        "eagle_choices",
                        f"path {list(choice)} has no parent path {list(choice[:-1])}",
                    )
            self.eagle_choices = [list(c) for c in choices]
            self.max_draft_len = self.num_eagle_layers = max(len(c) for c in choices)
            self.max_total_draft_tokens = len(choices)
        if self.use_dynamic_tree or self.dynamic_tree_max_topK is not None:
            self.use_dynamic_tree = True
            _check_dynamic_tree(self)
        if self.max_total_draft_tokens is None:
            self.max_total_draft_tokens = self.max_draft_len
        return self


class EagleDecodingConfig(_EagleFields):
    """`decoding_type: Eagle`; TorchLlmArgs turns it into Eagle3 (PyTorch has only Eagle3)."""

    decoding_type: Literal["Eagle"] = "Eagle"


class Eagle3DecodingConfig(_EagleFields):
    decoding_type: Literal["Eagle3"] = "Eagle3"
    sa_config: SAEnhancerConfig | None = None


class MTPDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["MTP"] = "MTP"
    use_relaxed_acceptance_for_thinking: bool = False
    relaxed_topk: PositiveInt = 1
    relaxed_delta: NonNegativeFloat = 0.0
    use_mtp_vanilla: bool = False
    mtp_eagle_one_model: bool = True  # False is ignored
    use_dynamic_tree: bool = False
    dynamic_tree_max_topK: int | None = None  # noqa: N815 - TensorRT-LLM's key
    sa_config: SAEnhancerConfig | None = None
    # Filled from the checkpoint; as an input key it is the old name of max_draft_len.
    num_nextn_predict_layers: int | None = None
    begin_thinking_phase_token: NonNegativeInt = 128798
    end_thinking_phase_token: NonNegativeInt = 128799

    @model_validator(mode="before")
    @classmethod
    def _old_draft_len_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "num_nextn_predict_layers" in data:
            data = dict(data)
            old = data.pop("num_nextn_predict_layers")
            data.setdefault("max_draft_len", old)
        return data

    @model_validator(mode="after")
    def _mtp_checks(self) -> MTPDecodingConfig:
        if self.max_draft_len is not None and self.max_draft_len <= 0:
            raise field_error("max_draft_len", "must be > 0")
        self.mtp_eagle_one_model = True
        if self.use_dynamic_tree:
            _check_dynamic_tree(self)
        elif self.max_draft_len is not None:
            self._linear_tree()
        return self


class NGramDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["NGram"] = "NGram"
    max_matching_ngram_size: PositiveInt = 2
    is_keep_all: bool = True
    is_use_oldest: bool = True
    is_public_pool: bool = True

    @model_validator(mode="after")
    def _ngram_checks(self) -> NGramDecodingConfig:
        self._require_draft_len()
        self._linear_tree()
        return self


class DraftTargetDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["Draft_Target"] = "Draft_Target"

    @model_validator(mode="after")
    def _draft_target_checks(self) -> DraftTargetDecodingConfig:
        self._require_draft_len()
        if self.speculative_model is None:
            raise field_error("speculative_model", "(the draft model) is required")
        self._linear_tree()
        return self


class SADecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["SA"] = "SA"
    max_matching_ngram_size: int = -1
    enable_global_pool: bool = False
    global_pool_size: PositiveInt | None = None

    @model_validator(mode="after")
    def _sa_checks(self) -> SADecodingConfig:
        size = self.max_matching_ngram_size
        if size == 0:
            raise field_error("max_matching_ngram_size", "must be -1 (longest match) or > 0")
        if self.enable_global_pool and size != -1 and not 1 <= size <= 64:
            raise field_error(
                "max_matching_ngram_size", "must be -1 or in [1, 64] with enable_global_pool"
            )
        self._require_draft_len()
        if self.global_pool_size is not None and not self.enable_global_pool:
            raise field_error("global_pool_size", "requires enable_global_pool: true")
        self._linear_tree()
        return self


class UserProvidedDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["User_Provided"] = "User_Provided"
    drafter: None  # a Drafter instance: Python API only, so YAML can only spell null
    resource_manager: None = None  # a ResourceManager instance: Python API only

    @model_validator(mode="after")
    def _linear(self) -> UserProvidedDecodingConfig:
        self._linear_tree()
        return self


class SaveHiddenStatesDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["SaveState"] = "SaveState"
    output_directory: str
    write_interval: int = 20
    file_prefix: str = "data"
    eagle3_layers_to_capture: set[int] | None = None
    max_total_draft_tokens: int | None = 1  # internal, fixed to 1
    eagle_choices: list[list[int]] | None = None  # internal

    @field_validator("eagle3_layers_to_capture")
    @classmethod
    def _non_empty(cls, v: set[int] | None) -> set[int] | None:
        if v is not None and not v:
            raise ValueError("must not be empty when given")
        return v


class PARDDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["PARD"] = "PARD"
    mask_token_id: int | None = None
    sa_config: SAEnhancerConfig | None = None

    @model_validator(mode="after")
    def _linear(self) -> PARDDecodingConfig:
        self._linear_tree()
        return self


class DFlashDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["DFlash"] = "DFlash"
    mask_token_id: int | None = None
    target_layer_ids: list[int] | None = None
    attention_backend: Literal["VANILLA", "TRTLLM"] = "VANILLA"

    @model_validator(mode="after")
    def _linear(self) -> DFlashDecodingConfig:
        self._linear_tree()
        return self


class DSparkDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["DSpark"] = "DSpark"
    mask_token_id: int | None = None
    target_layer_ids: list[int] | None = None
    block_size: PositiveInt | None = None
    markov_rank: int | None = None
    markov_head_type: Literal["vanilla", "gated", "rnn"] | None = None
    attention_backend: Literal["VANILLA", "TRTLLM"] = "VANILLA"

    @model_validator(mode="after")
    def _linear(self) -> DSparkDecodingConfig:
        self._linear_tree()
        return self


class AutoDecodingConfig(DecodingBaseConfig):
    decoding_type: Literal["AUTO"] = "AUTO"

    @model_validator(mode="after")
    def _linear(self) -> AutoDecodingConfig:
        self._linear_tree()
        return self


SpeculativeConfig = Annotated[
    DraftTargetDecodingConfig
    | Eagle3DecodingConfig
    | EagleDecodingConfig
    | MTPDecodingConfig
    | NGramDecodingConfig
    | SADecodingConfig
    | UserProvidedDecodingConfig
    | SaveHiddenStatesDecodingConfig
    | PARDDecodingConfig
    | DFlashDecodingConfig
    | DSparkDecodingConfig
    | AutoDecodingConfig,
    Field(discriminator="decoding_type"),
]

# Decoding types whose worker implements rejection sampling.
REJECTION_SAMPLING_TYPES = frozenset({"Eagle3", "MTP", "PARD", "DFlash", "DSpark", "Draft_Target"})

# --- sparse attention (discriminated by `algorithm`) --------------------------


class BaseSparseAttentionConfig(EngineSpec):
    algorithm: str


class SeqLenAwareSparseAttentionConfig(BaseSparseAttentionConfig):
    seq_len_threshold: int | None = None


class QSASparseAttentionConfig(SeqLenAwareSparseAttentionConfig):
    algorithm: Literal["qsa"] = "qsa"
    seq_len_threshold: int | None = Field(default=None, gt=0)


class RocketSparseAttentionConfig(SeqLenAwareSparseAttentionConfig):
    algorithm: Literal["rocket"] = "rocket"
    window_size: int | None = 32
    kernel_size: int | None = 63
    topr: int | float | None = 128
    topk: int | None = 64
    prompt_budget: int | None = 2048
    page_size: int | None = 4
    kt_cache_dtype: str | None = "float8_e5m2"  # bfloat16 | float8_e5m2, advisory only


class _DeepSeekIndexerFields(SeqLenAwareSparseAttentionConfig):
    """Indexer fields shared by `dsa` and `deepseek_v4` (a subclass in TensorRT-LLM)."""

    index_n_heads: int | None = None
    index_head_dim: int | None = None
    index_topk: int | None = None
    indexer_max_chunk_size: int | None = None
    skip_indexer_for_short_seqs: bool = True
    use_cute_dsl_topk: bool = False
    use_cute_dsl_paged_mqa_logits: bool = False
    q_split_threshold: int = 8192  # negative disables the split
    indexer_rope_interleave: bool = False
    enable_heuristic_topk: bool = False
    use_self_sampling_topk: bool = True
    use_gvr_emission: bool = False
    indexer_k_dtype: Literal["fp8", "fp4"] = "fp8"
    index_share_for_mtp_iteration: bool | None = None

    @model_validator(mode="after")
    def _fp4_head_dim(self) -> _DeepSeekIndexerFields:
        if self.indexer_k_dtype == "fp4" and self.index_head_dim not in (None, 128):
            raise field_error("indexer_k_dtype", "'fp4' needs index_head_dim 128")
        return self


class DeepSeekSparseAttentionConfig(_DeepSeekIndexerFields):
    algorithm: Literal["dsa"] = "dsa"


class DeepSeekV4SparseAttentionConfig(_DeepSeekIndexerFields):
    algorithm: Literal["deepseek_v4"] = "deepseek_v4"
    index_head_dim: int | None = 128
    index_topk: int | None = 512
    skip_indexer_for_short_seqs: bool = False
    indexer_k_dtype: Literal["fp8", "fp4"] = "fp4"
    compress_ratios: list[int] = Field(default_factory=lambda: [1, 1, 4, 128, 4, 128, 4])
    window_size: int = 128

    @field_validator("index_head_dim")
    @classmethod
    def _head_dim_set(cls, v: int | None) -> int | None:
        if v is None:
            raise ValueError("must not be null")
        return v

    @field_validator("compress_ratios")
    @classmethod
    def _ratios(cls, v: list[int]) -> list[int]:
        if not v or any(r < 0 for r in v):
            raise ValueError("must be a non-empty list of non-negative integers")
        return [r or 1 for r in v]


class SkipSoftmaxAttentionConfig(BaseSparseAttentionConfig):
    algorithm: Literal["skip_softmax"] = "skip_softmax"
    threshold_scale_factor: float | dict[str, float] | None = None
    target_sparsity: float | dict[str, float] | None = None

    @field_validator("target_sparsity")
    @classmethod
    def _sparsity_fraction(
        cls, v: float | dict[str, float] | None
    ) -> float | dict[str, float] | None:
        values = [] if v is None else list(v.values()) if isinstance(v, dict) else [v]
        if any(not 0 <= x <= 1 for x in values):
            raise ValueError("values must be in [0, 1]")
        return v


class MiniMaxM3SparseAttentionConfig(BaseSparseAttentionConfig):
    algorithm: Literal["minimax_m3"] = "minimax_m3"
    sparse_num_index_heads: PositiveInt = 4
    sparse_index_dim: int = Field(default=128, gt=0)
    sparse_block_size: int = 128
    sparse_topk_blocks: int = 16
    sparse_init_blocks: int = 0
    sparse_local_blocks: int = 1
    sparse_score_type: Literal["max"] = "max"
    sparse_disable_index_value: bool = True
    indexer_kv_dtype: Literal["bf16", "fp8"] = "bf16"
    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    implementation: Literal["triton", "msa"] = "triton"

    @model_validator(mode="after")
    def _msa_rules(self) -> MiniMaxM3SparseAttentionConfig:
        if self.implementation == "msa" and self.sparse_block_size != 128:
            raise field_error("sparse_block_size", "must be 128 with implementation 'msa'")
        if self.indexer_kv_dtype == "fp8" and not (
            self.implementation == "msa" and self.sparse_disable_index_value
        ):
            raise field_error(
                "indexer_kv_dtype",
                "'fp8' needs implementation 'msa' and sparse_disable_index_value: true",
            )
        return self


SparseAttentionConfig = Annotated[
    QSASparseAttentionConfig
    | RocketSparseAttentionConfig
    | DeepSeekSparseAttentionConfig
    | DeepSeekV4SparseAttentionConfig
    | SkipSoftmaxAttentionConfig
    | MiniMaxM3SparseAttentionConfig,
    Field(discriminator="algorithm"),
]

# --- KV cache compression (discriminated by `algorithm`) ----------------------


class KvCacheCompressionConfig(EngineSpec):
    algorithm: str


class ColdPageQuantizationCompressionConfig(KvCacheCompressionConfig):
    algorithm: Literal["quantization_for_cold_page"] = "quantization_for_cold_page"
    quant: Literal["nvfp4"] = "nvfp4"
    scale_checkpoint_path: str | None = Field(default=None, min_length=1)


class TriAttentionKvCacheCompressionConfig(KvCacheCompressionConfig):
    algorithm: Literal["triattention"] = "triattention"
    eviction_mode: Literal["union", "per_head", "per_layer_perhead"] = "union"
    normalize_scores: bool = True
    budget: int = Field(default=2048, gt=0)
    beta: int = Field(default=128, gt=0)
    calibration_path: str = Field(min_length=1)

    @model_validator(mode="after")
    def _union_normalizes(self) -> TriAttentionKvCacheCompressionConfig:
        if self.eviction_mode == "union" and not self.normalize_scores:
            raise field_error("normalize_scores", "must be true with eviction_mode 'union'")
        return self


KvCacheCompressionConfigType = Annotated[
    ColdPageQuantizationCompressionConfig | TriAttentionKvCacheCompressionConfig,
    Field(discriminator="algorithm"),
]

# --- sections the inventory does not expand ----------------------------------
# Their fields come from TensorRT-LLM's own classes (LoraConfig in lora_helper.py /
# _torch/peft/lora/config.py, TelemetryConfig in usage/config.py, the executor binding's
# DecodingConfig); like every other section, an unknown key is an error.


class LoraConfig(EngineSpec):
    lora_dir: list[str] = []
    lora_ckpt_source: Literal["hf", "nemo"] = "hf"
    max_lora_rank: PositiveInt = 64
    lora_target_modules: list[str] = []
    trtllm_modules_to_hf_modules: dict[str, str] = {}
    max_loras: PositiveInt | None = None
    max_cpu_loras: PositiveInt | None = None
    swap_gate_up_proj_lora_b_weight: bool = True
    overlap_lora_and_base: bool = False
    cuda_graph_specialize_lora: bool = False


class TelemetryConfig(EngineSpec):
    disabled: bool = False
    usage_context: Literal[
        "unknown", "llm_class", "cli_serve", "cli_bench", "cli_eval", "disaggregated"
    ] = "unknown"


class LookaheadDecodingConfig(EngineSpec):
    max_window_size: PositiveInt
    max_ngram_size: PositiveInt
    max_verification_set_size: PositiveInt


class EagleConfig(EngineSpec):
    eagle_choices: list[list[NonNegativeInt]] | None = None
    greedy_sampling: bool = True
    posterior_threshold: float | None = None
    use_dynamic_tree: bool = False
    dynamic_tree_max_topK: PositiveInt | None = None


class DecodingConfig(EngineSpec):
    """The deprecated `decoding_config` (speculative_config replaces it).

    Its `decoding_mode` is a C++ DecodingMode object that YAML cannot spell.
    """

    medusa_choices: list[list[NonNegativeInt]] | None = None
    lookahead_decoding_config: LookaheadDecodingConfig | None = None
    eagle_config: EagleConfig | None = None


# --- top level ----------------------------------------------------------------


class _CommonLlmArgs(EngineSpec):
    """Fields and checks shared by BaseLlmArgs and TorchLlmArgs."""

    # Dynamo passes the model on its command line, so engine YAML usually omits it.
    model: str | None = None
    tokenizer: str | None = None  # tokenizer objects: Python API only
    tokenizer_mode: Literal["auto", "slow"] = "auto"
    custom_tokenizer: str | None = None
    post_processor_hook: str | None = None
    skip_tokenizer_init: bool = False
    trust_remote_code: bool = False
    tensor_parallel_size: PositiveInt = 1
    dtype: str = "auto"
    revision: str | None = None
    tokenizer_revision: str | None = None
    model_kwargs: dict[str, Any] | None = None  # free-form model config overrides
    pipeline_parallel_size: PositiveInt = 1
    context_parallel_size: PositiveInt = 1
    gpus_per_node: PositiveInt | None = None
    # Unset lets TensorRT-LLM's Mapping derive them from tensor_parallel_size; a stated 0 (or a
    # negative) divides by zero or never multiplies back to it there, so a stated size is > 0.
    moe_cluster_parallel_size: MoeParallelSize | None = None  # deprecated
    moe_tensor_parallel_size: MoeParallelSize | None = None
    moe_expert_parallel_size: MoeParallelSize | None = None
    enable_attention_dp: bool = False
    enable_lm_head_tp_in_adp: bool = False
    pp_partition: list[int] | None = None
    cp_config: CpConfig | None = None
    enable_lora: bool = False
    lora_config: LoraConfig | None = None
    kv_cache_config: KvCacheConfig = Field(default_factory=lambda: KvCacheConfig())
    enable_chunked_prefill: bool = False
    guided_decoding_backend: Literal["xgrammar", "llguidance"] | None = None
    batched_logits_processor: None = None  # a processor object: Python API only
    iter_stats_max_iterations: int | None = Field(default=None, ge=-1)
    request_stats_max_iterations: int | None = Field(default=None, ge=-1)
    peft_cache_config: PeftCacheConfig | None = None
    scheduler_config: SchedulerConfig = Field(default_factory=SchedulerConfig)
    cache_transceiver_config: CacheTransceiverConfig | None = None
    sparse_attention_config: SparseAttentionConfig | None = None
    kv_cache_compression_config: KvCacheCompressionConfigType | None = None
    speculative_config: SpeculativeConfig | None = None
    # TorchLlmArgs leaves these unbounded, but they size the runtime's int32 buffers and its
    # ExecutorConfig (see RuntimeSize): zero, a negative or a 10**30 never starts a worker.
    max_batch_size: RuntimeSize | None = 2048
    max_input_len: RuntimeSize | None = 1024
    max_seq_len: RuntimeSize | None = None  # None: from the checkpoint's max_position_embeddings
    max_beam_width: RuntimeSize | None = 1
    max_num_tokens: RuntimeSize | None = 8192
    gather_generation_logits: bool = False
    num_postprocess_workers: int = 0
    postprocess_tokenizer_dir: str | None = None
    num_serve_frontends: int = Field(default=1, ge=1, le=64)
    reasoning_parser: str | None = None
    decoding_config: DecodingConfig | None = None  # deprecated
    mpi_session: None = Field(default=None, alias="_mpi_session")  # an MpiSession: Python API only
    otlp_traces_endpoint: str | None = None
    return_perf_metrics: bool = False
    perf_metrics_output_dir: str | None = None
    perf_metrics_max_requests: NonNegativeInt = 0  # deprecated
    prometheus_metrics_config: PrometheusMetricsConfig | None = None
    enable_energy_metrics: bool = False
    orchestrator_type: Literal["rpc", "ray"] | None = None
    env_overrides: dict[str, str] | None = None
    telemetry_config: TelemetryConfig = Field(default_factory=TelemetryConfig)

    @field_validator("env_overrides", mode="before")
    @classmethod
    def _env_values_as_strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): str(val) for k, val in v.items()}
        return v

    @model_validator(mode="after")
    def _common_checks(self) -> _CommonLlmArgs:
        for name in ("max_batch_size", "max_input_len", "max_beam_width", "max_num_tokens"):
            if getattr(self, name) is None:
                setattr(self, name, type(self).model_fields[name].default)
        if self.skip_tokenizer_init and self.post_processor_hook is not None:
            raise field_error("post_processor_hook", "cannot be used with skip_tokenizer_init")
        if self.peft_cache_config is not None and self.peft_cache_config.lora_prefetch_dir:
            raise field_error(
                "peft_cache_config.lora_prefetch_dir", "is not supported (LoRA prefetch)"
            )
        lora = self.lora_config
        if lora is not None and lora.cuda_graph_specialize_lora and self.enable_attention_dp:
            raise field_error(
                "lora_config.cuda_graph_specialize_lora",
                "cannot be used with enable_attention_dp",
            )
        return self


class BaseLlmArgs(_CommonLlmArgs):
    """The backend-neutral base in TensorRT-LLM; engine YAML validates as TorchLlmArgs."""

    load_format: Literal["auto", "dummy"] = "auto"
    backend: str | None = None  # deprecated


class TorchLlmArgs(_CommonLlmArgs):
    """What Dynamo's ``--extra-engine-args`` YAML becomes (PyTorch backend)."""

    load_format: LoadFormat = LoadFormat.AUTO
    backend: Literal["pytorch"] = "pytorch"  # deprecated
    generation_config: Literal["auto", "trtllm"] = "trtllm"
    garbage_collection_gen0_threshold: int = 20000
    # null disables CUDA graphs; `mode` is inferred when absent.
    cuda_graph_config: CudaGraphConfigType | None = Field(default_factory=DecodeCudaGraphConfig)
    encoder_cuda_graph_config: EncodeCudaGraphConfig | None = None
    enable_encoder_decoder_mixed_cuda_graph: bool = True
    multimodal_config: MultimodalConfig = Field(default_factory=lambda: MultimodalConfig())
    attention_dp_config: AttentionDpConfig | None = None
    disable_overlap_scheduler: bool = False
    moe_config: MoeConfig = Field(default_factory=MoeConfig)
    nvfp4_gemm_config: Nvfp4GemmConfig = Field(default_factory=Nvfp4GemmConfig)
    dwdp_config: DwdpConfig | None = None
    encoder_max_batch_size: int | None = None
    encoder_max_num_tokens: int | None = None
    attn_backend: str = "TRTLLM"
    enable_mla_skip_correction: bool = False
    mla_skip_correction_threshold: float = Field(default=8.0, gt=0.0, le=32.0)
    sampler_force_async_worker: bool = False
    enable_in_graph_sampling: bool = False
    enable_speculative_beam_history_d2h: bool = False
    enable_early_first_token_response: bool = False
    enable_low_latency_host_dispatch: bool = False
    enable_iter_perf_stats: bool = False
    enable_iter_req_stats: bool = False
    print_iter_log: bool = False
    batch_wait_timeout_ms: NonNegativeFloat = 0
    batch_wait_timeout_iters: NonNegativeInt = 0
    batch_wait_max_tokens_ratio: float = Field(default=0, ge=0, le=1)
    torch_compile_config: TorchCompileConfig | None = None
    prefill_cuda_graph_backend: PrefillCudaGraphBackend = "disabled"
    prefill_capture_num_tokens: list[int] | None = None
    enable_autotuner: bool = True
    use_fine_grained_sync: bool = False
    enable_layerwise_nvtx_marker: bool = False
    enable_min_latency: bool = False
    stream_interval: PositiveInt = 1
    force_dynamic_quantization: bool = False
    allreduce_strategy: (
        Literal[
            "AUTO",
            "NCCL",
            "UB",
            "MINLATENCY",
            "ONESHOT",
            "TWOSHOT",
            "LOWPRECISION",
            "MNNVL",
            "NCCL_SYMMETRIC",
        ]
        | None
    ) = "AUTO"
    checkpoint_loader: None = None  # a BaseCheckpointLoader instance: Python API only
    checkpoint_format: str | None = None
    checkpoint_io_policy: Literal["auto", "native", "rank_striped_read_ahead"] = "auto"
    mx_config: ModelExpressConfig = Field(default_factory=ModelExpressConfig)
    gms_config: GmsConfig = Field(default_factory=GmsConfig)
    kv_connector_config: KvCacheConnectorConfig | None = None
    mm_encoder_only: bool = False
    disable_mm_encoder: bool = False
    encode_only: bool = False
    ray_worker_extension_cls: str | None = None
    ray_placement_config: RayPlacementConfig | None = None
    ray_worker_nsight_options: dict[str, str] | None = None
    sleep_config: SleepConfig | None = None
    reorder_policy_config: ReorderRequestPolicyConfig | None = None
    enable_resource_governor: bool = False
    use_cute_dsl_blockscaling_mm: bool = False
    use_cute_dsl_blockscaling_bmm: bool = False
    use_cute_dsl_bf16_bmm: bool = False
    use_cute_dsl_bf16_gemm: bool = False
    max_stats_len: int = Field(default=1000, ge=-1)
    layer_wise_benchmarks_config: LayerwiseBenchmarksConfig = Field(
        default_factory=LayerwiseBenchmarksConfig
    )

    @model_validator(mode="before")
    @classmethod
    def _removed_sampler_type(cls, data: Any) -> Any:
        """`sampler_type` is read and dropped: the TensorRT-LLM of Dynamo's runtimes still has it,
        the inventory's drops it (TorchSampler is the only sampler left there). Which TensorRT-LLM
        refuses 'TRTLLMSampler' is version data (infra/trtllm/field_versions.py)."""
        if isinstance(data, dict) and "sampler_type" in data:
            data = dict(data)
            if data.pop("sampler_type") not in SAMPLER_TYPES:
                raise field_error(
                    "sampler_type", f"must be one of {', '.join(SAMPLER_TYPES)} (or left out)"
                )
        return data

    @field_validator("cuda_graph_config", mode="before")
    @classmethod
    def _infer_graph_mode(cls, v: Any) -> Any:
        if isinstance(v, dict) and "mode" not in v:
            encode = any(v.get(k) not in (None, 0) for k in _ENCODER_GRAPH_KEYS)
            v = {**v, "mode": "encode" if encode else "decode"}
        return v

    @field_validator("multimodal_config", mode="before")
    @classmethod
    def _null_multimodal_is_default(cls, v: Any) -> Any:
        return {} if v is None else v

    @field_validator("load_format", mode="before")
    @classmethod
    def _load_format_name(cls, v: Any) -> Any:
        if isinstance(v, LoadFormat):
            return v
        if isinstance(v, bool):
            raise ValueError(f"invalid load format {v!r}")
        if isinstance(v, int):
            return LoadFormat(v)
        if isinstance(v, str) and v.upper() in LoadFormat.__members__:
            return LoadFormat[v.upper()]
        names = ", ".join(m.lower() for m in LoadFormat.__members__)
        raise ValueError(f"invalid load format {v!r}; expected one of {names}")

    @field_validator("encoder_max_batch_size", "encoder_max_num_tokens")
    @classmethod
    def _positive_when_set(cls, v: int | None) -> int | None:
        if v is not None and v <= 0:
            raise ValueError("must be > 0 when set")
        return v

    @field_validator("max_stats_len")
    @classmethod
    def _stats_len_at_least_one(cls, v: int) -> int:
        return v if v == -1 else max(v, 1)

    @model_validator(mode="after")
    def _torch_checks(self) -> TorchLlmArgs:
        self._check_encoders()
        self._check_prefill_graphs()
        self._check_speculation()
        if self.enable_mla_skip_correction and self.attn_backend != "TRTLLM":
            raise field_error("enable_mla_skip_correction", "requires attn_backend TRTLLM")
        if self.load_format is LoadFormat.GMS and self.moe_config.load_balancer is not None:
            raise field_error("moe_config.load_balancer", "cannot be used with load_format GMS")
        cp = self.cp_config
        if (
            self.context_parallel_size != 1
            and cp is not None
            and cp.cp_type is CpType.HELIX
            and cp.tokens_per_block is not None
            and cp.tokens_per_block != self.kv_cache_config.tokens_per_block
        ):
            raise field_error(
                "cp_config.tokens_per_block",
                "must equal kv_cache_config.tokens_per_block with HELIX context parallelism",
            )
        for name in ("ray_worker_extension_cls", "ray_placement_config"):
            if getattr(self, name) is not None and self.orchestrator_type != "ray":
                raise field_error(name, "requires orchestrator_type 'ray'")
        if self.enable_speculative_beam_history_d2h and self.sampler_force_async_worker:
            raise field_error(
                "enable_speculative_beam_history_d2h",
                "cannot be used with sampler_force_async_worker",
            )
        return self

    def _check_encoders(self) -> None:
        if self.encoder_cuda_graph_config is not None:
            if self.encoder_max_batch_size is None:
                raise field_error(
                    "encoder_max_batch_size", "is required with encoder_cuda_graph_config"
                )
            if self.encode_only:
                raise field_error("encoder_cuda_graph_config", "cannot be used with encode_only")
        if self.encode_only and self.mm_encoder_only:
            raise field_error("mm_encoder_only", "cannot be combined with encode_only")
        if self.disable_mm_encoder and self.mm_encoder_only:
            raise field_error("mm_encoder_only", "cannot be combined with disable_mm_encoder")
        if self.disable_mm_encoder:
            self.multimodal_config.encoder_cache_max_bytes = 0

    def _check_prefill_graphs(self) -> None:
        compile_config = self.torch_compile_config
        if compile_config is not None and compile_config.enable_piecewise_cuda_graph:
            if self.prefill_cuda_graph_backend == "breakable":
                raise field_error(
                    "torch_compile_config.enable_piecewise_cuda_graph",
                    "conflicts with prefill_cuda_graph_backend 'breakable'",
                )
            self.prefill_cuda_graph_backend = "piecewise"
        if compile_config is not None and self.prefill_capture_num_tokens is None:
            self.prefill_capture_num_tokens = compile_config.capture_num_tokens
        backend = self.prefill_cuda_graph_backend
        if backend != "disabled" and self.prefill_capture_num_tokens is None:
            self.prefill_capture_num_tokens = [2**i for i in range(8)] + list(range(256, 3073, 256))
        if backend == "piecewise" and self.torch_compile_config is None:
            self.torch_compile_config = TorchCompileConfig()
        if backend == "breakable":
            if self.torch_compile_config is not None:
                raise field_error(
                    "torch_compile_config",
                    "cannot be used with prefill_cuda_graph_backend 'breakable'",
                )
            if self.enable_lora or self.lora_config is not None:
                raise field_error(
                    "prefill_cuda_graph_backend", "'breakable' cannot be used with LoRA"
                )

    def _check_speculation(self) -> None:
        spec = self.speculative_config
        if spec is None:
            self.decoding_config = None
            return
        if isinstance(spec, EagleDecodingConfig):
            fields = spec.model_dump(exclude={"decoding_type"})
            spec = self.speculative_config = Eagle3DecodingConfig.model_validate(fields)
        if spec.use_rejection_sampling and spec.decoding_type not in REJECTION_SAMPLING_TYPES:
            raise field_error(
                "speculative_config.use_rejection_sampling",
                f"is not supported with decoding_type {spec.decoding_type}",
            )
        if (
            isinstance(spec, SADecodingConfig)
            and spec.global_pool_size is not None
            and self.max_batch_size is not None
            and spec.global_pool_size < self.max_batch_size
        ):
            raise field_error(
                "speculative_config.global_pool_size",
                f"must be >= max_batch_size ({self.max_batch_size})",
            )
        if isinstance(spec, SaveHiddenStatesDecodingConfig):
            self.max_batch_size = 1
            self.disable_overlap_scheduler = True
            self.cuda_graph_config = None


LlmArgs = TorchLlmArgs

# --- introspection used by the loader and the drift test ----------------------

# Inventory model names (as spelled in llm_args_fields.json) -> our classes.
INVENTORY_MODELS: dict[str, type[BaseModel]] = {
    "TorchLlmArgs": TorchLlmArgs,
    "BaseLlmArgs": BaseLlmArgs,
    "KvCacheConfig": KvCacheConfig,
    "MoeConfig": MoeConfig,
    "CacheTransceiverConfig": CacheTransceiverConfig,
    "SchedulerConfig": SchedulerConfig,
    "DynamicBatchConfig": DynamicBatchConfig,
    "AttentionDpConfig": AttentionDpConfig,
    "TorchCompileConfig": TorchCompileConfig,
    "DecodingBaseConfig": DecodingBaseConfig,
    "EagleDecodingConfig": EagleDecodingConfig,
    "Eagle3DecodingConfig": Eagle3DecodingConfig,
    "MTPDecodingConfig": MTPDecodingConfig,
    "NGramDecodingConfig": NGramDecodingConfig,
    "DraftTargetDecodingConfig": DraftTargetDecodingConfig,
    "AgentTreeConfig": AgentTreeConfig,
    "AutoDecodingConfig": AutoDecodingConfig,
    "BaseCudaGraphConfig": BaseCudaGraphConfig,
    "BaseSparseAttentionConfig": BaseSparseAttentionConfig,
    "BlockReuseConfig": BlockReuseConfig,
    "CalibConfig": CalibConfig,
    "ColdPageQuantizationCompressionConfig": ColdPageQuantizationCompressionConfig,
    "CpConfig": CpConfig,
    "DFlashDecodingConfig": DFlashDecodingConfig,
    "DSparkDecodingConfig": DSparkDecodingConfig,
    "DecodeCudaGraphConfig (alias CudaGraphConfig)": DecodeCudaGraphConfig,
    "DeepSeekSparseAttentionConfig": DeepSeekSparseAttentionConfig,
    "DeepSeekV4SparseAttentionConfig": DeepSeekV4SparseAttentionConfig,
    "DwdpConfig": DwdpConfig,
    "EncodeCudaGraphConfig": EncodeCudaGraphConfig,
    "ExtendedRuntimePerfKnobConfig": ExtendedRuntimePerfKnobConfig,
    "GmsConfig": GmsConfig,
    "GuidedDecodingConfig": GuidedDecodingConfig,
    "KVEventsConfig": KVEventsConfig,
    "KvCacheCompressionConfig": KvCacheCompressionConfig,
    "KvCacheConnectorConfig": KvCacheConnectorConfig,
    "LayerwiseBenchmarksConfig": LayerwiseBenchmarksConfig,
    "MambaStateConfig": MambaStateConfig,
    "MiniMaxM3SparseAttentionConfig": MiniMaxM3SparseAttentionConfig,
    "ModelExpressConfig": ModelExpressConfig,
    "MoeLoadBalancerConfig": MoeLoadBalancerConfig,
    "MultimodalConfig": MultimodalConfig,
    "MultimodalEncoderCudaGraphConfig": MultimodalEncoderCudaGraphConfig,
    "Nvfp4GemmConfig": Nvfp4GemmConfig,
    "PARDDecodingConfig": PARDDecodingConfig,
    "PeftCacheConfig": PeftCacheConfig,
    "PrometheusMetricsConfig": PrometheusMetricsConfig,
    "QSASparseAttentionConfig": QSASparseAttentionConfig,
    "RayPlacementConfig": RayPlacementConfig,
    "ReorderRequestPolicyConfig": ReorderRequestPolicyConfig,
    "RocketSparseAttentionConfig": RocketSparseAttentionConfig,
    "SADecodingConfig": SADecodingConfig,
    "SAEnhancerConfig": SAEnhancerConfig,
    "SaveHiddenStatesDecodingConfig": SaveHiddenStatesDecodingConfig,
    "SeqLenAwareSparseAttentionConfig": SeqLenAwareSparseAttentionConfig,
    "SkipSoftmaxAttentionConfig": SkipSoftmaxAttentionConfig,
    "SleepConfig": SleepConfig,
    "TriAttentionKvCacheCompressionConfig": TriAttentionKvCacheCompressionConfig,
    "UserProvidedDecodingConfig": UserProvidedDecodingConfig,
}

# Inventory enum names -> our Literal aliases / enums (BatchingType has no PyTorch field).
INVENTORY_ENUMS: dict[str, Any] = {
    "CapacitySchedulerPolicy": CapacitySchedulerPolicy,
    "ContextChunkingPolicy": ContextChunkingPolicy,
    "WaitingQueuePolicy": WaitingQueuePolicy,
    "AdvancedSamplingMode": AdvancedSamplingMode,
    "MultimodalEncoderSchedulingPolicy": MultimodalEncoderSchedulingPolicy,
    "LoadFormat": LoadFormat,
    "PrefillCudaGraphBackend": PrefillCudaGraphBackend,
}

# Inventory discriminated-union names -> our annotated unions.
INVENTORY_UNIONS: dict[str, Any] = {
    "SpeculativeConfig (TorchLlmArgs.speculative_config)": SpeculativeConfig,
    "SparseAttentionConfig (sparse_attention_config)": SparseAttentionConfig,
    "KvCacheCompressionConfigType (kv_cache_config.compression_config?)": (
        KvCacheCompressionConfigType
    ),
    "CudaGraphConfigType": CudaGraphConfigType,
}


def yaml_keys(model: type[BaseModel]) -> dict[str, list[str]]:
    """Field name -> the keys a YAML file may use for it (aliases included)."""
    keys: dict[str, list[str]] = {}
    for name, info in model.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            keys[name] = [c for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            keys[name] = [alias]
        else:
            keys[name] = [info.alias or name]
    return keys


def _strip_optional(annotation: Any) -> tuple[Any, Any]:
    """Drop `X | None` and Annotated wrappers; return (core type, discriminator or None)."""
    discriminator = None
    while True:
        if get_origin(annotation) is Annotated:
            core, *metadata = get_args(annotation)
            for meta in metadata:
                if isinstance(meta, FieldInfo) and meta.discriminator is not None:
                    discriminator = meta.discriminator
                elif isinstance(meta, Discriminator):
                    discriminator = meta
            annotation = core
            continue
        members = _union_args(annotation)
        if len(members) == 1 and len(get_args(annotation)) == 2:
            annotation = members[0]
            continue
        return annotation, discriminator


def _union_args(annotation: Any) -> list[Any]:
    """The non-None members of a union ([] if `annotation` is not a union)."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return []
    return [a for a in get_args(annotation) if a is not type(None)]


def union_members(annotation: Any, discriminator: Any = None) -> dict[str, Any] | None:
    """Tag -> member type of a discriminated union (None if `annotation` is not one)."""
    core, found = _strip_optional(annotation)
    discriminator = found if found is not None else discriminator
    if discriminator is None or not _union_args(core):
        return None
    members: dict[str, Any] = {}
    for member in _union_args(core):
        if get_origin(member) is Annotated:
            inner, *metadata = get_args(member)
            for meta in metadata:
                if isinstance(meta, Tag):
                    members[meta.tag] = inner
        elif isinstance(discriminator, str):
            for tag in get_args(member.model_fields[discriminator].annotation):
                members[tag] = member
    return members


def model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that a pydantic error location (tags included) points into."""
    node: Any = TorchLlmArgs
    discriminator: Any = None
    parts = list(loc)
    while True:
        members = union_members(node, discriminator)
        discriminator = None
        if members is not None:
            if not parts:
                return None
            node = members.get(str(parts.pop(0)))
            continue
        node, _ = _strip_optional(node)
        if not parts:
            return node if isinstance(node, type) and issubclass(node, BaseModel) else None
        part = parts.pop(0)
        if isinstance(node, type) and issubclass(node, BaseModel):
            name = next((n for n, ks in yaml_keys(node).items() if part in ks), None)
            if name is None:
                return None
            info = node.model_fields[name]
            node, discriminator = info.annotation, info.discriminator
        elif get_origin(node) in (list, set, frozenset, tuple):
            node = get_args(node)[0]
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        else:
            return None
