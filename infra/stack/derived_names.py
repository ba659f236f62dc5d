"""Names derived from a model: its graphs, their service keys, and what the operator makes of them.

The checks, the components and the live operations all need the same names, so they live in
one place below all of them.
"""

from __future__ import annotations

import math

from infra.stack.model_config import Color, Model

FRONTEND_SERVICE = "Frontend"
# Service keys of the worker roles, as in Dynamo's examples: TRTLLMWorker for aggregated graphs,
# and the short prefill/decode of its multinode example, because the operator's webhook (with
# Grove) limits DGD name + key (+ key + "-ldr" for multinode) to 45 characters. Not a bare
# "worker": Fluid's cache pods are named <runtime>-worker-<n>, and the worker alerts match
# pods by key.
WORKER_SERVICES = {"agg": "TRTLLMWorker", "prefill": "prefill", "decode": "decode"}


def dgd_name(model: Model, color: Color) -> str:
    return f"{model.name}-{color}"


def engine_config_map_name(model: Model, color: Color) -> str:
    return f"{dgd_name(model, color)}-engine-config"


def service_keys(model: Model) -> list[str]:
    return [FRONTEND_SERVICE, *(WORKER_SERVICES[r] for r in model.topology.roles)]


def dgd_child_names(model: Model, color: Color) -> list[str]:
    """Names the operator derives (Deployments, Services, PodCliques): must be DNS labels."""
    return [f"{dgd_name(model, color)}-{key.lower()}" for key in service_keys(model)]


def frontend_service_name(model: Model, color: Color) -> str:
    return f"{dgd_name(model, color)}-{FRONTEND_SERVICE.lower()}"


def cache_name(color: str) -> str:
    """Dataset (and so PVC) name inside a model's namespace: short, for Fluid's label budget."""
    return f"weights-{color}"


def cache_quota_gib(size_gib: float, headroom_percent: int) -> int:
    return math.ceil(size_gib * (100 + headroom_percent) / 100)
