"""What a change does to a stack: the difference of two offline renders, per resource and field.

Reviewers read this in a pull request before any cloud preview runs. Secrets never appear: render
files only hold `[secret]`, and a changed secret is detected from the fingerprints of its
stack-file text that render records in index.json. What each change does beyond its fields
(replace, rollout, upgrade) is in diff_effects.py; the output formats in diff_format.py; diffing
against a git ref in diff_git.py.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.deployment.operator_rules import operator_update_refusals
from infra.offline.diff_effects import replacing_fields, rolls_of, upgrade_notes
from infra.stack.dynamo_versions import profile
from infra.stack.yaml_source import load_trusted

STATUSES = ("added", "removed", "changed")


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
    """(stack, resources by (type, name)) of a `render` output directory; anything that is not
    one (a file, a broken index, an entry naming a file outside it) is a DiffError."""
    index_file = directory / "index.json"
    if not directory.is_dir():
        raise DiffError(f"{directory} is not a directory (give a `render --out` directory)")
    try:
        index = json.loads(index_file.read_text())
    except FileNotFoundError:
        raise DiffError(f"{directory} is not a render output (no index.json)") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DiffError(f"{index_file}: cannot read it: {error}") from None
    except json.JSONDecodeError as error:
        raise DiffError(f"{index_file}: not valid JSON: {error}") from None
    entries = index.get("resources", []) if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise DiffError(f"{index_file}: not a render index (no list of resources)")
    root = directory.resolve()
    resources = {}
    for number, entry in enumerate(entries):
        where = f"{index_file}: resources[{number}]"
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(key), str) for key in ("file", "type", "name")
        ):
            raise DiffError(f"{where}: needs the strings file, type and name")
        path = (directory / entry["file"]).resolve()
        if not path.is_relative_to(root):
            raise DiffError(f"{where}: file {entry['file']!r} is outside the render")
        try:
            document = load_trusted(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise DiffError(f"{where}: cannot read {entry['file']}: {error}") from None
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
        rolls_of(new, fields),
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
