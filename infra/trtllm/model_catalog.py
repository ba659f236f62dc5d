"""Model-architecture facts for GPU-memory planning: a built-in catalog and a config.json reader.

The planner (infra/trtllm/memory_plan.py) needs a handful of numbers per model: layer and head
counts for the KV cache, and a parameter count split the way TensorRT-LLM shards weights
(attention, dense MLP, routed experts, embeddings). Hugging Face config.json holds the
architecture but not a reliable parameter count, so parameters are *computed* from the
architecture; each catalog entry also carries the published size as a cross-check.

Catalog entries are written as the subset of config.json keys the reader uses, with the
config.json field names, so every number traces back to its source field and the catalog
and `facts_from_hf_config` share one code path.

Assumptions (stated once, used everywhere):
- Weight bytes per parameter: bfloat16/float16 2, float32 4, fp8 1 (block scales, one fp32
  per 128x128 block, are < 0.03% and ignored), mxfp4 0.5 + 1/32 (one 8-bit E8M0 scale per
  32 values), nvfp4 0.5 + 1/16 (one FP8 scale per 16 values).
- Quantized checkpoints quantize the linear layers of the decoder (attention, MLP, experts,
  or only the routed experts for mxfp4 and for exclusions naming attention); embeddings,
  lm_head, norms and the vision tower stay in the checkpoint's `torch_dtype`.
- MLPs are gated (SwiGLU/GeGLU: gate, up and down projections); biases are ignored
  (< 0.01% of any catalog model); each decoder layer has two norms of hidden_size.
- The vision tower of multimodal checkpoints is counted in the parameters (ViT blocks of
  4*w^2 + 2*w*mlp, patch and position embeddings, merger/projector), as an estimate.
- Multi-token-prediction layers (DeepSeek `num_nextn_predict_layers`) are not in the total;
  they are reported apart because they are only loaded when MTP speculation is on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

# --- dtypes -------------------------------------------------------------------------------

# Bytes per stored value; Fractions keep fp4 sizes (with their scales) exact.
DTYPE_BYTES: dict[str, Fraction] = {
    "float32": Fraction(4),
    "bfloat16": Fraction(2),
    "float16": Fraction(2),
    "fp8": Fraction(1),
    "int8": Fraction(1),
    "mxfp4": Fraction(1, 2) + Fraction(1, 32),
    "nvfp4": Fraction(1, 2) + Fraction(1, 16),
}

_DTYPE_ALIASES = {
    "bf16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "fp32": "float32",
    "float": "float32",
    "float8": "fp8",
    "float8_e4m3fn": "fp8",
    "fp8_e4m3": "fp8",
    "e4m3": "fp8",
    "fp4": "nvfp4",
}


def normalize_dtype(name: str) -> str:
    """Canonical dtype name ('bf16' -> 'bfloat16', 'torch.float16' -> 'float16')."""
    key = name.strip().lower().removeprefix("torch.")
    key = _DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_BYTES:
        known = ", ".join(sorted(DTYPE_BYTES))
        raise ValueError(f"unknown dtype {name!r} (known: {known})")
    return key


def dtype_bytes(name: str) -> Fraction:
    return DTYPE_BYTES[normalize_dtype(name)]


# --- facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFacts:
    """What the memory planner needs to know about one model checkpoint.

    Parameter fields are counts (not bytes) summed over all decoder layers:
    `attention_params` (projections + input norm), `mlp_params` (dense MLP layers, shared
    experts, routers, post-attention norm), `expert_params` (routed experts only).
    """

    hf_id: str
    alias: str
    model_type: str
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    max_position_embeddings: int
    attention_params: int
    mlp_params: int
    expert_params: int
    embedding_params: int
    lm_head_params: int  # 0 when tie_word_embeddings
    vision_params: int = 0
    tie_word_embeddings: bool = False
    # MoE
    num_experts: int = 0
    experts_per_token: int = 0
    num_moe_layers: int = 0
    # MLA: one latent of kv_lora_rank + qk_rope_head_dim per token per layer
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    # Multi-token prediction layers (not in total_params)
    num_nextn_predict_layers: int = 0
    mtp_params_per_layer: int = 0
    mtp_expert_params_per_layer: int = 0
    # dtypes: `dtype` for embeddings/norms/vision; linear layers and routed experts may be quantized
    dtype: str = "bfloat16"
    linear_weight_dtype: str = "bfloat16"
    expert_weight_dtype: str = "bfloat16"
    kv_cache_dtype: str = "bfloat16"  # what kv_cache_config.dtype "auto" resolves to
    # Layers whose attention only keeps a window of tokens (sliding window / chunked attention)
    sliding_window: int | None = None
    num_sliding_window_layers: int = 0
    published_params: int | None = None
    # The Hugging Face repository is gated: downloads need an accepted licence and a token.
    gated: bool = False
    # Dynamo's output parsers the model needs (--dyn-reasoning-parser, --dyn-tool-call-parser):
    # without them reasoning and tool calls come back as plain text.
    reasoning_parser: str | None = None
    tool_call_parser: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def total_params(self) -> int:
        """Parameters of the checkpoint without MTP layers (vision tower included)."""
        return (
            self.attention_params
            + self.mlp_params
            + self.expert_params
            + self.embedding_params
            + self.lm_head_params
            + self.vision_params
        )

    @property
    def active_params(self) -> int:
        """Parameters touched per token (routed experts scaled by experts_per_token / num_experts)."""
        if not self.is_moe:
            return self.total_params
        routed = self.expert_params * self.experts_per_token // self.num_experts
        return self.total_params - self.expert_params + routed

    @property
    def params_per_expert(self) -> int:
        if not self.is_moe or self.num_moe_layers == 0:
            return 0
        return self.expert_params // (self.num_moe_layers * self.num_experts)

    @property
    def kv_values_per_token_per_layer(self) -> int:
        """Cached values per token and layer, before TP: MLA latent or 2 x kv_heads x head_dim."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_key_value_heads * self.head_dim

    @property
    def checkpoint_bytes(self) -> int:
        """Approximate weight bytes of the checkpoint (without MTP layers)."""
        plain = self.embedding_params + self.lm_head_params + self.vision_params
        size = (
            plain * dtype_bytes(self.dtype)
            + (self.attention_params + self.mlp_params) * dtype_bytes(self.linear_weight_dtype)
            + self.expert_params * dtype_bytes(self.expert_weight_dtype)
        )
        return math.ceil(size)


# --- config.json reader -------------------------------------------------------------------

_SUB_CONFIGS = ("text_config", "llm_config", "language_config")
_VISION_CONFIGS = ("vision_config", "visual")


def _first(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        value = cfg.get(key)
        if value is not None:
            return value
    return default


def _require_int(cfg: Mapping[str, Any], *keys: str, default: Any = None) -> int:
    """A size the planner divides by or multiplies with: a whole number of at least 1."""
    value = _first(cfg, *keys, default=default)
    if value is None:
        raise ValueError(f"config.json has no {' / '.join(keys)}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"config.json: {keys[0]} must be a whole number >= 1 (got {value!r})")
    return value


def _text_config(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    for key in _SUB_CONFIGS:
        sub = cfg.get(key)
        if isinstance(sub, Mapping):
            return sub
    return cfg


def _vision_config(cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in _VISION_CONFIGS:
        sub = cfg.get(key)
        if isinstance(sub, Mapping) and sub:
            return sub
    return None


def _moe_layers(text: Mapping[str, Any], num_layers: int, num_experts: int) -> list[int]:
    """Indexes of decoder layers with routed experts, per the model family's config keys."""
    if num_experts == 0:
        return []
    if "moe_layers" in text and text["moe_layers"] is not None:  # Llama-4 explicit list
        return sorted(int(i) for i in text["moe_layers"])
    if "n_routed_experts" in text:  # DeepSeek-V2/V3: first_k_dense_replace, moe_layer_freq
        first_dense = int(text.get("first_k_dense_replace") or 0)
        freq = int(text.get("moe_layer_freq") or 1)
        return [i for i in range(num_layers) if i >= first_dense and i % freq == 0]
    if "interleave_moe_layer_step" in text:  # Llama-4: every step-th layer, 1-based
        step = int(text.get("interleave_moe_layer_step") or 1)
        if step <= 0:
            return []
        return list(range(step - 1, num_layers, step))
    # Qwen2/Qwen3-MoE: decoder_sparse_step, mlp_only_layers; Mixtral/gpt-oss: every layer
    step = int(text.get("decoder_sparse_step") or 1)
    dense_only = {int(i) for i in text.get("mlp_only_layers") or []}
    return [i for i in range(num_layers) if i not in dense_only and (i + 1) % step == 0]


def _sliding_layers(text: Mapping[str, Any], num_layers: int) -> tuple[int | None, int]:
    """(window, layers using it): sliding-window or chunked-attention layers."""
    layer_types = text.get("layer_types")
    window = text.get("sliding_window")
    if isinstance(layer_types, list) and window:  # gpt-oss, newer Gemma-3 configs
        count = sum(1 for kind in layer_types if kind == "sliding_attention")
        return int(window), count
    pattern = text.get("sliding_window_pattern")
    if window and pattern:  # Gemma-3: every pattern-th layer (1-based) is global
        count = sum(1 for i in range(num_layers) if (i + 1) % int(pattern) != 0)
        return int(window), count
    chunk = text.get("attention_chunk_size")
    if chunk:  # Llama-4: RoPE layers attend within chunks; NoPE layers are global
        no_rope = text.get("no_rope_layers")
        if isinstance(no_rope, list) and len(no_rope) == num_layers:
            count = sum(1 for uses_rope in no_rope if uses_rope)
        else:
            interval = int(text.get("no_rope_layer_interval") or 4)
            count = sum(1 for i in range(num_layers) if (i + 1) % interval != 0)
        return int(chunk), count
    if window and text.get("use_sliding_window", True):  # Mistral-style: every layer
        return int(window), num_layers
    return None, 0


def _attention_params(
    text: Mapping[str, Any], hidden: int, heads: int, kv_heads: int, head_dim: int
) -> int:
    """Attention projections of one layer (MLA or GQA) plus its input norm."""
    kv_lora = int(text.get("kv_lora_rank") or 0)
    if kv_lora:
        q_lora = int(text.get("q_lora_rank") or 0)
        nope = int(text["qk_nope_head_dim"])
        rope = int(text["qk_rope_head_dim"])
        v_dim = int(text.get("v_head_dim") or nope)
        q_dim = heads * (nope + rope)
        q = hidden * q_lora + q_lora + q_lora * q_dim if q_lora else hidden * q_dim
        kv_a = hidden * (kv_lora + rope) + kv_lora  # kv_a_proj_with_mqa + kv_a_layernorm
        kv_b = kv_lora * heads * (nope + v_dim)
        o = heads * v_dim * hidden
        return q + kv_a + kv_b + o + hidden
    q_dim = heads * head_dim
    kv_dim = kv_heads * head_dim
    return hidden * q_dim + 2 * hidden * kv_dim + q_dim * hidden + hidden


def _vision_params(vision: Mapping[str, Any], text_hidden: int) -> int:
    """Estimate of a ViT tower: blocks, patch/position embeddings, merger or projector."""
    width = int(_first(vision, "embed_dim", "width", "hidden_size", default=0))
    depth = int(_first(vision, "depth", "num_hidden_layers", "num_layers", default=0))
    if not width or not depth:
        return 0
    mlp = _first(vision, "intermediate_size")
    mlp = int(mlp) if mlp else int(width * float(vision.get("mlp_ratio") or 4))
    blocks = depth * (4 * width * width + 2 * width * mlp + 4 * width)
    patch = int(vision.get("patch_size") or 14)
    channels = int(_first(vision, "in_chans", "in_channels", "num_channels", default=3))
    temporal = int(vision.get("temporal_patch_size") or 1)
    embed = channels * temporal * patch * patch * width
    image = vision.get("image_size")
    if vision.get("num_position_embeddings"):  # Qwen3-VL learned position table
        embed += int(vision["num_position_embeddings"]) * width
    elif image:
        embed += (int(image) // patch) ** 2 * width
    out = int(_first(vision, "out_hidden_size", "projector_output_dim", default=text_hidden))
    merge = int(vision.get("spatial_merge_size") or 1)
    if merge > 1:  # Qwen-VL merger: MLP over merge^2 concatenated patches
        merged = width * merge * merge
        # Qwen3-VL adds one merger per deepstack layer
        mergers = 1 + len(vision.get("deepstack_visual_indexes") or [])
        projector = mergers * (merged * merged + merged * out)
    else:
        projector = width * out + out * text_hidden if out != text_hidden else width * out
    return blocks + embed + projector


def _weight_dtypes(
    quant: Mapping[str, Any] | None, dtype: str, is_moe: bool
) -> tuple[str, str, str | None]:
    """(linear dtype, routed-expert dtype, KV dtype the checkpoint asks for) from its quant config."""
    if not quant:
        return dtype, dtype, None
    method = str(quant.get("quant_method") or "").lower()
    algo = str(quant.get("quant_algo") or "").upper()
    excluded = [
        str(m) for m in quant.get("modules_to_not_convert") or quant.get("exclude_modules") or []
    ]
    attention_excluded = any("attn" in name for name in excluded)
    kv_algo = str(quant.get("kv_cache_quant_algo") or "").upper()
    kv_dtype = {"FP8": "fp8", "NVFP4": "nvfp4"}.get(kv_algo)
    if method in ("fp8", "fbgemm_fp8") or (method == "modelopt" and algo.startswith("FP8")):
        linear = dtype if attention_excluded and is_moe else "fp8"
        return linear, "fp8", kv_dtype
    if method == "mxfp4" or (method == "modelopt" and "MXFP4" in algo):
        linear = "mxfp4" if not is_moe else dtype
        return linear, "mxfp4", kv_dtype
    if method == "modelopt" and algo == "NVFP4":
        linear = dtype if attention_excluded and is_moe else "nvfp4"
        return linear, "nvfp4", kv_dtype
    raise ValueError(
        f"quantization_config quant_method={method!r} quant_algo={algo!r} is not supported by "
        "the memory planner (supported: fp8, mxfp4, modelopt FP8/NVFP4/MXFP4)"
    )


def facts_from_config_dict(
    cfg: Mapping[str, Any],
    *,
    hf_id: str = "",
    alias: str = "",
    published_params: int | None = None,
    quant: Mapping[str, Any] | None = None,
    notes: tuple[str, ...] = (),
) -> ModelFacts:
    """ModelFacts from a parsed Hugging Face config.json (multimodal ones via text_config)."""
    text = _text_config(cfg)
    model_type = str(_first(text, "model_type", default=cfg.get("model_type", "")))
    layers = _require_int(text, "num_hidden_layers", "n_layer", "num_layers")
    hidden = _require_int(text, "hidden_size", "n_embd", "d_model")
    heads = _require_int(text, "num_attention_heads", "n_head")
    kv_heads = _require_int(text, "num_key_value_heads", default=heads)
    vocab = _require_int(text, "vocab_size")
    kv_lora = int(text.get("kv_lora_rank") or 0)
    rope_dim = int(text.get("qk_rope_head_dim") or 0) if kv_lora else 0
    if kv_lora:  # MLA: q/k head size is nope + rope; HF's head_dim there means the rope part
        head_dim = int(text["qk_nope_head_dim"]) + rope_dim
    else:
        head_dim = int(_first(text, "head_dim", default=0)) or hidden // heads
    max_pos = int(_first(text, "max_position_embeddings", "n_positions", default=0))

    num_experts = int(
        _first(text, "n_routed_experts", "num_local_experts", "num_experts", default=0)
    )
    top_k = int(_first(text, "num_experts_per_tok", "experts_per_token", "moe_topk", default=0))
    moe_layers = _moe_layers(text, layers, num_experts)
    dense_layers = layers - len(moe_layers)
    expert_inter = int(_first(text, "moe_intermediate_size", "intermediate_size", default=0))
    dense_inter = int(_first(text, "intermediate_size_mlp", "intermediate_size", default=0))
    if text.get("n_shared_experts"):  # DeepSeek: n_shared_experts x moe_intermediate_size
        shared_inter = int(text["n_shared_experts"]) * expert_inter
    elif text.get("shared_expert_intermediate_size"):  # Qwen2-MoE
        shared_inter = int(text["shared_expert_intermediate_size"])
    elif model_type.startswith("llama4") and num_experts:  # Llama-4: one shared expert
        shared_inter = expert_inter
    else:
        shared_inter = 0

    attention_one = _attention_params(text, hidden, heads, kv_heads, head_dim)
    router = num_experts * hidden
    moe_layer_dense = 3 * hidden * shared_inter + router + hidden
    per_expert = 3 * hidden * expert_inter
    attention = layers * attention_one
    mlp = dense_layers * (3 * hidden * dense_inter + hidden) + len(moe_layers) * moe_layer_dense
    experts = len(moe_layers) * num_experts * per_expert

    tie = bool(_first(text, "tie_word_embeddings", default=cfg.get("tie_word_embeddings", True)))
    embedding = vocab * hidden
    lm_head = 0 if tie else vocab * hidden
    vision_cfg = _vision_config(cfg)
    vision = _vision_params(vision_cfg, hidden) if vision_cfg is not None else 0

    mtp_layers = int(text.get("num_nextn_predict_layers") or 0)
    # An MTP module: one decoder layer (MoE when the model is) + eh_proj (2h x h) + 3 norms
    mtp_dense = attention_one + (moe_layer_dense if moe_layers else 3 * hidden * dense_inter)
    mtp_dense += 2 * hidden * hidden + 3 * hidden
    mtp_experts = num_experts * per_expert if moe_layers else 0

    raw_dtype = _first(cfg, "torch_dtype", "dtype", default=None) or _first(
        text, "torch_dtype", "dtype", default="bfloat16"
    )
    dtype = normalize_dtype(str(raw_dtype))
    quant_cfg = quant or _first(cfg, "quantization_config", default=None)
    quant_cfg = quant_cfg or _first(text, "quantization_config", default=None)
    linear_dtype, expert_dtype, kv_dtype = _weight_dtypes(quant_cfg, dtype, bool(moe_layers))
    window, sliding = _sliding_layers(text, layers)

    return ModelFacts(
        hf_id=hf_id,
        alias=alias,
        model_type=model_type,
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        max_position_embeddings=max_pos,
        attention_params=attention,
        mlp_params=mlp,
        expert_params=experts,
        embedding_params=embedding,
        lm_head_params=lm_head,
        vision_params=vision,
        tie_word_embeddings=tie,
        num_experts=num_experts if moe_layers else 0,
        experts_per_token=top_k if moe_layers else 0,
        num_moe_layers=len(moe_layers),
        kv_lora_rank=kv_lora,
        qk_rope_head_dim=rope_dim,
        num_nextn_predict_layers=mtp_layers,
        mtp_params_per_layer=mtp_dense if mtp_layers else 0,
        mtp_expert_params_per_layer=mtp_experts if mtp_layers else 0,
        dtype=dtype,
        linear_weight_dtype=linear_dtype,
        expert_weight_dtype=expert_dtype,
        kv_cache_dtype=kv_dtype or dtype,
        sliding_window=window,
        num_sliding_window_layers=sliding,
        published_params=published_params,
        notes=notes,
    )


def facts_from_hf_config(path: Path, *, hf_id: str | None = None) -> ModelFacts:
    """Read a local Hugging Face config.json (or a model directory holding one).

    A ModelOpt `hf_quant_config.json` beside it is honored when config.json has no
    `quantization_config`. Raises ValueError for configs the planner cannot describe.
    """
    file = path / "config.json" if path.is_dir() else path
    try:
        cfg = json.loads(file.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read Hugging Face config {file}: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ValueError(f"{file}: config.json must be a JSON object")
    quant: Mapping[str, Any] | None = None
    sidecar = file.parent / "hf_quant_config.json"
    if "quantization_config" not in cfg and sidecar.is_file():
        data = json.loads(sidecar.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
        section = data.get("quantization", data) if isinstance(data, dict) else None
        if isinstance(section, dict):
            quant = {"quant_method": "modelopt", **section}
    try:
        return facts_from_config_dict(cfg, hf_id=hf_id or str(file.parent.name), quant=quant)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"{file}: {exc}") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of two equal keys; a config.json with both is refused."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} is given twice")
        result[key] = value
    return result


# --- built-in catalog ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    hf_id: str
    alias: str
    published_params: int | None  # the model card's / safetensors' count; None: not verified
    config: Mapping[str, Any]  # config.json keys the reader uses, under their own names
    notes: tuple[str, ...] = ()


_QWEN3_235B = {
    "model_type": "qwen3_moe",
    "num_hidden_layers": 94,
    "hidden_size": 4096,
    "num_attention_heads": 64,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "vocab_size": 151936,
    "max_position_embeddings": 40960,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "moe_intermediate_size": 1536,
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "torch_dtype": "bfloat16",
}

_LLAMA4_TEXT = {
    "model_type": "llama4_text",
    "num_hidden_layers": 48,
    "hidden_size": 5120,
    "num_attention_heads": 40,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 202048,
    "intermediate_size": 8192,  # per routed/shared expert
    "intermediate_size_mlp": 16384,  # dense (non-MoE) layers
    "num_experts_per_tok": 1,
    "attention_chunk_size": 8192,  # RoPE layers attend within 8192-token chunks
    "no_rope_layer_interval": 4,  # every 4th layer is global (NoPE)
}
_LLAMA4_VISION = {
    "hidden_size": 1408,
    "intermediate_size": 5632,
    "num_hidden_layers": 34,
    "patch_size": 14,
    "image_size": 336,
    "projector_output_dim": 4096,
}

_ENTRIES: tuple[_Entry, ...] = (
    _Entry(
        "Qwen/Qwen3-0.6B",
        "qwen3-0.6b",
        600_000_000,  # model card: 0.6B (0.44B non-embedding)
        {
            "model_type": "qwen3",
            "num_hidden_layers": 28,
            "hidden_size": 1024,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 128,  # explicit; not hidden_size / heads
            "intermediate_size": 3072,
            "vocab_size": 151936,
            "max_position_embeddings": 40960,
            "tie_word_embeddings": True,
            "use_sliding_window": False,
            "torch_dtype": "bfloat16",
        },
    ),
    _Entry(
        "Qwen/Qwen3-32B",
        "qwen3-32b",
        32_800_000_000,  # model card: 32.8B
        {
            "model_type": "qwen3",
            "num_hidden_layers": 64,
            "hidden_size": 5120,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "intermediate_size": 25600,
            "vocab_size": 151936,
            "max_position_embeddings": 40960,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
            "torch_dtype": "bfloat16",
        },
    ),
    _Entry("Qwen/Qwen3-235B-A22B", "qwen3-235b-a22b", 235_000_000_000, _QWEN3_235B),
    _Entry(
        "Qwen/Qwen3-235B-A22B-FP8",
        "qwen3-235b-a22b-fp8",
        235_000_000_000,
        {
            **_QWEN3_235B,
            # quantization_config: fine-grained fp8, 128x128 weight blocks
            "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
        },
    ),
    _Entry(
        "openai/gpt-oss-120b",
        "gpt-oss-120b",
        116_800_000_000,  # model card: 117B total (116.8B), 5.1B active
        {
            "model_type": "gpt_oss",
            "num_hidden_layers": 36,
            "hidden_size": 2880,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "head_dim": 64,
            "intermediate_size": 2880,  # per expert
            "vocab_size": 201088,
            "max_position_embeddings": 131072,
            "num_local_experts": 128,
            "num_experts_per_tok": 4,
            "sliding_window": 128,
            "layer_types": ["sliding_attention", "full_attention"] * 18,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            # Routed experts in MXFP4; attention, router, embeddings, lm_head stay bf16
            "quantization_config": {
                "quant_method": "mxfp4",
                "modules_to_not_convert": [
                    "model.layers.*.self_attn",
                    "model.layers.*.mlp.router",
                    "model.embed_tokens",
                    "lm_head",
                ],
            },
        },
    ),
    _Entry(
        "deepseek-ai/DeepSeek-R1",
        "deepseek-r1",
        671_000_000_000,  # 671B main model; the 685B on the model card adds the 14B MTP module
        {
            "model_type": "deepseek_v3",
            "num_hidden_layers": 61,
            "hidden_size": 7168,
            "num_attention_heads": 128,
            "num_key_value_heads": 128,
            "intermediate_size": 18432,  # dense layers 0..2
            "moe_intermediate_size": 2048,
            "vocab_size": 129280,
            "max_position_embeddings": 163840,
            "n_routed_experts": 256,
            "n_shared_experts": 1,
            "num_experts_per_tok": 8,
            "first_k_dense_replace": 3,
            "moe_layer_freq": 1,
            "q_lora_rank": 1536,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "num_nextn_predict_layers": 1,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
        },
    ),
    _Entry(
        "meta-llama/Llama-3.3-70B-Instruct",
        "llama-3.3-70b",
        70_600_000_000,  # 70.6B (safetensors)
        {
            "model_type": "llama",
            "num_hidden_layers": 80,
            "hidden_size": 8192,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "intermediate_size": 28672,
            "vocab_size": 128256,
            "max_position_embeddings": 131072,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
    ),
    _Entry(
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
        "llama-4-maverick",
        400_000_000_000,  # model card: 400B total, 17B active (vision tower included)
        {
            "model_type": "llama4",
            "text_config": {
                **_LLAMA4_TEXT,
                "num_local_experts": 128,
                "interleave_moe_layer_step": 2,  # odd layers MoE, even layers dense
                "max_position_embeddings": 1048576,
                "tie_word_embeddings": False,
            },
            "vision_config": _LLAMA4_VISION,
            "torch_dtype": "bfloat16",
        },
        (
            "target model of Dynamo's Llama-4 Eagle3 example (nvidia/Llama-4-Maverick-17B-128E-Eagle3)",
        ),
    ),
    _Entry(
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "llama-4-scout",
        109_000_000_000,  # model card: 109B total, 17B active (vision tower included)
        {
            "model_type": "llama4",
            "text_config": {
                **_LLAMA4_TEXT,
                "num_local_experts": 16,
                "interleave_moe_layer_step": 1,  # every layer MoE
                "max_position_embeddings": 10485760,
                "tie_word_embeddings": False,
            },
            "vision_config": _LLAMA4_VISION,
            "torch_dtype": "bfloat16",
        },
        ("used by Dynamo's Llama-4 multimodal (encode/prefill/decode) example",),
    ),
    _Entry(
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8",
        "llama-4-maverick-fp8",
        400_000_000_000,
        {
            "model_type": "llama4",
            "text_config": {
                **_LLAMA4_TEXT,
                "num_local_experts": 128,
                "interleave_moe_layer_step": 2,
                "max_position_embeddings": 1048576,
                "tie_word_embeddings": False,
            },
            "vision_config": _LLAMA4_VISION,
            "torch_dtype": "bfloat16",
            # Routed experts in FP8; the checkpoint lists attention, dense/shared MLPs and the
            # vision tower per layer in modules_to_not_convert (summarized here as patterns).
            "quantization_config": {
                "quant_method": "fbgemm_fp8",
                "modules_to_not_convert": [
                    "language_model.model.layers.*.self_attn",
                    "language_model.model.layers.*.feed_forward.shared_expert",
                    "vision_model",
                ],
            },
        },
        ("FP8 split (experts only) recalled from Meta's release, not checked against the file",),
    ),
    _Entry(
        "google/gemma-3-1b-it",
        "gemma-3-1b",
        1_000_000_000,  # model card: 1B (text only)
        {
            "model_type": "gemma3_text",
            "num_hidden_layers": 26,
            "hidden_size": 1152,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 256,
            "intermediate_size": 6912,
            "vocab_size": 262144,
            "max_position_embeddings": 32768,
            "sliding_window": 512,
            "sliding_window_pattern": 6,  # 5 local : 1 global
            "tie_word_embeddings": True,
            "torch_dtype": "bfloat16",
        },
    ),
    _Entry(
        "google/gemma-3-27b-it",
        "gemma-3-27b",
        27_400_000_000,  # safetensors: 27.4B incl. the SigLIP vision tower
        {
            "model_type": "gemma3",
            "text_config": {
                "model_type": "gemma3_text",
                "num_hidden_layers": 62,
                "hidden_size": 5376,
                "num_attention_heads": 32,
                "num_key_value_heads": 16,
                "head_dim": 128,
                "intermediate_size": 21504,
                "vocab_size": 262208,  # Gemma3TextConfig default; not spelled out in config.json
                "max_position_embeddings": 131072,
                "sliding_window": 1024,
                "sliding_window_pattern": 6,
                "tie_word_embeddings": True,
            },
            "vision_config": {
                "hidden_size": 1152,
                "intermediate_size": 4304,
                "num_hidden_layers": 27,
                "patch_size": 14,
                "image_size": 896,
            },
            "torch_dtype": "bfloat16",
        },
    ),
    _Entry(
        "Qwen/Qwen2-VL-7B-Instruct",
        "qwen2-vl-7b",
        8_290_000_000,  # safetensors: 8.29B incl. the 0.67B vision tower
        {
            "model_type": "qwen2_vl",
            "num_hidden_layers": 28,
            "hidden_size": 3584,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "intermediate_size": 18944,
            "vocab_size": 152064,
            "max_position_embeddings": 32768,
            "sliding_window": 32768,
            "use_sliding_window": False,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "vision_config": {
                "depth": 32,
                "embed_dim": 1280,
                "mlp_ratio": 4,
                "hidden_size": 3584,  # the merger's output width (the LM's hidden_size)
                "patch_size": 14,
                "temporal_patch_size": 2,
                "in_chans": 3,
                "spatial_merge_size": 2,
            },
        },
    ),
    _Entry(
        "Qwen/Qwen3-VL-2B-Instruct",
        "qwen3-vl-2b",
        None,  # ~2B on the model card; no exact count verified
        {
            "model_type": "qwen3_vl",
            "text_config": {
                "model_type": "qwen3_vl_text",
                "num_hidden_layers": 28,
                "hidden_size": 2048,
                "num_attention_heads": 16,
                "num_key_value_heads": 8,
                "head_dim": 128,
                "intermediate_size": 6144,  # not verified (Qwen3-1.7B's value)
                "vocab_size": 151936,
                "max_position_embeddings": 262144,
                "tie_word_embeddings": True,
            },
            "vision_config": {
                "depth": 24,
                "hidden_size": 1024,
                "intermediate_size": 4096,  # not verified
                "out_hidden_size": 2048,
                "patch_size": 16,
                "temporal_patch_size": 2,
                "in_channels": 3,
                "spatial_merge_size": 2,
                "num_position_embeddings": 2304,
                "deepstack_visual_indexes": [5, 11, 17],
            },
            "torch_dtype": "bfloat16",
        },
        ("MLP widths not verified against the published config.json; KV facts are",),
    ),
)


# Catalog repositories gated on Hugging Face (their model pages ask to accept a licence first):
# Meta's Llama and Google's Gemma families. An anonymous download gets 401.
_GATED_ORGANISATIONS = ("meta-llama/", "google/")


# Dynamo's output parsers (--dyn-reasoning-parser, --dyn-tool-call-parser; names from Dynamo's
# lib/parsers reasoning and tool_calling registries) for each model's own output format:
# gpt-oss speaks OpenAI's harmony; DeepSeek-R1 opens its reasoning without a <think> tag (and
# has no function calling); Qwen3 thinks in <think> and calls tools in hermes' <tool_call>
# blocks; Llama 3.3 calls tools in JSON, Llama 4 in Python call syntax.
_LLAMA4 = (None, "pythonic")
_QWEN3 = ("qwen3", "hermes")
_PARSERS: dict[str, tuple[str | None, str | None]] = {
    "openai/gpt-oss-120b": ("gpt_oss", "harmony"),
    "deepseek-ai/DeepSeek-R1": ("deepseek_r1", None),
    "Qwen/Qwen3-0.6B": _QWEN3,
    "Qwen/Qwen3-32B": _QWEN3,
    "Qwen/Qwen3-235B-A22B": _QWEN3,
    "Qwen/Qwen3-235B-A22B-FP8": _QWEN3,
    "Qwen/Qwen3-VL-2B-Instruct": (None, "hermes"),
    "meta-llama/Llama-3.3-70B-Instruct": (None, "llama3_json"),
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct": _LLAMA4,
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": _LLAMA4,
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": _LLAMA4,
}


def _build_catalog() -> dict[str, ModelFacts]:
    catalog: dict[str, ModelFacts] = {}
    for entry in _ENTRIES:
        facts = facts_from_config_dict(
            entry.config,
            hf_id=entry.hf_id,
            alias=entry.alias,
            published_params=entry.published_params,
            notes=entry.notes,
        )
        reasoning, tools = _PARSERS.get(entry.hf_id, (None, None))
        catalog[entry.hf_id] = dataclasses.replace(
            facts,
            gated=entry.hf_id.startswith(_GATED_ORGANISATIONS),
            reasoning_parser=reasoning,
            tool_call_parser=tools,
        )
    return catalog


CATALOG: dict[str, ModelFacts] = _build_catalog()
_BY_KEY: dict[str, ModelFacts] = {
    key.lower(): facts for facts in CATALOG.values() for key in (facts.hf_id, facts.alias)
}


def gated_repository(repo: str) -> bool:
    """A Hugging Face repository that needs an accepted licence and a token: a catalog entry so
    marked, or any repository of an organisation that gates its models (not only those we list)."""
    facts = lookup_model(repo)
    return (facts is not None and facts.gated) or repo.strip().lower().startswith(
        _GATED_ORGANISATIONS
    )


def lookup_model(key: str) -> ModelFacts | None:
    """Catalog facts by Hugging Face id (case-insensitive) or alias; None when unknown."""
    return _BY_KEY.get(key.strip().lower())
