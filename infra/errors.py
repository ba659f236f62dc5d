"""User-facing configuration errors: each names the stack file and the YAML path at fault."""

from __future__ import annotations

from dataclasses import dataclass

CONFIG_NAMESPACE = "dynamo-trtllm"


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem in a stack file, located by its YAML path under `dynamo-trtllm:`."""

    path: str
    message: str

    def render(self, source: str) -> str:
        return f"{source}: {CONFIG_NAMESPACE}:{self.path}: {self.message}"


class StackConfigError(Exception):
    """Raised with every problem found at once, so one edit round fixes them all."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = sorted(set(issues), key=_issue_sort_key)
        super().__init__(self.report())

    def report(self) -> str:
        lines = [issue.render(self.source) for issue in self.issues]
        noun = "problem" if len(lines) == 1 else "problems"
        return f"{len(lines)} {noun} in the stack configuration:\n" + "\n".join(lines)


def _issue_sort_key(issue: ConfigIssue) -> tuple[str, str]:
    return (issue.path, issue.message)


def format_path(loc: tuple[str | int, ...]) -> str:
    """('models', 1, 'decode', 'gpusPerWorker') -> 'models[1].decode.gpusPerWorker'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
