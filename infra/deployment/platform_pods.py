"""The platform charts' own pods on the system nodes, with the requests the pinned charts give them.

Which charts a stack installs follows `components.platform.platform_releases` (this layer may not
import it; a unit test holds the two together). A pod is counted when it can land on the system
nodes: it does not tolerate the GPU taint (nvidia.com/gpu=true:NoSchedule), or it tolerates it
but nothing keeps it off the system nodes (the worst case, then). We set no resources on any of
these charts, so each figure is the chart's default at the version `platform.charts` pins (chart,
version and values key named beside it). A chart that sets no requests leaves its pod BestEffort:
it asks for nothing, yet the scheduler still places it, so it is counted at zero. A DaemonSet
runs one pod on every system node: its requests come off each node before anything else is
placed.

Not counted: Helm hook Jobs (CRD upgrades, webhook certificates), which finish before the release
is ready, and the EKS add-ons (CoreDNS, kube-proxy, the VPC CNI, the EBS CSI driver), which are
no charts of ours.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.deployment.placement import Demand, PodGroup
from infra.deployment.resolved import Deployment
from infra.stack.config import StackConfig
from infra.stack.names import parse_quantity_mib


@dataclass(frozen=True)
class Workload:
    """A chart's Deployment, StatefulSet or DaemonSet: each of its pods requests `demand`."""

    name: str
    demand: Demand
    replicas: int = 1  # ignored for a DaemonSet: one pod per node


@dataclass(frozen=True)
class ChartPods:
    release: str  # the Helm release name
    where: str  # the stack setting that installs it
    pods: tuple[Workload, ...] = ()  # scheduled onto the system nodes
    every_node: tuple[Workload, ...] = ()  # DaemonSets that also run on every system node


def _requests(cpu: str, memory: str) -> Demand:
    """A container's requests as its chart's values spell them (CPU in millicores: "250m")."""
    return Demand(cpu_millis=int(cpu.removesuffix("m")), memory_mib=parse_quantity_mib(memory))


BEST_EFFORT = Demand()

# --- dynamo-platform (charts 1.1.0 and 1.2.0 alike) -------------------------------------------
# dynamo-operator subchart, values controllerManager.manager.resources.requests (one replica,
# controllerManager.replicas).
DYNAMO_OPERATOR = _requests("512m", "1Gi")
# nats-io/k8s chart nats-1.3.2 gives the server, its config reloader and its exporter sidecar no
# resources, and dynamo-platform's `nats:` values add none: BestEffort.
NATS_SERVER = BEST_EFFORT
# Bitnami etcd 12.0.18, values resourcesPreset "micro": bitnami/common 2.31.4
# (common.resources.preset) requests 250m CPU and 256Mi.
ETCD = _requests("250m", "256Mi")
# grove-charts v0.1.0-alpha.7 and alpha.8 (operator/charts), values resources.requests.
GROVE_OPERATOR = _requests("50m", "128Mi")
# kai-scheduler v0.13.4: values `operator:` sets no resources, so its operator is BestEffort. The
# operator then runs the services the chart's Config (templates/kai-config.yaml) enables, each
# with its SetDefaultsWhereNeeded requests (pkg/apis/kai/v1/<service>, v0.13.4) since the values
# give none; one scheduler for the chart's one SchedulingShard. nodeScaleAdjuster runs only with
# global.clusterAutoscaling and KAI's Prometheus only when enabled, both off by default.
KAI_OPERATOR = BEST_EFFORT
KAI_SERVICES = (
    Workload("kai-scheduler", _requests("250m", "512Mi")),  # scheduler
    Workload("kai-binder", _requests("50m", "200Mi")),  # binder
    Workload("kai-podgrouper", _requests("50m", "200Mi")),  # pod_grouper
    Workload("kai-podgroupcontroller", _requests("20m", "100Mi")),  # pod_group_controller
    Workload("kai-queuecontroller", _requests("20m", "50Mi")),  # queue_controller
    Workload("kai-admission", _requests("50m", "256Mi")),  # admission: common/resources.go
)

# --- GPU stack ---------------------------------------------------------------------------------
# node-feature-discovery chart v0.19.0, the subchart of nvidia-device-plugin 0.20.0 and of
# gpu-operator v26.7.0 (neither sets its resources): values master/gc/worker.resources.requests.
# Its master and gc have no GPU toleration; its worker is a DaemonSet on every system node.
NFD_MASTER = _requests("100m", "128Mi")
NFD_GC = _requests("10m", "128Mi")
NFD_WORKER = _requests("5m", "64Mi")
# gpu-operator v26.7.0, values operator.resources.requests (templates/operator.yaml: 1 replica).
# The operands it starts select GPU nodes by its nvidia.com/gpu.deploy.* labels.
GPU_OPERATOR = _requests("200m", "100Mi")
# nvidia-device-plugin 0.20.0's device plugin and GPU feature discovery require a GPU node (values
# `affinity`), dcgm-exporter the same (components.platform GPU_NODE_AFFINITY), and
# aws-efa-k8s-device-plugin v0.5.30's DaemonSet an EFA instance type (values
# supportedInstanceLabels): none of them lands on a system node.

# --- fluid 1.0.8 ---------------------------------------------------------------------------------
# values dataset/runtime.alluxio/webhook/fluidapp.resources are `~` and the CSI plugin's containers
# have none: every pod is BestEffort. Each tolerates every taint (values *.tolerations), so the
# controllers may land on GPU nodes too; the CSI plugin is a DaemonSet on every node.
FLUID_CONTROLLERS = (
    "dataset-controller",
    "alluxioruntime-controller",  # runtime.alluxio.enabled, which we set
    "fluid-webhook",
    "fluidapp-controller",
)

# --- kube-prometheus-stack 88.5.3 ----------------------------------------------------------------
# values prometheusOperator.resources, prometheus.prometheusSpec.resources (replicas 1, shards 1),
# alertmanager.alertmanagerSpec.resources (replicas 1), prometheusConfigReloader.resources (the
# operator is told 0): all empty. Its subcharts grafana 12.11.1 (resources and sidecar.resources),
# kube-state-metrics 8.4.0 and prometheus-node-exporter 4.56.1 (resources) set none either: all
# BestEffort. node-exporter tolerates every NoSchedule taint: a DaemonSet on every node.
KUBE_PROMETHEUS_STACK_PODS = (
    "prometheus-operator",
    "prometheus",
    "alertmanager",
    "grafana",
    "kube-state-metrics",
)

# --- autoscaler --------------------------------------------------------------------------------
# keda 2.20.2, values resources.operator/metricServer/webhooks.requests, each replicaCount 1.
KEDA_PODS = tuple(
    Workload(name, _requests("100m", "100Mi"))
    for name in ("keda-operator", "keda-operator-metrics-apiserver", "keda-admission-webhooks")
)
# prometheus-adapter 5.3.0, values resources: empty (replicas 1): BestEffort.
PROMETHEUS_ADAPTER = BEST_EFFORT


def _best_effort(*names: str) -> tuple[Workload, ...]:
    return tuple(Workload(name, BEST_EFFORT) for name in names)


def _dynamo_platform(config: StackConfig) -> ChartPods:
    spec = config.platform
    replicas = 3 if spec.high_availability else 1
    pods = [Workload("dynamo-operator", DYNAMO_OPERATOR)]
    if spec.nats.external_url is None:
        pods.append(Workload("nats", NATS_SERVER, replicas))
    if spec.etcd.enabled and spec.etcd.external_endpoint is None:
        pods.append(Workload("etcd", ETCD, replicas))
    if config.uses_grove:
        pods += [
            Workload("grove-operator", GROVE_OPERATOR),
            Workload("kai-operator", KAI_OPERATOR),
            *KAI_SERVICES,
        ]
    return ChartPods("dynamo-platform", "platform", tuple(pods))


def installed_charts(config: StackConfig) -> list[ChartPods]:
    """The releases `components.platform.platform_releases` installs for this stack, in its order,
    each with its pods on the system nodes."""
    spec = config.platform
    nfd = (Workload("nfd-master", NFD_MASTER), Workload("nfd-gc", NFD_GC))
    nfd_worker = Workload("nfd-worker", NFD_WORKER)
    charts = [_dynamo_platform(config)]
    if config.observability.enabled and config.observability.install_kube_prometheus_stack:
        charts.append(
            ChartPods(
                "kube-prometheus-stack",
                "observability",
                _best_effort(*KUBE_PROMETHEUS_STACK_PODS),
                _best_effort("node-exporter"),
            )
        )
    gpus = bool(config.node_pools)
    if gpus and spec.gpu_stack == "device-plugin":
        charts.append(ChartPods("nvidia-device-plugin", "platform.gpuStack", nfd, (nfd_worker,)))
        charts.append(ChartPods("dcgm-exporter", "platform.gpuStack"))
    if gpus and spec.gpu_stack == "gpu-operator":
        charts.append(
            ChartPods(
                "gpu-operator",
                "platform.gpuStack",
                (Workload("gpu-operator", GPU_OPERATOR), *nfd),
                (nfd_worker,),
            )
        )
    if any(pool.efa for pool in config.node_pools):
        charts.append(ChartPods("aws-efa-k8s-device-plugin", "nodePools"))
    if spec.fluid:
        charts.append(
            ChartPods(
                "fluid",
                "platform.fluid",
                _best_effort(*FLUID_CONTROLLERS),
                _best_effort("csi-nodeplugin"),
            )
        )
    if config.autoscales:
        if spec.autoscaler == "keda":
            charts.append(ChartPods("keda", "platform.autoscaler", KEDA_PODS))
        else:
            charts.append(
                ChartPods(
                    "prometheus-adapter",
                    "platform.autoscaler",
                    (Workload("prometheus-adapter", PROMETHEUS_ADAPTER),),
                )
            )
    return charts


def platform_pods(deployment: Deployment) -> list[PodGroup]:
    """The platform charts' pods the scheduler places on the system nodes (DaemonSets aside)."""
    groups = []
    for chart in installed_charts(deployment.config):
        for workload in chart.pods:
            for replica in range(workload.replicas):
                number = f" #{replica + 1}" if workload.replicas > 1 else ""
                label = _label(chart, workload) + number
                groups.append(PodGroup(label, chart.where, workload.name, 1, workload.demand))
    return groups


def platform_daemon_sets(deployment: Deployment) -> list[PodGroup]:
    """The platform charts' DaemonSets: one such pod on every system node."""
    return [
        PodGroup(_label(chart, workload), chart.where, workload.name, 1, workload.demand)
        for chart in installed_charts(deployment.config)
        for workload in chart.every_node
    ]


def _label(chart: ChartPods, workload: Workload) -> str:
    """Release and workload ("keda/keda-operator"); the release alone when they share a name."""
    if workload.name == chart.release:
        return chart.release
    return f"{chart.release}/{workload.name}"
