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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from infra.stack.checks import cross_check
from infra.stack.config import (
    SECRET_KEYS,
    EksCluster,
    ExistingCluster,
    StackConfig,
    TrafficStackConfig,
)
from infra.stack.errors import CONFIG_NAMESPACE, ConfigIssue, StackConfigError, format_path
from infra.stack.model_config import Model
from infra.stack.yaml_source import SourceMap, YamlProblem, YamlSourceError, kind_of, read_yaml_file

# Placeholder for `secure:` values offline, where Pulumi's decryption is not available.
SECURE_PLACEHOLDER = "[secure value: decrypted by Pulumi at deploy time]"


def stack_file(project_root: Path, stack: str) -> Path:
    return project_root / "stacks" / f"Pulumi.{stack}.yaml"


def source_label(stack: str) -> str:
    """How errors name the stack file: relative to the project, as the user edits it."""
    return f"stacks/Pulumi.{stack}.yaml"


# Config namespaces a stack file may use: ours, and the providers and Pulumi settings we run with.
KNOWN_NAMESPACES = (CONFIG_NAMESPACE, "aws", "kubernetes", "pulumi")


class StackFile(typing.NamedTuple):
    values: dict[str, Any]  # our namespace's keys without the prefix
    secrets: dict[str, str]  # secret key -> plaintext, or secure_placeholder(key) when encrypted
    other: dict[str, Any]  # keys of other namespaces (aws:region, ...), passed through to Pulumi
    # secret key -> digest of its text in the stack file (the ciphertext for `secure:` values),
    # so a diff can say a secret changed without seeing it.
    secret_fingerprints: dict[str, str] = {}
    source_map: SourceMap | None = None
    # Problems the file itself has (duplicate keys, plaintext secrets, unknown namespaces ...),
    # reported together with the schema's and the cross-checks'.
    issues: tuple[ConfigIssue, ...] = ()
    # Pulumi ESC environments the file imports (`environment:`): config we cannot see offline.
    environments: tuple[str, ...] = ()


def secure_placeholder(key: str) -> str:
    """What an encrypted secret looks like offline: one per key, so its uses can be told apart."""
    return f"[secure {key}: decrypted by Pulumi at deploy time]"


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def read_stack_file(path: Path, source: str) -> StackFile:
    """Read `Pulumi.<stack>.yaml`; `secure:` values stay encrypted and become placeholders.

    Raises StackConfigError only when the file cannot be read as a stack file at all; every
    other problem is returned in `issues`, to be reported with the rest.
    """
    try:
        document = read_yaml_file(path, read_by_pulumi=True)
    except YamlSourceError as error:
        issue = ConfigIssue("", error.message, file=source, line=error.line, column=error.column)
        raise StackConfigError(source, [issue]) from None
    top = document.value
    if top is None:
        top = {}
    if not isinstance(top, dict):
        raise StackConfigError(
            source, [ConfigIssue("", "expected a mapping with a `config:` key", line=1, column=1)]
        )
    if "config" not in top:
        stray = [str(k) for k in top if ":" in str(k)]
        hint = (
            f": {', '.join(stray[:3])} {'is' if len(stray) == 1 else 'are'} at the top level; "
            "indent them under `config:`"
            if stray
            else ""
        )
        raise StackConfigError(
            source,
            [
                ConfigIssue(
                    "", f"a stack file holds its settings under `config:`{hint}", line=1, column=1
                )
            ],
        )
    config = top["config"]
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise StackConfigError(
            source,
            [
                ConfigIssue(
                    "config", "`config:` must be a mapping of keys to values", namespace=None
                )
            ],
            document.source_map,
        )
    issues = [_file_problem(problem) for problem in document.problems]
    for key in top:
        if key not in (
            "config",
            "secretsprovider",
            "encryptedkey",
            "encryptionsalt",
            "environment",
        ):
            issues.append(
                ConfigIssue(
                    str(key),
                    f"unknown top-level key {str(key)!r} (a stack file holds `config:` and "
                    "Pulumi's encryption settings)",
                    namespace=None,
                )
            )
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    other: dict[str, Any] = {}
    prefix = f"{CONFIG_NAMESPACE}:"
    for key, value in config.items():
        key = str(key)
        namespace, colon, name = key.partition(":")
        if not colon or not namespace or not name:
            issues.append(
                ConfigIssue(
                    key,
                    f"a config key is `<namespace>:<name>` (ours: `{CONFIG_NAMESPACE}:<name>`)",
                    namespace=None,
                )
            )
            continue
        if namespace != CONFIG_NAMESPACE:
            if namespace not in KNOWN_NAMESPACES:
                close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1)
                hint = f"did you mean {close[0]}:{name}? " if close else ""
                issues.append(
                    ConfigIssue(
                        key,
                        f"unknown config namespace {namespace!r}: Pulumi would hand it to no "
                        f"one and the setting would be ignored; {hint}known: "
                        f"{', '.join(KNOWN_NAMESPACES)}",
                        namespace=None,
                    )
                )
                continue
            other[key] = _strip_secure(value)
            continue
        if name in SECRET_KEYS:
            if not _is_secure(value):
                issues.append(
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
            for where in _secure_paths(value, name):
                issues.append(
                    ConfigIssue(
                        where,
                        "a `secure:` value on a key that is not a secret: the program takes it "
                        "as plain configuration, so the decrypted value would land in manifests "
                        "and in Pulumi's state in clear; write it in plain text (the secret "
                        f"keys are {', '.join(sorted(SECRET_KEYS))})",
                    )
                )
            values[name] = _strip_secure(value)
    issues += _region_issues(values, other)
    imported = top.get("environment") or []
    environments = tuple(str(e) for e in imported) if isinstance(imported, list) else ()
    return StackFile(
        values, secrets, other, fingerprints, document.source_map, tuple(issues), environments
    )


def _region_issues(values: dict[str, Any], other: dict[str, Any]) -> list[ConfigIssue]:
    """cluster.region is the truth; the AWS provider reads aws:region: they must agree.

    Otherwise the VPC, cluster and node groups go to one region and the kubeconfig's
    `aws eks get-token --region` to another.
    """
    cluster = values.get("cluster")
    if not isinstance(cluster, dict) or cluster.get("mode", "eks") != "eks":
        return []
    region = cluster.get("region")
    if not isinstance(region, str):
        return []  # the schema reports it
    provider_region = other.get("aws:region")
    if provider_region == region:
        return []
    if provider_region is None:
        message = (
            f"not set: the AWS provider would take its region from the environment; set "
            f"aws:region: {region} (cluster.region)"
        )
    else:
        message = (
            f"{provider_region!r} differs from {CONFIG_NAMESPACE}:cluster.region {region!r}: "
            "AWS resources would go to one region and the kubeconfig to the other; make them equal"
        )
    return [ConfigIssue("aws:region", message, namespace=None)]


def _file_problem(problem: YamlProblem) -> ConfigIssue:
    """A duplicate key or an ambiguous scalar, at its path under `config:`."""
    parts = problem.path[1:] if problem.path[:1] == ("config",) else problem.path
    first = str(parts[0]) if parts else ""
    namespace, _, name = first.partition(":")
    ours = namespace == CONFIG_NAMESPACE and bool(name)
    path = format_path((name, *parts[1:])) if ours else format_path(problem.path)
    return ConfigIssue(
        path,
        problem.message,
        namespace=CONFIG_NAMESPACE if ours else None,
        line=problem.location.line,
        column=problem.location.column,
    )


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _secure_paths(value: Any, path: str) -> list[str]:
    """Where `secure:` values sit inside a value, as YAML paths."""
    if _is_secure(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secure_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secure_paths(v, f"{path}[{i}]")]
    return []


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


class SchemaCheck(typing.NamedTuple):
    """A stack's values checked on their own (schema and cross-field rules), without raising."""

    config: StackConfig | TrafficStackConfig | None  # None while there are errors
    # The environment sections and models that stand on their own, for the checks that read
    # files (engine configs, model facts): they run on this subset in the same pass.
    partial: StackConfig | None
    model_indexes: list[int]  # partial.models[i] is the file's models[model_indexes[i]]
    issues: list[ConfigIssue]

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
    return SchemaCheck(config, partial, indexes, issues)


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
                    "checks of the models against the cluster and node pools were skipped: "
                    f"fix {' and '.join(foundation_failed)} first",
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
