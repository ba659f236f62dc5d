"""Our TensorRT-LLM engine-config schema: drift against the field inventory, and behaviour.

The drift tests compare ``infra.trtllm.engine_schema`` with
``../shared/reference/trtllm/llm_args_fields.json`` (field names, aliases,
Literal values, bounds, defaults, enums and union members), so a new
TensorRT-LLM snapshot shows exactly what changed. The behaviour tests cover
what a user notices when an engine config is wrong.
"""

from __future__ import annotations

import json
import re
import sys
import types
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from infra.stack.errors import ConfigIssue
from infra.trtllm.engine_config import (
    EngineConfigIssue,
    check_engine_config_data,
    check_engine_config_file,
    check_engine_config_text,
    tensorrt_llm_issues,
)
from infra.trtllm.engine_rules import file_rule_issues
from infra.trtllm.engine_schema import (
    INVENTORY_ENUMS,
    INVENTORY_EXTENSIONS,
    INVENTORY_MODELS,
    INVENTORY_UNIONS,
    Eagle3DecodingConfig,
    EncodeCudaGraphConfig,
    LoadFormat,
    TorchLlmArgs,
    union_members,
    yaml_keys,
)

# Inventory entries that have no schema class, and why.
NOT_MODELLED = {
    "_ParallelConfig (internal; not user-facing YAML)": (
        "internal: TensorRT-LLM builds it from the top-level parallel sizes; "
        "it is not a key of the YAML"
    ),
    "LoadFormat (Enum)": (
        "an enum, not a model: its members are compared in test_enums_match_inventory"
    ),
}
ENUMS_NOT_MODELLED = {
    "BatchingType": "used only by the TensorRT-engine backend; no PyTorch field takes it",
}
# Defaults that differ from the inventory on purpose.
DEFAULT_EXCEPTIONS = {
    ("TorchLlmArgs", "model"): "required in TensorRT-LLM; Dynamo passes it on the command line",
    ("BaseLlmArgs", "model"): "required in TensorRT-LLM; Dynamo passes it on the command line",
    (
        "TorchLlmArgs",
        "telemetry_config",
    ): "TelemetryConfig with its defaults (the inventory shows a factory)",
    (
        "BaseLlmArgs",
        "telemetry_config",
    ): "TelemetryConfig with its defaults (the inventory shows a factory)",
    ("TorchLlmArgs", "load_format"): "inventory spells the enum member as 'LoadFormat.AUTO'",
    ("TorchLlmArgs", "cuda_graph_config"): "CudaGraphConfig is our DecodeCudaGraphConfig",
    ("SleepConfig", "restore_modes"): "unlisted memory types pick PINNED/CPU at run time",
}


@pytest.fixture
def inventory(reference: Path) -> dict:
    return json.loads((reference / "trtllm" / "llm_args_fields.json").read_text())


def _modelled(inventory: dict) -> list[tuple[str, dict, type[BaseModel]]]:
    return [
        (name, spec, INVENTORY_MODELS[name])
        for name, spec in inventory["models"].items()
        if name not in NOT_MODELLED
    ]


# --- drift against the inventory ----------------------------------------------


def test_every_inventory_model_is_modelled_or_explicitly_left_out(inventory: dict) -> None:
    names = set(inventory["models"])
    unaccounted = names - set(INVENTORY_MODELS) - set(NOT_MODELLED)
    stale = (set(INVENTORY_MODELS) | set(NOT_MODELLED)) - names
    assert not unaccounted, f"inventory models without a schema class: {sorted(unaccounted)}"
    assert not stale, f"names no longer in the inventory: {sorted(stale)}"


@pytest.mark.parametrize("name", sorted(NOT_MODELLED))
def test_models_left_out_of_the_drift_check(inventory: dict, name: str) -> None:
    assert name in inventory["models"]
    pytest.skip(NOT_MODELLED[name])


def test_field_names_match_inventory(inventory: dict) -> None:
    drift = []
    for name, spec, cls in _modelled(inventory):
        expected, ours = set(spec["fields"]), set(cls.model_fields)
        missing, extra = sorted(expected - ours), sorted(ours - expected)
        if missing or extra:
            drift.append(f"{name} ({cls.__name__}): missing {missing}, extra {extra}")
    assert not drift, "schema drift from llm_args_fields.json:\n" + "\n".join(drift)


def test_yaml_keys_and_aliases_match_inventory(inventory: dict) -> None:
    """Each field is spelled by its name, except where the inventory names an alias."""
    drift = []
    for name, spec, cls in _modelled(inventory):
        keys = yaml_keys(cls)
        for field, fspec in spec["fields"].items():
            note = fspec.get("constraints", "")
            alias = re.search(r"\balias(?::\s*|\s+')(\w+)", note)
            if alias is None:
                expected = {field}
            elif "AliasChoices" in note:
                expected = {field, alias.group(1)}
            else:
                expected = {alias.group(1)}
            if set(keys[field]) != expected:
                drift.append(f"{name}.{field}: YAML keys {keys[field]}, expected {expected}")
    assert not drift, "\n".join(drift)


def _literal_values(annotation: Any) -> set[str]:
    if get_origin(annotation) is Literal:
        return {str(v) for v in get_args(annotation)}
    if get_origin(annotation) is dict:  # the inventory's Literal is the value type
        return _literal_values(get_args(annotation)[1])
    values: set[str] = set()
    for arg in get_args(annotation):
        if isinstance(arg, type | types.GenericAlias) or get_origin(arg) is not None:
            values |= _literal_values(arg)
    return values


def test_literal_values_match_inventory(inventory: dict) -> None:
    drift = []
    for name, spec, cls in _modelled(inventory):
        for field, fspec in spec["fields"].items():
            inner = " ".join(re.findall(r"Literal\[([^\]]*)\]", fspec["type"]))
            expected = set(re.findall(r"""['"]([^'"]+)['"]""", inner))
            if not expected:
                continue
            ours = _literal_values(cls.model_fields[field].annotation)
            ours -= INVENTORY_EXTENSIONS.get(f"{name}.{field}", set())
            if ours != expected:
                drift.append(f"{name}.{field}: ours {sorted(ours)}, inventory {sorted(expected)}")
    assert not drift, "\n".join(drift)


_BOUND = re.compile(r"\b(ge|gt|le|lt|min_length)=(-?\d+(?:\.\d+)?)")
_TYPE_BOUNDS = {
    "NonNegativeInt": ("ge", 0),
    "NonNegativeFloat": ("ge", 0),
    "PositiveInt": ("gt", 0),
}


def _bounds(field: Any) -> dict[str, float]:
    found: dict[str, float] = {}

    def take(metadata: Any) -> None:
        for meta in metadata:
            for key in ("ge", "gt", "le", "lt", "min_length"):
                if getattr(meta, key, None) is not None:
                    found[key] = float(getattr(meta, key))

    def walk(annotation: Any) -> None:
        if get_origin(annotation) is Annotated:
            inner, *metadata = get_args(annotation)
            take(metadata)
            walk(inner)
        elif get_origin(annotation) in (Union, types.UnionType):
            for arg in get_args(annotation):
                walk(arg)

    take(field.metadata)
    walk(field.annotation)
    return found


def test_bounds_match_inventory(inventory: dict) -> None:
    """ge/gt/le/lt/min_length stated on a field (not on list items) are enforced alike."""
    drift = []
    for name, spec, cls in _modelled(inventory):
        for field, fspec in spec["fields"].items():
            expected = {k: float(v) for k, v in _BOUND.findall(fspec.get("constraints", ""))}
            if "list[" not in fspec["type"].lower():
                for type_name, (key, value) in _TYPE_BOUNDS.items():
                    if type_name in fspec["type"]:
                        expected.setdefault(key, float(value))
            ours = _bounds(cls.model_fields[field])
            # Validator-enforced ranges (e.g. cross_kv_cache_fraction) may be bounds here.
            if any(ours.get(k) != v for k, v in expected.items()):
                drift.append(f"{name}.{field}: ours {ours}, inventory {expected}")
    assert not drift, "\n".join(drift)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, BaseModel):
        return f"{type(value).__name__}()"
    return value


def test_defaults_match_inventory(inventory: dict) -> None:
    drift = []
    for name, spec, cls in _modelled(inventory):
        for field, fspec in spec["fields"].items():
            if (name, field) in DEFAULT_EXCEPTIONS:
                continue
            info = cls.model_fields[field]
            default = info.get_default(call_default_factory=True, validated_data={})
            ours = "<required>" if default is PydanticUndefined else _plain(default)
            if ours != fspec["default"]:
                drift.append(f"{name}.{field}: ours {ours!r}, inventory {fspec['default']!r}")
    assert not drift, "\n".join(drift)


def test_enums_match_inventory(inventory: dict) -> None:
    drift = []
    for name, values in inventory["enums"].items():
        if name in ENUMS_NOT_MODELLED:
            continue
        ours = INVENTORY_ENUMS[name]
        if isinstance(ours, type) and issubclass(ours, Enum):
            if {m.name: m.value for m in ours} != values:
                drift.append(f"{name}: ours {[m.name for m in ours]}, inventory {values}")
        elif list(get_args(ours)) != values:
            drift.append(f"{name}: ours {list(get_args(ours))}, inventory {values}")
    assert not drift, "\n".join(drift)


@pytest.mark.parametrize("name", sorted(ENUMS_NOT_MODELLED))
def test_enums_left_out(inventory: dict, name: str) -> None:
    assert name in inventory["enums"]
    pytest.skip(ENUMS_NOT_MODELLED[name])


def test_discriminated_unions_match_inventory(inventory: dict) -> None:
    drift = []
    for name, spec in inventory["discriminated_unions"].items():
        members = union_members(INVENTORY_UNIONS[name])
        assert members is not None, f"{name} is not a discriminated union in our schema"
        expected = {tag: INVENTORY_MODELS[model] for tag, model in spec["members"].items()}
        if members != expected:
            drift.append(f"{name}: ours {sorted(members)}, inventory {sorted(expected)}")
    assert not drift, "\n".join(drift)


# --- behaviour users notice ---------------------------------------------------


def _issues(text: str) -> list[EngineConfigIssue]:
    return check_engine_config_text(text).issues


def test_unknown_nested_key_names_its_path_and_a_suggestion() -> None:
    result = check_engine_config_text("kv_cache_config:\n  free_gpu_memory_fracton: 0.5\n")
    assert result.args is None
    assert result.issues == [
        EngineConfigIssue(
            "kv_cache_config.free_gpu_memory_fracton",
            "unknown key; did you mean 'free_gpu_memory_fraction'?",
        )
    ]


def test_unknown_key_inside_a_tagged_union_suggests_from_that_member() -> None:
    issues = _issues("speculative_config:\n  decoding_type: MTP\n  max_draft_length: 2\n")
    assert issues == [
        EngineConfigIssue(
            "speculative_config.max_draft_length", "unknown key; did you mean 'max_draft_len'?"
        )
    ]


def test_renamed_key_says_what_it_became() -> None:
    issues = _issues("kv_cache_config:\n  block_reuse_config:\n    block_reuse_policy: x\n")
    assert issues[0].message == "unknown key (renamed to 'policy')"


@pytest.mark.parametrize("fraction", [1.5, -0.1])
def test_fraction_out_of_range(fraction: float) -> None:
    issues = _issues(f"kv_cache_config:\n  free_gpu_memory_fraction: {fraction}\n")
    assert [i.key_path for i in issues] == ["kv_cache_config.free_gpu_memory_fraction"]
    assert str(fraction) in issues[0].message


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("tensor_parallel_size: four\n", "tensor_parallel_size"),
        ("enable_chunked_prefill: maybe\n", "enable_chunked_prefill"),
        ("cuda_graph_config:\n  batch_sizes: {a: 1}\n", "cuda_graph_config.batch_sizes"),
        (
            "kv_cache_config:\n  max_attention_window: [512, x]\n",
            "kv_cache_config.max_attention_window[1]",
        ),
        ("moe_config: [CUTLASS]\n", "moe_config"),
    ],
)
def test_wrong_type_names_the_path(text: str, path: str) -> None:
    assert [i.key_path for i in _issues(text)] == [path]


def test_lax_scalars_coerce_like_tensorrt_llm() -> None:
    result = check_engine_config_text("tensor_parallel_size: '4'\nenable_chunked_prefill: 'yes'\n")
    assert result.issues == []
    assert result.args is not None
    assert result.args.tensor_parallel_size == 4
    assert result.args.enable_chunked_prefill is True


def test_discriminator_tag_is_not_in_the_path() -> None:
    issues = _issues("speculative_config:\n  decoding_type: MTP\n  max_draft_len: abc\n")
    assert [i.key_path for i in issues] == ["speculative_config.max_draft_len"]


def test_unknown_decoding_type_lists_the_known_ones() -> None:
    (issue,) = _issues("speculative_config:\n  decoding_type: Medusa\n  max_draft_len: 3\n")
    assert issue.key_path == "speculative_config.decoding_type"
    assert "'Medusa'" in issue.message
    assert "Eagle3" in issue.message and "MTP" in issue.message


def test_missing_decoding_type_is_reported_at_its_key() -> None:
    (issue,) = _issues("speculative_config:\n  max_draft_len: 3\n")
    assert issue.key_path == "speculative_config.decoding_type"
    assert issue.message.startswith("required key is missing")


def test_every_problem_is_reported_at_once() -> None:
    text = "tensor_parallel_sz: 2\nkv_cache_config:\n  dtype: fp9\nmax_batch_size: many\n"
    assert sorted(i.key_path for i in _issues(text)) == [
        "kv_cache_config.dtype",
        "max_batch_size",
        "tensor_parallel_sz",
    ]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "null\n", "---\n# nothing\n"])
def test_empty_file_is_refused_at_its_first_line(tmp_path: Path, text: str) -> None:
    """TensorRT-LLM reads it as {} (so the schema does); starting a worker on every default is
    almost always a truncated file, so the file rules refuse it."""
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    result = check_engine_config_file(path)
    assert result.issues == [] and result.raw == {} and result.empty
    (issue,) = file_rule_issues(result, None)
    assert (issue.line, issue.column, issue.severity) == (1, 1, "error")
    assert "empty" in issue.message and "`{}`" in issue.message
    assert issue.render(str(path)).startswith(f"{path}:1:1: ")


def test_an_explicit_empty_mapping_takes_every_default_on_purpose() -> None:
    result = check_engine_config_text("{}\n")
    assert result.issues == [] and result.raw == {} and not result.empty
    assert isinstance(result.args, TorchLlmArgs)
    assert file_rule_issues(result, "agg") == []


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("tensor_parallel_size: yes\n", "tensor_parallel_size", 1),
        ("max_batch_size: on\n", "max_batch_size", 1),
        (
            "kv_cache_config:\n  free_gpu_memory_fraction: true\n",
            "kv_cache_config.free_gpu_memory_fraction",
            2,
        ),
        ("cuda_graph_config:\n  batch_sizes: [1, true]\n", "cuda_graph_config.batch_sizes", 2),
        (
            "speculative_config:\n  decoding_type: MTP\n  max_draft_len: no\n",
            "speculative_config.max_draft_len",
            3,
        ),
        (
            "sparse_attention_config:\n  algorithm: rocket\n  window_size: yes\n",
            "sparse_attention_config.window_size",
            3,
        ),
    ],
)
def test_a_boolean_is_not_a_number(text: str, path: str, line: int) -> None:
    """Pydantic's lax mode (and TensorRT-LLM's) would read `yes` as 1; a slip, so refused."""
    result = check_engine_config_text(text)
    assert result.args is None
    (issue,) = result.issues
    assert (issue.key_path, issue.line) == (path, line)
    assert issue.message.startswith("expected a number, not a boolean")


def test_a_boolean_number_does_not_hide_the_other_problems() -> None:
    text = "max_batch_size: on\nmax_batch_szie: 3\nkv_cache_config:\n  dtype: fp9\n"
    assert sorted(i.key_path for i in _issues(text)) == [
        "kv_cache_config.dtype",
        "max_batch_size",
        "max_batch_szie",
    ]


def test_booleans_stay_booleans_and_numbers_stay_lax() -> None:
    text = (
        "enable_chunked_prefill: yes\nkv_cache_config:\n  use_kv_cache_manager_v2: true\n"
        "max_batch_size: '8'\n"
    )
    result = check_engine_config_text(text)
    assert result.issues == [] and result.args is not None
    assert result.args.max_batch_size == 8 and result.args.enable_chunked_prefill is True


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("max_batch_size: -5\n", "max_batch_size"),
        ("max_batch_size: 0\n", "max_batch_size"),
        ("max_num_tokens: 0\n", "max_num_tokens"),
        ("max_seq_len: -1\n", "max_seq_len"),
        ("max_input_len: 0\n", "max_input_len"),
        ("max_beam_width: 0\n", "max_beam_width"),
        ("max_batch_size: 4294967296\n", "max_batch_size"),  # past int32
        ("max_seq_len: 1000000000000000000000000000000\n", "max_seq_len"),
        ("cuda_graph_config:\n  batch_sizes: [-4]\n", "cuda_graph_config.batch_sizes[0]"),
        ("cuda_graph_config:\n  batch_sizes: [0, 8]\n", "cuda_graph_config.batch_sizes[0]"),
        (
            "garbage_collection_gen0_threshold: 10000000000000000000000\n",
            "garbage_collection_gen0_threshold",
        ),
    ],
)
def test_impossible_runtime_sizes_are_refused(text: str, path: str) -> None:
    (issue,) = _issues(text)
    assert issue.key_path == path and issue.line is not None


@pytest.mark.parametrize("key", ["moe_expert_parallel_size", "moe_tensor_parallel_size"])
@pytest.mark.parametrize("value", [0, -2])
def test_moe_parallel_sizes_are_positive_when_stated(key: str, value: int) -> None:
    """0 divides by zero in TensorRT-LLM's Mapping (and used to crash our own rules)."""
    (issue,) = _issues(f"tensor_parallel_size: 4\n{key}: {value}\n")
    assert issue.key_path == key and "leave it out" in issue.message


def test_root_that_is_not_a_mapping() -> None:
    result = check_engine_config_text("- tensor_parallel_size: 1\n")
    assert result.args is None and result.raw == {}
    (issue,) = result.issues
    assert (
        issue.key_path == "" and "must be a mapping" in issue.message and "a list" in issue.message
    )


def test_yaml_syntax_error_is_an_issue_with_a_line() -> None:
    (issue,) = _issues("kv_cache_config: [\n")
    assert issue.key_path == "" and issue.message.startswith("not valid YAML")
    assert issue.line == 2


def test_unreadable_file_is_an_issue(tmp_path: Path) -> None:
    result = check_engine_config_file(tmp_path / "missing.yaml")
    assert result.args is None
    assert result.issues[0].message == "file not found"


def test_render_omits_an_empty_path() -> None:
    assert EngineConfigIssue("", "boom").render("a.yaml") == "a.yaml: boom"
    assert EngineConfigIssue("x.y", "boom").render("a.yaml") == "a.yaml: x.y: boom"


def test_a_warning_says_so_and_reports_in_every_commands_json_shape() -> None:
    warning = EngineConfigIssue("x.y", "hm", line=3, column=5, severity="warning")
    assert warning.render("a.yaml") == "a.yaml:3:5: warning: x.y: hm"
    stack_problem = ConfigIssue("x.y", "hm", severity="warning", namespace=None, file="a.yaml")
    assert warning.as_dict("a.yaml").keys() == stack_problem.as_dict().keys()
    assert warning.as_dict("a.yaml") == {
        "file": "a.yaml",
        "line": 3,
        "column": 5,
        "path": "x.y",
        "message": "hm",
        "severity": "warning",
    }


@pytest.mark.parametrize("value", ["auto", "TorchSampler", "TRTLLMSampler"])
def test_sampler_type_is_accepted_and_dropped(value: str) -> None:
    """Dynamo's runtimes still take it; which release refuses TRTLLMSampler is version data."""
    result = check_engine_config_text(f"sampler_type: {value}\n")
    assert result.issues == []
    assert result.args is not None and "sampler_type" not in result.args.model_dump()


def test_unknown_sampler_type_is_refused() -> None:
    (issue,) = _issues("sampler_type: FastSampler\n")
    assert issue.key_path == "sampler_type" and "TorchSampler" in issue.message


def test_hf_revision_is_read_as_revision() -> None:
    result = check_engine_config_text("hf_revision: main\n")
    assert result.args is not None and result.args.revision == "main"
    assert [i.key_path for i in _issues("hf_revision: [main]\n")] == ["hf_revision"]


def test_old_mtp_key_becomes_max_draft_len() -> None:
    text = "speculative_config:\n  decoding_type: MTP\n  num_nextn_predict_layers: 2\n"
    result = check_engine_config_text(text)
    assert result.args is not None and result.args.speculative_config is not None
    assert result.args.speculative_config.max_draft_len == 2
    bad = _issues(text.replace("2", "0"))
    assert [i.key_path for i in bad] == ["speculative_config.num_nextn_predict_layers"]


def test_eagle_is_accepted_as_eagle3() -> None:
    text = (
        "speculative_config:\n  decoding_type: Eagle\n  max_draft_len: 3\n"
        "  speculative_model_dir: some/eagle3-draft\n"
    )
    result = check_engine_config_text(text)
    assert result.args is not None
    spec = result.args.speculative_config
    assert isinstance(spec, Eagle3DecodingConfig)
    assert spec.speculative_model == "some/eagle3-draft" and spec.max_total_draft_tokens == 3


def test_eagle_needs_a_draft_model() -> None:
    (issue,) = _issues("speculative_config:\n  decoding_type: Eagle3\n  max_draft_len: 3\n")
    assert issue.key_path == "speculative_config.speculative_model"


def test_both_spellings_of_the_draft_model_are_one_too_many() -> None:
    text = (
        "speculative_config:\n  decoding_type: Eagle3\n  max_draft_len: 3\n"
        "  speculative_model: a\n  speculative_model_dir: b\n"
    )
    (issue,) = _issues(text)
    assert issue.key_path == "speculative_config.speculative_model_dir"
    assert "same option" in issue.message


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [("{1: 4, 8: 2}", True), ("{1: 3, 8: 2}", False), ("{1: 4, 8: 5}", False), ("{0: 4}", False)],
)
def test_draft_len_schedule_rules(schedule: str, ok: bool) -> None:
    text = (
        "speculative_config:\n  decoding_type: MTP\n  max_draft_len: 4\n"
        f"  draft_len_schedule: {schedule}\n"
    )
    issues = _issues(text)
    assert (issues == []) is ok
    assert ok or issues[0].key_path == "speculative_config.draft_len_schedule"


def test_max_concurrency_excludes_draft_len_schedule() -> None:
    text = (
        "speculative_config:\n  decoding_type: MTP\n  max_draft_len: 4\n"
        "  max_concurrency: 8\n  draft_len_schedule: {1: 4}\n"
    )
    assert [i.key_path for i in _issues(text)] == ["speculative_config.max_concurrency"]


@pytest.mark.parametrize("value", ["auto", "FP8", "fp8_ds_mla", "nvfp4", "bfloat16", "int8"])
def test_kv_cache_dtype_accepted(value: str) -> None:
    result = check_engine_config_text(f"kv_cache_config:\n  dtype: {value}\n")
    assert result.args is not None and result.args.kv_cache_config.dtype == value.lower()


def test_kv_cache_dtype_rejected() -> None:
    assert [i.key_path for i in _issues("kv_cache_config:\n  dtype: fp16\n")] == [
        "kv_cache_config.dtype"
    ]


@pytest.mark.parametrize(
    ("value", "member"),
    [
        ("auto", LoadFormat.AUTO),
        ("DUMMY", LoadFormat.DUMMY),
        ("Vision_Only", LoadFormat.VISION_ONLY),
        (3, LoadFormat.GMS),
    ],
)
def test_load_format_any_case(value: object, member: LoadFormat) -> None:
    result = check_engine_config_data({"load_format": value})
    assert result.args is not None and result.args.load_format is member


@pytest.mark.parametrize("value", [True, "safetensors"])
def test_load_format_rejected(value: object) -> None:
    assert [i.key_path for i in check_engine_config_data({"load_format": value}).issues] == [
        "load_format"
    ]


def test_pool_ratio_must_sum_to_one() -> None:
    assert _issues("kv_cache_config:\n  pool_ratio: [0.25, 0.75]\n") == []
    (issue,) = _issues("kv_cache_config:\n  pool_ratio: [0.5, 0.4]\n")
    assert issue.key_path == "kv_cache_config.pool_ratio" and "sum to 1.0" in issue.message


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("encode_only: true\nmm_encoder_only: true\n", "mm_encoder_only"),
        ("disable_mm_encoder: true\nmm_encoder_only: true\n", "mm_encoder_only"),
    ],
)
def test_encoder_modes_are_exclusive(text: str, path: str) -> None:
    assert [i.key_path for i in _issues(text)] == [path]


def test_disable_mm_encoder_turns_off_the_encoder_cache() -> None:
    result = check_engine_config_text("disable_mm_encoder: true\n")
    assert result.args is not None and result.args.multimodal_config.encoder_cache_max_bytes == 0


@pytest.mark.parametrize(
    ("value", "size"), [("512MB", 512 * 1024**2), ("1GiB", 1024**3), (4096, 4096), ("0", 0)]
)
def test_encoder_cache_size_accepts_byte_strings(value: object, size: int) -> None:
    result = check_engine_config_data({"multimodal_config": {"encoder_cache_max_bytes": value}})
    assert result.args is not None and result.args.multimodal_config.encoder_cache_max_bytes == size


def test_encoder_cache_size_rejects_nonsense() -> None:
    issues = check_engine_config_data({"multimodal_config": {"encoder_cache_max_bytes": "lots"}})
    assert [i.key_path for i in issues.issues] == ["multimodal_config.encoder_cache_max_bytes"]


@pytest.mark.parametrize("name", ["helix", "Ring", "ULYSSES"])
def test_cp_type_names_any_case(name: str) -> None:
    result = check_engine_config_text(f"cp_config:\n  cp_type: {name}\n")
    assert result.args is not None and result.args.cp_config is not None
    assert result.args.cp_config.cp_type.name == name.upper()


def test_cp_type_unknown_name() -> None:
    assert [i.key_path for i in _issues("cp_config:\n  cp_type: spiral\n")] == ["cp_config.cp_type"]


def test_cuda_graph_mode_is_inferred() -> None:
    encode = check_engine_config_text("cuda_graph_config:\n  num_tokens: [64, 128]\n")
    assert isinstance(encode.args and encode.args.cuda_graph_config, EncodeCudaGraphConfig)
    assert _issues("cuda_graph_config:\n  num_tokens: [64]\n  mode: decode\n")[0].key_path == (
        "cuda_graph_config.num_tokens"
    )


def test_cuda_graph_null_disables_graphs() -> None:
    result = check_engine_config_text("cuda_graph_config: null\n")
    assert result.args is not None and result.args.cuda_graph_config is None


def test_cuda_graph_max_batch_size_must_match_batch_sizes() -> None:
    (issue,) = _issues("cuda_graph_config:\n  max_batch_size: 8\n  batch_sizes: [1, 2, 4]\n")
    assert issue.key_path == "cuda_graph_config.max_batch_size"


def test_sections_built_by_the_yaml_merge_must_be_mappings() -> None:
    """TensorRT-LLM builds these from the mapping before validation; null fails there."""
    issues = _issues("attention_dp_config: null\nkv_cache_config: null\n")
    assert sorted(i.key_path for i in issues) == ["attention_dp_config", "kv_cache_config"]
    assert _issues("multimodal_config: null\ncuda_graph_config: null\n") == []


def test_python_only_fields_accept_only_null() -> None:
    assert _issues("_mpi_session: null\nbatched_logits_processor: null\n") == []
    assert [i.key_path for i in _issues("checkpoint_loader: my.Loader\n")] == ["checkpoint_loader"]


def test_model_is_optional_but_still_a_field() -> None:
    result = check_engine_config_text("model: Qwen/Qwen3-0.6B\n")
    assert result.args is not None and result.args.model == "Qwen/Qwen3-0.6B"
    assert TorchLlmArgs().model is None


def test_tensorrt_llm_issues_is_none_without_tensorrt_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt_llm", None)  # makes the import fail
    assert tensorrt_llm_issues({"tensor_parallel_size": 1}) is None


def test_tensorrt_llm_agrees_on_an_unknown_nested_key() -> None:
    pytest.importorskip(
        "tensorrt_llm", reason="tensorrt_llm is only installed inside the TRT-LLM runtime image"
    )
    raw = {"kv_cache_config": {"free_gpu_memory_fracton": 0.5}}
    issues = tensorrt_llm_issues(raw)
    assert issues is not None
    assert "kv_cache_config.free_gpu_memory_fracton" in [i.key_path for i in issues]
