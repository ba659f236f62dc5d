"""Engine-config rules beyond the schema: what makes a worker fail at start-up."""

from __future__ import annotations

import pytest

from infra.trtllm.engine_config import EngineConfigResult, check_engine_config_text
from infra.trtllm.engine_rules import (
    WorkerShape,
    disaggregated_pair_issues,
    file_rule_issues,
    stack_rule_issues,
)
from infra.trtllm.engine_schema import TorchLlmArgs


def parsed(text: str) -> EngineConfigResult:
    result = check_engine_config_text(text)
    assert result.args is not None, result.issues
    return result


def args(text: str) -> TorchLlmArgs:
    result = parsed(text).args
    assert result is not None
    return result


def on_stack(text: str, shape: WorkerShape) -> list:
    result = parsed(text)
    assert result.args is not None
    return stack_rule_issues(result.args, result.raw, shape)


def keys(issues: list) -> list[str]:
    return [issue.key_path for issue in issues]


def test_attention_dp_with_one_rank_is_a_warning_on_the_effective_layout() -> None:
    """Upstream's gpt-oss decode.yaml: attention DP on, TP given on the command line."""
    assert file_rule_issues(parsed("enable_attention_dp: true\n"), None) == []
    assert on_stack("enable_attention_dp: true\n", WorkerShape(4, 1)) == []  # TP 4 from flags
    (issue,) = on_stack("enable_attention_dp: true\n", WorkerShape(1, 1))
    assert issue.key_path == "enable_attention_dp" and issue.severity == "warning"


def test_tensor_parallelism_not_stated_is_what_the_command_line_gives() -> None:
    assert on_stack("max_batch_size: 8\n", WorkerShape(8, 2)) == []  # TP 16 on the flags
    assert on_stack("pipeline_parallel_size: 2\n", WorkerShape(8, 1)) == []  # TP 4 x PP 2
    assert keys(on_stack("tensor_parallel_size: 4\n", WorkerShape(8, 1))) == [
        "tensor_parallel_size"
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tensor_parallel_size: 8\nmoe_expert_parallel_size: 3\n", "moe_expert_parallel_size"),
        (
            "tensor_parallel_size: 8\nmoe_expert_parallel_size: 4\nmoe_tensor_parallel_size: 4\n",
            "moe_tensor_parallel_size",
        ),
        ("tensor_parallel_size: 4\nmoe_tensor_parallel_size: 3\n", "moe_tensor_parallel_size"),
    ],
)
def test_expert_parallelism_must_divide_the_gpus(text: str, key: str) -> None:
    assert keys(file_rule_issues(parsed(text), None)) == [key]


def test_expert_parallelism_that_divides_is_fine() -> None:
    text = "tensor_parallel_size: 8\nmoe_expert_parallel_size: 4\nmoe_tensor_parallel_size: 2\n"
    assert file_rule_issues(parsed(text), None) == []


def test_cuda_graph_batches_beyond_max_batch_size_are_a_warning() -> None:
    """TensorRT-LLM drops graph sizes above max_batch_size (_filter_cuda_graph_batch_sizes);
    the worker starts, so this is said, not refused."""
    text = "max_batch_size: 16\ncuda_graph_config:\n  batch_sizes: [1, 8, 32, 64]\n"
    (issue,) = file_rule_issues(parsed(text), None)
    assert issue.key_path == "cuda_graph_config.batch_sizes" and issue.severity == "warning"
    assert "[32, 64]" in issue.message and "max_batch_size 16" in issue.message
    assert "does not capture them" in issue.message
    text = "max_batch_size: 16\ncuda_graph_config:\n  max_batch_size: 64\n"
    (issue,) = file_rule_issues(parsed(text), None)
    assert issue.key_path == "cuda_graph_config.max_batch_size" and issue.severity == "warning"


def test_upstream_qwen3_prefill_graph_sizes_are_not_an_error() -> None:
    """Upstream's Qwen3-32B disaggregated prefill: max_batch_size 1 with decode's graph sizes."""
    text = (
        "max_batch_size: 1\ncache_transceiver_config:\n  backend: DEFAULT\n"
        "cuda_graph_config:\n  enable_padding: true\n  batch_sizes: [1, 2, 4, 8, 16]\n"
    )
    issues = file_rule_issues(parsed(text), "prefill")
    assert [i.severity for i in issues] == ["warning"]
    assert "padded batches stop at 1" in issues[0].message


@pytest.mark.parametrize(
    ("key", "other"),
    [("moe_expert_parallel_size", "moe_tensor_parallel_size"), ("moe_tensor_parallel_size", None)],
)
def test_zero_moe_parallel_sizes_are_a_schema_error_not_a_crash(
    key: str, other: str | None
) -> None:
    text = f"tensor_parallel_size: 4\n{key}: 0\n" + (f"{other}: 2\n" if other else "")
    result = check_engine_config_text(text)
    assert result.args is None and key in [i.key_path for i in result.issues]
    assert file_rule_issues(result, "decode") == []  # no rule runs on an invalid file


def test_default_cuda_graphs_are_left_to_tensorrt_llm() -> None:
    # TensorRT-LLM picks its own graph sizes when the file states none.
    assert file_rule_issues(parsed("max_batch_size: 4\n"), None) == []
    padded = "max_batch_size: 4\ncuda_graph_config:\n  enable_padding: true\n"
    assert file_rule_issues(parsed(padded), None) == []


@pytest.mark.parametrize("role", ["prefill", "decode"])
def test_disaggregated_roles_need_a_cache_transceiver(role: str) -> None:
    assert keys(file_rule_issues(parsed("max_batch_size: 8\n"), role)) == [
        "cache_transceiver_config"
    ]
    ok = "cache_transceiver_config:\n  backend: DEFAULT\n"
    assert file_rule_issues(parsed(ok), role) == []
    assert file_rule_issues(parsed("max_batch_size: 8\n"), "agg") == []


def test_parallel_layout_must_use_exactly_the_workers_gpus() -> None:
    layout = "tensor_parallel_size: 8\npipeline_parallel_size: 2\n"
    assert on_stack(layout, WorkerShape(8, 2)) == []
    (issue,) = on_stack(layout, WorkerShape(8, 1))
    assert issue.key_path == "tensor_parallel_size"
    assert "spans 16 GPUs" in issue.message and "gets 8" in issue.message


def test_context_parallelism_counts_towards_the_gpus() -> None:
    layout = "tensor_parallel_size: 2\ncontext_parallel_size: 2\n"
    assert on_stack(layout, WorkerShape(4, 1)) == []
    assert keys(on_stack(layout, WorkerShape(2, 1))) == ["tensor_parallel_size"]


def test_kv_routed_roles_need_no_event_buffer_in_the_file() -> None:
    """The worker sets event_buffer_max_size itself under --publish-events-and-metrics."""
    assert on_stack("max_batch_size: 8\n", WorkerShape(1, 1)) == []


def _pair(prefill: str, decode: str) -> list[tuple[str, str, str]]:
    found = disaggregated_pair_issues(parsed(prefill), parsed(decode))
    return [(role, issue.key_path, issue.message) for role, issue in found]


def test_prefill_and_decode_must_agree_on_tokens_per_block() -> None:
    """TensorRT-LLM's KV transfer needs the same tokens per block on both sides."""
    base = "cache_transceiver_config:\n  backend: DEFAULT\n"
    block = base + "kv_cache_config:\n  tokens_per_block: {}\n"
    assert _pair(block.format(64), block.format(64)) == []
    assert _pair(base, block.format(32)) == []  # 32 is TensorRT-LLM's default
    ((role, key, message),) = _pair(block.format(32), block.format(64))
    assert (role, key) == ("decode", "kv_cache_config.tokens_per_block")
    assert "64 tokens per KV block here, 32 in the prefill engine config" in message
    ((role, key, message),) = _pair(block.format(16), base)
    assert (role, key) == ("prefill", "kv_cache_config.tokens_per_block")
    assert "32 (TensorRT-LLM's default) in the decode engine config" in message


def test_the_pair_rule_is_located_at_the_key() -> None:
    decode = parsed("kv_cache_config:\n  dtype: auto\n  tokens_per_block: 64\n")
    ((_, issue),) = disaggregated_pair_issues(parsed("max_batch_size: 8\n"), decode)
    assert decode.locate(issue).line == 3
