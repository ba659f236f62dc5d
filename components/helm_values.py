"""Typed Helm values: exactly the keys we set in each chart, nothing else.

`extra="forbid"` catches a mistyped key here instead of Helm silently ignoring it; the chart's
defaults cover everything not modelled. Field aliases are the charts' own key spellings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class HelmValues(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class Toggle(HelmValues):
    enabled: bool


class NoValues(HelmValues):
    """A chart installed with its defaults."""


# --- dynamo-platform ------------------------------------------------------------------------


class Subchart(HelmValues):
    install: bool
    enabled: bool | None = None


class PlatformGlobals(HelmValues):
    etcd: Subchart
    nats: Subchart | None = None  # the chart releases that gate NATS here (1.2.0)
    grove: Subchart | None = None
    # KAI places a multinode group's pods all at once (gang scheduling): without it a half-placed
    # PodCliqueSet holds GPUs while waiting for nodes.
    kai_scheduler: Subchart | None = Field(default=None, alias="kai-scheduler")


class OperatorValues(HelmValues):
    discovery_backend: str = Field(default="kubernetes", alias="discoveryBackend")
    nats_addr: str | None = Field(default=None, alias="natsAddr")
    etcd_addr: str | None = Field(default=None, alias="etcdAddr")


class NatsPvc(HelmValues):
    enabled: bool
    size: str


class NatsFileStore(HelmValues):
    enabled: bool
    pvc: NatsPvc


class NatsJetStream(HelmValues):
    enabled: bool
    file_store: NatsFileStore = Field(alias="fileStore")


class NatsCluster(HelmValues):
    enabled: bool
    replicas: int = Field(ge=1)


class NatsServerConfig(HelmValues):
    max_payload: int = Field(gt=0)
    # The NATS chart turns a key ending in `$include` into a top-level `include` of that file,
    # relative to its config directory (nats-io/k8s nats-1.3.2, templates/_helpers.tpl).
    accounts_include: str | None = Field(default=None, alias="accounts$include")


class JsonPatchOp(HelmValues):
    """One RFC 6902 operation: how the NATS chart takes additions to what it generates."""

    op: Literal["add"]
    path: str
    value: dict[str, Any]


class NatsContainer(HelmValues):
    patch: list[JsonPatchOp]


class NatsConfig(HelmValues):
    merge: NatsServerConfig
    jetstream: NatsJetStream
    cluster: NatsCluster


class SpreadConstraint(HelmValues):
    max_skew: int = Field(alias="maxSkew")
    when_unsatisfiable: str = Field(alias="whenUnsatisfiable")


class NatsPodTemplate(HelmValues):
    # topology key -> constraint (the NATS chart's map form)
    topology_spread_constraints: dict[str, SpreadConstraint] | None = Field(
        default=None, alias="topologySpreadConstraints"
    )
    patch: list[JsonPatchOp] | None = None


class NatsValues(HelmValues):
    enabled: bool | None = None  # the chart releases that gate NATS here (1.1.0)
    config: NatsConfig | None = None
    pod_disruption_budget: Toggle | None = Field(default=None, alias="podDisruptionBudget")
    container: NatsContainer | None = None
    pod_template: NatsPodTemplate | None = Field(default=None, alias="podTemplate")
    # prometheus-nats-exporter as a sidecar of each NATS server (reads its monitor port)
    prom_exporter: Toggle | None = Field(default=None, alias="promExporter")


class EtcdPersistence(HelmValues):
    enabled: bool


class EtcdPdb(HelmValues):
    create: bool


class EtcdValues(HelmValues):
    replica_count: int = Field(alias="replicaCount", ge=1)
    persistence: EtcdPersistence
    pdb: EtcdPdb


class DynamoPlatformValues(HelmValues):
    globals: PlatformGlobals = Field(alias="global")
    operator: OperatorValues = Field(alias="dynamo-operator")
    nats: NatsValues | None = None
    etcd: EtcdValues | None = None


# --- GPU, EFA, Fluid ------------------------------------------------------------------------


class DevicePluginValues(HelmValues):
    gfd: Toggle  # GPU feature discovery labels (product, memory) on the nodes
    nfd: Toggle


class ServiceMonitorValues(HelmValues):
    """A chart's own ServiceMonitor (dcgm-exporter and gpu-operator spell it alike)."""

    enabled: bool
    honor_labels: bool | None = Field(default=None, alias="honorLabels")
    additional_labels: dict[str, str] | None = Field(default=None, alias="additionalLabels")


class DcgmExporterValues(HelmValues):
    service_monitor: ServiceMonitorValues = Field(alias="serviceMonitor")
    tolerations: list[dict[str, str]]  # Kubernetes Tolerations
    affinity: dict[str, Any]  # a Kubernetes Affinity


class EfaDevicePluginValues(HelmValues):
    tolerations: list[dict[str, str]]  # Kubernetes Tolerations


class GpuOperatorDcgmExporter(HelmValues):
    enabled: bool
    service_monitor: ServiceMonitorValues = Field(alias="serviceMonitor")


class GpuOperatorValues(HelmValues):
    driver: Toggle
    toolkit: Toggle
    dcgm_exporter: GpuOperatorDcgmExporter = Field(alias="dcgmExporter")


class FluidRuntimes(HelmValues):
    alluxio: Toggle


class FluidCsi(HelmValues):
    use_node_authorization: bool = Field(alias="useNodeAuthorization")


class FluidValues(HelmValues):
    runtime: FluidRuntimes
    csi: FluidCsi


# --- kube-prometheus-stack ------------------------------------------------------------------


class MonitorReference(HelmValues):
    """prometheus-operator's ObjectReference: every object of `resource` in `namespace`."""

    group: str = "monitoring.coreos.com"
    resource: str
    namespace: str


class PrometheusSpec(HelmValues):
    # False: select every PodMonitor / ServiceMonitor / PrometheusRule, not only the chart's own.
    pod_monitor_selector_nil_uses_helm_values: bool = Field(
        alias="podMonitorSelectorNilUsesHelmValues"
    )
    service_monitor_selector_nil_uses_helm_values: bool = Field(
        alias="serviceMonitorSelectorNilUsesHelmValues"
    )
    rule_selector_nil_uses_helm_values: bool = Field(alias="ruleSelectorNilUsesHelmValues")
    # Series from a monitor get its namespace as this label, whatever the target says.
    enforced_namespace_label: str | None = Field(default=None, alias="enforcedNamespaceLabel")
    excluded_from_enforcement: list[MonitorReference] = Field(
        default=[], alias="excludedFromEnforcement"
    )


class PrometheusValues(HelmValues):
    prometheus_spec: PrometheusSpec = Field(alias="prometheusSpec")


class GrafanaAdmin(HelmValues):
    existing_secret: str = Field(alias="existingSecret")
    user_key: str = Field(alias="userKey")
    password_key: str = Field(alias="passwordKey")


class GrafanaValues(HelmValues):
    admin: GrafanaAdmin


class KubePrometheusStackValues(HelmValues):
    prometheus: PrometheusValues
    grafana: GrafanaValues


# --- prometheus-adapter ---------------------------------------------------------------------


class AdapterPrometheus(HelmValues):
    url: str  # scheme://host; the chart appends :port and path
    port: int = Field(gt=0, le=65535)
    path: str | None = None


class AdapterResource(HelmValues):
    resource: str


class AdapterResources(HelmValues):
    # Prometheus label -> the Kubernetes resource its value names
    overrides: dict[str, AdapterResource]


class AdapterMetricName(HelmValues):
    matches: str
    as_: str = Field(alias="as")


class AdapterRule(HelmValues):
    series_query: str = Field(alias="seriesQuery")
    resources: AdapterResources
    name: AdapterMetricName
    metrics_query: str = Field(alias="metricsQuery")


class AdapterRules(HelmValues):
    default: bool  # the chart's catch-all rules exposing every pod and namespace series
    external: list[AdapterRule]


class PrometheusAdapterValues(HelmValues):
    prometheus: AdapterPrometheus
    rules: AdapterRules


# --- karpenter (charts/karpenter/values.yaml, v1.14.1) --------------------------------------


class KarpenterSettings(HelmValues):
    cluster_name: str = Field(alias="clusterName")
    # The SQS queue's name; empty would turn interruption handling off.
    interruption_queue: str = Field(alias="interruptionQueue")


class KarpenterServiceAccount(HelmValues):
    name: str
    annotations: dict[str, str]


class ResourceAmounts(HelmValues):
    cpu: str
    memory: str


class ContainerResources(HelmValues):
    requests: ResourceAmounts
    limits: ResourceAmounts


class KarpenterController(HelmValues):
    resources: ContainerResources


class KarpenterValues(HelmValues):
    settings: KarpenterSettings
    service_account: KarpenterServiceAccount = Field(alias="serviceAccount")
    replicas: int = Field(ge=1)
    node_selector: dict[str, str] = Field(alias="nodeSelector")
    controller: KarpenterController
