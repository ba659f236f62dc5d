"""What every preflight check answers, and how an AWS answer or failure reads in one line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from infra.stack.config import EksCluster, StackConfig


@dataclass(frozen=True)
class PreflightCheck:
    name: str  # e.g. "instance offered: h100 p5.48xlarge in us-east-1a"
    ok: bool
    detail: str  # what was found / why it failed, one line
    path: str = (
        ""  # the stack-file YAML path to edit when it fails, e.g. "nodePools[0].instanceType"
    )


def aws_error(exc: Exception) -> str:
    """One line for an AWS failure: the error code and message, or the botocore error."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or "ClientError"
        message = error.get("Message") or str(exc)
        return " ".join(f"{code}: {message}".split())
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def eks_cluster(config: StackConfig) -> EksCluster:
    if not isinstance(config.cluster, EksCluster):
        raise ValueError("AWS preflight checks apply to EKS stacks only")
    return config.cluster


def pool_path(index: int, key: str) -> str:
    return f"nodePools[{index}].{key}"


def when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    return str(value) if value is not None else "an unknown time"
