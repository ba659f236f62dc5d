"""Load one TensorRT-LLM engine-config YAML file and report every problem in it.

The file is what Dynamo passes as ``--extra-engine-args``. TensorRT-LLM reads it
with ``yaml.safe_load``, applies its YAML merge rules and then validates it as
``TorchLlmArgs``; we do the same against our own schema (``infra.trtllm.engine_schema``)
so a bad file is caught before deployment, with a path into the file for each
problem. When ``tensorrt_llm`` is importable, ``tensorrt_llm_issues`` asks the
real thing as well.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra.stack.errors import format_path, parse_path
from infra.stack.yaml_source import (
    SourceMap,
    YamlSourceError,
    kind_of,
    load_yaml_text,
    read_yaml_file,
)
from infra.trtllm.engine_schema import (
    DEPRECATED_INPUT_KEYS,
    RENAMED_KEYS,
    TorchLlmArgs,
    model_at,
    union_members,
    yaml_keys,
)
from infra.trtllm.field_versions import version_problems

# Sections TensorRT-LLM's YAML merge builds straight from the mapping in the
# file (``Config(**value)``), so anything but a mapping fails there, even where
# TorchLlmArgs itself would accept null. ``multimodal_config`` is left out: the
# merge turns null into an empty mapping.
_MERGE_BUILT_SECTIONS = (
    "decoding_config",
    "lora_config",
    "moe_config",
    "nvfp4_gemm_config",
    "attention_dp_config",
    "reorder_policy_config",
    "kv_cache_config",
    "dwdp_config",
    "telemetry_config",
)

# New key -> the deprecated key a file may still use for it.
_OLD_KEY_FOR = {new: old for old, new in DEPRECATED_INPUT_KEYS.items()}


@dataclass(frozen=True, order=True)
class EngineConfigIssue:
    """One problem, located by a dotted path into the YAML file ("" = the whole file)."""

    key_path: str
    message: str
    line: int | None = field(default=None, compare=False)
    column: int | None = field(default=None, compare=False)
    severity: str = field(default="error", compare=False)  # or "warning": said, not refused

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}:{self.column or 1}" if self.line else source
        # As a stack problem renders (ConfigIssue.render): only a non-error says what it is.
        kind = "" if self.severity == "error" else f"{self.severity}: "
        if self.key_path:
            return f"{where}: {kind}{self.key_path}: {self.message}"
        return f"{where}: {kind}{self.message}"

    def as_dict(self, source: str) -> dict[str, Any]:
        """The JSON shape every command reports a problem in (ConfigIssue.as_dict)."""
        return {
            "file": source,
            "line": self.line,
            "column": self.column,
            "path": self.key_path,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(frozen=True)
class EngineConfigResult:
    """The parsed args (when valid), every issue found, and the mapping as read."""

    args: TorchLlmArgs | None  # None when invalid
    issues: list[EngineConfigIssue]
    raw: dict  # the YAML mapping as loaded ({} when there is none)
    source_map: SourceMap = field(default_factory=SourceMap)
    text: str | None = None  # the file as read (None when it could not be read)
    empty: bool = False  # no document at all: no bytes, only comments, or only `null`

    @property
    def ok(self) -> bool:
        return not self.issues

    def locate(self, issue: EngineConfigIssue) -> EngineConfigIssue:
        """The issue with the line and column of its key (or of the nearest key above it)."""
        if issue.line is not None:
            return issue
        location = self.source_map.locate(parse_path(issue.key_path))
        if location is None:
            return issue
        return dataclasses.replace(issue, line=location.line, column=location.column)


@dataclass(frozen=True)
class Runtime:
    """The TensorRT-LLM release a file is checked for, and what carries it (for messages)."""

    trtllm_version: str
    label: str | None = None  # e.g. "Dynamo 1.2.0's runtime"


def check_engine_config_text(text: str, runtime: Runtime | None = None) -> EngineConfigResult:
    """Parse and check engine-config YAML text; never raises for bad input.

    runtime: also refuse what that TensorRT-LLM release does not take (None: the schema alone,
    which takes what any release we know takes).
    """
    try:
        document = load_yaml_text(text)
    except YamlSourceError as error:
        return _unreadable(error)
    return _check_document(document.value, document.source_map, document.problems, text, runtime)


def check_engine_config_data(loaded: Any, runtime: Runtime | None = None) -> EngineConfigResult:
    """Check an already-parsed YAML document (None counts as an empty file)."""
    return _check_document(loaded, SourceMap(), [], runtime=runtime)


def check_engine_config_file(path: Path, runtime: Runtime | None = None) -> EngineConfigResult:
    """Read and check one engine-config file; unreadable files become an issue."""
    try:
        document = read_yaml_file(Path(path))
    except YamlSourceError as error:
        return _unreadable(error)
    return _check_document(
        document.value, document.source_map, document.problems, document.text, runtime
    )


def _unreadable(error: YamlSourceError) -> EngineConfigResult:
    issue = EngineConfigIssue("", error.message, error.line, error.column)
    return EngineConfigResult(None, [issue], {})


def _check_document(
    loaded: Any,
    source_map: SourceMap,
    problems: list[Any],
    text: str | None = None,
    runtime: Runtime | None = None,
) -> EngineConfigResult:
    empty = loaded is None
    if empty:
        loaded = {}  # as TensorRT-LLM's YAML merge reads it (the file rules refuse it)
    if not isinstance(loaded, dict):
        message = (
            "the top level must be a mapping of TensorRT-LLM option names to values, "
            f"not {kind_of(loaded)}"
        )
        issue = EngineConfigIssue("", message, 1, 1)
        return EngineConfigResult(None, [issue], {}, source_map, text)
    duplicates = [
        EngineConfigIssue(format_path(p.path), p.message, p.location.line, p.location.column)
        for p in problems
    ]
    result = _check_mapping(loaded)
    found = list(result.issues)
    if runtime is not None:
        found += [
            EngineConfigIssue(path, message)
            for path, message in version_problems(loaded, runtime.trtllm_version, runtime.label)
        ]
    locator = EngineConfigResult(None, [], {}, source_map)
    issues = duplicates + [locator.locate(i) for i in _unique(found)]
    args = None if issues else result.args
    return EngineConfigResult(args, issues, loaded, source_map, text, empty=empty)


def tensorrt_llm_issues(raw: dict) -> list[EngineConfigIssue] | None:
    """TensorRT-LLM's own verdict on `raw`, or None when tensorrt_llm is not importable.

    Validates ``TorchLlmArgs(model="placeholder", **raw)`` after the one key rename
    of the YAML merge (``hf_revision``); a ``model`` in the file wins.
    """
    try:
        from tensorrt_llm.llmapi.llm_args import TorchLlmArgs as UpstreamArgs
    except Exception:  # not installed, or its native libraries failed to load
        return None
    data = _rename_deprecated_top_level(raw)
    try:
        UpstreamArgs(**{"model": "placeholder", **data})
    except ValidationError as exc:
        return _issues_from(exc, raw)
    except Exception as exc:  # plain ValueError/TypeError/AssertionError from validators
        return [EngineConfigIssue("", f"{type(exc).__name__}: {exc}")]
    return []


def _check_mapping(raw: dict) -> EngineConfigResult:
    issues: list[EngineConfigIssue] = []
    data = _rename_deprecated_top_level(raw)
    for key in _MERGE_BUILT_SECTIONS:
        if key in data and not isinstance(data[key], dict):
            issues.append(
                EngineConfigIssue(key, f"must be a mapping of settings, not {kind_of(data[key])}")
            )
            del data[key]  # reported once here rather than again by the schema
    try:
        args = TorchLlmArgs.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issues_from(exc, raw))
        args = None
    return EngineConfigResult(None if issues else args, _unique(issues), raw)


def _rename_deprecated_top_level(raw: dict) -> dict:
    """Mirror the merge's ``hf_revision`` -> ``revision`` (an explicit revision wins)."""
    data = dict(raw)
    if "hf_revision" in data:
        data.setdefault("revision", data.pop("hf_revision"))
    return data


def _issues_from(exc: ValidationError, raw: dict) -> list[EngineConfigIssue]:
    issues: list[EngineConfigIssue] = []
    alternatives: dict[str, list[str]] = {}  # plain-union members failing at one key
    inputs: dict[str, Any] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        ctx = error.get("ctx") or {}
        tail: tuple[str | int, ...] = ()
        if kind == "engine_config" and ctx.get("field"):
            tail = tuple(str(ctx["field"]).split("."))
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            discriminator = str(ctx.get("discriminator", "")).strip("'")
            tail = (discriminator,)
            message = _tag_message(loc, discriminator, ctx)
        elif kind == "missing":
            tail, loc, message = loc[-1:], loc[:-1], "required key is missing"
        elif kind == "extra_forbidden":
            message = _unknown_key_message(loc)
        path, union_member = _key_path(loc, tail, raw)
        if union_member and kind != "extra_forbidden" and message.startswith("Input should be "):
            alternatives.setdefault(path, []).append(message)
            inputs[path] = error.get("input")
            continue
        if kind != "extra_forbidden" and _is_scalar(error.get("input", [])):
            message = f"{message} (got {error['input']!r})"
        issues.append(EngineConfigIssue(path, message))
    for path, messages in alternatives.items():
        message = _either(messages)
        if _is_scalar(inputs[path]):
            message = f"{message} (got {inputs[path]!r})"
        issues.append(EngineConfigIssue(path, message))
    return issues


def _either(messages: list[str]) -> str:
    """'Input should be a valid boolean, ...' + "Input should be 'auto'" -> one sentence."""
    if len(messages) == 1:
        return messages[0]
    wanted = [m.removeprefix("Input should be ").split(", ")[0] for m in messages]
    return "Input should be " + " or ".join(dict.fromkeys(wanted))


def _key_path(loc: tuple[Any, ...], tail: tuple[Any, ...], raw: Any) -> tuple[str, bool]:
    """A path into the file, and whether `loc` ended inside a plain union's member.

    Pydantic puts the tag of a tagged union (``speculative_config.MTP.x``) and
    the member of a plain union (``...target_sparsity.float``) into the location;
    neither is in the file, so parts that do not lead into the data are
    dropped. `tail` parts (keys the file may lack) are always kept.
    """
    parts: list[str] = []
    node: Any = raw
    dropped_last = False
    for index, part in enumerate(loc + tail):
        keep = index >= len(loc)
        dropped_last = False
        if isinstance(node, dict):
            key = part if part in node else _OLD_KEY_FOR.get(str(part))
            if key is not None and key in node:
                parts.append(_key_text(key, first=not parts))
                node = node[key]
                continue
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(f"[{part}]")
            node = node[part]
            continue
        if keep:
            parts.append(_key_text(part, first=not parts))
            node = None
        else:
            dropped_last = True
    return "".join(parts), dropped_last and not tail


def _key_text(key: Any, *, first: bool) -> str:
    return str(key) if first else f".{key}"


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    model = model_at(loc[:-1])
    if model is None:
        return "unknown key"
    hint = RENAMED_KEYS.get((model.__name__, key))
    if hint:
        return f"unknown key ({hint})"
    fields = yaml_keys(model)
    same = next((ks for ks in fields.values() if key in ks), None)
    if same is not None:  # a second spelling of an option already given
        others = " / ".join(repr(k) for k in same if k != key)
        return f"sets the same option as {others}; give only one of them"
    allowed = [k for keys in fields.values() for k in keys]
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return "unknown key"


def _tag_message(loc: tuple[Any, ...], discriminator: str, ctx: dict) -> str:
    tags = _expected_tags(loc)
    expected = f"; expected one of: {', '.join(tags)}" if tags else ""
    if "tag" in ctx:
        return f"unknown {discriminator} {ctx['tag']!r}{expected}"
    return f"required key is missing{expected}"


def _expected_tags(loc: tuple[Any, ...]) -> list[str]:
    if not loc:
        return []
    parent = model_at(loc[:-1])
    if parent is None:
        return []
    name = next((n for n, keys in yaml_keys(parent).items() if loc[-1] in keys), None)
    if name is None:
        return []
    info = parent.model_fields[name]
    members = union_members(info.annotation, info.discriminator)
    return list(members or {})


def _unique(issues: list[EngineConfigIssue]) -> list[EngineConfigIssue]:
    return list(dict.fromkeys(issues))


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) or value is None
