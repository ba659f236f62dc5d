"""Every upstream TensorRT-LLM engine config is accepted verbatim: alone by check-engine-config,
and inside a stack with the GPU layout upstream launches it with, by the whole stack check."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from infra.cli import main
from infra.deployment.checked import check_stack_values
from infra.trtllm.engine_config import check_engine_config_file
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


def _label(path: Path) -> str:
    return str(path.relative_to(REFERENCE))


@pytest.fixture(autouse=True)
def _reference(reference: Path) -> None:
    """Skips (saying why) when ../shared/reference is not beside the project."""


@pytest.mark.parametrize("path", FILES, ids=_label)
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


@pytest.mark.parametrize(
    "path", [f for f in FILES if f.stem in ("agg", "prefill", "decode")], ids=_label
)
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
