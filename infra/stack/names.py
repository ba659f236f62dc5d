"""Kubernetes naming rules, checked before anything is created."""

from __future__ import annotations

import math
import re

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Kubernetes resource.Quantity, e.g. "8Gi", "500m", "1.5", "1e3".
QUANTITY_PATTERN = (
    r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
# Namespaces the platform installs into, besides platform.namespace and observability.namespace.
GPU_NAMESPACE = "gpu-system"
FLUID_NAMESPACE = "fluid-system"
KEDA_NAMESPACE = "keda"
# Namespaces Kubernetes itself runs: never a model's.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def dns1123_label_problem(name: str) -> str | None:
    """Why `name` is not a valid DNS-1123 label (Namespace, Service names), or None."""
    if len(name) > DNS1123_LABEL_MAX:
        return f"{name!r} is {len(name)} characters; Kubernetes allows at most {DNS1123_LABEL_MAX}"
    if not _DNS1123_LABEL.match(name):
        return (
            f"{name!r} is not a valid Kubernetes name: use lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def dns1123_subdomain_problem(name: str) -> str | None:
    if len(name) > DNS1123_SUBDOMAIN_MAX:
        return (
            f"{name!r} is {len(name)} characters; Kubernetes allows at most {DNS1123_SUBDOMAIN_MAX}"
        )
    if not _DNS1123_SUBDOMAIN.match(name):
        return f"{name!r} is not a valid DNS-1123 subdomain"
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > DNS1123_LABEL_MAX or not _LABEL_VALUE.match(value):
        return f"{value!r} is not a valid Kubernetes label value (at most 63 of [A-Za-z0-9-_.])"
    return None


# The label on our GPU pools' nodes that workers select them by.
NODE_POOL_LABEL = "dynamo-trtllm.io/node-pool"

_QUANTITY_MIB = {
    "": 1 / 2**20, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024**2, "Pi": 1024**3,
    "Ei": 1024**4, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20, "T": 1e12 / 2**20,
    "P": 1e15 / 2**20, "E": 1e18 / 2**20, "m": 1e-3 / 2**20, "u": 1e-6 / 2**20, "n": 1e-9 / 2**20,
}  # fmt: skip


def parse_quantity_mib(quantity: str) -> int:
    """A Kubernetes memory quantity (8Gi, 512Mi, 1G, 1073741824) in whole MiB, rounded up."""
    match = re.fullmatch(
        r"\+?([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)([KMGTPE]i|[kMGTPEmun])?", quantity.strip()
    )
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return math.ceil(float(match.group(1)) * _QUANTITY_MIB[match.group(2) or ""])


# The secret config key of Grafana's admin password, and the Secret the stack keeps it in.
GRAFANA_ADMIN_KEY = "grafanaAdminPassword"
GRAFANA_ADMIN_SECRET = "grafana-admin"
