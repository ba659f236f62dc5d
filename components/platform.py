"""Platform: Dynamo operator with NATS (and optional etcd), GPU and EFA device plugins, Fluid.

Every piece comes from its official Helm chart at the version pinned in the stack. We set only the
values we mean; everything else stays the chart's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.autoscaling import build_prometheus_adapter_values
from components.dgd_parts import gpu_tolerations
from components.gpu_node_pool import GPU_PRESENT_LABEL
from components.helm_values import (
    DcgmExporterValues,
    DevicePluginValues,
    DynamoPlatformValues,
    EfaDevicePluginValues,
    EtcdPdb,
    EtcdPersistence,
    EtcdValues,
    FluidCsi,
    FluidRuntimes,
    FluidValues,
    GpuOperatorDcgmExporter,
    GpuOperatorValues,
    GrafanaAdmin,
    GrafanaValues,
    HelmValues,
    JsonPatchOp,
    KubePrometheusStackValues,
    MonitorReference,
    NatsCluster,
    NatsConfig,
    NatsContainer,
    NatsFileStore,
    NatsJetStream,
    NatsPodTemplate,
    NatsPvc,
    NatsServerConfig,
    NatsValues,
    NoValues,
    OperatorValues,
    PlatformGlobals,
    PrometheusSpec,
    PrometheusValues,
    ServiceMonitorValues,
    SpreadConstraint,
    Subchart,
    Toggle,
)
from components.monitoring_content import DEFAULT_PROMETHEUS_RELEASE
from components.nats_accounts import ACCOUNTS_INCLUDE, accounts_volume, accounts_volume_mount
from components.security import GRAFANA_PASSWORD_KEY, GRAFANA_USER_KEY
from infra.stack.config import ObservabilitySpec
from infra.stack.names import GRAFANA_ADMIN_SECRET
from infra.stack.platform_config import Autoscaler, PlatformSpec

COMPONENT_TYPE = "dynamo-trtllm:platform:Platform"
# The dynamo-platform release; its subcharts (NATS, etcd) label their pods with this instance.
PLATFORM_RELEASE = "dynamo-platform"
# Where the NVIDIA device plugin runs (its chart's affinity, less the Tegra term): nodes labelled
# as GPU nodes, ours by their pool (GPU_PRESENT_LABEL) or any by NFD. dcgm-exporter's chart sets
# no affinity, so without this it would start on every CPU node too, with no GPU to measure.
GPU_NODE_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": key, "operator": "In", "values": ["true"]}]}
                for key in (GPU_PRESENT_LABEL, "feature.node.kubernetes.io/pci-10de.present")
            ]
        }
    }
}
# Dynamo's KV events can carry prompt embeddings; NATS must accept 15 MiB messages.
NATS_MAX_PAYLOAD = 15 * 1024 * 1024


@dataclass(frozen=True)
class ChartSource:
    chart: str
    repo: str


CHARTS = {
    "dynamo_platform": ChartSource(
        "dynamo-platform", "https://helm.ngc.nvidia.com/nvidia/ai-dynamo"
    ),
    "nvidia_device_plugin": ChartSource(
        "nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin"
    ),
    "gpu_operator": ChartSource("gpu-operator", "https://helm.ngc.nvidia.com/nvidia"),
    "dcgm_exporter": ChartSource(
        "dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts"
    ),
    "aws_efa_device_plugin": ChartSource(
        "aws-efa-k8s-device-plugin", "https://aws.github.io/eks-charts"
    ),
    "fluid": ChartSource("fluid", "https://fluid-cloudnative.github.io/charts"),
    "kube_prometheus_stack": ChartSource(
        "kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts"
    ),
    "keda": ChartSource("keda", "https://kedacore.github.io/charts"),
    "prometheus_adapter": ChartSource(
        "prometheus-adapter", "https://prometheus-community.github.io/helm-charts"
    ),
}
# The release (CHARTS key) that serves each autoscaler's metrics to Kubernetes.
AUTOSCALER_RELEASE: dict[Autoscaler, str] = {"keda": "keda", "hpa": "prometheus_adapter"}


def build_dynamo_platform_values(
    spec: PlatformSpec, grove: bool = False, metrics: bool = False, nats_accounts: bool = False
) -> DynamoPlatformValues:
    """grove: some worker spans nodes (the operator runs it as a Grove PodCliqueSet) or a model
    packs its graph into a topology domain: Grove and the KAI scheduler place it.
    metrics: Prometheus scrapes the platform, so NATS gets its exporter sidecar.
    nats_accounts: NATS includes the per-model accounts file (components.nats_accounts)."""
    replicas = 3 if spec.high_availability else 1
    own_etcd = spec.etcd.enabled and spec.etcd.external_endpoint is None
    own_nats = spec.nats.external_url is None
    by_global = spec.profile.nats_installed_by_global
    nats = (
        (None if by_global else NatsValues(enabled=False))
        if not own_nats
        else NatsValues(
            enabled=None if by_global else True,
            config=NatsConfig(
                merge=NatsServerConfig(
                    max_payload=NATS_MAX_PAYLOAD,
                    accounts_include=ACCOUNTS_INCLUDE if nats_accounts else None,
                ),
                jetstream=NatsJetStream(
                    enabled=True,
                    file_store=NatsFileStore(
                        enabled=True, pvc=NatsPvc(enabled=True, size=spec.nats.jetstream_storage)
                    ),
                ),
                cluster=NatsCluster(enabled=spec.high_availability, replicas=replicas),
            ),
            pod_disruption_budget=Toggle(enabled=spec.high_availability),
            container=NatsContainer(patch=[_append("/volumeMounts", accounts_volume_mount())])
            if nats_accounts
            else None,
            pod_template=_nats_pod_template(spec.high_availability, nats_accounts),
            prom_exporter=Toggle(enabled=True) if metrics else None,
        )
    )
    return DynamoPlatformValues(
        globals=PlatformGlobals(
            etcd=Subchart(install=own_etcd),
            nats=Subchart(install=own_nats) if by_global else None,
            grove=Subchart(install=True, enabled=True) if grove else None,
            kai_scheduler=Subchart(install=True, enabled=True) if grove else None,
        ),
        operator=OperatorValues(
            nats_addr=spec.nats.external_url, etcd_addr=spec.etcd.external_endpoint
        ),
        nats=nats,
        etcd=EtcdValues(
            replica_count=replicas,
            persistence=EtcdPersistence(enabled=True),
            pdb=EtcdPdb(create=spec.high_availability),
        )
        if own_etcd
        else None,
    )


def _append(path: str, value: dict) -> JsonPatchOp:
    return JsonPatchOp(op="add", path=f"{path}/-", value=value)


def _nats_pod_template(high_availability: bool, accounts: bool) -> NatsPodTemplate | None:
    if not (high_availability or accounts):
        return None
    return NatsPodTemplate(
        # One NATS server per node, so losing a node loses at most one JetStream replica.
        topology_spread_constraints={
            "kubernetes.io/hostname": SpreadConstraint(
                max_skew=1, when_unsatisfiable="DoNotSchedule"
            )
        }
        if high_availability
        else None,
        patch=[_append("/spec/volumes", accounts_volume())] if accounts else None,
    )


@dataclass(frozen=True)
class MetricsEndpoint:
    """Platform pods serving Prometheus metrics, by the labels and port name their chart gives them."""

    name: str
    namespace: str
    pod_labels: dict[str, str]
    port: str
    path: str = "/metrics"


def platform_metrics_endpoints(spec: PlatformSpec) -> list[MetricsEndpoint]:
    """The dynamo-platform subcharts we run ourselves and that serve metrics (not external ones).

    Relied on, from the charts' templates: the NATS chart (nats-io/k8s 1.x, dynamo-platform's
    `nats` dependency) labels its server pods with the `nats.selectorLabels` name/instance/component
    and names the exporter sidecar's port `prom-metrics`; Bitnami etcd labels its pods with the
    chart name and release (`common.labels.matchLabels`) and names the client port (2379) `client`,
    where etcd also serves /metrics. Subcharts take the parent release's name as their instance.
    """
    endpoints = []
    if spec.nats.external_url is None:
        endpoints.append(
            MetricsEndpoint(
                f"{PLATFORM_RELEASE}-nats",
                spec.namespace,
                {
                    "app.kubernetes.io/name": "nats",
                    "app.kubernetes.io/instance": PLATFORM_RELEASE,
                    "app.kubernetes.io/component": "nats",
                },
                "prom-metrics",
            )
        )
    if spec.etcd.enabled and spec.etcd.external_endpoint is None:
        endpoints.append(
            MetricsEndpoint(
                f"{PLATFORM_RELEASE}-etcd",
                spec.namespace,
                {"app.kubernetes.io/name": "etcd", "app.kubernetes.io/instance": PLATFORM_RELEASE},
                "client",
            )
        )
    return endpoints


def dcgm_service_monitor(metrics: bool) -> ServiceMonitorValues:
    """The DCGM exporter chart's own ServiceMonitor, only where Prometheus runs (its CRD exists).

    honorLabels stays off: our dashboard and alerts read the GPU's pod as exported_pod.
    """
    if not metrics:
        return ServiceMonitorValues(enabled=False)
    return ServiceMonitorValues(
        enabled=True,
        honor_labels=False,
        additional_labels={"release": DEFAULT_PROMETHEUS_RELEASE},
    )


# Series of a monitor in a model namespace carry that namespace, whatever the target claims, so
# one model's pods cannot feed another's autoscaler or alerts. The chart's own monitors (the
# cluster's kube-state-metrics, kubelet, ...), our alert rules, which read every namespace, and
# DCGM's, whose series name the GPU's pod, keep theirs.
ENFORCED_NAMESPACE_LABEL = "namespace"


def build_kube_prometheus_stack_values(
    monitoring_namespace: str, gpu_namespace: str
) -> KubePrometheusStackValues:
    excluded = [
        MonitorReference(resource=kind, namespace=monitoring_namespace)
        for kind in ("servicemonitors", "podmonitors", "prometheusrules")
    ]
    excluded.append(MonitorReference(resource="servicemonitors", namespace=gpu_namespace))
    return KubePrometheusStackValues(
        prometheus=PrometheusValues(
            prometheus_spec=PrometheusSpec(
                pod_monitor_selector_nil_uses_helm_values=False,
                service_monitor_selector_nil_uses_helm_values=False,
                rule_selector_nil_uses_helm_values=False,
                enforced_namespace_label=ENFORCED_NAMESPACE_LABEL,
                excluded_from_enforcement=excluded,
            )
        ),
        grafana=GrafanaValues(
            admin=GrafanaAdmin(
                existing_secret=GRAFANA_ADMIN_SECRET,
                user_key=GRAFANA_USER_KEY,
                password_key=GRAFANA_PASSWORD_KEY,
            )
        ),
    )


@dataclass(frozen=True)
class HelmRelease:
    """One chart install as the composition root wants it; `key` picks the pinned version."""

    key: str
    name: str
    namespace: str
    values: HelmValues
    # Creates Prometheus Operator objects: waits for kube-prometheus-stack's CRDs when we install it.
    monitors: bool = False


def platform_releases(
    spec: PlatformSpec,
    gpu_namespace: str,
    fluid_namespace: str,
    observability: ObservabilitySpec,
    gpus: bool,
    efa: bool,
    grove: bool = False,
    autoscaler_namespace: str | None = None,
    nats_accounts: bool = False,
) -> list[HelmRelease]:
    """Which charts this stack installs, in dependency order.

    autoscaler_namespace: where spec.autoscaler's chart goes; None when no role autoscales.
    nats_accounts: the bundled NATS includes the per-model accounts file.
    """
    metrics = observability.enabled
    releases = [
        HelmRelease(
            "dynamo_platform",
            PLATFORM_RELEASE,
            spec.namespace,
            build_dynamo_platform_values(spec, grove, metrics, nats_accounts),
        )
    ]
    if observability.enabled and observability.install_kube_prometheus_stack:
        releases.append(
            HelmRelease(
                "kube_prometheus_stack",
                "kube-prometheus-stack",
                observability.namespace,
                build_kube_prometheus_stack_values(observability.namespace, gpu_namespace),
            )
        )
    if gpus and spec.gpu_stack == "device-plugin":
        releases.append(
            HelmRelease(
                "nvidia_device_plugin",
                "nvidia-device-plugin",
                gpu_namespace,
                DevicePluginValues(gfd=Toggle(enabled=True), nfd=Toggle(enabled=True)),
            )
        )
        releases.append(
            HelmRelease(
                "dcgm_exporter",
                "dcgm-exporter",
                gpu_namespace,
                DcgmExporterValues(
                    service_monitor=dcgm_service_monitor(metrics),
                    tolerations=gpu_tolerations(),
                    affinity=GPU_NODE_AFFINITY,
                ),
                monitors=metrics,
            )
        )
    if gpus and spec.gpu_stack == "gpu-operator":
        # EKS accelerated AMIs already carry the driver and container toolkit.
        releases.append(
            HelmRelease(
                "gpu_operator",
                "gpu-operator",
                gpu_namespace,
                GpuOperatorValues(
                    driver=Toggle(enabled=False),
                    toolkit=Toggle(enabled=False),
                    dcgm_exporter=GpuOperatorDcgmExporter(
                        enabled=True,
                        service_monitor=dcgm_service_monitor(metrics),
                    ),
                ),
                monitors=metrics,
            )
        )
    if efa:
        releases.append(
            HelmRelease(
                "aws_efa_device_plugin",
                "aws-efa-k8s-device-plugin",
                gpu_namespace,
                # The GPU workers' toleration of the GPU pools' taint: the EFA device plugin's and
                # dcgm-exporter's charts tolerate none of it (eks-charts and dcgm-exporter
                # values: `tolerations: []`), and without it no EFA interface is advertised.
                EfaDevicePluginValues(tolerations=gpu_tolerations()),
            )
        )
    if spec.fluid:
        releases.append(
            HelmRelease(
                "fluid",
                "fluid",
                fluid_namespace,
                # On EKS the kubelet kubeconfig is not where Fluid's CSI plugin expects it.
                FluidValues(
                    runtime=FluidRuntimes(alluxio=Toggle(enabled=True)),
                    csi=FluidCsi(use_node_authorization=False),
                ),
            )
        )
    if autoscaler_namespace is not None:
        key = AUTOSCALER_RELEASE[spec.autoscaler]
        values: HelmValues = (
            build_prometheus_adapter_values(observability.prometheus())
            if spec.autoscaler == "hpa"
            else NoValues()
        )
        releases.append(HelmRelease(key, CHARTS[key].chart, autoscaler_namespace, values))
    return releases


@dataclass(frozen=True)
class PlatformArgs:
    releases: list[HelmRelease]
    charts: dict[str, str]  # chart key -> pinned version
    depends_on: list[pulumi.Resource]


class Platform(pulumi.ComponentResource):
    releases: dict[str, k8s.helm.v3.Release]
    operator: k8s.helm.v3.Release

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.releases = {}
        for release in args.releases:
            source = CHARTS[release.key]
            crds = self.releases.get("kube_prometheus_stack") if release.monitors else None
            self.releases[release.key] = k8s.helm.v3.Release(
                release.name,
                name=release.name,
                chart=source.chart,
                version=args.charts[release.key],
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=source.repo),
                namespace=release.namespace,
                values=release.values.dump(),
                # Wait until pods are ready: DGDs are rejected until the operator's webhook answers.
                atomic=True,
                wait_for_jobs=True,
                timeout=900,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*args.depends_on, *([crds] if crds else [])]
                ),
            )
        self.operator = self.releases["dynamo_platform"]
        # What installs the monitoring CRDs, when the stack installs them itself.
        self.prometheus_operator = self.releases.get("kube_prometheus_stack")
        self.register_outputs({"releases": sorted(self.releases)})
