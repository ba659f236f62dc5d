"""The stack file's values against the schema, section by section and model by model, so one bad
model or section does not hide the others' problems; each problem at its file, line and path."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from infra.stack.checks import cross_check
from infra.stack.cluster_config import EksCluster, ExistingCluster
from infra.stack.config import SECRET_KEYS, StackConfig, TrafficStackConfig
from infra.stack.errors import CONFIG_NAMESPACE, ConfigIssue, format_path
from infra.stack.model_config import Model
from infra.stack.platform_config import PlatformSpec
from infra.stack.yaml_source import SourceMap, kind_of

_CLUSTER_MODES: dict[str, type[BaseModel]] = {"eks": EksCluster, "existing": ExistingCluster}


_SECTIONS = frozenset(info.alias or name for name, info in StackConfig.model_fields.items())


class SchemaCheck(typing.NamedTuple):
    """A stack's values checked on their own (schema and cross-field rules), without raising."""

    config: StackConfig | TrafficStackConfig | None  # None while there are errors
    # The environment sections and models that stand on their own, for the checks that read
    # files (engine configs, model facts): they run on this subset in the same pass.
    partial: StackConfig | None
    model_indexes: list[int]  # partial.models[i] is the file's models[model_indexes[i]]
    issues: list[ConfigIssue]
    # When the cluster or node pools fail (so no partial config): the models that stand on
    # their own, by index in the file, with the platform when it stands, for the checks that
    # need neither (their engine config files).
    standalone_models: tuple[tuple[int, Model], ...] = ()
    platform: PlatformSpec | None = None

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)


def check_values(
    values: dict[str, Any],
    source_map: SourceMap | None = None,
    file_issues: Sequence[ConfigIssue] = (),
) -> SchemaCheck:
    """Validate raw values; every problem found, and what can be checked further.

    `role: traffic` makes it a traffic stack; anything else is an environment stack.
    `file_issues` (the stack file's own problems) are reported with the rest.
    """
    role = values.get("role", "environment")
    if role == "traffic":
        issues = list(file_issues) + _validate(TrafficStackConfig, values, (), source_map)
        ok = not any(i.severity == "error" for i in issues)
        return SchemaCheck(
            TrafficStackConfig.model_validate(values) if ok else None, None, [], issues
        )
    if role != "environment":
        issue = ConfigIssue("role", f"{role!r} is not one of 'environment', 'traffic'")
        return SchemaCheck(None, None, [], [*file_issues, issue])
    issues = list(file_issues)
    found, partial, indexes = _environment_issues(values, source_map)
    issues += found
    ok = not any(i.severity == "error" for i in issues)
    config = StackConfig.model_validate(_normalised(values)) if ok else None
    if partial is not None or ok:
        return SchemaCheck(config, partial, indexes, issues)
    return SchemaCheck(None, None, [], issues, *_standing_alone(values, issues))


def _standing_alone(
    values: dict[str, Any], issues: list[ConfigIssue]
) -> tuple[tuple[tuple[int, Model], ...], PlatformSpec | None]:
    """The models (and platform) valid on their own, for the checks that need no cluster."""
    failed = {i.path.split(".", 1)[0].split("[", 1)[0] for i in issues if i.severity == "error"}
    models = values.get("models")
    standing: list[tuple[int, Model]] = []
    if isinstance(models, list):
        for index, model in enumerate(models):
            if not any(i.path.startswith(f"models[{index}]") for i in issues):
                standing.append((index, Model.model_validate(model)))
    platform = values.get("platform", {})
    valid_platform = None
    if "platform" not in failed and isinstance(platform, dict):
        valid_platform = PlatformSpec.model_validate(platform)
    return tuple(standing), valid_platform


def _environment_issues(
    values: dict[str, Any], source_map: SourceMap | None
) -> tuple[list[ConfigIssue], StackConfig | None, list[int]]:
    """Every problem of an environment stack: each section on its own, then the cross-checks.

    A check is skipped only when its own input is invalid, and a note says so. Also returns the
    sections and models that stand (and their indexes in the file), for the checks that follow.
    """
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
        cluster_cls = _CLUSTER_MODES.get(mode) if isinstance(mode, str) else None
        if cluster_cls is None:
            issues.append(ConfigIssue("cluster.mode", f"{mode!r} is not one of 'eks', 'existing'"))
        else:
            issues += _validate(cluster_cls, cluster, ("cluster",), source_map)
    elif "cluster" in values:
        issues.append(ConfigIssue("cluster", f"expected a mapping, not {kind_of(cluster)}"))

    valid_models: dict[int, Any] = {}
    models = values.get("models")
    if isinstance(models, list):
        if not models:
            issues.append(ConfigIssue("models", "no model: a stack serves at least one model"))
        for index, model in enumerate(models):
            model_issues = _validate(Model, model, ("models", index), source_map)
            issues += model_issues
            if not model_issues:
                valid_models[index] = model
    elif "models" in values:
        issues.append(ConfigIssue("models", f"expected a list of models, not {kind_of(models)}"))

    failed_sections: set[str] = set()
    for key, value in values.items():
        if key in _SECTIONS and key not in ("cluster", "models"):
            section_issues = _validate(StackConfig, {key: value}, (), source_map, only=key)
            issues += section_issues
            if section_issues:
                failed_sections.add(key)

    # Cross-checks need the cluster and node pools to stand; other sections fall back to defaults.
    foundation_failed = sorted(
        {"nodePools"} & failed_sections
        | {"cluster" for i in issues if i.path.startswith("cluster") or i.path == "cluster"}
    )
    if foundation_failed:
        if valid_models:
            issues.append(
                ConfigIssue(
                    "models",
                    "checks of the models against the cluster and node pools (placement, "
                    "GPU-memory fit, pools, the operator's rules) were skipped: fix "
                    f"{' and '.join(foundation_failed)} first; their engine configs were checked",
                    severity="note",
                )
            )
        return issues, None, []
    if not valid_models:
        return issues, None, []
    partial = {k: v for k, v in values.items() if k in _SECTIONS and k not in failed_sections}
    partial["models"] = list(valid_models.values())
    config = StackConfig.model_validate(_normalised(partial))
    issues += cross_check(config, model_indexes=list(valid_models))
    return issues, config, list(valid_models)


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    normalised = {k: v for k, v in values.items() if k not in SECRET_KEYS}
    normalised["cluster"] = {"mode": "eks", **values["cluster"]}
    return normalised


def _validate(
    cls: type[BaseModel],
    value: Any,
    prefix: tuple[str | int, ...],
    source_map: SourceMap | None,
    only: str | None = None,
) -> list[ConfigIssue]:
    try:
        cls.model_validate(value)
    except ValidationError as exc:
        errors = exc.errors()
        if only is not None:  # validating one section through StackConfig: keep that section's
            errors = [e for e in errors if e["loc"] and e["loc"][0] == only]
        return [_issue(cls, error, prefix, source_map) for error in errors]
    return []


def _issue(
    cls: type[BaseModel],
    error: ErrorDetails,
    prefix: tuple[str | int, ...],
    source_map: SourceMap | None,
) -> ConfigIssue:
    loc = tuple(error["loc"])
    path = format_path(prefix + loc)
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(cls, loc[:-1])
        return ConfigIssue(path, _unknown_key_message(str(loc[-1]), allowed))
    if error["type"] == "missing":
        return ConfigIssue(path, "required key missing")
    if error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        return ConfigIssue(path, f"expected a mapping of keys, not {kind_of(error.get('input'))}")
    if error["type"] == "list_type":
        return ConfigIssue(path, f"expected a list, not {kind_of(error.get('input'))}")
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "string_type" and isinstance(error.get("input"), bool | int | float):
        # YAML read an unquoted 1.30 as the number 1.3, or `no` as false: say how to keep the text.
        first, *rest = prefix + loc
        spelled = (
            source_map.spelled(("config", f"{CONFIG_NAMESPACE}:{first}", *rest))
            if source_map
            else None
        )
        shown = spelled if spelled is not None else str(error["input"])
        return ConfigIssue(
            path,
            f'expected text, but YAML reads `{shown}` as {error["input"]!r}: quote it: "{shown}"',
        )
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
