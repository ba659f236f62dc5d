"""What the cluster hands Kubernetes clients: a kubeconfig and the default StorageClass."""

from __future__ import annotations

import json
from collections.abc import Mapping

DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def gp3_storage_class(tags: Mapping[str, str], retain: bool) -> dict:
    """The cluster's default StorageClass: encrypted gp3 volumes, bound where the pod lands.

    The volumes are the EBS CSI driver's, created outside Pulumi: they carry the stack's tags
    through the driver's `tagSpecification_<n>` parameters (cost attribution), and a protected
    stack keeps them when their claim goes (NATS JetStream, Prometheus data).
    """
    parameters = {"type": "gp3", "encrypted": "true"}
    parameters |= {
        f"tagSpecification_{number}": f"{key}={value}"
        for number, (key, value) in enumerate(sorted(tags.items()), start=1)
    }
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gp3",
            "annotations": {DEFAULT_STORAGE_CLASS_ANNOTATION: "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": parameters,
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Retain" if retain else "Delete",
    }


def build_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates through `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": "aws"}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                            ],  # fmt: skip
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )
