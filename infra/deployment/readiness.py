"""How long `pulumi up` waits for a model's DynamoGraphDeployment to report Ready.

The Pulumi Kubernetes provider waits on `pulumi.com/waitFor: condition=Ready` (the DGD's Ready
condition, set by the operator once every service's pods are ready) for `pulumi.com/timeoutSeconds`.
A cold start is a GPU node joining, the runtime image pulled, the weights read and the engine
started; the timeout gives each its time, so `up` neither returns before the workers serve nor
gives up on a large model that is still loading.

The kubelet has a clock of its own: the startup probe the Dynamo operator gives every worker
container. A load that outlasts it is killed and starts over, forever, so a worker whose load
(with a margin) would outlast the operator's default gets a longer probe in its DGD.
"""

from __future__ import annotations

import math

from infra.deployment.resolved import ResolvedModel

# A GPU node joining its pool (~5 min) and the ~20 GB TensorRT-LLM runtime image pulled on it.
NODE_AND_IMAGE_MINUTES = 20
# Engine start once the weights are local: loading onto the GPUs, CUDA graphs, warm-up.
ENGINE_START_MINUTES = 10
# Weights read per minute: from the Hugging Face hub (~50 MB/s sustained per worker), and from
# S3 through the model cache (a cold cache reads S3 at a few hundred MB/s).
HUGGING_FACE_GIB_PER_MINUTE = 3.0
S3_CACHE_GIB_PER_MINUTE = 10.0
# A model whose size we cannot know (outside the catalog, no `plan --fetch`).
UNKNOWN_WEIGHTS_MINUTES = 60
GiB = 1024**3

# The startup probe the Dynamo operator gives the main container of every worker (component type
# worker, prefill or decode): GET /live on the container's named port `system` (9090) every 10 s,
# 5 s timeout, killed after 720 failures: 2 hours. ai-dynamo/dynamo
# deploy/operator/internal/dynamo/component_worker.go:69-79 (WorkerDefaults.GetBaseContainer;
# unchanged since #3417, 2025-10), the same at main df888f68 (pyproject 1.1.0, what our 1.1.0
# schemas come from) and at a68c04c7 (1.2.0); the port: internal/consts/consts.go:20-21.
OPERATOR_STARTUP_PATH = "/live"
OPERATOR_STARTUP_PORT = "system"
OPERATOR_STARTUP_PERIOD_SECONDS = 10
OPERATOR_STARTUP_TIMEOUT_SECONDS = 5
OPERATOR_STARTUP_FAILURE_THRESHOLD = 720
OPERATOR_STARTUP_SECONDS = OPERATOR_STARTUP_PERIOD_SECONDS * OPERATOR_STARTUP_FAILURE_THRESHOLD
# The probe budget a worker needs is its estimated load times this: the rates above are
# sustained-throughput guesses (a cold S3 prefix, a throttled hub), and a probe that fires a
# minute early throws the whole load away, where one that waits longer only delays the restart
# of a worker that truly hangs.
STARTUP_MARGIN = 1.5


def weights_gib(resolved: ResolvedModel) -> float | None:
    source = resolved.model.source
    if source.s3 is not None:
        return source.s3.size_gib
    if resolved.facts is not None:
        return resolved.facts.checkpoint_bytes / GiB
    return None


def ready_timeout_seconds(resolved: ResolvedModel) -> int:
    """Whole minutes: node and image, weights at the source's rate, engine start."""
    minutes: float = NODE_AND_IMAGE_MINUTES
    if resolved.model.engine == "trtllm":
        size = weights_gib(resolved)
        rate = (
            S3_CACHE_GIB_PER_MINUTE
            if resolved.model.source.s3 is not None
            else HUGGING_FACE_GIB_PER_MINUTE
        )
        minutes += ENGINE_START_MINUTES
        minutes += UNKNOWN_WEIGHTS_MINUTES if size is None else size / rate
    return 60 * math.ceil(minutes)


def worker_start_seconds(ready_timeout_seconds: int) -> int:
    """What of a cold start the startup probe times: the weights read and the engine start.
    Probes count from the container's start, and the node joining and the image pull come before
    it (Kubernetes, "Configure Liveness, Readiness and Startup Probes": initialDelaySeconds).
    From the ready timeout, the whole estimate: that is what the graph component is handed
    (GraphInputs.ready_timeout_seconds), so the two cannot disagree."""
    return max(0, ready_timeout_seconds - 60 * NODE_AND_IMAGE_MINUTES)


def startup_failure_threshold(ready_timeout_seconds: int) -> int | None:
    """The failureThreshold (at the operator's period) of a startup probe covering a worker's
    load with the margin, or None while the operator's default already covers it."""
    needed = STARTUP_MARGIN * worker_start_seconds(ready_timeout_seconds)
    if needed <= OPERATOR_STARTUP_SECONDS:
        return None
    return math.ceil(needed / OPERATOR_STARTUP_PERIOD_SECONDS)
