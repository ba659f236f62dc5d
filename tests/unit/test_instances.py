"""Every instance-catalog entry against the facts table in ../shared/reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.stack.instances import CATALOG

# Our catalog's GPU product names for the table's GPU column.
GPU_NAMES = {"H100 80GB": "H100-80GB", "A100 40GB": "A100-40GB", "A100 80GB": "A100-80GB"}


def reference_rows(reference: Path) -> dict[str, dict]:
    """instance type -> facts, expanding rows like `g6e.xlarge / 2xlarge / 4xlarge`."""
    text = (reference / "aws-gpu-instances.md").read_text()
    facts: dict[str, dict] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 9 or not re.match(r"^[a-z0-9-]+\.", cells[0]):
            continue
        family = cells[0].split(".")[0]
        sizes = [s.strip().removeprefix(f"{family}.") for s in cells[0].split("/")]

        gpu = GPU_NAMES.get(cells[1], cells[1])
        memory = float(re.sub(r"[^0-9.]", "", cells[3]))
        for i, size in enumerate(sizes):
            facts[f"{family}.{size}"] = {
                "gpu_product": gpu,
                "gpu_count": int(_per_size(cells[2], len(sizes))[i]),
                "gpu_memory_gib": memory,
                "vcpu": int(_per_size(cells[4], len(sizes))[i]),
                "memory_gib": int(_per_size(cells[5], len(sizes))[i]),
                "efa_interfaces": int(_per_size(cells[6], len(sizes))[i]),
                "local_nvme": cells[8] != "no",
            }
    return facts


def _per_size(cell: str, sizes: int) -> list[str]:
    """`4 / 8 / 16` gives one value per size; a single value applies to every size."""
    parts = [p.strip() for p in cell.split("/")]
    return parts if len(parts) == sizes else parts * sizes


@pytest.mark.parametrize("instance_type", sorted(CATALOG))
def test_catalog_entry_matches_the_reference_table(reference: Path, instance_type: str) -> None:
    expected = reference_rows(reference)[instance_type]
    entry = CATALOG[instance_type]
    assert {field: getattr(entry, field) for field in expected} == expected


def test_catalog_covers_every_instance_the_reference_lists(reference: Path) -> None:
    assert set(reference_rows(reference)) <= set(CATALOG)
