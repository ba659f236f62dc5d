"""Every upstream TensorRT-LLM engine config is accepted verbatim: alone by check-engine-config,
inside a stack with the GPU layout upstream launches it with by the whole stack check, and, for
the configs upstream's deploy manifests carry in ConfigMaps, by the file and pair rules on every
Dynamo profile's TensorRT-LLM."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.cli import main
from infra.deployment.checked import check_stack_values
from infra.stack.dynamo_versions import PROFILES
from infra.trtllm.engine_config import Runtime, check_engine_config_file, check_engine_config_text
from infra.trtllm.engine_rules import disaggregated_pair_issues, file_rule_issues
from tests.conftest import REFERENCE, Project
from tests.unit.helpers import BASE

ROOTS = [
    REFERENCE / "dynamo-examples" / "trtllm" / "engine_configs",
    REFERENCE / "dynamo-1.2.0" / "examples" / "engine_configs",
]
FILES = sorted(f for root in ROOTS if root.is_dir() for f in root.rglob("*.yaml"))
# The model each upstream directory configures (its Hugging Face id).
MODELS = {
    "gpt-oss-120b": "openai/gpt-oss-120b",
    "qwen3": "Qwen/Qwen3-0.6B",
    "qwen3-vl-2b-instruct": "Qwen/Qwen3-VL-2B-Instruct",
    "qwen2-vl-7b-instruct": "Qwen/Qwen2-VL-7B-Instruct",
    "llava-v1.6-mistral-7b-hf": "llava-hf/llava-v1.6-mistral-7b-hf",
    "llama4-Scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
}


# Deploy manifests whose ConfigMaps carry engine configs (mounted as --extra-engine-args).
MANIFEST_ROOTS = [
    REFERENCE / "dynamo-examples" / "trtllm",
    REFERENCE / "dynamo-1.2.0" / "examples" / "deploy",
]
ENGINE_CONFIG_DIRS = ("engine_configs", "engine_configs_removed_in_7dfbe4fda")
ROLES = ("prefill", "decode", "agg")
NOT_PRESENT = f"upstream reference data not present at {REFERENCE}"


@dataclass(frozen=True)
class Embedded:
    """One engine config in a ConfigMap of an upstream manifest."""

    manifest: str  # relative to the reference directory
    config_map: str
    key: str
    text: str

    @property
    def role(self) -> str | None:
        """The worker role its names say (`prefill-config`, `config-decode.yaml`, ...)."""
        names = f"{self.config_map}/{self.key}"
        return next((role for role in ROLES if role in names), None)

    @property
    def label(self) -> str:
        return f"{self.manifest}#{self.config_map}/{self.key}"


def _embedded() -> list[Embedded]:
    found = []
    for root in MANIFEST_ROOTS:
        for path in sorted(root.rglob("*.yaml")) if root.is_dir() else []:
            manifest = path.relative_to(REFERENCE)
            if set(manifest.parts) & set(ENGINE_CONFIG_DIRS):
                continue
            for document in yaml.safe_load_all(path.read_text()):
                if not isinstance(document, dict) or document.get("kind") != "ConfigMap":
                    continue
                for key, text in sorted((document.get("data") or {}).items()):
                    if key.endswith((".yaml", ".yml")):
                        name = document["metadata"]["name"]
                        found.append(Embedded(manifest.as_posix(), name, key, text))
    return found


EMBEDDED = _embedded()
# Manifests that carry both a prefill and a decode engine config: checked as a pair.
PAIRS = sorted(
    m
    for m in {e.manifest for e in EMBEDDED}
    if {"prefill", "decode"} <= {e.role for e in EMBEDDED if e.manifest == m}
)


def _params(cases: Sequence[Any], ids: Any = None) -> list[Any]:
    """The cases, or one skipped case saying why there are none (not pytest's bare
    "got empty parameter set")."""
    if cases:
        return [pytest.param(c, id=ids(c) if ids else str(c)) for c in cases]
    return [pytest.param(None, id="no-upstream-reference", marks=pytest.mark.skip(NOT_PRESENT))]


def _label(path: Path) -> str:
    return str(path.relative_to(REFERENCE))


@pytest.fixture(autouse=True)
def _reference(reference: Path) -> None:
    """Skips (saying why) when ../shared/reference is not beside the project."""


@pytest.fixture(params=sorted(PROFILES))
def runtime(request: pytest.FixtureRequest) -> Runtime:
    profile = PROFILES[request.param]
    return Runtime(profile.trtllm_version, f"Dynamo {profile.version}'s runtime")


@pytest.mark.parametrize("path", _params(FILES, _label))
def test_check_engine_config_accepts_the_file_verbatim(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = path.stem if path.stem in ("agg", "prefill", "decode", "encode") else None
    argv = ["check-engine-config", *(["--role", role] if role else []), str(path)]
    assert main(argv) == 0, capsys.readouterr().err


def _upstream_gpus(path: Path) -> int:
    """The GPUs upstream gives the worker: the file's world size, else the 4 its gpt-oss
    recipe launches (attention DP over the tensor-parallel ranks of the command line)."""
    raw = check_engine_config_file(path).raw
    world = int(raw.get("tensor_parallel_size", 1)) * int(raw.get("pipeline_parallel_size", 1))
    return world if "tensor_parallel_size" in raw else (4 if raw.get("enable_attention_dp") else 1)


@pytest.mark.parametrize("path", _params([f for f in FILES if f.stem in ROLES], _label))
def test_a_stack_with_upstreams_layout_accepts_the_file(path: Path, tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root)
    target = root / "engine_configs" / "upstream"
    target.mkdir()
    for sibling in path.parent.glob("*.yaml"):  # prefill and decode come as a pair
        shutil.copy(sibling, target / sibling.name)
    raw = copy.deepcopy(BASE)
    model = {
        "name": "upstream",
        "source": {"huggingFace": MODELS[path.parent.name]},
        "nodePool": "h100",
        "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.1.0",
        "multimodal": "vl" in path.parent.name
        or "llava" in path.parent.name
        or "multimodal" in str(path),
    }
    roles = ("agg",) if path.stem == "agg" else ("prefill", "decode")
    model["topology"] = "agg" if path.stem == "agg" else "disagg"
    for role in roles:
        file = path.parent / f"{role}.yaml"
        model[role] = {
            "engineConfig": f"engine_configs/upstream/{role}.yaml",
            "gpusPerWorker": _upstream_gpus(file),
        }
    raw["models"] = [model]
    # Upstream's examples pass an hf-token-secret; Llama-4 is gated.
    checked = check_stack_values(
        raw, "stacks/Pulumi.test.yaml", project.root, secrets=frozenset({"hfToken"})
    )
    assert checked.deployment is not None


def test_the_manifests_engine_configs_were_found() -> None:
    """The Qwen3-32B disaggregated recipe is the one whose prefill runs max_batch_size 1."""
    labels = {e.label for e in EMBEDDED}
    assert (
        "dynamo-examples/trtllm/recipes/qwen3-32b-fp8/trtllm/disagg/deploy.yaml"
        "#llm-config-prefill/config-prefill.yaml"
    ) in labels
    assert "dynamo-examples/trtllm/recipes/qwen3-32b-fp8/trtllm/disagg/deploy.yaml" in PAIRS


@pytest.mark.parametrize("case", _params(EMBEDDED, lambda e: e.label))
def test_an_engine_config_in_a_manifest_is_accepted(case: Embedded, runtime: Runtime) -> None:
    """Schema, the release's keys and the role's rules: warnings may be said, nothing refused."""
    result = check_engine_config_text(case.text, runtime)
    assert result.issues == [], [i.render(case.label) for i in result.issues]
    errors = [i for i in file_rule_issues(result, case.role) if i.severity == "error"]
    assert errors == [], [i.render(case.label) for i in errors]


@pytest.mark.parametrize("manifest", _params(PAIRS))
def test_a_manifests_prefill_and_decode_agree(manifest: str) -> None:
    configs = [e for e in EMBEDDED if e.manifest == manifest]
    prefills = [check_engine_config_text(e.text) for e in configs if e.role == "prefill"]
    decodes = [check_engine_config_text(e.text) for e in configs if e.role == "decode"]
    for prefill in prefills:
        for decode in decodes:
            assert disaggregated_pair_issues(prefill, decode) == []
