"""Schema validation of render output: core kinds against the Kubernetes OpenAPI schema of the
target version (kubernetes-validate), custom resources against their CRD's openAPIV3Schema and
its CEL rules (`x-kubernetes-validations`, infra/offline/cel_rules.py).

Validation is strict, like the API server's strict field validation: an unknown field is an error.
A Kubernetes object with no schema available is a failure, never a silent pass.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jsonschema
import yaml
from kubernetes_validate import utils as kv_utils
from kubernetes_validate import version as kv_version
from referencing import Registry, Resource

from infra.offline.cel_rules import object_rule_failures
from infra.offline.crd_bundle import ShippedSchemas
from infra.stack.yaml_source import load_all_trusted, load_trusted


@dataclass(frozen=True)
class SchemaFailure:
    file: str
    object: str  # kind/namespace/name
    path: str  # where in the object, e.g. spec.services.Frontend.replicas
    message: str


@dataclass
class ValidationReport:
    stack: str
    kubernetes_version: str
    checked: int = 0
    failures: list[SchemaFailure] = field(default_factory=list)
    no_schema: list[str] = field(default_factory=list)  # objects no schema covers

    @property
    def ok(self) -> bool:
        return not self.failures and not self.no_schema

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "kubernetesVersion": self.kubernetes_version,
            "ok": self.ok,
            "checked": self.checked,
            "failures": [f.__dict__ for f in self.failures],
            "noSchema": self.no_schema,
        }


class CrdSchemas:
    """openAPIV3Schemas by (apiVersion, kind), from CRD YAML files, parsed only when asked for.

    Each file is parsed once, with libyaml, and only when its index is not already in the cache
    (keyed by the file's content hash, so an edited CRD is parsed again); a schema is read
    from the cache only for a kind a render holds.
    """

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
        self._sources: dict[tuple[str, str], tuple[str, int]] = {}  # key -> (file hash, slot)
        self._parsed: dict[str, list[dict[str, Any]]] = {}  # file hash -> schemas, this run
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}

    @classmethod
    def from_dirs(cls, dirs: Iterable[Path], cache_dir: Path | None = None) -> CrdSchemas:
        crds = cls(cache_dir)
        for directory in dirs:
            if not directory.is_dir():
                raise FileNotFoundError(f"CRD directory {directory} does not exist")
            for path in sorted(directory.rglob("*.y*ml")):
                crds.add_file(path)
        return crds

    def add_file(self, path: Path) -> None:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        keys = self._cached_index(digest)
        if keys is None:
            schemas = _crd_schemas(data)
            self._parsed[digest] = [schema for _, schema in schemas]
            keys = [key for key, _ in schemas]
            self._store(digest, keys, self._parsed[digest])
        for slot, key in enumerate(keys):
            self._sources[key] = (digest, slot)

    def add_crd(self, crd: dict[str, Any]) -> None:
        for key, schema in _schemas_of(crd):
            self._schemas[key] = schema

    def get(self, api_version: str, kind: str) -> dict[str, Any] | None:
        key = (api_version, kind)
        if key not in self._schemas and key in self._sources:
            digest, slot = self._sources[key]
            schema = self._cached_schema(digest, slot)
            if schema is None:  # the cache went away under us: parse this run
                schema = self._parsed[digest][slot]
            self._schemas[key] = schema
        return self._schemas.get(key)

    # --- the cache: <hash>.json holds a file's keys, <hash>-<slot>.json each schema ----------

    def _cached_index(self, digest: str) -> list[tuple[str, str]] | None:
        try:
            keys = json.loads((self.cache_dir / f"{digest}.json").read_text())
        except (OSError, ValueError):
            return None
        return [(str(a), str(k)) for a, k in keys]

    def _cached_schema(self, digest: str, slot: int) -> dict[str, Any] | None:
        if digest in self._parsed:
            return self._parsed[digest][slot]
        try:
            return json.loads((self.cache_dir / f"{digest}-{slot}.json").read_text())
        except (OSError, ValueError):
            return None

    def _store(self, digest: str, keys: list[tuple[str, str]], schemas: list[dict]) -> None:
        """Best effort: a read-only home only costs the next run a parse."""
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for slot, schema in enumerate(schemas):
                _write_once(self.cache_dir / f"{digest}-{slot}.json", json.dumps(schema))
            _write_once(self.cache_dir / f"{digest}.json", json.dumps(keys))  # index last
        except OSError:
            return


def default_cache_dir() -> Path:
    """$DYNAMO_INFRA_CACHE, else the XDG cache directory."""
    if explicit := os.environ.get("DYNAMO_INFRA_CACHE"):
        return Path(explicit) / "crd-schemas"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynamo-trtllm" / "crd-schemas"


def _write_once(path: Path, text: str) -> None:
    """Write beside, then rename: concurrent runs never see half a cache file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


def _crd_schemas(data: bytes) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    try:
        documents = load_all_trusted(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return []  # not a CRD file (kustomize patches and the like may not parse alone)
    found = []
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
            found += _schemas_of(document)
    return found


def _schemas_of(crd: dict[str, Any]) -> list[tuple[tuple[str, str], dict[str, Any]]]:
    spec = crd.get("spec", {})
    group, kind = spec.get("group"), spec.get("names", {}).get("kind")
    found = []
    for version in spec.get("versions", []):
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if schema is not None and version.get("served", True):
            found.append(((f"{group}/{version['name']}", kind), strict_schema(schema)))
    return found


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Turn a structural CRD schema into JSON Schema that rejects unknown fields and knows nullable."""
    schema = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("nullable") and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for child in value.values():
                    visit(child)
            elif key != "enum" and key != "default" and key != "example":
                visit(value)

    visit(schema)
    # apiVersion, kind and metadata are the API machinery's, not always listed in the CRD.
    schema.setdefault("properties", {})
    for meta in ("apiVersion", "kind"):
        schema["properties"].setdefault(meta, {"type": "string"})
    schema["properties"].setdefault("metadata", {"type": "object"})
    return schema


def _json_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def _errors(validator: jsonschema.protocols.Validator, document: dict) -> Iterator[tuple[str, str]]:
    for error in sorted(
        validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path))
    ):
        yield _json_path(error.absolute_path), error.message


class UnsupportedKubernetesVersion(ValueError):
    pass


def _minor_tuple(version: str) -> tuple[int, int]:
    major, minor = kv_utils.major_minor(version.removeprefix("v")).split(".")[:2]
    return int(major), int(minor)


def schema_version(version: str) -> str:
    """The bundled schema set for a Kubernetes X.Y (exact minor, so no silent fallback)."""
    bundled = {_minor_tuple(v): v for v in kv_utils.all_versions()}
    try:
        return bundled[_minor_tuple(version)]
    except (KeyError, ValueError):
        known = ", ".join(f"{a}.{b}" for a, b in sorted(bundled))
        raise UnsupportedKubernetesVersion(
            f"kubernetes-validate {kv_version.__version__} does not support version "
            f"{version!r} (supported: {known})"
        ) from None


@functools.cache
def _definitions(schema_dir: str, version: str) -> Any:
    """The shared `_definitions.json` of a schema set (6 MB): read once per run."""
    return kv_utils.schema_contents(
        f"kubernetes-json-schema/{schema_dir}/_definitions.json", version
    )


@functools.cache
def _core_validator(
    api_version: str, kind: str, version: str
) -> jsonschema.protocols.Validator | None:
    """Strict Kubernetes OpenAPI schema for a core kind at a Kubernetes version (None if unknown)."""
    schema_dir = f"v{schema_version(version)}-local-strict"
    group_version = api_version.split("/")
    group = group_version[0].split(".")[0] if len(group_version) == 2 else ""
    name = f"{kind.lower()}-{group + '-' if group else ''}{group_version[-1]}.json"
    try:
        schema = kv_utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/{name}", version)
    except FileNotFoundError:
        return None
    definitions = _definitions(schema_dir, version)
    registry: Registry = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


class SchemaSource(Protocol):
    def get(self, api_version: str, kind: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class StackSchemas:
    """A stack's custom-resource schemas: CRDs given with --crd-dir first, then the shipped ones
    for the chart versions the stack pins."""

    given: CrdSchemas
    shipped: ShippedSchemas

    def get(self, api_version: str, kind: str) -> dict[str, Any] | None:
        given = self.given.get(api_version, kind)
        if given is not None:
            return given
        shipped = self.shipped.get(api_version, kind)
        return None if shipped is None else strict_schema(shipped)

    def missing_hint(self, api_version: str) -> str:
        return self.shipped.missing_hint(api_version)


def validate_render(
    render_dir: Path, stack: str, crds: SchemaSource, kubernetes_version: str
) -> ValidationReport:
    """Check every Kubernetes object of one render output directory."""
    schema_version(kubernetes_version)  # fail early on a version without bundled schemas
    index = json.loads((render_dir / "index.json").read_text())
    report = ValidationReport(stack=stack, kubernetes_version=kubernetes_version)
    crd_validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for entry in index["resources"]:
        if "kind" not in entry:
            continue  # AWS resources and Helm releases: typed by their Pulumi providers
        document = load_trusted((render_dir / entry["file"]).read_text())
        label = f"{entry['kind']}/{entry.get('namespace') or '-'}/{entry['k8sName']}"
        schema = crds.get(entry["apiVersion"], entry["kind"])
        validator: jsonschema.protocols.Validator | None
        key = (entry["apiVersion"], entry["kind"])
        if schema is not None:
            if key not in crd_validators:
                crd_validators[key] = jsonschema.validators.Draft202012Validator(schema)
            validator = crd_validators[key]
        else:
            validator = _core_validator(*key, kubernetes_version)
        if validator is None:
            hint = (
                crds.missing_hint(entry["apiVersion"])
                if isinstance(crds, StackSchemas)
                else "give its CRD with --crd-dir"
            )
            report.no_schema.append(f"{label} ({entry['apiVersion']}, {entry['file']}): {hint}")
            continue
        report.checked += 1
        errors = list(_errors(validator, document))
        for path, message in errors:
            report.failures.append(SchemaFailure(entry["file"], label, path, message))
        if schema is not None and not errors:  # the API server runs rules on valid objects
            for broken in object_rule_failures(schema, document):
                report.failures.append(
                    SchemaFailure(entry["file"], label, broken.path, f"{broken.message} (CEL)")
                )
    return report
