"""Platform metrics: NATS (through its exporter sidecar), etcd and DCGM are scraped where Prometheus
runs, by the labels and port names their charts give their pods, with the release label."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.alert_rules import NATS_POD_REGEX
from components.monitoring_content import (
    DEFAULT_PROMETHEUS_RELEASE,
    build_dashboard_config_map,
    promql_expressions,
)
from components.observability import build_platform_pod_monitor
from components.platform import HelmRelease, platform_metrics_endpoints, platform_releases
from infra.offline.validate import CrdSchemas
from infra.stack.config import ObservabilitySpec
from infra.stack.platform_config import PlatformSpec

OBSERVED = ObservabilitySpec(enabled=True)
UNOBSERVED = ObservabilitySpec()


def releases(spec: PlatformSpec, observability: ObservabilitySpec) -> dict[str, HelmRelease]:
    return {
        r.key: r
        for r in platform_releases(
            spec, "gpu-system", "fluid-system", observability, gpus=True, efa=False
        )
    }


def dig(values: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        values = values[key]
    return values


def test_nats_runs_its_exporter_only_where_prometheus_scrapes_it() -> None:
    observed = releases(PlatformSpec(), OBSERVED)["dynamo_platform"].values.dump()
    assert observed["nats"]["promExporter"] == {"enabled": True}
    unobserved = releases(PlatformSpec(), UNOBSERVED)["dynamo_platform"].values.dump()
    assert "promExporter" not in unobserved["nats"]
    external = PlatformSpec.model_validate({"nats": {"externalUrl": "nats://nats.example:4222"}})
    assert "nats" not in releases(external, OBSERVED)["dynamo_platform"].values.dump()  # 1.2.0
    assert platform_metrics_endpoints(external) == []


def test_etcd_is_monitored_only_when_the_platform_runs_it() -> None:
    names = {
        spec: [e.name for e in platform_metrics_endpoints(PlatformSpec.model_validate(raw))]
        for spec, raw in {
            "off": {},
            "own": {"etcd": {"enabled": True}},
            "external": {"etcd": {"enabled": True, "externalEndpoint": "http://etcd:2379"}},
        }.items()
    }
    assert names == {
        "off": ["dynamo-platform-nats"],
        "own": ["dynamo-platform-nats", "dynamo-platform-etcd"],
        "external": ["dynamo-platform-nats"],
    }


def test_platform_monitors_select_the_subcharts_pods(reference: Path) -> None:
    spec = PlatformSpec.model_validate({"namespace": "dynamo", "etcd": {"enabled": True}})
    release = releases(spec, OBSERVED)["dynamo_platform"]
    ours = release.values.dump()
    chart = yaml.safe_load((reference / "dynamo-platform-chart" / "Chart.yaml").read_text())
    chart_values = yaml.safe_load((reference / "dynamo-platform-chart" / "values.yaml").read_text())
    schema = CrdSchemas.from_dirs([reference / "crds" / "prometheus-operator"]).get(
        "monitoring.coreos.com/v1", "PodMonitor"
    )
    assert schema is not None
    monitors = {
        m["metadata"]["name"]: m
        for m in map(build_platform_pod_monitor, platform_metrics_endpoints(spec))
    }
    assert set(monitors) == {"dynamo-platform-nats", "dynamo-platform-etcd"}
    for monitor in monitors.values():
        assert list(jsonschema.Draft202012Validator(schema).iter_errors(monitor)) == []
        assert monitor["metadata"]["namespace"] == release.namespace
        assert monitor["metadata"]["labels"]["release"] == DEFAULT_PROMETHEUS_RELEASE
        labels = monitor["spec"]["selector"]["matchLabels"]
        # A subchart's pods carry the parent release as instance and the chart's own name, unless a
        # nameOverride renames it (neither the platform chart nor we set one).
        assert labels["app.kubernetes.io/instance"] == release.name
        subchart = labels["app.kubernetes.io/name"]
        assert subchart in {d["name"] for d in chart["dependencies"]}
        assert "nameOverride" not in chart_values[subchart]
        assert "nameOverride" not in ours[subchart]
    nats = monitors["dynamo-platform-nats"]["spec"]
    # component nats: the server pods, not nats-box
    assert nats["selector"]["matchLabels"]["app.kubernetes.io/component"] == "nats"
    assert nats["podMetricsEndpoints"] == [
        {"port": "prom-metrics", "path": "/metrics", "interval": "15s"}
    ]
    # The exporter reads the server's monitoring port, which the platform chart leaves on.
    assert chart_values["nats"]["config"]["monitor"]["enabled"] is True
    # The server pods are <release>-nats-<n>, the pattern the NATS alerts look for.
    assert re.fullmatch(NATS_POD_REGEX, f"{release.name}-nats-0")
    etcd = monitors["dynamo-platform-etcd"]["spec"]
    assert etcd["podMetricsEndpoints"] == [
        {"port": "client", "path": "/metrics", "interval": "15s"}
    ]


@pytest.mark.parametrize(
    ("gpu_stack", "key", "path"),
    [
        ("device-plugin", "dcgm_exporter", "serviceMonitor"),
        ("gpu-operator", "gpu_operator", "dcgmExporter.serviceMonitor"),
    ],
)
def test_dcgm_is_scraped_through_its_charts_own_service_monitor(
    gpu_stack: str, key: str, path: str
) -> None:
    spec = PlatformSpec.model_validate({"gpuStack": gpu_stack})
    observed = releases(spec, OBSERVED)[key]
    assert dig(observed.values.dump(), path) == {
        "enabled": True,
        "additionalLabels": {"release": DEFAULT_PROMETHEUS_RELEASE},
        # Prometheus's own namespace/pod labels win: the GPU's pod arrives as exported_pod.
        "honorLabels": False,
    }
    assert observed.monitors  # waits for the ServiceMonitor CRD
    # Without Prometheus there is no ServiceMonitor CRD: the dcgm-exporter chart's default (on)
    # would fail the install.
    unobserved = releases(spec, UNOBSERVED)[key]
    assert dig(unobserved.values.dump(), path) == {"enabled": False}
    assert not unobserved.monitors
    # What the dashboard and the GPU alerts assume of a ServiceMonitor without honorLabels.
    dashboard = build_dashboard_config_map("monitoring", ["m"])
    assert any('exported_namespace="$model"' in e for e in promql_expressions(dashboard))
