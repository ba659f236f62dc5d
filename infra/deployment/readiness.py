"""How long `pulumi up` waits for a model's DynamoGraphDeployment to report Ready.

The Pulumi Kubernetes provider waits on `pulumi.com/waitFor: condition=Ready` (the DGD's Ready
condition, set by the operator once every service's pods are ready) for `pulumi.com/timeoutSeconds`.
A cold start is a GPU node joining, the runtime image pulled, the weights read and the engine
started; the timeout gives each its time, so `up` neither returns before the workers serve nor
gives up on a large model that is still loading.
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
