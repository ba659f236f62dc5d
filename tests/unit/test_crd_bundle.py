"""The shipped custom-resource schemas: what generation keeps and strips, and how validate reads
them. Drift against the upstream CRDs is in tests/conformance/test_crd_bundle_drift.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.offline.crd_bundle import (
    BUNDLE_DIR,
    CRD_FAMILIES,
    PROVENANCE_FILE,
    BundleError,
    ShippedSchemas,
    build_bundle,
    bundle_targets,
    structural,
    url_reader,
    write_bundles,
)
from infra.stack.platform_config import PlatformSpec

CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  versions:
    - name: v1
      served: true
      schema:
        openAPIV3Schema:
          description: prose about widgets
          type: object
          properties:
            spec:
              description: more prose
              type: object
              x-kubernetes-validations:
                - rule: self.size > 0
                  message: size must be positive
              properties:
                description: {type: string, description: a field called description}
                size: {type: integer, default: 1, enum: [1, 2]}
    - name: v0
      served: false
      schema: {openAPIV3Schema: {type: object}}
"""


def test_structural_schema_keeps_facts_and_drops_prose() -> None:
    schema = {
        "description": "prose",
        "type": "object",
        "properties": {
            "description": {"type": "string", "description": "prose"},
            "mode": {"type": "string", "enum": ["a"], "default": "a"},
        },
        "x-kubernetes-validations": [{"rule": "self.mode != ''", "message": "prose"}],
    }
    assert structural(schema) == {
        "type": "object",
        "properties": {
            "description": {"type": "string"},  # a field named `description` stays
            "mode": {"type": "string", "enum": ["a"], "default": "a"},
        },
        "x-kubernetes-validations": [{"rule": "self.mode != ''"}],
    }


def test_every_default_pin_has_a_shipped_bundle() -> None:
    shipped = ShippedSchemas.for_pins(PlatformSpec().chart_pins())
    assert shipped.missing == ()
    assert shipped.get("nvidia.com/v1alpha1", "DynamoGraphDeployment") is not None
    assert shipped.get("gateway.networking.k8s.io/v1", "HTTPRoute") is not None


def _prose(node: object) -> list[str]:
    """Every description text in a schema (a field *named* description holds a schema)."""
    if isinstance(node, list):
        return [text for item in node for text in _prose(item)]
    if not isinstance(node, dict):
        return []
    found = [node["description"]] if isinstance(node.get("description"), str) else []
    found += [
        str(rule["message"])
        for rule in node.get("x-kubernetes-validations", [])
        if "message" in rule
    ]
    return found + [text for value in node.values() for text in _prose(value)]


def test_shipped_bundles_carry_no_upstream_prose() -> None:
    files = [p for p in BUNDLE_DIR.glob("*/*.json") if p.name != PROVENANCE_FILE]
    assert len(files) >= 8
    for path in files:
        assert _prose(json.loads(path.read_text())) == [], path


def test_provenance_digests_match_the_files() -> None:
    import hashlib

    for provenance in BUNDLE_DIR.glob(f"*/{PROVENANCE_FILE}"):
        record = json.loads(provenance.read_text())
        assert record["release"].startswith("https://github.com/")
        for entry in record["schemas"]:
            text = (provenance.parent / entry["file"]).read_bytes()
            assert hashlib.sha256(text).hexdigest() == entry["sha256"], entry["file"]


def _family(name: str):  # type: ignore[no-untyped-def]
    return next(f for f in CRD_FAMILIES if f.name == name)


def test_fetch_reads_the_pinned_release_urls_and_writes_only_served_versions(
    tmp_path: Path,
) -> None:
    asked: list[str] = []

    def opener(url: str) -> bytes:
        asked.append(url)
        return CRD.encode()

    keda = _family("keda")
    bundles = build_bundle(url_reader(opener), [(keda, "2.21.0")])
    assert asked == [
        "https://raw.githubusercontent.com/kedacore/keda/v2.21.0/config/crd/bases/"
        "keda.sh_scaledobjects.yaml"
    ]
    write_bundles(bundles, tmp_path)
    shipped = ShippedSchemas.for_pins({"keda": "2.21.0"}, tmp_path)
    schema = shipped.get("example.com/v1", "Widget")
    assert schema is not None and "description" not in schema
    assert shipped.get("example.com/v0", "Widget") is None  # not served


def test_a_failed_download_writes_nothing(tmp_path: Path) -> None:
    def opener(url: str) -> bytes:
        raise OSError("network unreachable")

    with pytest.raises(BundleError, match="network unreachable"):
        build_bundle(url_reader(opener), bundle_targets([PlatformSpec().chart_pins()]))


def test_write_never_replaces_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "keda-2.21.0").mkdir()
    (tmp_path / "keda-2.21.0" / "notes.txt").write_text("mine")
    bundles = build_bundle(url_reader(lambda url: CRD.encode()), [(_family("keda"), "2.21.0")])
    with pytest.raises(BundleError, match="is not a schema bundle"):
        write_bundles(bundles, tmp_path)
    assert (tmp_path / "keda-2.21.0" / "notes.txt").read_text() == "mine"


def test_missing_bundle_hint_names_the_pin_and_the_fix() -> None:
    shipped = ShippedSchemas.for_pins({"keda": "9.9.9"})
    assert shipped.get("keda.sh/v1alpha1", "ScaledObject") is None
    assert "platform.charts.keda" in shipped.missing_hint("keda.sh/v1alpha1")
    assert "crds fetch" in shipped.missing_hint("keda.sh/v1alpha1")
