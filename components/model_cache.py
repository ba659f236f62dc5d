"""ModelCache: Fluid Dataset + AlluxioRuntime + DataLoad that cache a model's S3 weights on GPU nodes.

Fluid creates a PVC named after the Dataset; workers mount it and load from local NVMe.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.dgd import GPU_TAINT_KEY
from components.k8s_objects import custom_resource
from components.security import S3_KEY_ID_FIELD, S3_SECRET_KEY_FIELD
from infra.stack.derived_names import cache_name, cache_quota_gib
from infra.stack.model_config import S3Source
from infra.stack.platform_config import ModelCacheSpec

COMPONENT_TYPE = "dynamo-trtllm:cache:ModelCache"
FLUID_API_VERSION = "data.fluid.io/v1alpha1"


def cache_node_label(namespace: str, name: str) -> str:
    """The label Fluid puts on nodes that hold this cache."""
    return f"fluid.io/s-alluxio-{namespace}-{name}"


@dataclass(frozen=True)
class CacheTarget:
    namespace: str
    color: str
    source: S3Source
    node_selector: dict[str, str]
    tier_path: str  # the SSD tier's directory on the cache's nodes
    # A Secret with static S3 keys; None: the pods' IAM role (IRSA) or node credentials.
    credentials_secret: str | None = None


def _metadata(target: CacheTarget) -> dict:
    return {
        "name": cache_name(target.color),
        "namespace": target.namespace,
        "labels": {"app.kubernetes.io/managed-by": "pulumi"},
    }


def build_dataset(target: CacheTarget) -> dict:
    mount: dict = {
        "name": "weights",
        "mountPoint": target.source.uri,
        "path": "/",
        "readOnly": True,
    }
    if target.source.region:
        mount["options"] = {"alluxio.underfs.s3.endpoint.region": target.source.region}
    if target.credentials_secret:
        # Keys only by reference: Fluid reads them from the Secret, never from plain options.
        mount["encryptOptions"] = [
            {
                "name": field,
                "valueFrom": {"secretKeyRef": {"name": target.credentials_secret, "key": field}},
            }
            for field in (S3_KEY_ID_FIELD, S3_SECRET_KEY_FIELD)
        ]
    return {
        "apiVersion": FLUID_API_VERSION,
        "kind": "Dataset",
        "metadata": _metadata(target),
        "spec": {
            "accessModes": ["ReadOnlyMany"],
            "mounts": [mount],
            "placement": "Exclusive",
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": key, "operator": "In", "values": [value]}
                                for key, value in sorted(target.node_selector.items())
                            ]
                        }
                    ]
                }
            },
            # The cache workers sit on the tainted GPU nodes, next to the model's workers.
            "tolerations": [{"key": GPU_TAINT_KEY, "operator": "Exists", "effect": "NoSchedule"}],
        },
    }


def build_runtime(target: CacheTarget, spec: ModelCacheSpec) -> dict:
    return {
        "apiVersion": FLUID_API_VERSION,
        "kind": "AlluxioRuntime",
        "metadata": _metadata(target),
        "spec": {
            "replicas": 1,
            "tieredstore": {
                "levels": [
                    {
                        "mediumtype": spec.medium,
                        "path": "/dev/shm" if spec.medium == "MEM" else target.tier_path,
                        "quota": f"{cache_quota_gib(target.source.size_gib, spec.headroom_percent)}Gi",
                        "high": str(spec.high_watermark),
                        "low": str(spec.low_watermark),
                    }
                ]
            },
        },
    }


def build_dataload(target: CacheTarget, spec: ModelCacheSpec) -> dict:
    load: dict = {
        "dataset": {"name": cache_name(target.color), "namespace": target.namespace},
        "loadMetadata": True,
        "target": [{"path": "/", "replicas": 1}],
        "policy": spec.prewarm,
    }
    if spec.prewarm == "Cron":
        load["schedule"] = spec.prewarm_schedule
    metadata = _metadata(target)
    metadata["name"] = f"{metadata['name']}-prewarm"
    return {"apiVersion": FLUID_API_VERSION, "kind": "DataLoad", "metadata": metadata, "spec": load}


@dataclass(frozen=True)
class ModelCacheArgs:
    target: CacheTarget
    spec: ModelCacheSpec
    depends_on: list[pulumi.Resource]


class ModelCache(pulumi.ComponentResource):
    pvc_name: str
    node_label: str
    dataset: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: ModelCacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        target = args.target
        manifests = [
            build_dataset(target),
            build_runtime(target, args.spec),
            build_dataload(target, args.spec),
        ]
        created: list[k8s.apiextensions.CustomResource] = []
        for manifest in manifests:
            created.append(
                custom_resource(
                    f"{name}-{manifest['kind'].lower()}",
                    manifest,
                    # Runtime after Dataset, DataLoad after both: Fluid binds them in this order.
                    pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *created]),
                )
            )
        self.dataset = created[0]
        self.pvc_name = cache_name(target.color)
        self.node_label = cache_node_label(target.namespace, self.pvc_name)
        self.register_outputs({"pvcName": self.pvc_name, "nodeLabel": self.node_label})
