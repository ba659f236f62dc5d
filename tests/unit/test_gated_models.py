"""A gated Hugging Face model without a token fails with 401 at start: refused before."""

from __future__ import annotations

import pytest
import yaml

from infra.deployment.checked import check_stack, check_stack_values
from infra.stack.errors import StackConfigError
from infra.trtllm.model_catalog import lookup_model
from tests.conftest import PROJECT_ROOT, Project

from .helpers import values


def _gemma() -> dict:
    raw = values()
    raw["models"][0]["source"] = {"huggingFace": "google/gemma-3-1b-it"}
    raw["models"][0]["agg"] = {"engineConfig": "engine_configs/gemma-3-1b/agg.yaml"}
    return raw


def test_the_catalog_knows_which_repositories_are_gated() -> None:
    assert lookup_model("google/gemma-3-1b-it").gated  # type: ignore[union-attr]
    assert lookup_model("meta-llama/Llama-3.3-70B-Instruct").gated  # type: ignore[union-attr]
    assert not lookup_model("Qwen/Qwen3-0.6B").gated  # type: ignore[union-attr]


def test_a_gated_source_needs_the_hf_token() -> None:
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(_gemma(), "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (issue,) = [i for i in caught.value.issues if "gated" in i.message]
    assert issue.path == "models[0].source.huggingFace"
    checked = check_stack_values(
        _gemma(), "stacks/Pulumi.test.yaml", PROJECT_ROOT, secrets=frozenset({"hfToken"})
    )
    assert checked.deployment is not None


@pytest.mark.parametrize("repo", ["meta-llama/Llama-3.1-8B-Instruct", "google/gemma-3-4b-it"])
def test_a_repository_of_a_gating_organisation_needs_the_token_outside_the_catalog(
    repo: str,
) -> None:
    """Not only the ids we list: the organisation gates its models (as a plan.architecture
    borrowed from a catalog sibling does not change)."""
    raw = _gemma()
    raw["models"][0]["source"] = {"huggingFace": repo}
    raw["models"][0]["plan"] = {"architecture": "gemma-3-1b"}
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    assert any(f"{repo} is gated" in i.message for i in caught.value.issues)


def test_a_token_from_an_imported_esc_environment_is_a_warning_naming_it(
    project: Project,
) -> None:
    path = project.root / "stacks" / "Pulumi.staging.yaml"
    document = yaml.safe_load(path.read_text())
    del document["config"]["dynamo-trtllm:hfToken"]
    with pytest.raises(StackConfigError, match="gated on Hugging Face"):
        path.write_text(yaml.safe_dump(document))
        check_stack(project.root, "staging")
    document["environment"] = ["dynamo-trtllm/shared"]
    path.write_text(yaml.safe_dump(document))
    warnings = [w.message for w in check_stack(project.root, "staging").warnings]
    assert any("imported ESC environment (dynamo-trtllm/shared)" in w for w in warnings)
