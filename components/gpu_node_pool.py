"""GpuNodePool: one EKS managed node group of GPU nodes, tainted so only GPU workers land there."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.dgd import GPU_TAINT_KEY, NODE_POOL_LABEL
from infra.config import NodePool
from infra.instances import GpuInstance

COMPONENT_TYPE = "dynamo-trtllm:nodes:GpuNodePool"
AMI_TYPES = {
    "al2023-nvidia": "AL2023_x86_64_NVIDIA",
    "bottlerocket-nvidia": "BOTTLEROCKET_x86_64_NVIDIA",
}
CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT", "capacity-block": "CAPACITY_BLOCK"}
GPU_PRODUCT_LABEL = "dynamo-trtllm.io/gpu-product"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


def pool_labels(pool: NodePool, gpus: GpuInstance) -> dict[str, str]:
    return {
        **pool.labels,
        NODE_POOL_LABEL: pool.name,
        GPU_PRODUCT_LABEL: gpus.gpu_product,
    }


def pool_node_selector(pool: NodePool) -> dict[str, str]:
    """How workers find this pool's nodes: our pool label, or what an existing cluster uses."""
    return dict(pool.node_selector) if pool.node_selector else {NODE_POOL_LABEL: pool.name}


@dataclass(frozen=True)
class GpuNodePoolArgs:
    pool: NodePool
    gpus: GpuInstance
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[list[str]]


class GpuNodePool(pulumi.ComponentResource):
    node_group: aws.eks.NodeGroup
    instance_type: str
    gpus_per_node: int
    max_gpus: int

    def __init__(
        self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        pool = args.pool
        ignore = ["scalingConfig.desiredSize"] if pool.autoscaled else []
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_group_name=pool.name,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            instance_types=[pool.instance_type],
            ami_type=AMI_TYPES[pool.ami_type],
            release_version=pool.ami_release_version,
            capacity_type=CAPACITY_TYPES[pool.capacity_type],
            disk_size=pool.root_volume_gib,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size,
                max_size=pool.max_size,
                desired_size=pool.desired_size,
            ),
            labels=pool_labels(pool, args.gpus),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=GPU_TAINT_KEY, value="true", effect="NO_SCHEDULE")
            ],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=ignore),
        )
        self.instance_type = pool.instance_type
        self.gpus_per_node = args.gpus.gpu_count
        self.max_gpus = pool.max_size * args.gpus.gpu_count
        self.register_outputs(
            {
                "instanceType": self.instance_type,
                "gpusPerNode": self.gpus_per_node,
                "maxGpus": self.max_gpus,
            }
        )
