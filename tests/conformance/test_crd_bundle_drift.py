"""The shipped schemas are exactly what generation makes of the upstream CRDs in the reference."""

from __future__ import annotations

import json
from pathlib import Path

from infra.offline.crd_bundle import (
    BUNDLE_DIR,
    PROVENANCE_FILE,
    build_bundle,
    bundle_targets,
    reference_reader,
)
from infra.stack.platform_config import PlatformSpec

REGENERATE = "run `dynamo-infra crds build --reference ../shared/reference`"


def _facts(provenance: str) -> list[tuple[str, str, list[str], str]]:
    """What must not drift: the schemas (a fetch from the release may differ in source bytes)."""
    return [
        (e["file"], e["kind"], e["versions"], e["sha256"])
        for e in json.loads(provenance)["schemas"]
    ]


def test_bundle_matches_a_fresh_generation_from_the_reference(reference: Path) -> None:
    fresh = build_bundle(
        reference_reader(reference),
        bundle_targets([PlatformSpec().chart_pins()]),
        from_reference=True,
    )
    shipped = {p.name for p in BUNDLE_DIR.iterdir() if p.is_dir()}
    assert shipped == set(fresh), REGENERATE
    for name, files in fresh.items():
        on_disk = {p.name for p in (BUNDLE_DIR / name).iterdir()}
        assert on_disk == set(files), f"{name}: {REGENERATE}"
        for file_name, text in files.items():
            current = (BUNDLE_DIR / name / file_name).read_text()
            if file_name == PROVENANCE_FILE:
                assert _facts(current) == _facts(text), f"{name}: {REGENERATE}"
            else:
                assert current == text, f"{name}/{file_name}: {REGENERATE}"
