"""Typed stack configuration: what one `stacks/Pulumi.<env>.yaml` may say under `dynamo-trtllm:`.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
YAML keys are camelCase (Pulumi convention); Python attributes are snake_case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

# The cluster and node-pool models live in infra.stack.cluster_config and pool_config; the ones
# named `as` themselves are re-exported for code that takes the whole stack schema from here.
from infra.stack.cluster_config import ClusterSpec, IamPrincipalArn
from infra.stack.cluster_config import EksCluster as EksCluster
from infra.stack.cluster_config import ExistingCluster as ExistingCluster
from infra.stack.dynamo_versions import DEFAULT_DYNAMO_VERSION, DynamoProfile, profile
from infra.stack.eks_versions import DEFAULT_KUBERNETES_VERSION as DEFAULT_KUBERNETES_VERSION
from infra.stack.pool_config import GpuFacts as GpuFacts
from infra.stack.pool_config import NodePool
from infra.stack.spec import Quantity, Spec

Color = Literal["blue", "green"]
COLORS: tuple[Color, ...] = ("blue", "green")


class Topology(StrEnum):
    """Dynamo's canonical TensorRT-LLM graph shapes (names follow the upstream examples)."""

    AGG = "agg"
    AGG_ROUTER = "agg-router"
    DISAGG = "disagg"
    DISAGG_ROUTER = "disagg-router"
    DISAGG_MULTINODE = "disagg-multinode"

    @property
    def roles(self) -> tuple[str, ...]:
        return ("agg",) if self in (Topology.AGG, Topology.AGG_ROUTER) else ("prefill", "decode")

    @property
    def kv_routing(self) -> bool:
        return self in (Topology.AGG_ROUTER, Topology.DISAGG_ROUTER)

    @property
    def kv_event_roles(self) -> tuple[str, ...]:
        """Roles whose KV events feed the KV-aware router (upstream: agg, or prefill when split)."""
        if self is Topology.AGG_ROUTER:
            return ("agg",)
        if self is Topology.DISAGG_ROUTER:
            return ("prefill",)
        return ()

    @property
    def multinode(self) -> bool:
        return self is Topology.DISAGG_MULTINODE


WORKER_ROLES = ("agg", "prefill", "decode")
# Roles an engine config can be written for (multimodal graphs add an encode worker).
ENGINE_ROLES = (*WORKER_ROLES, "encode")


def traffic_split(
    active: Color, weights: dict[Color, int] | None, defined: Iterable[Color]
) -> dict[Color, int]:
    """Percent of requests per defined color: the weights when given, else all to `active`."""
    present = set(defined)
    if weights is not None:
        return {c: weights.get(c, 0) for c in COLORS if c in present}
    return {c: 100 if c == active else 0 for c in COLORS if c in present}


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


# --- models --------------------------------------------------------------------------------


class S3Source(Spec):
    uri: str = Field(pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
    region: str | None = None
    size_gib: float = Field(gt=0)

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").partition("/")[0]

    @property
    def prefix(self) -> str:
        """The key prefix without slashes: s3://bucket/a/b/ -> "a/b" ("" for a whole bucket)."""
        return self.uri.removeprefix("s3://").partition("/")[2].strip("/")


def _hugging_face_id(repo_id: str) -> str:
    """huggingface_hub's repo id rules: [namespace/]name, letters, digits, - _ ., <= 96 each."""
    if not re.fullmatch(r"(\b[\w\-.]+\b/)?\b[\w\-.]{1,96}\b", repo_id):
        raise ValueError(
            f"{repo_id!r} is not a Hugging Face model id (organisation/name, e.g. Qwen/Qwen3-0.6B)"
        )
    if "--" in repo_id or ".." in repo_id or repo_id.endswith(".git"):
        raise ValueError(f"{repo_id!r} is not a Hugging Face model id (no '--', '..' or .git)")
    return repo_id


HuggingFaceId = Annotated[str, AfterValidator(_hugging_face_id)]


def _pinned_image(image: str) -> str:
    """registry/repository:tag or @sha256:digest; `latest` and no tag at all move under you."""
    name, _, digest = image.partition("@")
    if digest:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ValueError(f"{image!r}: a digest is @sha256: and 64 hex digits")
        return image
    last = name.rsplit("/", 1)[-1]
    if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(:[\w][\w.-]{0,127})?", last) or not name:
        raise ValueError(f"{image!r} is not a container image reference")
    if ":" not in last:
        raise ValueError(f"{image!r} has no tag: pin a version (e.g. :1.1.0) or a @sha256 digest")
    if last.endswith(":latest"):
        raise ValueError(f"{image!r}: `latest` moves under you; pin a version or a digest")
    return image


ImageRef = Annotated[str, AfterValidator(_pinned_image)]


class ModelSource(Spec):
    """Where the weights come from: a Hugging Face id (downloaded by workers) or S3 (cached)."""

    hugging_face: HuggingFaceId | None = None
    s3: S3Source | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        if (self.hugging_face is None) == (self.s3 is None):
            raise ValueError("give exactly one of huggingFace or s3")
        return self


class AutoscalingSpec(Spec):
    """Scale a role's workers on frontend load through the DGD's scaling adapter (platform.autoscaler)."""

    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(ge=1)
    # Scale out when the frontend holds more queued requests than this per worker.
    queued_requests_per_worker: float = Field(default=4, gt=0)
    # And/or when TTFT p95 exceeds this many seconds (None: queue depth only).
    ttft_p95_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self


class WorkerRole(Spec):
    """One worker role (agg, prefill or decode) of a model's graph."""

    node_pool: str | None = None
    gpus_per_worker: int = Field(default=1, ge=1)
    nodes: int = Field(default=1, ge=1)
    replicas: int = Field(default=1, ge=0)
    engine_config: str | None = None
    cpu: Quantity | None = None
    memory: Quantity | None = None
    shared_memory: Quantity = "8Gi"
    autoscaling: AutoscalingSpec | None = None


class FrontendSpec(Spec):
    replicas: int = Field(default=1, ge=1)
    # Requested and limited: the frontend's tokenizer, router state and request queues.
    memory: Quantity = "2Gi"


class SlotRole(Spec):
    """What one color may change for a role: how many workers and which engine config."""

    replicas: int | None = Field(default=None, ge=0)
    engine_config: str | None = None


class Slot(Spec):
    """One color of a model: what differs from the model's defaults in this slot."""

    image: ImageRef | None = None
    source: ModelSource | None = None
    agg: SlotRole | None = None
    prefill: SlotRole | None = None
    decode: SlotRole | None = None


class SloSpec(Spec):
    """Latency objectives the model's alerts fire on (p95 over 5 minutes)."""

    ttft_p95_seconds: float = Field(default=2.0, gt=0)
    itl_p95_seconds: float = Field(default=0.1, gt=0)


class PlanSpec(Spec):
    """What the GPU-memory plan assumes for a model (see `dynamo-infra plan`)."""

    # A model-catalog key (Hugging Face id or alias) or a Hugging Face config.json path relative
    # to the project root; by default the source's Hugging Face id, then the served model name.
    architecture: str | None = None
    input_tokens: int = Field(default=2048, ge=1)
    output_tokens: int = Field(default=512, ge=1)


class Model(Spec):
    name: str
    served_model_name: str | None = None
    namespace: str | None = None
    engine: Literal["trtllm", "mocker"] = "trtllm"
    multimodal: bool = False
    topology: Topology = Topology.AGG
    source: ModelSource
    image: ImageRef | None = None
    node_pool: str | None = None
    frontend: FrontendSpec = FrontendSpec()
    agg: WorkerRole | None = None
    prefill: WorkerRole | None = None
    decode: WorkerRole | None = None
    slots: dict[Color, Slot] = {"blue": Slot()}
    active: Color = "blue"
    weights: dict[Color, int] | None = None
    plan: PlanSpec = PlanSpec()
    slo: SloSpec = SloSpec()
    # Keep each of this model's graphs inside one domain (zone, block, rack, host, ...) of
    # platform.clusterTopology: Grove and KAI place the whole graph there, or wait.
    pack_domain: str | None = Field(default=None, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")

    @property
    def k8s_namespace(self) -> str:
        return self.namespace or self.name

    @property
    def display_name(self) -> str:
        """The name clients put in requests (OpenAI `model`)."""
        return self.served_model_name or self.source.hugging_face or self.name

    def role(self, role: str) -> WorkerRole:
        """The role's spec; roles the topology needs but the file omits take the defaults."""
        spec: WorkerRole | None = getattr(self, role)
        return spec if spec is not None else WorkerRole()

    def role_pool(self, role: str) -> str | None:
        return self.role(role).node_pool or self.node_pool

    def slot_role(self, role: str, color: Color) -> SlotRole:
        slot = self.slots.get(color) or Slot()
        override: SlotRole | None = getattr(slot, role)
        return override if override is not None else SlotRole()

    def engine_config(self, role: str, color: Color) -> str:
        """Engine config path for a role in a color; by default engine_configs/<model>/<role>.yaml."""
        return (
            self.slot_role(role, color).engine_config
            or self.role(role).engine_config
            or f"engine_configs/{self.name}/{role}.yaml"
        )

    def replicas(self, role: str, color: Color) -> int:
        override = self.slot_role(role, color).replicas
        return override if override is not None else self.role(role).replicas

    def peak_replicas(self, role: str, color: Color) -> int:
        """Workers the role may grow to: its autoscaling maximum, else its replicas."""
        scaling = self.role(role).autoscaling
        replicas = self.replicas(role, color)
        return max(replicas, scaling.max_replicas) if scaling and replicas else replicas

    def image_for(self, color: Color) -> str | None:
        slot = self.slots.get(color) or Slot()
        return slot.image or self.image

    def source_for(self, color: Color) -> ModelSource:
        slot = self.slots.get(color) or Slot()
        return slot.source or self.source

    def traffic_weights(self) -> dict[Color, int]:
        """Share of requests per defined slot: `weights` when set, else all to `active`."""
        return traffic_split(self.active, self.weights, self.slots)


# --- security & observability -------------------------------------------------------------


def _not_a_system_group(group: str) -> str:
    if group.startswith("system:"):
        raise ValueError("groups starting with system: are Kubernetes' own")
    return group


KubernetesGroup = Annotated[
    str, Field(min_length=1, pattern=r"^\S+$"), AfterValidator(_not_a_system_group)
]


class AccessGrant(Spec):
    """Who holds one access level in every model namespace."""

    # IAM roles or users, let in through EKS access entries (eks clusters only)
    principal_arns: list[IamPrincipalArn] = []
    # Kubernetes groups your identity provider already asserts (any cluster)
    groups: list[KubernetesGroup] = []


AccessLevel = Literal["deployer", "viewer", "promoter"]


class AccessSpec(Spec):
    """deployer: `pulumi up` of the workloads; viewer: read-only; promoter: move traffic."""

    deployer: AccessGrant = AccessGrant()
    viewer: AccessGrant = AccessGrant()
    promoter: AccessGrant = AccessGrant()

    def grants(self) -> dict[AccessLevel, AccessGrant]:
        """Each access level (its YAML key) and who holds it."""
        return {"deployer": self.deployer, "viewer": self.viewer, "promoter": self.promoter}


class SecuritySpec(Spec):
    pod_security: bool = True
    network_policies: bool = True
    # Where the gateway's proxies run when that is not the Gateway object's namespace
    # (traffic.gateway.namespace), e.g. Envoy Gateway's envoy-gateway-system.
    gateway_namespace: str | None = None
    # Namespaces whose pods may call the model frontends on 8000 besides the model's own and
    # the gateway's.
    client_namespaces: list[str] = []
    access: AccessSpec = AccessSpec()
    # ValidatingAdmissionPolicies that refuse privileged graph pods, host-path caches, external
    # Services and foreign Secrets from everyone but the stack's own identities.
    admission_policies: bool = True
    # Who else may bypass them (usernames as the API server sees them), e.g. an existing
    # cluster's deploy identity; on EKS the admin principals are exempt already.
    admission_exempt_usernames: list[str] = []


def url_port(url: str) -> int:
    """An http(s) URL's port, or its scheme's default."""
    address = urlsplit(url)
    return address.port or (443 if address.scheme == "https" else 80)


class ObservabilitySpec(Spec):
    enabled: bool = False
    install_kube_prometheus_stack: bool = False
    namespace: str = "monitoring"
    # Where the autoscaler (KEDA or the Prometheus adapter) reads frontend metrics; default: the
    # kube-prometheus-stack release's Prometheus. Both need scheme and host (the adapter's chart
    # takes them apart from port and path).
    prometheus_url: str | None = Field(
        default=None, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/\S*)?$"
    )

    @property
    def installs_grafana(self) -> bool:
        """The stack installs kube-prometheus-stack, whose Grafana needs the stack's password."""
        return self.enabled and self.install_kube_prometheus_stack

    def prometheus(self) -> str:
        return self.prometheus_url or (
            f"http://kube-prometheus-stack-prometheus.{self.namespace}.svc:9090"
        )


# --- traffic -------------------------------------------------------------------------------


class GatewayRef(Spec):
    """A Gateway API Gateway (installed outside this stack) that routes to the models."""

    name: str
    namespace: str
    # Each model's route answers `<model>.<domain>` only: a route without hostnames matches
    # every request, so the oldest would take all models' traffic (Gateway API precedence) and
    # any route with a narrower match, in any namespace, another tenant's prompts.
    domain: str = Field(
        max_length=190,  # leaves a 63-character model label within DNS's 253
        pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$",
    )


class TrafficSpec(Spec):
    """How clients reach the models beyond the stable in-cluster Service."""

    # With a gateway, each model also gets an HTTPRoute to both slots' frontends, weighted by
    # `weights` (canary) or 100/0 by `active`.
    gateway: GatewayRef | None = None
    # This environment's public DNS name (its gateway's load balancer), exported for a traffic
    # stack that shifts weight between whole environments.
    public_hostname: str | None = None


# --- the stack -----------------------------------------------------------------------------


class StackConfig(Spec):
    """Everything one environment stack says, validated and cross-checked (see infra.stack.checks)."""

    role: Literal["environment"] = "environment"
    cluster: ClusterSpec
    node_pools: list[NodePool] = []
    platform: PlatformSpec = PlatformSpec()
    model_cache: ModelCacheSpec = ModelCacheSpec()
    models: list[Model] = Field(min_length=1)
    security: SecuritySpec = SecuritySpec()
    observability: ObservabilitySpec = ObservabilitySpec()
    traffic: TrafficSpec = TrafficSpec()

    def pool(self, name: str) -> NodePool | None:
        return next((p for p in self.node_pools if p.name == name), None)

    def cache_pool(self, model: Model) -> NodePool | None:
        """The pool whose nodes hold the model's cache: that of its first role with a pool."""
        names = (model.role_pool(role) for role in model.topology.roles)
        return next((pool for name in names if name and (pool := self.pool(name))), None)


# Keys under `dynamo-trtllm:` that hold secrets; read only through Pulumi's secret config.
SECRET_KEYS = (
    "hfToken",
    "imagePullSecret",
    "s3AccessKeyId",
    "s3SecretAccessKey",
    "grafanaAdminPassword",
)


# --- traffic stacks ------------------------------------------------------------------------


class DnsSpec(Spec):
    """The public name a traffic stack owns: weighted Route 53 records, one per environment."""

    hosted_zone_id: str = Field(pattern=r"^Z[A-Z0-9]{1,32}$")
    record_name: str = Field(min_length=1, max_length=253)
    ttl: int = Field(default=60, ge=1, le=86400)


class TrafficStackConfig(Spec):
    """A stack that owns only the public entry and shifts it between whole environments.

    For upgrades slots cannot roll (Kubernetes, AMI or operator majors): each environment is a
    full stack with its own cluster, and this stack weights DNS between them.
    """

    role: Literal["traffic"]
    # color -> environment stack: "org/project/stack", or a stack name of this project
    environments: dict[Color, str] = Field(min_length=1)
    dns: DnsSpec
    active: Color = "blue"
    weights: dict[Color, int] | None = None

    @model_validator(mode="after")
    def _split_is_sound(self) -> TrafficStackConfig:
        if self.active not in self.environments:
            raise ValueError(f"active environment {self.active!r} is not under environments")
        if self.weights is not None:
            if set(self.weights) - set(self.environments):
                raise ValueError("weights name an environment that is not under environments")
            if sum(self.weights.values()) != 100 or min(self.weights.values()) < 0:
                raise ValueError("weights must be >= 0 and add up to 100")
        return self

    def traffic_weights(self) -> dict[Color, int]:
        return traffic_split(self.active, self.weights, self.environments)


AnyStackConfig = StackConfig | TrafficStackConfig
