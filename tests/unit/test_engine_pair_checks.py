"""A disaggregated model's prefill and decode engine configs are checked as a pair."""

from __future__ import annotations

import copy

import pytest

from infra.deployment.checked import check_stack_values
from infra.stack.errors import StackConfigError
from tests.conftest import Project
from tests.unit.helpers import BASE

KV = "kv_cache_config:\n"


def test_validate_refuses_prefill_and_decode_with_other_tokens_per_block(
    project: Project,
) -> None:
    decode = project.root / "engine_configs" / "gpt-oss-120b" / "decode.yaml"
    decode.write_text(decode.read_text().replace(KV, KV + "  tokens_per_block: 64\n"))
    with pytest.raises(StackConfigError) as raised:
        check_stack_values(copy.deepcopy(BASE), "stacks/Pulumi.test.yaml", project.root)
    (issue,) = [i for i in raised.value.issues if i.path == "kv_cache_config.tokens_per_block"]
    assert issue.file == "engine_configs/gpt-oss-120b/decode.yaml" and issue.line is not None
    assert "in the prefill engine config" in issue.message


def test_matching_tokens_per_block_pass(project: Project) -> None:
    for role in ("prefill", "decode"):
        file = project.root / "engine_configs" / "gpt-oss-120b" / f"{role}.yaml"
        file.write_text(file.read_text().replace(KV, KV + "  tokens_per_block: 64\n"))
    checked = check_stack_values(copy.deepcopy(BASE), "stacks/Pulumi.test.yaml", project.root)
    assert checked.deployment is not None
