"""From raw stack config (a stack file, or Pulumi's runtime config) to a checked StackConfig.

Each top-level section and each model is validated on its own, so one typo does not hide the
problems elsewhere: the user sees every problem at once, each with the file and YAML path.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from infra.checks import cross_check
from infra.config import (
    SECRET_KEYS,
    EksCluster,
    ExistingCluster,
    Model,
    StackConfig,
    TrafficStackConfig,
)
from infra.errors import CONFIG_NAMESPACE, ConfigIssue, StackConfigError, format_path

# Placeholder for `secure:` values offline, where Pulumi's decryption is not available.
SECURE_PLACEHOLDER = "[secure value: decrypted by Pulumi at deploy time]"


def stack_file(project_root: Path, stack: str) -> Path:
    return project_root / "stacks" / f"Pulumi.{stack}.yaml"


def source_label(stack: str) -> str:
    """How errors name the stack file: relative to the project, as the user edits it."""
    return f"stacks/Pulumi.{stack}.yaml"


class StackFile(typing.NamedTuple):
    values: dict[str, Any]  # our namespace's keys without the prefix
    secrets: dict[str, str]  # secret key -> plaintext, or secure_placeholder(key) when encrypted
    other: dict[str, Any]  # keys of other namespaces (aws:region, ...), passed through to Pulumi
    # secret key -> digest of its text in the stack file (the ciphertext for `secure:` values),
    # so a diff can say a secret changed without seeing it.
    secret_fingerprints: dict[str, str] = {}


def secure_placeholder(key: str) -> str:
    """What an encrypted secret looks like offline: one per key, so its uses can be told apart."""
    return f"[secure {key}: decrypted by Pulumi at deploy time]"


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def read_stack_file(path: Path, source: str) -> StackFile:
    """Read `Pulumi.<stack>.yaml`; `secure:` values stay encrypted and become placeholders."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise StackConfigError(source, [ConfigIssue("", "stack file not found")]) from exc
    except yaml.YAMLError as exc:
        raise StackConfigError(source, [ConfigIssue("", f"not valid YAML: {exc}")]) from exc
    document = document or {}
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise StackConfigError(source, [ConfigIssue("", "expected a mapping with a `config:` key")])
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    other: dict[str, Any] = {}
    plaintext: list[ConfigIssue] = []
    prefix = f"{CONFIG_NAMESPACE}:"
    for key, value in (document.get("config") or {}).items():
        if not str(key).startswith(prefix):
            other[str(key)] = _strip_secure(value)
            continue
        name = str(key)[len(prefix) :]
        if name in SECRET_KEYS:
            if not _is_secure(value):
                plaintext.append(
                    ConfigIssue(
                        name,
                        f"a secret stored in plaintext: set it with `pulumi config set --secret "
                        f"{prefix}{name} ...` so the file and Pulumi's state hold it encrypted",
                    )
                )
                continue
            secrets[name] = secure_placeholder(name)
            fingerprints[name] = _fingerprint(value)
        else:
            values[name] = _strip_secure(value)
    if plaintext:
        raise StackConfigError(source, plaintext)
    return StackFile(values, secrets, other, fingerprints)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _strip_secure(value: Any) -> Any:
    if _is_secure(value):
        return SECURE_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _strip_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secure(v) for v in value]
    return value


_CLUSTER_MODES: dict[str, type[BaseModel]] = {"eks": EksCluster, "existing": ExistingCluster}
_SECTIONS = frozenset(info.alias or name for name, info in StackConfig.model_fields.items())


def load_stack_config(
    project_root: Path, stack: str, fit_check: bool = True
) -> StackConfig | TrafficStackConfig:
    """Read and check stacks/Pulumi.<stack>.yaml (secrets are not decrypted, only noted)."""
    source = source_label(stack)
    values = read_stack_file(stack_file(project_root, stack), source).values
    return parse_stack_config(values, source, project_root, fit_check)


def parse_stack_config(
    values: dict[str, Any], source: str, project_root: Path, fit_check: bool = True
) -> StackConfig | TrafficStackConfig:
    """Validate raw values; raise StackConfigError listing every problem found.

    `role: traffic` makes it a traffic stack; anything else is an environment stack.
    """
    role = values.get("role", "environment")
    if role == "traffic":
        return _parse_traffic_stack(values, source)
    if role != "environment":
        raise StackConfigError(
            source, [ConfigIssue("role", f"{role!r} is not one of 'environment', 'traffic'")]
        )
    return _parse_environment_stack(values, source, project_root, fit_check)


def _parse_traffic_stack(values: dict[str, Any], source: str) -> TrafficStackConfig:
    issues = _validate(TrafficStackConfig, values, ())
    if issues:
        raise StackConfigError(source, issues)
    return TrafficStackConfig.model_validate(values)


def _parse_environment_stack(
    values: dict[str, Any], source: str, project_root: Path, fit_check: bool
) -> StackConfig:
    issues: list[ConfigIssue] = []
    allowed = sorted([*_SECTIONS, *SECRET_KEYS])
    for key in values:
        if key not in _SECTIONS and key not in SECRET_KEYS:
            issues.append(ConfigIssue(key, _unknown_key_message(key, allowed)))
    for key in ("cluster", "models"):
        if key not in values:
            issues.append(ConfigIssue(key, "required key missing"))

    cluster = values.get("cluster")
    if isinstance(cluster, dict):
        mode = cluster.get("mode", "eks")
        cluster_cls = _CLUSTER_MODES.get(mode)
        if cluster_cls is None:
            issues.append(ConfigIssue("cluster.mode", f"{mode!r} is not one of 'eks', 'existing'"))
        else:
            issues += _validate(cluster_cls, cluster, ("cluster",))
    elif cluster is not None:
        issues.append(ConfigIssue("cluster", "expected a mapping"))

    valid_models: dict[int, Any] = {}
    models = values.get("models")
    if isinstance(models, list):
        for index, model in enumerate(models):
            model_issues = _validate(Model, model, ("models", index))
            issues += model_issues
            if not model_issues:
                valid_models[index] = model
    elif models is not None:
        issues.append(ConfigIssue("models", "expected a list of models"))

    failed_sections: set[str] = set()
    for key, value in values.items():
        if key in _SECTIONS and key not in ("cluster", "models"):
            section_issues = _validate(StackConfig, {key: value}, (), only=key)
            issues += section_issues
            if section_issues:
                failed_sections.add(key)

    # Cross-checks need the cluster and node pools to stand; other sections fall back to defaults.
    foundation_ok = "nodePools" not in failed_sections and not any(
        i.path.startswith("cluster") for i in issues
    )
    if not issues:
        config = StackConfig.model_validate(_normalised(values))
        issues = cross_check(config, project_root, fit_check=fit_check)
        if issues:
            raise StackConfigError(source, issues)
        return config
    if foundation_ok and valid_models:
        # Cross-check the models that parsed, so their problems show up in this same report.
        partial = {k: v for k, v in values.items() if k in _SECTIONS and k not in failed_sections}
        partial["models"] = list(valid_models.values())
        config = StackConfig.model_validate(_normalised(partial))
        issues += cross_check(
            config, project_root, model_indexes=list(valid_models), fit_check=fit_check
        )
    raise StackConfigError(source, issues)


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    normalised = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    normalised["cluster"] = {"mode": "eks", **values["cluster"]}
    return normalised


def _validate(
    cls: type[BaseModel], value: Any, prefix: tuple[str | int, ...], only: str | None = None
) -> list[ConfigIssue]:
    try:
        cls.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        if only is not None:  # validating one section through StackConfig: keep that section's
            errors = [e for e in errors if e["loc"] and e["loc"][0] == only]
        return [_issue(cls, error, prefix) for error in errors]
    return []


def _issue(cls: type[BaseModel], error: ErrorDetails, prefix: tuple[str | int, ...]) -> ConfigIssue:
    loc = tuple(error["loc"])
    path = format_path(prefix + loc)
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(cls, loc[:-1])
        return ConfigIssue(path, _unknown_key_message(str(loc[-1]), allowed))
    if error["type"] == "missing":
        return ConfigIssue(path, "required key missing")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in ("value_error", "assertion_error") and "input" in error:
        message += f" (got {error['input']!r})"
    return ConfigIssue(path, message)


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r}; {hint}allowed: {', '.join(allowed)}"


def _allowed_keys(cls: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at `loc` inside `cls`, walking field annotations (lists, dicts, unions)."""
    current: Any = cls
    for part in loc:
        current = _model_in(current)
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = next(
            (f for n, f in current.model_fields.items() if part in (n, f.alias)),
            None,
        )
        if field is None:
            # dict keys (e.g. slots.green) keep us on the dict's value type
            continue
        current = field.annotation
    model = _model_in(current)
    if model is None:
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside Optional[...], list[...], dict[..., ...] or Annotated[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set):
        return _model_in(args[0]) if args else None
    if origin is dict:
        return _model_in(args[1]) if len(args) == 2 else None
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in args:
            found = _model_in(arg)
            if found is not None:
                return found
    return None
