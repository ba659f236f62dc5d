"""Engine configs checked against the TensorRT-LLM of the stack's Dynamo release.

Our schema transcribes a TensorRT-LLM main newer than what Dynamo 1.1.x (1.3.0rc11) and 1.2.x
(1.3.0rc14) ship; the version table refuses what those releases do not take yet, and keeps
what they still take that main dropped.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from infra.deployment.checked import check_stack_values
from infra.stack.dynamo_versions import PROFILES, DynamoProfile
from infra.stack.errors import StackConfigError
from infra.trtllm.engine_config import Runtime, check_engine_config_file, check_engine_config_text
from infra.trtllm.engine_rules import file_rule_issues
from infra.trtllm.field_versions import FIELD_VERSIONS, TrtllmVersion
from tests.conftest import PROJECT_ROOT, Project
from tests.unit.helpers import BASE

PROFILE_IDS = sorted(PROFILES)
SHIPPED = sorted((PROJECT_ROOT / "engine_configs").rglob("*.yaml"))


def _runtime(profile: DynamoProfile) -> Runtime:
    return Runtime(profile.trtllm_version, f"Dynamo {profile.version}'s runtime")


@pytest.fixture(params=PROFILE_IDS)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    return _runtime(PROFILES[request.param])


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (
            "kv_cache_config:\n  kv_events_config:\n    buffer_steps: 10\n",
            "kv_cache_config.kv_events_config",
        ),
        ("num_serve_frontends: 2\n", "num_serve_frontends"),
        ("prefill_cuda_graph_backend: piecewise\n", "prefill_cuda_graph_backend"),
        ("cuda_graph_config:\n  mode: decode\n  batch_sizes: [1, 2]\n", "cuda_graph_config.mode"),
        ("moe_config:\n  backend: MEGAMOE_CUTEDSL\n", "moe_config.backend"),
        (
            "cache_transceiver_config:\n  transceiver_runtime: auto\n",
            "cache_transceiver_config.transceiver_runtime",
        ),
    ],
)
def test_keys_added_after_rc14_are_refused_on_dynamos_runtimes(
    runtime: Runtime, text: str, path: str
) -> None:
    assert check_engine_config_text(text).issues == []  # the newest TensorRT-LLM takes it
    result = check_engine_config_text(text, runtime)
    assert result.args is None
    (issue,) = result.issues
    assert issue.key_path == path and issue.line is not None
    assert f"the {runtime.trtllm_version} in {runtime.label} refuses it" in issue.message
    assert "PR #" in issue.message


def test_the_message_names_the_release_and_the_pull_request() -> None:
    (issue,) = check_engine_config_text(
        "kv_cache_config:\n  kv_events_config: {}\n", _runtime(PROFILES["1.2.0"])
    ).issues
    assert issue.message == (
        "`kv_cache_config.kv_events_config` arrived in TensorRT-LLM 1.3.0rc21 or later "
        "(PR #17023, opened after the 1.3.0rc21 bump #15742; in the 1.3.0rc27 docs); "
        "the 1.3.0rc14 in Dynamo 1.2.0's runtime refuses it"
    )


def test_values_the_inventory_dropped_are_still_taken_by_dynamos_runtimes(
    runtime: Runtime,
) -> None:
    for text in ("moe_config:\n  backend: WIDEEP\n", "sampler_type: TRTLLMSampler\n"):
        assert check_engine_config_text(text, runtime).issues == []
    # The older spellings that prefill_cuda_graph_backend replaced.
    old = "torch_compile_config:\n  enable_piecewise_cuda_graph: true\n  capture_num_tokens: [8]\n"
    assert check_engine_config_text(old, runtime).issues == []


def test_a_release_after_the_removal_refuses_the_dropped_values() -> None:
    later = Runtime("1.3.0rc26")
    (issue,) = check_engine_config_text("sampler_type: TRTLLMSampler\n", later).issues
    assert issue.key_path == "sampler_type" and "was dropped in TensorRT-LLM" in issue.message
    assert "TensorRT-LLM 1.3.0rc26 refuses it" in issue.message
    assert [
        i.key_path
        for i in check_engine_config_text("moe_config:\n  backend: WIDEEP\n", later).issues
    ] == ["moe_config.backend"]
    assert (
        check_engine_config_text("kv_cache_config:\n  kv_events_config: {}\n", later).issues == []
    )


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(PROJECT_ROOT)))
def test_shipped_engine_configs_pass_on_every_profile(path: Path, runtime: Runtime) -> None:
    result = check_engine_config_file(path, runtime)
    assert result.issues == [], [i.render(str(path)) for i in result.issues]
    role = path.stem if path.stem in ("agg", "prefill", "decode") else None
    errors = [i for i in file_rule_issues(result, role) if i.severity == "error"]
    assert errors == []


@pytest.mark.parametrize("release", PROFILE_IDS)
def test_a_stack_checks_its_engine_configs_against_its_runtime(
    project: Project, release: str
) -> None:
    engine = project.root / "engine_configs" / "qwen3-0-6b" / "agg.yaml"
    engine.write_text(engine.read_text() + "num_serve_frontends: 2\n")
    raw = copy.deepcopy(BASE)
    raw["platform"] = {"dynamoVersion": release}
    with pytest.raises(StackConfigError) as raised:
        check_stack_values(raw, "stacks/Pulumi.test.yaml", project.root)
    (issue,) = [i for i in raised.value.issues if i.path == "num_serve_frontends"]
    profile = PROFILES[release]
    assert issue.file == "engine_configs/qwen3-0-6b/agg.yaml" and issue.line is not None
    assert f"the {profile.trtllm_version} in Dynamo {release}'s runtime" in issue.message


def test_rc_versions_sort_before_their_release() -> None:
    parse = TrtllmVersion.parse
    assert parse("1.3.0rc11") < parse("1.3.0rc14") < parse("1.3.0rc21") < parse("1.3.0")
    assert parse("1.2.0") < parse("1.3.0rc1") and str(parse("v1.3.0rc14")) == "1.3.0rc14"
    with pytest.raises(ValueError, match="not a TensorRT-LLM version"):
        parse("latest")


def test_every_row_is_well_formed() -> None:
    for row in FIELD_VERSIONS:
        assert (row.introduced_in is None) != (row.removed_in is None), row
        for bound in (row.introduced_in, row.removed_in):
            if bound is not None:
                TrtllmVersion.parse(bound)
        assert "PR #" in row.citation, row
