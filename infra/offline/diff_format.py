"""The diff's outputs: text for a terminal, Markdown for a pull-request comment, JSON."""

from __future__ import annotations

import json
from typing import Any

from infra.offline.diff import MISSING, FieldChange, RenderDiff, ResourceDiff
from infra.offline.render import REDACTED
from infra.stack.yaml_source import dump_yaml

OPERATOR_REFUSES = "the operator will refuse this update"
FORCES_REPLACE = "this forces a replace (delete, then create)"
UPDATES_IN_PLACE = "updates in place"
ROLLS = "rolls the pods of (each restarts and reloads its weights)"
SECRET_CHANGE = "changed (secret)"
COMMENT_MARKER = "<!-- dynamo-infra diff: {stack} -->"
_VALUE_WIDTH = 120


def format_text(diff: RenderDiff) -> str:
    counts = diff.counts()
    lines = [
        f"stack {diff.stack}: {counts['added']} added, {counts['removed']} removed, "
        f"{counts['changed']} changed"
    ]
    marks = {"added": "+", "removed": "-", "changed": "~"}
    for change in diff.resources:
        lines.append(f"{marks[change.status]} {change.resource.label}")
        lines += ["    " + line for line in _detail_lines(change)]
    return "\n".join(lines) + "\n"


def format_markdown(diff: RenderDiff) -> str:
    counts = diff.counts()
    lines = [
        COMMENT_MARKER.format(stack=diff.stack),
        f"### Offline diff of stack `{diff.stack}`",
        "",
    ]
    if diff.empty:
        return "\n".join([*lines, "No change to any resource.", ""])
    lines += [
        f"**{counts['added']} added · {counts['removed']} removed · {counts['changed']} changed**",
        "",
        "| kind | added | removed | changed |",
        "|---|---:|---:|---:|",
    ]
    for group, row in diff.by_group().items():
        lines.append(f"| {group} | {row['added']} | {row['removed']} | {row['changed']} |")
    lines.append("")
    refused = [c for c in diff.resources if c.refusals]
    if refused:
        lines.append(f"> **{OPERATOR_REFUSES}** for {len(refused)} graph(s):")
        lines += [f"> - `{c.resource.label}`: {r}" for c in refused for r in c.refusals]
        lines.append("")
    replaced = [c for c in diff.resources if c.replaces]
    if replaced:
        lines.append(f"> **{FORCES_REPLACE}** for {len(replaced)} resource(s):")
        lines += [f"> - `{c.resource.label}`: {', '.join(c.replaced_by)}" for c in replaced]
        lines.append("")
    rolling = [c for c in diff.resources if c.rolls]
    if rolling:
        lines.append(f"> **Workers restart**: the update {ROLLS}:")
        lines += [f"> - `{c.resource.label}`: {', '.join(c.rolls)}" for c in rolling]
        lines.append("")
    for change in diff.resources:
        lines += [
            "<details>",
            f"<summary>{change.status}: <code>{change.resource.label}</code></summary>",
            "",
            "```diff",
            *_detail_lines(change),
            "```",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def format_json(diff: RenderDiff) -> str:
    def resource(change: ResourceDiff) -> dict[str, Any]:
        item = change.resource
        entry: dict[str, Any] = {
            "status": change.status,
            "type": item.type,
            "name": item.name,
            "file": item.file,
            "label": item.label,
        }
        if item.kind:
            entry |= {"kind": item.kind, "namespace": item.namespace, "k8sName": item.k8s_name}
        if change.status == "changed":
            entry["fields"] = [_json_field(f) for f in change.fields]
            entry["secretChanged"] = change.secret_changed
            entry["operatorRefuses"] = list(change.refusals)
            entry["forcesReplace"] = change.replaces
            entry["replacedBy"] = list(change.replaced_by)
            entry["rollsPodsOf"] = list(change.rolls)
            entry["notes"] = list(change.notes)
        return entry

    report = {
        "stack": diff.stack,
        "summary": diff.counts(),
        "byKind": diff.by_group(),
        "resources": [resource(c) for c in diff.resources],
    }
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _detail_lines(change: ResourceDiff) -> list[str]:
    """Diff-style lines: a whole document for added/removed, per field for changed."""
    if change.status != "changed":
        sign = "+" if change.status == "added" else "-"
        text = dump_yaml(change.resource.document)
        return [f"{sign} {line}" for line in text.splitlines()]
    lines = [f"! {OPERATOR_REFUSES}: {refusal}" for refusal in change.refusals]
    if change.replaces:
        lines.append(f"! {FORCES_REPLACE}: {', '.join(change.replaced_by)} changed")
    elif change.status == "changed":
        lines.append(f"  {UPDATES_IN_PLACE}")
    if change.rolls:
        lines.append(f"! {ROLLS}: {', '.join(change.rolls)}")
    lines += [f"! {note}" for note in change.notes]
    if change.secret_changed:
        keys = ", ".join(sorted(change.resource.secrets))
        lines.append(f"! {SECRET_CHANGE}: {keys}")
    for item in change.fields:
        lines.append(f"  {item.path}:")
        if _multiline(item.before) or _multiline(item.after):
            lines += _text_diff(item.before, item.after)
            continue
        if item.before is not MISSING:
            lines.append(f"-   {_short(item.before)}")
        if item.after is not MISSING:
            lines.append(f"+   {_short(item.after)}")
    return lines


def _multiline(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _text_diff(before: Any, after: Any) -> list[str]:
    import difflib

    old = before.splitlines() if isinstance(before, str) else []
    new = after.splitlines() if isinstance(after, str) else []
    out = []
    for line in difflib.unified_diff(old, new, lineterm="", n=1):
        if line.startswith(("---", "+++")):
            continue
        out.append(line if line.startswith("@@") else f"{line[0]}   {line[1:]}")
    return out


def _short(value: Any) -> str:
    if value is MISSING:
        return "(absent)"
    if value == REDACTED:
        return REDACTED
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _json_field(change: FieldChange) -> dict[str, Any]:
    """A side that does not exist is left out, so `null` always means a real null."""
    item: dict[str, Any] = {"path": change.path}
    if change.before is not MISSING:
        item["before"] = change.before
    if change.after is not MISSING:
        item["after"] = change.after
    return item
