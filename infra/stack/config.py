"""Typed stack configuration: what one `stacks/Pulumi.<env>.yaml` may say under `dynamo-trtllm:`.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored setting.
YAML keys are camelCase (Pulumi convention); Python attributes are snake_case.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

# The cluster and node-pool models live in infra.stack.cluster_config and pool_config; the ones
# named `as` themselves are re-exported for code that takes the whole stack schema from here.
from infra.stack.cluster_config import ClusterSpec, IamPrincipalArn
from infra.stack.cluster_config import EksCluster as EksCluster
from infra.stack.cluster_config import ExistingCluster as ExistingCluster
from infra.stack.eks_versions import DEFAULT_KUBERNETES_VERSION as DEFAULT_KUBERNETES_VERSION
from infra.stack.model_config import Color, Model, traffic_split
from infra.stack.platform_config import ModelCacheSpec, PlatformSpec
from infra.stack.pool_config import GpuFacts as GpuFacts
from infra.stack.pool_config import NodePool
from infra.stack.spec import Spec

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

    @property
    def uses_grove(self) -> bool:
        """A worker spans nodes or a model packs into a topology domain: the platform installs
        Grove and the KAI scheduler to place it."""
        return any(
            (model.topology.multinode and model.engine == "trtllm") or model.pack_domain
            for model in self.models
        )

    @property
    def autoscales(self) -> bool:
        """Some role autoscales: the stack installs platform.autoscaler's chart."""
        return any(m.role(r).autoscaling for m in self.models for r in m.topology.roles)


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
