"""The models a stack serves: topology, slots (blue/green), sources, roles, autoscaling and SLOs:
the `models` section of the stack schema."""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from infra.stack.spec import MAX_NODES, MAX_REPLICAS, Quantity, Spec

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

    # 0 scales to zero: no worker (on a Karpenter pool, no GPU node) while no request arrives;
    # the first request wakes the role and waits for its cold start. Needs platform.autoscaler
    # keda: an HPA does not go below 1.
    min_replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    # Scale out when the frontend holds more queued requests than this per worker.
    queued_requests_per_worker: float = Field(default=4, gt=0)
    # And/or when TTFT p95 exceeds this many seconds (None: queue depth only).
    ttft_p95_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self

    @property
    def scales_to_zero(self) -> bool:
        return self.min_replicas == 0


class WorkerRole(Spec):
    """One worker role (agg, prefill or decode) of a model's graph."""

    node_pool: str | None = None
    gpus_per_worker: int = Field(default=1, ge=1)
    nodes: int = Field(default=1, ge=1, le=MAX_NODES)
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    engine_config: str | None = Field(default=None, min_length=1)
    cpu: Quantity | None = None
    memory: Quantity | None = None
    shared_memory: Quantity = "8Gi"
    autoscaling: AutoscalingSpec | None = None


class FrontendSpec(Spec):
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    # Requested and limited: the frontend's tokenizer, router state and request queues.
    memory: Quantity = "2Gi"


class SlotRole(Spec):
    """What one color may change for a role: how many workers and which engine config."""

    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    engine_config: str | None = Field(default=None, min_length=1)


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
    served_model_name: str | None = Field(default=None, min_length=1)
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

    def autoscaled(self, role: str, color: Color) -> AutoscalingSpec | None:
        """The role's autoscaling in this slot, where its scaling adapter owns the replica count.

        A slot that sets the role's replicas pins them instead (the adapter off, the count
        sent): 0 keeps an idle slot idle, and a pinned 1 is the step back from 0 that the
        operator's webhook allows (with the adapter on, replicas may not change: 0 -> 1 is
        refused, 1 -> the adapter's 1 is not).
        """
        scaling = self.role(role).autoscaling
        pinned = self.slot_role(role, color).replicas is not None
        return scaling if scaling and not pinned and self.replicas(role, color) > 0 else None

    def peak_replicas(self, role: str, color: Color) -> int:
        """Workers the role may grow to: its autoscaling maximum, else its replicas."""
        scaling = self.autoscaled(role, color)
        replicas = self.replicas(role, color)
        return max(replicas, scaling.max_replicas) if scaling else replicas

    def image_for(self, color: Color) -> str | None:
        slot = self.slots.get(color) or Slot()
        return slot.image or self.image

    def source_for(self, color: Color) -> ModelSource:
        slot = self.slots.get(color) or Slot()
        return slot.source or self.source

    def traffic_weights(self) -> dict[Color, int]:
        """Share of requests per defined slot: `weights` when set, else all to `active`."""
        return traffic_split(self.active, self.weights, self.slots)
