"""Upstream TensorRT-LLM engine configs against our schema, plus mutations of them.

Every LLM-API YAML that Dynamo ships for TensorRT-LLM must be accepted: the
files under ``engine_configs/`` (and the older ones removed upstream in
7dfbe4fda) and the configs embedded in deploy manifests as ConfigMap data.
Then each accepted file is broken on purpose, at every depth, to prove the
schema rejects what TensorRT-LLM rejects and names the place in the file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from infra.trtllm.engine_config import EngineConfigResult, check_engine_config_data
from infra.trtllm.engine_schema import MoeLoadBalancerConfig, yaml_keys
from tests.conftest import PROJECT_ROOT, REFERENCE

TRTLLM_EXAMPLES = REFERENCE / "dynamo-examples" / "trtllm"
ENGINE_CONFIG_DIRS = ("engine_configs", "engine_configs_removed_in_7dfbe4fda")

# YAML files in the engine-config folders that are not LLM-API files.
MOE_LOAD_BALANCER_FILES = {
    "engine_configs_removed_in_7dfbe4fda/deepseek-r1/agg/wide_ep/eplb.yaml",
    "engine_configs_removed_in_7dfbe4fda/deepseek-r1/disagg/wide_ep/eplb.yaml",
}


def _upstream_configs() -> dict[str, Any]:
    """Case id -> parsed engine config, from files and from ConfigMaps in manifests."""
    configs: dict[str, Any] = {}
    if not TRTLLM_EXAMPLES.is_dir():
        return configs
    for folder in ENGINE_CONFIG_DIRS:
        for path in sorted((TRTLLM_EXAMPLES / folder).rglob("*.y*ml")):
            configs[path.relative_to(TRTLLM_EXAMPLES).as_posix()] = yaml.safe_load(path.read_text())
    for path in sorted(TRTLLM_EXAMPLES.rglob("*.yaml")):
        relative = path.relative_to(TRTLLM_EXAMPLES)
        if relative.parts[0] in ENGINE_CONFIG_DIRS:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if not isinstance(document, dict) or document.get("kind") != "ConfigMap":
                continue
            name = document["metadata"]["name"]
            for key, text in (document.get("data") or {}).items():
                if key.endswith((".yaml", ".yml")):
                    configs[f"{relative.as_posix()}#{name}/{key}"] = yaml.safe_load(text)
    return configs


UPSTREAM = _upstream_configs()
ENGINE_CASES = sorted(set(UPSTREAM) - MOE_LOAD_BALANCER_FILES)

PROJECT_CONFIGS = sorted(
    p.relative_to(PROJECT_ROOT).as_posix()
    for p in (PROJECT_ROOT / "engine_configs").rglob("*.y*ml")
)


def _params(cases: list[str]) -> list[Any]:
    return [pytest.param(case, id=case) for case in cases] or [
        pytest.param(None, id="no-upstream-configs")
    ]


def _case(reference: Path, case: str | None) -> Any:
    if case is None:
        pytest.skip(f"no upstream TensorRT-LLM examples under {TRTLLM_EXAMPLES}")
    return copy.deepcopy(UPSTREAM[case])


def _render(result: EngineConfigResult) -> str:
    return "\n".join(issue.render("config") for issue in result.issues)


# --- upstream files are accepted ----------------------------------------------


def test_embedded_configs_were_found(reference: Path) -> None:
    embedded = [case for case in UPSTREAM if "#" in case]
    assert len(embedded) >= 20, embedded
    assert any(case.startswith("v1beta1/") for case in embedded)
    assert any(case.startswith("recipes/") for case in embedded)


@pytest.mark.parametrize("case", _params(ENGINE_CASES))
def test_upstream_engine_config_is_accepted(reference: Path, case: str | None) -> None:
    result = check_engine_config_data(_case(reference, case))
    assert result.issues == [], _render(result)
    assert result.args is not None


def test_legacy_wide_ep_backend_is_accepted(reference: Path) -> None:
    # Dynamo's current wide-EP recipe for DeepSeek-R1 on GB200 (see INVENTORY_EXTENSIONS).
    case = "recipes/deepseek-r1/trtllm/disagg/wide_ep/gb200/deploy.yaml#decode-config/decode_config_dep32.yaml"
    if case not in UPSTREAM:
        pytest.skip(f"{case} is not in the reference data")
    result = check_engine_config_data(_case(reference, case))
    assert result.args is not None and result.args.moe_config.backend == "WIDEEP"


@pytest.mark.parametrize("case", sorted(MOE_LOAD_BALANCER_FILES))
def test_moe_load_balancer_files_are_load_balancer_configs(reference: Path, case: str) -> None:
    """eplb.yaml is what moe_config.load_balancer points at, not an LLM-API file."""
    MoeLoadBalancerConfig.model_validate(_case(reference, case))
    assert check_engine_config_data(_case(reference, case)).issues != []


@pytest.mark.parametrize("path", PROJECT_CONFIGS or [pytest.param(None, id="none")])
def test_project_engine_config_is_accepted(path: str | None) -> None:
    if path is None:
        pytest.skip("no engine configs in engine_configs/")
    result = check_engine_config_data(yaml.safe_load((PROJECT_ROOT / path).read_text()))
    assert result.issues == [], _render(result)


# --- mutations of accepted files are rejected, naming the place ---------------


def _model_mappings(
    raw: dict, model: BaseModel, path: tuple[Any, ...] = ()
) -> Iterator[tuple[tuple[Any, ...], dict, BaseModel]]:
    """Every mapping in `raw` that the schema reads as a model (not a free-form dict)."""
    yield path, raw, model
    key_to_field = {k: name for name, keys in yaml_keys(type(model)).items() for k in keys}
    for key, value in raw.items():
        sub = getattr(model, key_to_field.get(key, ""), None)
        if isinstance(value, dict) and isinstance(sub, BaseModel):
            yield from _model_mappings(value, sub, (*path, key))


def _dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _set(data: dict, path: tuple[Any, ...], value: Any) -> dict:
    node: Any = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return data


def _flags(result: EngineConfigResult, path: tuple[Any, ...]) -> bool:
    """Rejected, with an issue at `path` or inside it."""
    where = _dotted(path)
    return result.args is None and any(
        i.key_path == where or i.key_path.startswith((f"{where}.", f"{where}["))
        for i in result.issues
    )


def _accepted(reference: Path, case: str | None) -> tuple[dict, BaseModel]:
    raw = _case(reference, case) or {}
    result = check_engine_config_data(raw)
    assert result.args is not None, _render(result)
    return raw, result.args


def _wrong_value(value: Any) -> Any:
    """A value of the wrong type for a field currently holding `value`."""
    if isinstance(value, bool):
        return "not-a-bool"
    if isinstance(value, int | float):
        return "not-a-number"
    if isinstance(value, str):
        return {"not": "a string"}
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, dict):
        return ["not", "a mapping"]
    return None


@pytest.mark.parametrize("case", _params(ENGINE_CASES))
def test_unknown_key_is_rejected_at_every_depth(reference: Path, case: str | None) -> None:
    raw, args = _accepted(reference, case)
    missed = []
    for path, _, _ in _model_mappings(raw, args):
        key_path = (*path, "zz_not_an_option")
        result = check_engine_config_data(_set(copy.deepcopy(raw), key_path, 1))
        if [i.key_path for i in result.issues] != [_dotted(key_path)]:
            missed.append(f"{_dotted(key_path)}: {_render(result) or 'accepted'}")
    assert not missed, "\n".join(missed)


@pytest.mark.parametrize("case", _params(ENGINE_CASES))
def test_wrong_type_is_rejected_naming_the_key(reference: Path, case: str | None) -> None:
    raw, args = _accepted(reference, case)
    missed, tried = [], 0
    for path, mapping, model in _model_mappings(raw, args):
        free_form = {
            key
            for key, value in mapping.items()
            if isinstance(value, dict) and not isinstance(getattr(model, key, None), BaseModel)
        }
        for key, value in mapping.items():
            targets = [((*path, key), value)]
            if isinstance(value, list) and value and not isinstance(value[0], dict | list):
                targets.append(((*path, key, 0), value[0]))
            for target, current in targets:
                wrong = _wrong_value(current)
                if key in free_form or wrong is None:
                    continue
                tried += 1
                result = check_engine_config_data(_set(copy.deepcopy(raw), target, wrong))
                if not _flags(result, target):
                    missed.append(f"{_dotted(target)} = {wrong!r}: {_render(result) or 'accepted'}")
    assert not missed, "\n".join(missed)
    assert tried or not raw


FRACTIONS = [
    ("kv_cache_config", "free_gpu_memory_fraction"),
    ("kv_cache_config", "max_util_for_resume"),
    ("batch_wait_max_tokens_ratio",),
]


@pytest.mark.parametrize("case", _params(ENGINE_CASES))
def test_fraction_out_of_range_is_rejected(reference: Path, case: str | None) -> None:
    raw, _ = _accepted(reference, case)
    missed = []
    for path in FRACTIONS:
        for value in (1.5, -0.25):
            data = copy.deepcopy(raw)
            if len(path) > 1:
                data.setdefault(path[0], {})
            result = check_engine_config_data(_set(data, path, value))
            if [i.key_path for i in result.issues] != [_dotted(path)]:
                missed.append(f"{_dotted(path)} = {value}: {_render(result) or 'accepted'}")
    if isinstance(raw.get("speculative_config"), dict):
        path = ("speculative_config", "acceptance_rate_threshold")
        result = check_engine_config_data(_set(copy.deepcopy(raw), path, 2.0))
        if [i.key_path for i in result.issues] != [_dotted(path)]:
            missed.append(f"{_dotted(path)} = 2.0: {_render(result) or 'accepted'}")
    assert not missed, "\n".join(missed)
