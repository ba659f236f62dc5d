"""User-facing configuration problems: each names the file, the line and the YAML path at fault."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from infra.stack.yaml_source import SourceMap

CONFIG_NAMESPACE = "dynamo-trtllm"

# error: refused; warning: said, not refused (unless --strict); note: a check that was skipped.
Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem, located by its YAML path (under `dynamo-trtllm:` unless namespace is None).

    `file`, `line` and `column` are filled from the file's source map when the issue is reported;
    `file` is set when the problem is in another file than the stack file (an engine config).
    """

    path: str
    message: str
    severity: Severity = "error"
    namespace: str | None = CONFIG_NAMESPACE
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def yaml_path(self) -> str:
        if not self.path:
            return ""
        return f"{self.namespace}:{self.path}" if self.namespace else self.path

    def parts(self) -> tuple[str | int, ...]:
        """The path as keys and indexes into the stack file's `config:` mapping."""
        parts = parse_path(self.path)
        if self.namespace and parts:
            return (f"{self.namespace}:{parts[0]}", *parts[1:])
        return parts

    def located(self, source: str, source_map: SourceMap | None) -> ConfigIssue:
        """This issue with its file, and its line and column when the map knows them."""
        if self.file is not None or self.line is not None:
            return self if self.file else dataclasses.replace(self, file=source)
        location = source_map.locate(("config", *self.parts())) if source_map else None
        if location is None:
            return dataclasses.replace(self, file=source)
        return dataclasses.replace(self, file=source, line=location.line, column=location.column)

    def render(self, source: str | None = None) -> str:
        where = self.file or source or ""
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        text = f"{where}: " if where else ""
        if self.severity != "error":
            text += f"{self.severity}: "
        if self.yaml_path:
            text += f"{self.yaml_path}: "
        return text + self.message

    def as_dict(self, source: str | None = None) -> dict[str, Any]:
        return {
            "file": self.file or source,
            "line": self.line,
            "column": self.column,
            "path": self.yaml_path,
            "message": self.message,
            "severity": self.severity,
        }


class StackConfigError(Exception):
    """Raised with every problem found at once, so one edit round fixes them all.

    `issues` holds the errors; `others` the warnings and notes found in the same run.
    """

    def __init__(
        self,
        source: str,
        issues: list[ConfigIssue],
        source_map: SourceMap | None = None,
    ) -> None:
        self.source = source
        located = [issue.located(source, source_map) for issue in issues]
        unique = sorted(set(located), key=issue_sort_key)
        self.issues = [i for i in unique if i.severity == "error"]
        self.others = [i for i in unique if i.severity != "error"]
        super().__init__(self.report())

    def report(self) -> str:
        lines = [issue.render(self.source) for issue in self.issues + self.others]
        count = len(self.issues)
        noun = "problem" if count == 1 else "problems"
        return f"{count} {noun} in the stack configuration:\n" + "\n".join(lines)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [issue.as_dict(self.source) for issue in self.issues + self.others]


def issue_sort_key(issue: ConfigIssue) -> tuple[int, str, int, int, str, str]:
    severity = {"error": 0, "warning": 1, "note": 2}[issue.severity]
    return (
        severity,
        issue.file or "",
        issue.line or 0,
        issue.column or 0,
        issue.yaml_path,
        issue.message,
    )


def format_path(loc: tuple[str | int, ...]) -> str:
    """('models', 1, 'decode', 'gpusPerWorker') -> 'models[1].decode.gpusPerWorker'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def parse_path(path: str) -> tuple[str | int, ...]:
    """'models[1].decode.gpusPerWorker' -> ('models', 1, 'decode', 'gpusPerWorker')."""
    return tuple(
        int(index) if index else key for index, key in _PATH_PART.findall(path) if index or key
    )
