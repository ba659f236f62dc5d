"""Small config builders for unit tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from infra.deployment.checked import parse_stack_config
from infra.stack.config import StackConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "cluster": {
        "mode": "eks",
        "name": "test",
        "region": "us-west-2",
        "vpc": {"availabilityZones": ["us-west-2a", "us-west-2b"]},
        "endpointAccess": {"mode": "public-and-private", "publicAccessCidrs": ["203.0.113.0/24"]},
        "adminPrincipalArns": ["arn:aws:iam::123456789012:role/deploy"],
    },
    "nodePools": [
        {"name": "l4", "instanceType": "g6.xlarge", "minSize": 0, "desiredSize": 1, "maxSize": 2},
        {
            "name": "h100",
            "instanceType": "p5.48xlarge",
            "minSize": 0,
            "desiredSize": 2,
            "maxSize": 4,
        },
    ],
    "models": [
        {
            "name": "qwen3-0-6b",
            "source": {"huggingFace": "Qwen/Qwen3-0.6B"},
            "nodePool": "l4",
            "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0",
        },
        {
            "name": "gpt-oss-120b",
            "source": {"huggingFace": "openai/gpt-oss-120b"},
            "topology": "disagg",
            "nodePool": "h100",
            "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0",
            "prefill": {"gpusPerWorker": 4},
            "decode": {"gpusPerWorker": 4},
        },
    ],
}


def values(**changes: Any) -> dict[str, Any]:
    result = copy.deepcopy(BASE)
    result.update(changes)
    return result


def parse(raw: dict[str, Any], root: Path = PROJECT_ROOT) -> StackConfig:
    return parse_stack_config(raw, "stacks/Pulumi.test.yaml", root)
