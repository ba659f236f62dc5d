"""The platform a stack installs (Dynamo release, charts, NATS, etcd, GPU stack, autoscaler) and
the model cache's settings: the `platform` and `modelCache` sections of the stack schema."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from infra.stack.dynamo_versions import DEFAULT_DYNAMO_VERSION, DynamoProfile, profile
from infra.stack.spec import Quantity, Spec

# --- platform --------------------------------------------------------------------------------


class ChartVersions(Spec):
    """Pinned chart versions; a bump is a reviewed config change, never an implicit upgrade."""

    # Follows platform.dynamoVersion's profile; set it only to say the same thing twice.
    dynamo_platform: str | None = None
    nvidia_device_plugin: str = "0.20.0"
    gpu_operator: str = "v26.7.0"
    dcgm_exporter: str = "4.8.2"
    aws_efa_device_plugin: str = "v0.5.30"
    fluid: str = "1.0.8"
    kube_prometheus_stack: str = "88.5.3"
    keda: str = "2.20.2"
    prometheus_adapter: str = "5.3.0"
    # Installed when a node pool has provisioner karpenter (its CRD chart at the same version).
    karpenter: str = "1.14.1"


class NatsSpec(Spec):
    external_url: str | None = None
    jetstream_storage: Quantity = "10Gi"
    # One NATS account per model namespace (its own subjects and JetStream), each graph's pods
    # logging in with that namespace's credentials. Default: on for the NATS the stack runs; a
    # NATS you bring (externalUrl) has the accounts you give it.
    per_model_accounts: bool | None = None

    @model_validator(mode="after")
    def _accounts_on_our_nats(self) -> NatsSpec:
        if self.per_model_accounts and self.external_url:
            raise ValueError(
                "perModelAccounts configures the NATS the stack runs; a NATS at externalUrl "
                "keeps the accounts its operators give it"
            )
        return self

    @property
    def accounts(self) -> bool:
        """Whether each model namespace gets its own NATS account."""
        if self.per_model_accounts is not None:
            return self.per_model_accounts
        return self.external_url is None


class EtcdSpec(Spec):
    # Dynamo 1.x discovers workers through the Kubernetes API, so etcd is opt-in.
    enabled: bool = False
    external_endpoint: str | None = None


# What scales autoscaled roles: KEDA ScaledObjects, or HorizontalPodAutoscalers on External metrics
# from the Prometheus adapter. Both serve the cluster's external metrics API, so a stack runs one.
Autoscaler = Literal["keda", "hpa"]


class PlatformSpec(Spec):
    # The Dynamo release (infra/stack/dynamo_versions.py): platform chart, DGD API version,
    # runtime images and the admission rules that apply.
    dynamo_version: str = DEFAULT_DYNAMO_VERSION
    namespace: str = "dynamo-system"
    high_availability: bool = False
    charts: ChartVersions = ChartVersions()
    nats: NatsSpec = NatsSpec()
    etcd: EtcdSpec = EtcdSpec()
    gpu_stack: Literal["device-plugin", "gpu-operator", "none"] = "device-plugin"
    fluid: bool = True
    autoscaler: Autoscaler = "keda"
    # The Grove ClusterTopology (cluster-scoped, made by the cluster's admin: it maps domain names
    # to node labels) that models' packDomain refers to.
    cluster_topology: str | None = Field(default=None, min_length=1)

    @field_validator("dynamo_version")
    @classmethod
    def _has_a_profile(cls, version: str) -> str:
        profile(version)
        return version

    @model_validator(mode="after")
    def _chart_follows_the_release(self) -> PlatformSpec:
        pinned, chart = self.charts.dynamo_platform, self.profile.platform_chart
        if pinned is not None and pinned != chart:
            raise ValueError(
                f"charts.dynamoPlatform {pinned} is not Dynamo {self.dynamo_version}'s platform "
                f"chart ({chart}): set platform.dynamoVersion to the release you want"
            )
        return self

    @property
    def profile(self) -> DynamoProfile:
        return profile(self.dynamo_version)

    def chart_pins(self) -> dict[str, str]:
        """Every chart's pinned version, the platform chart from the release's profile."""
        pins = {k: v for k, v in self.charts.model_dump().items() if v is not None}
        return pins | {"dynamo_platform": self.profile.platform_chart}


# --- model cache -------------------------------------------------------------------------


class ModelCacheSpec(Spec):
    enabled: bool = True
    medium: Literal["SSD", "MEM"] = "SSD"
    # The SSD tier's directory on the node; by default the NVMe array nodeadm mounts at
    # /mnt/k8s-disks/0 on pools that stripe instance storage, else /opt/dynamo/model-cache.
    path: str | None = None
    headroom_percent: int = Field(default=20, ge=0, le=200)
    high_watermark: float = Field(default=0.95, gt=0, le=1)
    low_watermark: float = Field(default=0.7, gt=0, le=1)
    prewarm: Literal["Once", "Cron"] = "Once"
    prewarm_schedule: str | None = None

    @model_validator(mode="after")
    def _watermarks_ordered(self) -> ModelCacheSpec:
        if self.low_watermark >= self.high_watermark:
            raise ValueError("lowWatermark must be below highWatermark")
        if self.prewarm == "Cron" and not self.prewarm_schedule:
            raise ValueError("prewarm Cron needs prewarmSchedule (a cron expression)")
        return self
