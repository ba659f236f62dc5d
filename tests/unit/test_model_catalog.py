"""Model catalog and config.json reader: facts, computed parameter counts, config variants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.trtllm import model_catalog
from infra.trtllm.model_catalog import (
    CATALOG,
    ModelFacts,
    dtype_bytes,
    facts_from_config_dict,
    facts_from_hf_config,
    lookup_model,
    normalize_dtype,
)


def _facts(key: str) -> ModelFacts:
    facts = lookup_model(key)
    assert facts is not None, key
    return facts


# --- catalog ------------------------------------------------------------------------------


PUBLISHED = sorted(hf_id for hf_id, f in CATALOG.items() if f.published_params is not None)


@pytest.mark.parametrize("hf_id", PUBLISHED)
def test_computed_parameters_match_published_size(hf_id: str) -> None:
    """Computing parameters from the architecture checks the catalog's config facts too."""
    facts = CATALOG[hf_id]
    assert facts.published_params is not None
    assert facts.total_params == pytest.approx(facts.published_params, rel=0.02)


def test_almost_every_entry_has_a_published_size() -> None:
    unverified = sorted(set(CATALOG) - set(PUBLISHED))
    assert unverified == ["Qwen/Qwen3-VL-2B-Instruct"]


def test_required_models_are_in_the_catalog() -> None:
    for hf_id in (
        "Qwen/Qwen3-0.6B",
        "openai/gpt-oss-120b",
        "deepseek-ai/DeepSeek-R1",
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
        "google/gemma-3-1b-it",
        "google/gemma-3-27b-it",
        "Qwen/Qwen2-VL-7B-Instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "Qwen/Qwen3-32B",
        "Qwen/Qwen3-235B-A22B",
        "Qwen/Qwen3-235B-A22B-FP8",
    ):
        assert hf_id in CATALOG


def test_lookup_by_id_case_insensitive_and_alias() -> None:
    facts = CATALOG["deepseek-ai/DeepSeek-R1"]
    assert lookup_model("deepseek-ai/DeepSeek-R1") is facts
    assert lookup_model("DEEPSEEK-AI/deepseek-r1") is facts
    assert lookup_model("deepseek-r1") is facts
    assert lookup_model(" gpt-oss-120b ") is CATALOG["openai/gpt-oss-120b"]
    assert lookup_model("no/such-model") is None


def test_aliases_are_unique() -> None:
    aliases = [facts.alias for facts in CATALOG.values()]
    assert len(aliases) == len(set(aliases))


def test_llama_3_3_70b_parameters_by_hand() -> None:
    facts = _facts("llama-3.3-70b")
    hidden, layers, q_dim, kv_dim = 8192, 80, 64 * 128, 8 * 128
    attention = layers * (2 * hidden * q_dim + 2 * hidden * kv_dim + hidden)  # q,o + k,v + norm
    mlp = layers * (3 * hidden * 28672 + hidden)  # gate, up, down + post-attention norm
    embedding = 128256 * hidden
    assert facts.attention_params == attention
    assert facts.mlp_params == mlp
    assert facts.total_params == attention + mlp + 2 * embedding  # lm_head untied
    assert (facts.is_moe, facts.is_mla) == (False, False)
    assert facts.kv_values_per_token_per_layer == 2 * 8 * 128


def test_deepseek_r1_mla_and_moe_facts() -> None:
    facts = _facts("deepseek-r1")
    assert facts.is_mla and facts.is_moe
    assert (facts.kv_lora_rank, facts.qk_rope_head_dim) == (512, 64)
    assert facts.kv_values_per_token_per_layer == 512 + 64
    assert (facts.num_experts, facts.experts_per_token, facts.num_moe_layers) == (256, 8, 58)
    # 61 layers - first_k_dense_replace 3 = 58 MoE layers of 256 experts of 3 x 7168 x 2048
    assert facts.expert_params == 58 * 256 * 3 * 7168 * 2048
    q_a_proj, q_a_layernorm, q_b_proj = 7168 * 1536, 1536, 1536 * 128 * (128 + 64)
    kv_a_proj_with_mqa, kv_a_layernorm = 7168 * (512 + 64), 512
    kv_b_proj = 512 * 128 * (128 + 128)  # k_nope and v for 128 heads
    o_proj, input_layernorm = 128 * 128 * 7168, 7168
    attention_layer = (
        q_a_proj
        + q_a_layernorm
        + q_b_proj
        + kv_a_proj_with_mqa
        + kv_a_layernorm
        + kv_b_proj
        + o_proj
        + input_layernorm
    )
    assert facts.attention_params == 61 * attention_layer
    assert (facts.linear_weight_dtype, facts.expert_weight_dtype) == ("fp8", "fp8")
    assert facts.kv_cache_dtype == "bfloat16"  # no kv_cache_quant_algo: auto means torch_dtype
    assert facts.num_nextn_predict_layers == 1
    assert facts.mtp_expert_params_per_layer == 256 * 3 * 7168 * 2048
    # Active parameters: published 37B
    assert facts.active_params == pytest.approx(37e9, rel=0.03)


def test_gpt_oss_quantizes_only_experts() -> None:
    facts = _facts("gpt-oss-120b")
    assert (facts.linear_weight_dtype, facts.expert_weight_dtype) == ("bfloat16", "mxfp4")
    assert dtype_bytes("mxfp4") == 0.5 + 1 / 32  # 4-bit values + one 8-bit scale per 32
    expected = (
        facts.expert_params * (0.5 + 1 / 32)
        + (facts.attention_params + facts.mlp_params + facts.embedding_params) * 2
        + facts.lm_head_params * 2
    )
    assert facts.checkpoint_bytes == pytest.approx(expected, abs=1)
    assert facts.checkpoint_bytes == pytest.approx(65e9, rel=0.03)  # the ~65 GB download
    assert (facts.sliding_window, facts.num_sliding_window_layers) == (128, 18)


def test_gemma_3_sliding_window_layers() -> None:
    small, large = _facts("gemma-3-1b"), _facts("gemma-3-27b")
    # sliding_window_pattern 6: every 6th layer global -> 26 layers: 4 global; 62 layers: 10 global
    assert (small.sliding_window, small.num_sliding_window_layers) == (512, 26 - 4)
    assert (large.sliding_window, large.num_sliding_window_layers) == (1024, 62 - 10)
    assert small.tie_word_embeddings and small.lm_head_params == 0
    assert large.vision_params > 0 and small.vision_params == 0


def test_llama_4_maverick_alternates_dense_and_moe_layers() -> None:
    facts = _facts("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    assert (facts.num_moe_layers, facts.num_experts, facts.experts_per_token) == (24, 128, 1)
    assert facts.expert_params == 24 * 128 * 3 * 5120 * 8192
    # 24 dense layers (intermediate_size_mlp 16384) + 24 shared experts (8192) + routers + norms
    assert facts.mlp_params == 24 * (3 * 5120 * 16384 + 5120) + 24 * (
        3 * 5120 * 8192 + 128 * 5120 + 5120
    )
    scout = _facts("llama-4-scout")
    assert (scout.num_moe_layers, scout.num_experts) == (48, 16)


def test_llama_4_maverick_fp8_quantizes_only_routed_experts() -> None:
    fp8, bf16 = _facts("llama-4-maverick-fp8"), _facts("llama-4-maverick")
    assert (fp8.linear_weight_dtype, fp8.expert_weight_dtype) == ("bfloat16", "fp8")
    assert fp8.total_params == bf16.total_params
    assert bf16.checkpoint_bytes - fp8.checkpoint_bytes == fp8.expert_params  # 2 B -> 1 B


def test_qwen3_vl_2b_kv_facts() -> None:
    facts = _facts("Qwen/Qwen3-VL-2B-Instruct")
    assert facts.num_hidden_layers == 28
    assert facts.kv_values_per_token_per_layer == 2 * 8 * 128
    assert facts.vision_params > 0 and facts.tie_word_embeddings


def test_vision_tower_counted_for_qwen2_vl() -> None:
    facts = _facts("qwen2-vl-7b")
    assert facts.vision_params == pytest.approx(675e6, rel=0.03)
    assert facts.total_params - facts.vision_params == pytest.approx(7.6e9, rel=0.02)


def test_normalize_dtype() -> None:
    assert normalize_dtype("bf16") == "bfloat16"
    assert normalize_dtype("torch.float16") == "float16"
    assert normalize_dtype("FP8") == "fp8"
    with pytest.raises(ValueError, match="unknown dtype"):
        normalize_dtype("int3")


def test_catalog_entries_read_back_from_files_identically(tmp_path: Path) -> None:
    """The catalog and the config.json reader share one code path."""
    for entry in model_catalog._ENTRIES:
        path = tmp_path / entry.alias / "config.json"
        path.parent.mkdir()
        path.write_text(json.dumps(entry.config))
        read = facts_from_hf_config(path, hf_id=entry.hf_id)
        built = CATALOG[entry.hf_id]
        assert read.total_params == built.total_params
        assert read.kv_values_per_token_per_layer == built.kv_values_per_token_per_layer
        assert read.expert_weight_dtype == built.expert_weight_dtype


# --- facts_from_hf_config -----------------------------------------------------------------

TINY_DENSE: dict[str, Any] = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 100,
    "max_position_embeddings": 4096,
    "torch_dtype": "bfloat16",
}
# head_dim missing -> 64 // 4 = 16; per layer: q,o 2*64*64, k,v 2*64*(2*16), norm 64
TINY_ATTENTION = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 64)
TINY_MLP = 2 * (3 * 64 * 128 + 64)


def _write(tmp_path: Path, cfg: dict[str, Any], name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return path


def test_reads_dense_config_and_derives_head_dim(tmp_path: Path) -> None:
    facts = facts_from_hf_config(_write(tmp_path, TINY_DENSE))
    assert facts.head_dim == 64 // 4
    assert facts.attention_params == TINY_ATTENTION
    assert facts.mlp_params == TINY_MLP
    # tie_word_embeddings absent -> transformers' default True -> no separate lm_head
    assert facts.tie_word_embeddings and facts.lm_head_params == 0
    assert facts.total_params == TINY_ATTENTION + TINY_MLP + 100 * 64
    assert (facts.is_moe, facts.is_mla) == (False, False)
    assert facts.max_position_embeddings == 4096
    assert facts.hf_id == tmp_path.name


def test_reads_a_model_directory(tmp_path: Path) -> None:
    _write(tmp_path, TINY_DENSE)
    assert facts_from_hf_config(tmp_path).num_hidden_layers == 2


def test_reads_text_config_nested_multimodal_config(tmp_path: Path) -> None:
    text = {k: v for k, v in TINY_DENSE.items() if k != "torch_dtype"}
    cfg = {
        "model_type": "tiny_vl",
        "torch_dtype": "float16",
        "tie_word_embeddings": False,
        "text_config": {**text, "head_dim": 32},
        "vision_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "patch_size": 4,
            "image_size": 16,
        },
    }
    facts = facts_from_hf_config(_write(tmp_path, cfg))
    assert facts.head_dim == 32
    assert facts.dtype == facts.linear_weight_dtype == facts.kv_cache_dtype == "float16"
    assert facts.lm_head_params == 100 * 64
    # vision: 2 blocks of (4*32^2 + 2*32*64 + 4*32) + patch 3*4*4*32 + positions (16/4)^2*32
    # + projector 32 -> 64
    blocks = 2 * (4 * 32 * 32 + 2 * 32 * 64 + 4 * 32)
    assert facts.vision_params == blocks + 3 * 4 * 4 * 32 + 16 * 32 + 32 * 64


def test_reads_deepseek_style_mla_moe_with_fp8(tmp_path: Path) -> None:
    cfg = {
        "model_type": "deepseek_v3",
        "num_hidden_layers": 3,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 128,
        "moe_intermediate_size": 16,
        "vocab_size": 100,
        "n_routed_experts": 4,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "first_k_dense_replace": 1,
        "q_lora_rank": 32,
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 4,
        "v_head_dim": 8,
        "num_nextn_predict_layers": 1,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
    }
    facts = facts_from_hf_config(_write(tmp_path, cfg))
    assert facts.is_mla and facts.is_moe
    assert facts.num_moe_layers == 2  # layers 1 and 2
    assert facts.expert_params == 2 * 4 * 3 * 64 * 16
    assert facts.params_per_expert == 3 * 64 * 16
    q_a, q_a_norm, q_b = 64 * 32, 32, 32 * 4 * (8 + 4)
    kv_a, kv_a_norm, kv_b = 64 * (16 + 4), 16, 16 * 4 * (8 + 8)
    o, input_norm = 4 * 8 * 64, 64
    attention_layer = q_a + q_a_norm + q_b + kv_a + kv_a_norm + kv_b + o + input_norm
    assert facts.attention_params == 3 * attention_layer
    # 1 dense layer + 2 MoE layers with one shared expert, a router and a norm each
    assert facts.mlp_params == (3 * 64 * 128 + 64) + 2 * (3 * 64 * 16 + 4 * 64 + 64)
    assert facts.kv_values_per_token_per_layer == 16 + 4
    assert facts.head_dim == 8 + 4
    assert (facts.linear_weight_dtype, facts.expert_weight_dtype) == ("fp8", "fp8")
    assert facts.num_nextn_predict_layers == 1


def test_reads_qwen3_moe_style_with_dense_only_layers(tmp_path: Path) -> None:
    cfg = {
        **TINY_DENSE,
        "model_type": "qwen3_moe",
        "num_hidden_layers": 3,
        "head_dim": 16,
        "num_experts": 8,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 16,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [0],
    }
    facts = facts_from_hf_config(_write(tmp_path, cfg))
    assert (facts.num_moe_layers, facts.num_experts, facts.experts_per_token) == (2, 8, 2)
    assert facts.expert_params == 2 * 8 * 3 * 64 * 16
    assert facts.mlp_params == (3 * 64 * 128 + 64) + 2 * (8 * 64 + 64)  # dense + router/norm
    assert facts.active_params == facts.total_params - facts.expert_params * 6 // 8


def test_reads_gpt_oss_style_mxfp4_and_layer_types(tmp_path: Path) -> None:
    cfg = {
        **TINY_DENSE,
        "model_type": "gpt_oss",
        "num_local_experts": 4,
        "experts_per_token": 2,
        "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"],
        "quantization_config": {
            "quant_method": "mxfp4",
            "modules_to_not_convert": ["model.layers.*.self_attn", "lm_head"],
        },
    }
    facts = facts_from_hf_config(_write(tmp_path, cfg))
    assert (facts.num_experts, facts.experts_per_token, facts.num_moe_layers) == (4, 2, 2)
    assert facts.expert_params == 2 * 4 * 3 * 64 * 128  # expert size from intermediate_size
    assert (facts.linear_weight_dtype, facts.expert_weight_dtype) == ("bfloat16", "mxfp4")
    assert (facts.sliding_window, facts.num_sliding_window_layers) == (128, 1)


def test_reads_llama_4_style_nested_interleaved_moe(tmp_path: Path) -> None:
    cfg = {
        "model_type": "llama4",
        "torch_dtype": "bfloat16",
        "text_config": {
            **TINY_DENSE,
            "model_type": "llama4_text",
            "num_hidden_layers": 4,
            "intermediate_size": 32,
            "intermediate_size_mlp": 128,
            "num_local_experts": 4,
            "num_experts_per_tok": 1,
            "interleave_moe_layer_step": 2,
            "tie_word_embeddings": False,
        },
    }
    facts = facts_from_hf_config(_write(tmp_path, cfg))
    assert facts.num_moe_layers == 2  # layers 1 and 3
    assert facts.expert_params == 2 * 4 * 3 * 64 * 32
    # 2 dense layers (intermediate_size_mlp) + 2 shared experts (intermediate_size) + routers
    assert facts.mlp_params == 2 * (3 * 64 * 128 + 64) + 2 * (3 * 64 * 32 + 4 * 64 + 64)


def test_modelopt_sidecar_sets_fp8_weights_and_kv(tmp_path: Path) -> None:
    path = _write(tmp_path, TINY_DENSE)
    sidecar = {"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}}
    _write(tmp_path, sidecar, "hf_quant_config.json")
    facts = facts_from_hf_config(path)
    assert (facts.linear_weight_dtype, facts.kv_cache_dtype, facts.dtype) == (
        "fp8",
        "fp8",
        "bfloat16",
    )


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        ({"hidden_size": 64}, "num_hidden_layers"),
        ({**TINY_DENSE, "quantization_config": {"quant_method": "awq"}}, "not supported"),
        ({**TINY_DENSE, "torch_dtype": "int3"}, "unknown dtype"),
    ],
)
def test_unusable_configs_raise_value_error(
    tmp_path: Path, cfg: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        facts_from_hf_config(_write(tmp_path, cfg))


def test_unreadable_config_raises_value_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        facts_from_hf_config(path)
    with pytest.raises(ValueError, match="cannot read"):
        facts_from_hf_config(tmp_path / "missing.json")


def test_config_dict_reader_keeps_given_identity() -> None:
    facts = facts_from_config_dict(TINY_DENSE, hf_id="org/tiny", alias="tiny", published_params=1)
    assert (facts.hf_id, facts.alias, facts.published_params) == ("org/tiny", "tiny", 1)
