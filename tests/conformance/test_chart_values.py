"""The values we set for dynamo-platform are keys its chart knows (reference values.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.platform import build_dynamo_platform_values
from infra.stack.platform_config import PlatformSpec

# Keys of the NATS chart that dynamo-platform passes through without listing them itself.
# `config.merge` is free-form server configuration; `$include` keys and the JSON patches are the
# NATS chart's (nats-io/k8s nats-1.3.2 values.yaml).
NATS_CHART_KEYS = {
    "nats.config.cluster.replicas",
    "nats.config.merge.accounts$include",
    "nats.podTemplate.topologySpreadConstraints",
    "nats.podTemplate.patch",
}

SPECS = {
    "dev": PlatformSpec(),
    "ha": PlatformSpec.model_validate({"highAvailability": True}),
    "etcd": PlatformSpec.model_validate({"highAvailability": True, "etcd": {"enabled": True}}),
    "external": PlatformSpec.model_validate(
        {
            "nats": {"externalUrl": "nats://nats.example:4222"},
            "etcd": {"externalEndpoint": "http://etcd:2379"},
        }
    ),
}


def leaf_paths(values: Any, prefix: str = "") -> list[str]:
    if isinstance(values, dict) and values:
        paths = []
        for key, value in values.items():
            paths += leaf_paths(value, f"{prefix}.{key}" if prefix else str(key))
        return paths
    return [prefix]


def known(reference: dict, path: str) -> bool:
    node: Any = reference
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return any(path == k or path.startswith(f"{k}.") for k in NATS_CHART_KEYS)
        node = node[part]
    return True


# Each Dynamo release's platform chart values in the reference data.
CHART_VALUES = {
    "1.1.0": Path("dynamo-platform-chart/values.yaml"),
    "1.2.0": Path("dynamo-1.2.0/platform-chart/values.yaml"),
}


@pytest.mark.parametrize("version", sorted(CHART_VALUES))
@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_value_we_set_is_a_chart_key(reference: Path, name: str, version: str) -> None:
    chart = yaml.safe_load((reference / CHART_VALUES[version]).read_text())
    spec = SPECS[name].model_copy(update={"dynamo_version": version})
    values = build_dynamo_platform_values(
        spec, grove=True, metrics=True, nats_accounts=spec.nats.accounts
    ).dump()
    unknown = [p for p in leaf_paths(values) if not known(chart, p)]
    assert unknown == []


@pytest.mark.parametrize("version", sorted(CHART_VALUES))
def test_an_external_nats_turns_off_the_bundled_one_by_the_releases_own_switch(
    version: str,
) -> None:
    """1.1.0's chart installs NATS by `nats.enabled`, 1.2.0's by `global.nats.install`: the
    other key is ignored, and the bundled NATS would run beside the external one."""
    spec = SPECS["external"].model_copy(update={"dynamo_version": version})
    values = build_dynamo_platform_values(spec).dump()
    if version == "1.1.0":
        assert values["nats"] == {"enabled": False} and "nats" not in values["global"]
    else:
        assert values["global"]["nats"] == {"install": False} and "nats" not in values
    bundled = build_dynamo_platform_values(
        SPECS["dev"].model_copy(update={"dynamo_version": version})
    ).dump()
    assert bundled["global"].get("nats", {"install": True}) == {"install": True}
    assert bundled["nats"].get("enabled", True) is True


def test_a_mistyped_value_key_is_an_error_not_a_silent_default() -> None:
    from pydantic import ValidationError

    from components.helm_values import NatsCluster

    with pytest.raises(ValidationError, match="replicaz"):
        NatsCluster.model_validate({"enabled": True, "replicas": 3, "replicaz": 3})
