"""GPU-memory planner: hand-computed weights, KV bytes per token, KV capacity and concurrency.

Every expectation is written as the arithmetic it stands for. Shared rules (see
infra/trtllm/memory_plan.py): reserve = 2 GiB + 5% of GPU memory; KV budget = 0.9 x (GPU - weights
- reserve); tokens rounded down to 32-token blocks; a sequence of ISL+OSL = 2048 + 512 =
2560 tokens takes 2560 / 32 = 80 blocks.
"""

from __future__ import annotations

import json

import pytest

from infra.stack.instances import lookup
from infra.trtllm.engine_settings import EngineSettings
from infra.trtllm.memory_plan import (
    FP8_DS_MLA_BYTES_PER_LAYER,
    RolePlan,
    RuntimeReserve,
    format_plan_table,
    kv_bytes_per_token,
    plan_role,
    weight_bytes_per_gpu,
)
from infra.trtllm.model_catalog import ModelFacts, lookup_model

GiB = 2**30
H100 = 80  # GiB
H200 = 141  # GiB
BLOCKS_PER_SEQ = (2048 + 512) // 32  # 80


def _facts(key: str) -> ModelFacts:
    facts = lookup_model(key)
    assert facts is not None
    return facts


def _reserve(gpu_gib: int) -> int:
    return 2 * GiB + -(-gpu_gib * GiB // 20)  # 2 GiB + ceil(5%)


def _kv_tokens(gpu_gib: int, weights: int, per_token: int) -> int:
    budget = (gpu_gib * GiB - weights - _reserve(gpu_gib)) * 9 // 10
    return budget // per_token // 32 * 32


# Llama-3.3-70B: 80 layers, hidden 8192, 64 query heads, 8 KV heads of 128, MLP 28672,
# vocab 128256, untied lm_head, bf16.
LLAMA_ATTENTION = 80 * (2 * 8192 * 64 * 128 + 2 * 8192 * 8 * 128 + 8192)
LLAMA_MLP = 80 * (3 * 8192 * 28672 + 8192)
LLAMA_EMBEDDING = 128256 * 8192
LLAMA_PARAMS = LLAMA_ATTENTION + LLAMA_MLP + 2 * LLAMA_EMBEDDING


@pytest.mark.parametrize(
    ("tp", "kv_dtype", "kv_bytes", "per_token", "weights"),
    [
        # KV: 2 (K,V) x 80 layers x 8/TP heads x 128 x bytes; weights: params x 2 bytes / TP
        (4, "auto", 2, 2 * 80 * (8 // 4) * 128 * 2, LLAMA_PARAMS * 2 // 4),
        (4, "fp8", 1, 2 * 80 * (8 // 4) * 128 * 1, LLAMA_PARAMS * 2 // 4),
        (8, "bfloat16", 2, 2 * 80 * (8 // 8) * 128 * 2, LLAMA_PARAMS * 2 // 8),
        (8, "fp8", 1, 2 * 80 * (8 // 8) * 128 * 1, LLAMA_PARAMS * 2 // 8),
    ],
)
def test_llama_70b_gqa_plan(
    tp: int, kv_dtype: str, kv_bytes: int, per_token: int, weights: int
) -> None:
    facts = _facts("meta-llama/Llama-3.3-70B-Instruct")
    settings = EngineSettings(tensor_parallel_size=tp, kv_cache_dtype=kv_dtype)
    plan = plan_role(facts, settings, H100, tp, gpu="H100")

    assert plan.weight_bytes_per_gpu == weights
    assert plan.kv_bytes_per_token == per_token
    assert plan.kv_cache_dtype == ("bfloat16" if kv_bytes == 2 else "fp8")
    assert plan.reserve_bytes == 6 * GiB  # 2 GiB + 5% of 80 GiB
    tokens = _kv_tokens(H100, weights, per_token)
    assert plan.kv_cache_tokens == tokens
    assert plan.kv_cache_blocks == tokens // 32
    assert plan.max_concurrent_sequences == tokens // 32 // BLOCKS_PER_SEQ
    assert plan.fits and plan.reason is None and plan.notes == ()


def test_llama_70b_tp4_bf16_concrete_figures() -> None:
    """The same plan in plain numbers, as a reader would check it with a calculator."""
    plan = plan_role(_facts("llama-3.3-70b"), EngineSettings(tensor_parallel_size=4), H100, 4)
    assert plan.weight_bytes_per_gpu == 35_276_849_152  # 70,553,698,304 params x 2 B / 4
    assert plan.kv_bytes_per_token == 81_920  # 2 x 80 x 2 x 128 x 2
    # 0.9 x (85,899,345,920 - 35,276,849,152 - 6,442,450,944) = 39,762,041,241 B
    # / 81,920 = 485,376.5 -> 485,376 tokens (15,168 blocks) -> 15,168 // 80 = 189 sequences
    assert plan.kv_cache_tokens == 485_376
    assert plan.max_concurrent_sequences == 189


# DeepSeek-R1: 61 layers (3 dense, 58 MoE), MLA latent 512 + 64, fp8 linear and expert weights,
# bf16 embedding and lm_head (129280 x 7168 each).
DS_Q = 7168 * 1536 + 1536 + 1536 * 128 * (128 + 64)  # q_a_proj, q_a_layernorm, q_b_proj
DS_KV = 7168 * (512 + 64) + 512 + 512 * 128 * (128 + 128)  # kv_a_proj_with_mqa, norm, kv_b_proj
DS_O = 128 * 128 * 7168  # o_proj
DS_ATTENTION = 61 * (DS_Q + DS_KV + DS_O + 7168)  # + input_layernorm
DS_DENSE_MLP = 3 * (3 * 7168 * 18432 + 7168)  # layers 0-2: gate/up/down + norm
DS_SHARED = 58 * (3 * 7168 * 2048 + 256 * 7168 + 7168)  # shared expert + router + norm
DS_MLP = DS_DENSE_MLP + DS_SHARED
DS_EXPERTS = 58 * 256 * 3 * 7168 * 2048
DS_EMBEDDING = 129280 * 7168


def test_deepseek_r1_mla_tp8_without_attention_dp() -> None:
    facts = _facts("deepseek-ai/DeepSeek-R1")
    settings = EngineSettings(
        tensor_parallel_size=8, moe_expert_parallel_size=8, kv_cache_dtype="fp8"
    )
    plan = plan_role(facts, settings, H200, 8, gpu="H200")

    # Everything split 8 ways: fp8 (1 B) layers and experts, bf16 (2 B) embedding + lm_head
    weights = -(-(DS_ATTENTION + DS_MLP + DS_EXPERTS + 2 * DS_EMBEDDING * 2) // 8)
    assert plan.weight_bytes_per_gpu == weights
    assert (plan.moe_tensor_parallel_size, plan.moe_expert_parallel_size) == (1, 8)
    assert plan.kv_bytes_per_token == 61 * (512 + 64) * 1  # MLA: not split by TP
    tokens = _kv_tokens(H200, weights, 61 * 576)
    assert plan.kv_cache_tokens == tokens
    assert plan.attention_dp_size == 1
    assert plan.max_concurrent_sequences == tokens // 32 // BLOCKS_PER_SEQ
    assert plan.fits


def test_deepseek_r1_mla_tp8_with_attention_dp() -> None:
    facts = _facts("deepseek-r1")
    settings = EngineSettings(
        tensor_parallel_size=8,
        moe_expert_parallel_size=8,
        enable_attention_dp=True,
        kv_cache_dtype="fp8",
    )
    plan = plan_role(facts, settings, H200, 8)

    # Attention DP: attention, dense MLP, shared experts, embedding and lm_head replicated;
    # only the routed experts are split (256 / 8 = 32 per rank).
    weights = DS_ATTENTION + DS_MLP + DS_EXPERTS // 8 + 2 * DS_EMBEDDING * 2
    assert plan.weight_bytes_per_gpu == weights
    assert plan.kv_bytes_per_token == 61 * 576
    tokens = _kv_tokens(H200, weights, 61 * 576)
    assert plan.kv_cache_tokens == tokens  # per rank
    assert plan.attention_dp_size == 8
    assert plan.max_concurrent_sequences == (tokens // 32 // BLOCKS_PER_SEQ) * 8


def test_deepseek_r1_fp8_does_not_fit_on_eight_h100() -> None:
    settings = EngineSettings(tensor_parallel_size=8, moe_expert_parallel_size=8)
    plan = plan_role(_facts("deepseek-r1"), settings, H100, 8)
    assert not plan.fits
    assert plan.weight_bytes_per_gpu > 80 * GiB - _reserve(H100)
    assert plan.max_concurrent_sequences == 0


def test_mtp_adds_one_layer_of_weights_and_kv() -> None:
    facts = _facts("deepseek-r1")
    base = EngineSettings(tensor_parallel_size=8, moe_expert_parallel_size=8, kv_cache_dtype="fp8")
    mtp = EngineSettings(
        tensor_parallel_size=8, moe_expert_parallel_size=8, kv_cache_dtype="fp8", mtp_enabled=True
    )
    assert kv_bytes_per_token(facts, mtp) == (61 + 1) * 576
    extra = weight_bytes_per_gpu(facts, mtp) - weight_bytes_per_gpu(facts, base)
    # non-expert MTP layer / 8 + 32 of its 256 experts, all fp8
    expected = facts.mtp_params_per_layer / 8 + 32 * 3 * 7168 * 2048
    assert extra == pytest.approx(expected, abs=1)


def test_weights_alone_do_not_fit() -> None:
    l4 = lookup("g6.xlarge")
    assert l4 is not None
    plan = plan_role(_facts("llama-3.3-70b"), EngineSettings(), l4.gpu_memory_gib, 1, gpu="L4")
    assert plan.weight_bytes_per_gpu == LLAMA_PARAMS * 2  # 141 GB of bf16 on one GPU
    assert not plan.fits
    assert plan.reason is not None and "weights alone need 131.4 GiB" in plan.reason
    assert (plan.kv_cache_tokens, plan.max_concurrent_sequences) == (0, 0)


def test_weights_plus_reserve_do_not_fit() -> None:
    facts = _facts("Qwen/Qwen3-32B")
    weights = facts.total_params * 2  # 65.5 GB = 61.0 GiB of bf16
    plan = plan_role(facts, EngineSettings(), 64, 1)
    assert plan.weight_bytes_per_gpu == weights < 64 * GiB
    assert weights + 2 * GiB + 64 * GiB // 20 > 64 * GiB
    assert not plan.fits
    assert plan.reason is not None and "runtime reserve" in plan.reason


def test_kv_cache_smaller_than_one_sequence_does_not_fit() -> None:
    settings = EngineSettings(max_tokens=1000)
    plan = plan_role(_facts("qwen3-0.6b"), settings, 45, 1, isl=2048, osl=512)
    assert plan.kv_cache_tokens == 1000 // 32 * 32
    assert not plan.fits
    assert plan.reason is not None and "less than one sequence" in plan.reason


def test_max_tokens_caps_and_rounds_to_blocks() -> None:
    facts = _facts("qwen3-0.6b")
    free = EngineSettings()
    capped = EngineSettings(max_tokens=100_000)
    assert plan_role(facts, free, 45, 1).kv_cache_tokens > 100_000
    plan = plan_role(facts, capped, 45, 1)
    assert plan.kv_cache_tokens == 100_000 // 32 * 32  # 99,968
    assert plan.kv_limited_by == "max_tokens"
    assert plan.max_concurrent_sequences == (100_000 // 32) // BLOCKS_PER_SEQ  # 3125 // 80


def test_max_gpu_total_bytes_caps_the_budget() -> None:
    facts = _facts("qwen3-0.6b")
    plan = plan_role(facts, EngineSettings(max_gpu_total_bytes=GiB), 45, 1)
    per_token = 2 * 28 * 8 * 128 * 2  # 114,688
    assert plan.kv_cache_tokens == GiB // per_token // 32 * 32
    assert plan.kv_limited_by == "max_gpu_total_bytes"


@pytest.mark.parametrize("block", [32, 64])
def test_tokens_round_down_to_whole_blocks(block: int) -> None:
    facts = _facts("qwen3-0.6b")
    plan = plan_role(facts, EngineSettings(tokens_per_block=block), 45, 1)
    weights = facts.total_params * 2
    budget = (45 * GiB - weights - _reserve(45)) * 9 // 10
    assert plan.kv_cache_tokens == budget // plan.kv_bytes_per_token // block * block
    assert plan.kv_cache_tokens % block == 0
    assert plan.max_concurrent_sequences == (plan.kv_cache_tokens // block) // -(-2560 // block)


def test_pipeline_parallel_splits_layers() -> None:
    facts = _facts("llama-3.3-70b")
    settings = EngineSettings(tensor_parallel_size=4, pipeline_parallel_size=2)
    plan = plan_role(facts, settings, H100, 8)
    # 40 of 80 layers per rank, split 4 ways; embedding on the first rank, lm_head on the last
    weights = (LLAMA_ATTENTION + LLAMA_MLP) * 40 // 80 * 2 // 4 + LLAMA_EMBEDDING * 2 // 4
    assert plan.weight_bytes_per_gpu == weights
    assert plan.kv_bytes_per_token == 2 * 40 * 2 * 128 * 2
    assert plan.world_size == 8 and plan.notes == ()


def test_uneven_pipeline_parallel_counts_the_fuller_rank() -> None:
    facts = _facts("llama-3.3-70b")
    settings = EngineSettings(tensor_parallel_size=4, pipeline_parallel_size=3)
    assert kv_bytes_per_token(facts, settings) == 2 * 27 * 2 * 128 * 2  # ceil(80 / 3) = 27


def test_attention_dp_on_a_dense_model_replicates_it() -> None:
    facts = _facts("qwen3-0.6b")  # tied embeddings: one embedding tensor, no lm_head copy
    settings = EngineSettings(tensor_parallel_size=2, enable_attention_dp=True)
    plan = plan_role(facts, settings, 45, 2)
    assert plan.weight_bytes_per_gpu == facts.total_params * 2
    assert plan.kv_bytes_per_token == 2 * 28 * 8 * 128 * 2  # all 8 KV heads on each rank
    per_rank = plan.kv_cache_tokens // 32 // BLOCKS_PER_SEQ
    assert plan.max_concurrent_sequences == 2 * per_rank


def test_concurrency_capped_by_max_batch_size_per_rank() -> None:
    facts = _facts("gpt-oss-120b")
    settings = EngineSettings(
        tensor_parallel_size=4,
        moe_expert_parallel_size=4,
        enable_attention_dp=True,
        max_batch_size=256,
    )
    plan = plan_role(facts, settings, H100, 4, role="decode")
    assert plan.kv_cache_tokens // 32 // BLOCKS_PER_SEQ > 256
    assert plan.max_concurrent_sequences == 256 * 4
    assert plan.concurrency_limited_by == "max_batch_size"
    assert any("18 of 36 layers" in note for note in plan.notes)  # sliding window, counted full


def test_kv_heads_replicated_when_tp_exceeds_them() -> None:
    facts = _facts("llama-3.3-70b")
    settings = EngineSettings(tensor_parallel_size=16)
    plan = plan_role(facts, settings, H100, 8, nodes=2)
    assert plan.kv_bytes_per_token == 2 * 80 * 1 * 128 * 2  # at least one head per rank
    assert any("replicated" in note for note in plan.notes)


def test_prefill_sequences_hold_the_prompt_and_one_token() -> None:
    facts = _facts("llama-3.3-70b")
    plan = plan_role(facts, EngineSettings(tensor_parallel_size=4), H100, 4, role="prefill")
    assert plan.tokens_per_sequence == 2048 + 1
    assert plan.max_concurrent_sequences == plan.kv_cache_blocks // -(-2049 // 32)


def test_context_parallel_splits_each_sequence() -> None:
    facts = _facts("llama-3.3-70b")
    cp2 = EngineSettings(tensor_parallel_size=4, context_parallel_size=2)
    plan = plan_role(facts, cp2, H100, 8)
    assert plan.max_concurrent_sequences == plan.kv_cache_blocks // (1280 // 32)


def test_kv_dtypes() -> None:
    ds = _facts("deepseek-r1")
    assert kv_bytes_per_token(ds, EngineSettings()) == 61 * 576 * 2  # auto -> bf16
    assert kv_bytes_per_token(ds, EngineSettings(kv_cache_dtype="nvfp4")) == 61 * 576 * 9 // 16
    ds_mla = EngineSettings(kv_cache_dtype="fp8_ds_mla")
    assert kv_bytes_per_token(ds, ds_mla) == 61 * FP8_DS_MLA_BYTES_PER_LAYER == 61 * 656
    with pytest.raises(ValueError, match="MLA models only"):
        kv_bytes_per_token(_facts("llama-3.3-70b"), ds_mla)
    with pytest.raises(ValueError, match="unknown dtype"):
        kv_bytes_per_token(ds, EngineSettings(kv_cache_dtype="int3"))


def test_world_size_and_length_mismatches_are_noted() -> None:
    facts = _facts("qwen3-0.6b")
    plan = plan_role(facts, EngineSettings(max_seq_len=2048), 45, 2, isl=40000, osl=1000)
    text = " ".join(plan.notes)
    assert "world size" in text
    assert "max_seq_len 2048" in text
    assert "40960 positions" in text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tensor_parallel_size": 0}, "tensor_parallel_size"),
        ({"tensor_parallel_size": 8, "moe_expert_parallel_size": 3}, "divide"),
        (
            {
                "tensor_parallel_size": 8,
                "moe_expert_parallel_size": 2,
                "moe_tensor_parallel_size": 2,
            },
            "equal",
        ),
        ({"free_gpu_memory_fraction": 1.5}, "free_gpu_memory_fraction"),
    ],
)
def test_invalid_settings_raise(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineSettings(**kwargs)  # type: ignore[arg-type]


def test_moe_split_follows_trtllm_defaults() -> None:
    assert EngineSettings(tensor_parallel_size=8).moe_split == (8, 1)
    assert EngineSettings(tensor_parallel_size=8, moe_expert_parallel_size=4).moe_split == (2, 4)
    assert EngineSettings(tensor_parallel_size=8, moe_tensor_parallel_size=2).moe_split == (2, 4)


def test_windows_and_draft_models_are_noted() -> None:
    args = {
        "kv_cache_config": {"max_attention_window": [512, 512, 512, 512, 512, 32768]},
        "speculative_config": {"decoding_type": "Eagle3", "max_draft_len": 3},
    }
    settings = EngineSettings.from_llm_args(args)
    assert settings.max_attention_window == (512, 512, 512, 512, 512, 32768)
    assert (settings.speculative_decoding_type, settings.mtp_enabled) == ("Eagle3", False)
    text = " ".join(plan_role(_facts("gemma-3-1b"), settings, 45, 1).notes)
    assert "max_attention_window" in text
    assert "Eagle3 draft model" in text
    assert "22 of 26 layers keep only a 512-token window" in text


def test_settings_from_llm_args() -> None:
    args = {
        "tensor_parallel_size": 16,
        "moe_expert_parallel_size": 16,
        "enable_attention_dp": True,
        "max_batch_size": 128,
        "max_num_tokens": 512,
        "max_seq_len": 9216,
        "kv_cache_config": {"free_gpu_memory_fraction": 0.8, "dtype": "fp8"},
        "speculative_config": {"decoding_type": "MTP", "num_nextn_predict_layers": 1},
        "moe_config": {"load_balancer": {"num_slots": 288}},
    }
    settings = EngineSettings.from_llm_args(args)
    assert settings == EngineSettings(
        tensor_parallel_size=16,
        moe_expert_parallel_size=16,
        enable_attention_dp=True,
        kv_cache_dtype="fp8",
        free_gpu_memory_fraction=0.8,
        max_batch_size=128,
        max_seq_len=9216,
        max_num_tokens=512,
        speculative_decoding_type="MTP",
        mtp_enabled=True,
        moe_num_slots=288,
    )
    assert EngineSettings.from_llm_args({}) == EngineSettings()


def test_load_balancer_slots_add_experts_per_rank() -> None:
    facts = _facts("deepseek-r1")
    base = EngineSettings(tensor_parallel_size=16, moe_expert_parallel_size=16)
    eplb = EngineSettings(tensor_parallel_size=16, moe_expert_parallel_size=16, moe_num_slots=288)
    extra = weight_bytes_per_gpu(facts, eplb) - weight_bytes_per_gpu(facts, base)
    # 288 / 16 = 18 instead of 256 / 16 = 16 experts per rank, on 58 layers, fp8
    assert extra == 58 * (18 - 16) * 3 * 7168 * 2048


def test_custom_reserve() -> None:
    facts = _facts("qwen3-0.6b")
    plan = plan_role(facts, EngineSettings(), 45, 1, reserve=RuntimeReserve(GiB, 0.0))
    assert plan.reserve_bytes == GiB


def _sample_plans() -> list[RolePlan]:
    return [
        plan_role(
            _facts("llama-3.3-70b"), EngineSettings(tensor_parallel_size=4), H100, 4, gpu="H100"
        ),
        plan_role(_facts("llama-3.3-70b"), EngineSettings(), 22.4, 1, gpu="L4", role="decode"),
    ]


def test_to_dict_is_json_ready() -> None:
    data = _sample_plans()[0].to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["weightBytesPerGpu"] == 35_276_849_152
    assert isinstance(data["kvCacheTokens"], int)
    assert data["weightGibPerGpu"] == 32.85  # 35,276,849,152 / 2^30 = 32.854...
    assert data["fits"] is True and data["reason"] is None


def test_format_plan_table_aligns_columns() -> None:
    table = format_plan_table(_sample_plans())
    lines = table.splitlines()
    header, rule, first, second, reason = lines
    assert header.split()[:3] == ["model", "role", "GPUs×nodes"]
    assert "485,376" in first and "189 @ 2048/512" in first and first.rstrip().endswith("yes")
    assert second.rstrip().endswith("NO")
    assert reason.startswith("llama-3.3-70b decode: weights alone need")
    # every column starts at the same offset on each row (rule dashes mark the columns)
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    for row in (header, first, second):
        for start in starts[1:]:
            assert row[start - 2 : start] == "  "
