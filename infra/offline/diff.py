"""What a change does to a stack: the difference of two offline renders, per resource and field.

Reviewers read this in a pull request before any cloud preview runs. Secrets never appear: render
files only hold `[secret]`, and a changed secret is detected from the fingerprints of its
stack-file text that render records in index.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.cluster import ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE
from infra.deployment.operator_rules import operator_update_refusals
from infra.offline.render import REDACTED, render_stack
from infra.offline.replace_fields import kubernetes_replacing_fields
from infra.offline.replace_fields import replacing_fields as aws_replacing_fields
from infra.offline.rollouts import graph_services, rolled_services
from infra.stack.dynamo_versions import profile
from infra.stack.yaml_source import dump_yaml, load_trusted

STATUSES = ("added", "removed", "changed")
OPERATOR_REFUSES = "the operator will refuse this update"
FORCES_REPLACE = "this forces a replace (delete, then create)"
UPDATES_IN_PLACE = "updates in place"
ROLLS = "rolls the pods of (each restarts and reloads its weights)"
SECRET_CHANGE = "changed (secret)"
COMMENT_MARKER = "<!-- dynamo-infra diff: {stack} -->"
_VALUE_WIDTH = 120


class DiffError(Exception):
    """A side of the diff could not be rendered or read."""


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class RenderedResource:
    """One entry of a render's index.json with its YAML document."""

    type: str
    name: str
    file: str
    document: Any
    kind: str | None = None
    namespace: str | None = None
    k8s_name: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    lifecycle: dict[str, Any] = field(default_factory=dict)  # Pulumi options, from index.json

    @property
    def key(self) -> tuple[str, str]:
        return (self.type, self.name)

    @property
    def group(self) -> str:
        """What the summary counts it as: the Kubernetes kind, HelmRelease, or the Pulumi type."""
        if self.kind:
            return self.kind
        if self.type == "kubernetes:helm.sh/v3:Release":
            return "HelmRelease"
        return self.type

    @property
    def label(self) -> str:
        if self.kind:
            where = f"{self.namespace}/" if self.namespace else ""
            return f"{self.kind} {where}{self.k8s_name}"
        if self.group == "HelmRelease" and isinstance(self.document, dict):
            return f"HelmRelease {self.document.get('namespace')}/{self.document.get('name')}"
        return f"{self.type} {self.name}"


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ResourceDiff:
    status: str  # added | removed | changed
    resource: RenderedResource  # the head side, or the base side when removed
    fields: list[FieldChange] = field(default_factory=list)
    secret_changed: bool = False
    # Why the Dynamo operator's webhook would refuse this update (DGDs only).
    refusals: list[str] = field(default_factory=list)
    # The changed fields that make Pulumi replace the resource (delete and create) instead of
    # updating it in place.
    replaced_by: tuple[str, ...] = ()
    # DGDs: the services whose pods the update replaces (a worker restart each).
    rolls: tuple[str, ...] = ()
    # What else a reviewer should know: an API version move, a platform upgrade.
    notes: tuple[str, ...] = ()

    @property
    def replaces(self) -> bool:
        return bool(self.replaced_by)


@dataclass(frozen=True)
class RenderDiff:
    stack: str
    resources: list[ResourceDiff]

    @property
    def empty(self) -> bool:
        return not self.resources

    def counts(self) -> dict[str, int]:
        tally = Counter(r.status for r in self.resources)
        return {status: tally.get(status, 0) for status in STATUSES}

    def by_group(self) -> dict[str, dict[str, int]]:
        groups: dict[str, dict[str, int]] = {}
        for change in self.resources:
            row = groups.setdefault(change.resource.group, dict.fromkeys(STATUSES, 0))
            row[change.status] += 1
        return dict(sorted(groups.items()))


# --- reading and comparing renders -------------------------------------------------------


def render_dynamo_version(directory: Path) -> str:
    """The Dynamo release a render was made for (renders before profiles existed: 1.1.0)."""
    try:
        return str(json.loads((directory / "index.json").read_text()).get("dynamoVersion", "1.1.0"))
    except (OSError, ValueError):
        return "1.1.0"


def load_render(directory: Path) -> tuple[str, dict[tuple[str, str], RenderedResource]]:
    """(stack, resources by (type, name)) of a `render` output directory."""
    index_file = directory / "index.json"
    try:
        index = json.loads(index_file.read_text())
    except FileNotFoundError:
        raise DiffError(f"{directory} is not a render output (no index.json)") from None
    except json.JSONDecodeError as error:
        raise DiffError(f"{index_file}: not valid JSON: {error}") from None
    resources = {}
    for entry in index.get("resources", []):
        document = load_trusted((directory / entry["file"]).read_text())
        resource = RenderedResource(
            type=entry["type"],
            name=entry["name"],
            file=entry["file"],
            document=document,
            kind=entry.get("kind"),
            namespace=entry.get("namespace"),
            k8s_name=entry.get("k8sName"),
            secrets=entry.get("secrets", {}),
            lifecycle=entry.get("lifecycle", {}),
        )
        resources[resource.key] = resource
    return str(index.get("stack", "")), resources


def diff_renders(base: Path | None, head: Path) -> RenderDiff:
    """Resources added, removed and changed from base to head (base None: nothing before)."""
    stack, after = load_render(head)
    before = load_render(base)[1] if base is not None else {}
    webhook_rules = profile(render_dynamo_version(head)).webhook_rules
    changes: list[ResourceDiff] = []
    moved = _moved_api(before, after)
    for key in sorted(set(before) | set(after)):
        if key in moved:
            old_key = moved[key]
            changes.append(
                _changed(before[old_key], after[key], webhook_rules)
                or ResourceDiff("changed", after[key])
            )
            continue
        if key in moved.values():
            continue  # reported with the object's new type above
        old, new = before.get(key), after.get(key)
        if old is None and new is not None:
            changes.append(ResourceDiff("added", new))
        elif new is None and old is not None:
            changes.append(ResourceDiff("removed", old))
        elif old is not None and new is not None and (change := _changed(old, new, webhook_rules)):
            changes.append(change)
    return RenderDiff(stack, changes)


def _changed(
    old: RenderedResource, new: RenderedResource, webhook_rules: str
) -> ResourceDiff | None:
    fields = diff_documents(old.document, new.document)
    fields += diff_documents(old.lifecycle, new.lifecycle, "(pulumi options)")
    secret_changed = old.secrets != new.secrets
    if not fields and not secret_changed:
        return None
    refusals = (
        operator_update_refusals(old.document, new.document, webhook_rules=webhook_rules)
        if new.document.get("kind") == "DynamoGraphDeployment"
        else []
    )
    return ResourceDiff(
        "changed",
        new,
        fields,
        secret_changed,
        refusals,
        replacing_fields(old, new, fields, secret_changed),
        _rolls(new, fields),
        upgrade_notes(old, new, fields),
    )


def _moved_api(
    before: dict[tuple[str, str], RenderedResource], after: dict[tuple[str, str], RenderedResource]
) -> dict[tuple[str, str], tuple[str, str]]:
    """New key -> old key of Kubernetes objects that only change API version (same kind,
    namespace and name): the program aliases the old type, so Pulumi updates them in place."""
    gone = {
        (r.kind, r.namespace, r.k8s_name): key
        for key, r in before.items()
        if r.kind and key not in after
    }
    return {
        key: gone[(r.kind, r.namespace, r.k8s_name)]
        for key, r in after.items()
        if r.kind and key not in before and (r.kind, r.namespace, r.k8s_name) in gone
    }


def upgrade_notes(
    old: RenderedResource, new: RenderedResource, fields: list[FieldChange]
) -> tuple[str, ...]:
    """What an upgrade does beyond its fields, and where the safer path is."""
    notes = []
    old_api = old.document.get("apiVersion") if isinstance(old.document, dict) else None
    new_api = new.document.get("apiVersion") if isinstance(new.document, dict) else None
    if old_api and new_api and old_api != new_api:
        notes.append(
            f"the same object moves from {old_api} to {new_api} (updated in place; the operator "
            "stores and converts it); to try the new release on one slot first, see README "
            '"Upgrading Dynamo"'
        )
    if (
        new.group == "HelmRelease"
        and isinstance(new.document, dict)
        and new.document.get("chart") == "dynamo-platform"
        and any(f.path == "version" for f in fields)
    ):
        notes.append(
            "a Dynamo platform upgrade: the operator and its webhook restart and re-reconcile "
            "every graph; for a production environment prefer a whole new environment behind "
            'the traffic stack (README "Upgrading Dynamo")'
        )
    return tuple(notes)


def replacing_fields(
    old: RenderedResource,
    new: RenderedResource,
    fields: list[FieldChange],
    secret_changed: bool = False,
) -> tuple[str, ...]:
    """The changed fields that make Pulumi replace the resource: the provider's replace-on-change
    properties (infra/offline/replace_fields.py) under the provider options the program sets.
    A changed secret is a change of the data it renders as `[secret]`."""
    paths = [f.path for f in fields if not f.path.startswith("(")]
    if secret_changed and new.kind == "Secret":
        paths.append("stringData")
    document = new.document if isinstance(new.document, dict) else {}
    if new.group == "HelmRelease":
        found = kubernetes_replacing_fields("helm.sh/v3", "Release", paths)
    elif new.kind:
        found = kubernetes_replacing_fields(
            str(document.get("apiVersion", "")),
            new.kind,
            paths,
            config_map_mutable=ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE,
            immutable=bool(document.get("immutable")),
            patch=new.type.endswith("Patch"),
        )
    else:
        found = aws_replacing_fields(new.type, paths)
    if (old.k8s_name, old.namespace) != (new.k8s_name, new.namespace):
        found += [p for p in ("metadata.name", "metadata.namespace") if p not in found]
    return tuple(dict.fromkeys(found))


def _rolls(new: RenderedResource, fields: list[FieldChange]) -> tuple[str, ...]:
    if new.kind != "DynamoGraphDeployment" or not isinstance(new.document, dict):
        return ()
    return tuple(rolled_services((f.path for f in fields), graph_services(new.document)))


def diff_documents(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences; lists of named objects are matched by name, others by position."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            changes += diff_documents(
                before.get(key, MISSING), after.get(key, MISSING), _join(path, key)
            )
        return changes
    if isinstance(before, list) and isinstance(after, list):
        names_before, names_after = _names(before), _names(after)
        if names_before is not None and names_after is not None:
            by_name_before = dict(zip(names_before, before, strict=True))
            by_name_after = dict(zip(names_after, after, strict=True))
            changes = []
            for name in [*names_before, *(n for n in names_after if n not in by_name_before)]:
                changes += diff_documents(
                    by_name_before.get(name, MISSING),
                    by_name_after.get(name, MISSING),
                    f"{path}[name={name}]",
                )
            return changes
        changes = []
        for index in range(max(len(before), len(after))):
            changes += diff_documents(
                before[index] if index < len(before) else MISSING,
                after[index] if index < len(after) else MISSING,
                f"{path}[{index}]",
            )
        return changes
    if before == after:
        return []
    return [FieldChange(path or "(document)", before, after)]


def _names(items: list[Any]) -> list[str] | None:
    """The `name` of every item when each is a mapping with a unique name, else None."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    names = [i["name"] for i in items]
    return names if len(set(names)) == len(names) else None


def _join(path: str, key: Any) -> str:
    text = str(key)
    if text.replace("_", "").replace("-", "").isalnum():
        return f"{path}.{text}" if path else text
    return f"{path}[{json.dumps(text)}]"


# --- rendering a git ref -----------------------------------------------------------------


def render_at_ref(project_root: Path, ref: str, stack: str, out_dir: Path) -> bool:
    """Render `stack` as committed at `ref`, with that commit's own code. False: no such stack.

    The commit is checked out in a temporary git worktree and rendered by a separate Python
    process whose import path starts at the worktree, so the base side is what its code made.
    """
    top = _git(project_root, "rev-parse", "--show-toplevel").strip()
    inside = project_root.resolve().relative_to(Path(top).resolve())
    _git(project_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    scratch = Path(tempfile.mkdtemp(prefix="dynamo-infra-base-"))  # ours: removed at the end
    worktree = scratch / "tree"
    added = False
    try:
        _git(project_root, "worktree", "add", "--detach", "--quiet", str(worktree), ref)
        added = True
        base_root = worktree / inside
        if not (base_root / "stacks" / f"Pulumi.{stack}.yaml").is_file():
            return False
        env = {**os.environ, "PYTHONPATH": str(base_root)}
        command = [
            sys.executable, "-m", "infra.cli", "--project-dir", str(base_root),
            "render", stack, "--out", str(out_dir),
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=base_root, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DiffError(f"rendering {stack!r} at {ref} failed:\n{result.stderr.strip()}")
        return True
    finally:
        if added:  # only the worktree this call added, inside its own scratch directory
            subprocess.run(
                ["git", "-C", str(project_root), "worktree", "remove", "--force", str(worktree)],
                capture_output=True,
                check=False,
            )
        shutil.rmtree(scratch, ignore_errors=True)


def diff_against_ref(project_root: Path, ref: str, stack: str) -> RenderDiff:
    """The working tree's render of `stack` against its render at git `ref`."""
    with tempfile.TemporaryDirectory(prefix="dynamo-infra-diff-") as scratch:
        base, head = Path(scratch) / "base", Path(scratch) / "head"
        has_base = render_at_ref(project_root, ref, stack, base)
        render_stack(stack, head, project_root)
        return diff_renders(base if has_base else None, head)


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        detail = result.stderr.strip() or f"git {' '.join(args)} failed"
        raise DiffError(detail)
    return result.stdout


# --- output ------------------------------------------------------------------------------


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
