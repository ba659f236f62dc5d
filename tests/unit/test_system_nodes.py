"""The stack's own pods on the system nodes: frontends, Karpenter and the platform charts' pods
must fit desiredSize nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.platform import platform_releases
from infra.deployment.checked import check_stack_values
from infra.deployment.placement import Demand, node_allocatable
from infra.deployment.platform_pods import (
    DYNAMO_OPERATOR,
    installed_charts,
    platform_daemon_sets,
    platform_pods,
)
from infra.deployment.system_nodes import system_pods
from infra.specs import autoscaler_namespace
from infra.stack.errors import StackConfigError
from infra.stack.instances import cpu_instance
from infra.stack.names import (
    FLUID_NAMESPACE,
    GPU_NAMESPACE,
    GRAFANA_ADMIN_KEY,
    parse_quantity_mib,
)
from tests.conftest import PROJECT_ROOT

from .helpers import values


def _checked(raw: dict):
    # Grafana's admin password is set wherever the stack installs kube-prometheus-stack.
    secrets = frozenset({GRAFANA_ADMIN_KEY})
    return check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT, secrets=secrets)


def test_system_instance_shapes_follow_their_family() -> None:
    assert (cpu_instance("m6i.xlarge").vcpu, cpu_instance("m6i.xlarge").memory_gib) == (4, 16)  # type: ignore[union-attr]
    assert cpu_instance("r7i.2xlarge").memory_gib == 64  # type: ignore[union-attr]
    assert cpu_instance("t3.micro") is None


def _on_one_small_node() -> dict:
    """The test stack on a single m6i.large system node (2 vCPU, 8 GiB)."""
    raw = values()
    raw["cluster"]["systemNodeGroup"] = {
        "instanceType": "m6i.large",
        "minSize": 1,
        "desiredSize": 1,
    }
    return raw


def test_frontends_that_do_not_fit_the_system_nodes_are_refused() -> None:
    raw = _on_one_small_node()
    raw["models"][0]["frontend"] = {"replicas": 4, "memory": "2Gi"}  # 8 GiB on one 8 GiB node
    message = _system_node_issue(raw)
    assert "m6i.large nodes, desiredSize is 1" in message
    assert "qwen3-0-6b/blue frontend" in message
    raw["cluster"]["systemNodeGroup"] |= {"desiredSize": 3, "maxSize": 3}
    _checked(raw)


def test_karpenter_controllers_count_on_the_system_nodes() -> None:
    raw = values()
    raw["nodePools"][0] = {
        "name": "l4",
        "instanceType": "g6.xlarge",
        "provisioner": "karpenter",
        "maxSize": 2,
    }
    checked = _checked(raw)
    labels = [pod.label for pod in system_pods(checked.deployment)]
    assert "karpenter #1" in labels and any("frontend" in label for label in labels)


def _system_node_issue(raw: dict) -> str:
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    (issue,) = [i for i in caught.value.issues if i.path == "cluster.systemNodeGroup.desiredSize"]
    return issue.message


def _platform_labels(raw: dict) -> set[str]:
    deployment = _checked(raw).deployment
    return {pod.label for pod in platform_pods(deployment) + platform_daemon_sets(deployment)}


def test_frontends_that_fit_alone_are_refused_beside_the_platform_pods() -> None:
    raw = _on_one_small_node()
    node = node_allocatable(cpu_instance("m6i.large"), efa=False)  # type: ignore[arg-type]
    # The frontend alone fits the node; the Dynamo operator (1 GiB) no longer fits beside it.
    memory = f"{node.memory_mib - 512}Mi"
    raw["models"][0]["frontend"] = {"replicas": 1, "memory": memory}
    message = _system_node_issue(raw)
    assert "need 2 m6i.large nodes, desiredSize is 1" in message
    assert "the pods of dynamo-platform, nvidia-device-plugin, fluid" in message
    assert "after each node's DaemonSets: nvidia-device-plugin/nfd-worker" in message
    raw["cluster"]["systemNodeGroup"] |= {"desiredSize": 2, "maxSize": 2}
    _checked(raw)


def test_high_availability_counts_three_nats_and_etcd_servers() -> None:
    raw = values(platform={"highAvailability": True, "etcd": {"enabled": True}})
    raw["cluster"]["systemNodeGroup"] = {"minSize": 3, "desiredSize": 3, "maxSize": 3}
    labels = _platform_labels(raw)
    assert {"dynamo-platform/nats #3", "dynamo-platform/etcd #3"} <= labels
    assert "dynamo-platform/etcd #4" not in labels


def _with_efa() -> dict:
    raw = values()  # gpt-oss disagg on the EFA pool, one node per worker
    raw["models"] = [raw["models"][1]]
    raw["nodePools"][1] |= {"efa": True, "availabilityZone": "us-west-2a"}
    return raw


def _autoscaled(autoscaler: str) -> dict:
    raw = values(observability={"enabled": True}, platform={"autoscaler": autoscaler})
    raw["nodePools"][0] |= {"desiredSize": 2}
    raw["models"][0]["agg"] = {
        "autoscaling": {"minReplicas": 1, "maxReplicas": 2, "ttftP95Seconds": 0.8}
    }
    return raw


def test_only_the_autoscaler_the_stack_installs_is_counted() -> None:
    keda = {"keda/keda-operator", "keda/keda-operator-metrics-apiserver"}
    assert keda <= _platform_labels(_autoscaled("keda"))
    with_hpa = _platform_labels(_autoscaled("hpa"))
    assert "prometheus-adapter" in with_hpa and not keda & with_hpa
    unscaled = _platform_labels(values())
    assert not any(label.startswith(("keda", "prometheus-adapter")) for label in unscaled)


def test_charts_the_stack_does_not_install_are_not_counted() -> None:
    default = _platform_labels(values())
    assert {"fluid/dataset-controller", "fluid/csi-nodeplugin"} <= default
    assert "dcgm-exporter" not in default  # kept to the GPU nodes
    assert not any(
        label.startswith(("dynamo-platform/etcd", "dynamo-platform/kai")) for label in default
    )
    without_fluid = _platform_labels(values(platform={"fluid": False}))
    assert not any(label.startswith("fluid/") for label in without_fluid)
    # The GPU operator's exporter runs on the GPU nodes only, as ours does.
    operator = _platform_labels(values(platform={"gpuStack": "gpu-operator"}))
    assert {"gpu-operator", "gpu-operator/nfd-master", "gpu-operator/nfd-worker"} <= operator
    assert "dcgm-exporter" not in operator
    external = {"etcd": {"enabled": True, "externalEndpoint": "http://etcd.example:2379"}}
    assert not any("etcd" in label for label in _platform_labels(values(platform=external)))


def test_grove_and_the_kai_scheduler_count_where_a_model_packs_a_topology() -> None:
    raw = values(platform={"clusterTopology": "aws"})
    raw["models"][0]["packDomain"] = "rack"
    labels = _platform_labels(raw)
    assert {"dynamo-platform/grove-operator", "dynamo-platform/kai-scheduler"} <= labels


@pytest.mark.parametrize(
    "raw",
    [
        values(),
        values(platform={"fluid": False, "gpuStack": "gpu-operator"}),
        values(platform={"gpuStack": "none"}, observability={"enabled": True}),
        values(observability={"enabled": True, "installKubePrometheusStack": True}),
        _with_efa(),
        _autoscaled("keda"),
        _autoscaled("hpa"),
    ],
)
def test_every_chart_the_platform_installs_is_counted(raw: dict) -> None:
    config = _checked(raw).deployment.config
    releases = platform_releases(
        config.platform,
        GPU_NAMESPACE,
        FLUID_NAMESPACE,
        config.observability,
        gpus=bool(config.node_pools),
        efa=any(pool.efa for pool in config.node_pools),
        autoscaler_namespace=autoscaler_namespace(config),
    )
    assert [chart.release for chart in installed_charts(config)] == [r.name for r in releases]


@pytest.mark.parametrize("chart", ["dynamo-platform-chart", "dynamo-1.2.0/platform-chart"])
def test_the_platform_chart_requests_are_the_pinned_charts(reference: Path, chart: str) -> None:
    root = reference / chart
    operator = yaml.safe_load((root / "components" / "operator" / "values.yaml").read_text())
    requests = operator["controllerManager"]["manager"]["resources"]["requests"]
    assert operator["controllerManager"]["replicas"] == 1
    chart_requests = Demand(
        cpu_millis=int(requests["cpu"].removesuffix("m")),
        memory_mib=parse_quantity_mib(requests["memory"]),
    )
    assert chart_requests == DYNAMO_OPERATOR
    platform = yaml.safe_load((root / "values.yaml").read_text())
    # The platform chart sets no resources on NATS or etcd: their own charts' defaults apply.
    assert "resources" not in platform["nats"] and "resources" not in platform["etcd"]
    assert "resourcesPreset" not in platform["etcd"]
