"""KarpenterNodePool: a GPU pool whose nodes Karpenter starts when workers wait for them.

One Karpenter NodePool (what may be launched, how many GPUs at most, when nodes may go) and one
EC2NodeClass (how: AMI, subnets, security groups, disks, metadata, reservation, placement) per
pool, carrying what a managed pool's node group and launch template carry. Field names and
limits: karpenter.sh_nodepools.yaml and karpenter.k8s.aws_ec2nodeclasses.yaml of Karpenter
v1.14.1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.dgd import GPU_TAINT_KEY, GPU_TAINT_VALUE
from components.gpu_node_pool import (
    DATA_VOLUME_DEVICE,
    PoolComponent,
    ami_release,
    efa_security_group,
    placement_group_name,
    pool_labels,
)
from components.k8s_objects import custom_resource
from components.node_launch_template import IMDS_HOP_LIMIT
from infra.stack.instances import GpuInstance
from infra.stack.names import NODE_POOL_LABEL
from infra.stack.pool_config import NodePool

COMPONENT_TYPE = "dynamo-trtllm:nodes:KarpenterNodePool"
NODE_POOL_API = "karpenter.sh/v1"
NODE_CLASS_API = "karpenter.k8s.aws/v1"
NODE_CLASS_GROUP = "karpenter.k8s.aws"
GPU_LIMIT_RESOURCE = "nvidia.com/gpu"
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
# Karpenter launches into a selected reservation as capacity type `reserved`; an on-demand pool
# with a reservation falls back to plain on-demand once the reservation is full.
CAPACITY_TYPES = {
    ("on-demand", False): ["on-demand"],
    ("on-demand", True): ["reserved", "on-demand"],
    ("spot", False): ["spot"],
    ("capacity-block", True): ["reserved"],
}
AMI_ALIAS_FAMILY = {"al2023-nvidia": "al2023", "bottlerocket-nvidia": "bottlerocket"}


def drifts_nodes(kind: str | None, paths: Sequence[str]) -> bool:
    """Whether a change makes Karpenter replace the pool's running nodes (drift): a changed
    EC2NodeClass spec, or a NodePool's node template; its limits and disruption settings do not
    (Karpenter concepts/disruption.md, "Drift")."""
    if kind == "EC2NodeClass":
        return any(path.startswith("spec.") for path in paths)
    if kind == "NodePool":
        return any(path.startswith("spec.template.") for path in paths)
    return False


def ami_alias(pool: NodePool, kubernetes_version: str) -> str:
    """The pinned EKS-optimized AMI as Karpenter names it: al2023@v<date> for AL2023 release
    <k8s>.<patch>-<date>, bottlerocket@v<os version> for Bottlerocket <os version>-<commit>.
    Karpenter picks the NVIDIA variant itself for GPU instance types."""
    family = AMI_ALIAS_FAMILY[pool.ami_type]
    release = ami_release(pool, kubernetes_version)
    if release is None:
        return f"{family}@latest"
    if family == "al2023":
        return f"{family}@v{release.rsplit('-', 1)[1]}"
    return f"{family}@v{release.split('-', 1)[0]}"


def capacity_types(pool: NodePool) -> list[str]:
    return CAPACITY_TYPES[(pool.capacity_type, pool.capacity_reservation_id is not None)]


def build_ec2_node_class(
    pool: NodePool,
    gpus: GpuInstance,
    kubernetes_version: str,
    node_role: str,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    placement_group: str | None,
    tags: Mapping[str, str],
) -> dict:
    volume: dict[str, Any] = {
        "deviceName": DATA_VOLUME_DEVICE[pool.ami_type],
        "ebs": {
            "volumeSize": f"{pool.root_volume_gib}Gi",
            "volumeType": "gp3",
            "encrypted": True,
            "deleteOnTermination": True,
        },
    }
    if pool.ami_type == "al2023-nvidia":
        volume["rootVolume"] = True  # AL2023 keeps images and pod data on its root volume
    spec: dict = {
        "role": node_role,
        "amiSelectorTerms": [{"alias": ami_alias(pool, kubernetes_version)}],
        "subnetSelectorTerms": [{"id": subnet} for subnet in subnet_ids],
        "securityGroupSelectorTerms": [{"id": group} for group in security_group_ids],
        # IMDSv2 with hop limit 1, as on every node of ours (node_launch_template.py).
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": IMDS_HOP_LIMIT,
            "httpTokens": "required",
        },
        "blockDeviceMappings": [volume],
        "tags": {**tags, NODE_POOL_LABEL: pool.name},
    }
    if pool.local_nvme_raid0 and gpus.local_nvme and pool.ami_type == "al2023-nvidia":
        # nodeadm stripes the instance-store disks and mounts them at /mnt/k8s-disks/0, as the
        # managed pools' NodeConfig does; the model cache's SSD tier lives there.
        spec["instanceStorePolicy"] = "RAID0"
    if pool.capacity_reservation_id:
        spec["capacityReservationSelectorTerms"] = [{"id": pool.capacity_reservation_id}]
    if placement_group is not None:
        spec["placementGroupSelector"] = {"name": placement_group}
    return {**node_class_header(pool), "spec": spec}


def node_class_header(pool: NodePool) -> dict:
    return {"apiVersion": NODE_CLASS_API, "kind": "EC2NodeClass", "metadata": {"name": pool.name}}


def build_node_pool(pool: NodePool, gpus: GpuInstance) -> dict:
    """What Karpenter may launch for the pool, up to maxSize nodes' GPUs, and when it may take a
    node away: only once empty (a moved worker reloads its weights), within the budget."""
    disruption = pool.karpenter
    requirements = [
        {
            "key": "node.kubernetes.io/instance-type",
            "operator": "In",
            "values": pool.instance_types,
        },
        {"key": CAPACITY_TYPE_LABEL, "operator": "In", "values": capacity_types(pool)},
    ]
    if pool.availability_zone:
        requirements.append(
            {
                "key": "topology.kubernetes.io/zone",
                "operator": "In",
                "values": [pool.availability_zone],
            }
        )
    template_spec: dict = {
        "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": pool.name},
        "taints": [{"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": "NoSchedule"}],
        "requirements": requirements,
        "expireAfter": disruption.expire_after,
    }
    if disruption.termination_grace_period is not None:
        template_spec["terminationGracePeriod"] = disruption.termination_grace_period
    return {
        "apiVersion": NODE_POOL_API,
        "kind": "NodePool",
        "metadata": {"name": pool.name},
        "spec": {
            "template": {"metadata": {"labels": pool_labels(pool, gpus)}, "spec": template_spec},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": disruption.consolidate_after,
                "budgets": [{"nodes": disruption.max_disrupted_nodes}],
            },
            "limits": {GPU_LIMIT_RESOURCE: str(pool.max_size * gpus.gpu_count)},
        },
    }


@dataclass(frozen=True)
class KarpenterNodePoolArgs:
    pool: NodePool
    gpus: GpuInstance
    kubernetes_version: str
    node_role_name: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    vpc_id: pulumi.Input[str]
    cluster_security_group_id: pulumi.Input[str]
    tags: Mapping[str, str] = field(default_factory=dict)
    # The Karpenter controller and its CRDs.
    depends_on: Sequence[pulumi.Resource] = ()


class KarpenterNodePool(PoolComponent):
    node_pool: pulumi.CustomResource

    def __init__(
        self, name: str, args: KarpenterNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        pool, gpus = args.pool, args.gpus
        child = pulumi.ResourceOptions(parent=self)
        # An EFA pool: a cluster placement group and the EFA security group, as a managed pool
        # has. Karpenter attaches the instance's EFA interfaces itself when the pods it launches
        # for ask for vpc.amazonaws.com/efa (karpenter-provider-aws, launch template efaCount).
        placement = placement_group_name(name, pool, child)
        groups: list[pulumi.Input[str]] = [args.cluster_security_group_id]
        if pool.efa:
            groups.append(efa_security_group(name, pool, args.vpc_id, child).id)
        in_cluster = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        node_class = pulumi.Output.all(
            args.node_role_name,
            pulumi.Output.from_input(args.subnet_ids),
            placement,
            *groups,
        ).apply(
            lambda v: build_ec2_node_class(
                pool, gpus, args.kubernetes_version, v[0], v[1], v[3:], v[2], args.tags
            )
        )
        node_class_resource = custom_resource(
            f"{name}-class",
            {**node_class_header(pool), "spec": node_class.apply(lambda m: m["spec"])},
            in_cluster,
        )
        manifest = build_node_pool(pool, gpus)
        self.node_pool = custom_resource(
            name,
            manifest,
            pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[node_class_resource])
            ),
        )
        self._publish(pool, gpus, self.node_pool)
