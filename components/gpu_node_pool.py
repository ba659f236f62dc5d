"""GpuNodePool: one EKS managed node group of GPU nodes, tainted so only GPU workers land there.

Every pool gets a launch template: IMDSv2, the root volume, tags, NVMe striping, capacity blocks
and EFA all live there rather than on the node group.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.dgd import GPU_TAINT_KEY, GPU_TAINT_VALUE
from components.node_launch_template import (
    encrypted_root_volume,
    imdsv2_metadata_options,
    tag_specifications,
)
from infra.stack.config import NodePool
from infra.stack.eks_versions import DEFAULT_AL2023_RELEASES
from infra.stack.instances import GpuInstance
from infra.stack.names import NODE_POOL_LABEL

COMPONENT_TYPE = "dynamo-trtllm:nodes:GpuNodePool"
AMI_TYPES = {
    "al2023-nvidia": "AL2023_x86_64_NVIDIA",
    "bottlerocket-nvidia": "BOTTLEROCKET_x86_64_NVIDIA",
}
# Where each AMI keeps images and pod data: AL2023 on its root volume, Bottlerocket on a second.
DATA_VOLUME_DEVICE = {"al2023-nvidia": "/dev/xvda", "bottlerocket-nvidia": "/dev/xvdb"}
CAPACITY_TYPES = {"on-demand": "ON_DEMAND", "spot": "SPOT", "capacity-block": "CAPACITY_BLOCK"}
CAPACITY_BLOCK_MARKET = "capacity-block"
# A full Capacity Block has no spare instance for EKS to launch a node's successor into first:
# MINIMAL terminates old nodes before launching new ones (docs.aws.amazon.com/eks/latest/
# APIReference/API_NodegroupUpdateConfig.html, updateStrategy).
UPDATE_STRATEGIES = {True: "MINIMAL", False: "DEFAULT"}
GPU_PRODUCT_LABEL = "dynamo-trtllm.io/gpu-product"
# Our own key: kubelet owns node.kubernetes.io/instance-type, and EKS refuses to set it.
INSTANCE_TYPE_LABEL = "dynamo-trtllm.io/instance-type"
MIME_BOUNDARY = "DYNAMO-TRTLLM"
# The NVIDIA device plugin chart (0.20.0 values `affinity`) runs its device plugin and GPU feature
# discovery only on nodes labelled so, or labelled by NFD; its NFD worker tolerates the GPU taint
# only with the value `present`, and ours is `true`, so NFD never labels a GPU node of ours.
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"


def pool_labels(pool: NodePool, gpus: GpuInstance) -> dict[str, str]:
    """The labels every node of the pool carries; the instance type only where it is one."""
    one_type = {} if pool.alternative_instance_types else {INSTANCE_TYPE_LABEL: pool.instance_type}
    return {
        **pool.labels,
        NODE_POOL_LABEL: pool.name,
        GPU_PRODUCT_LABEL: gpus.gpu_product,
        GPU_PRESENT_LABEL: "true",
        **one_type,
    }


def raid0_user_data() -> str:
    """nodeadm NodeConfig (AL2023) striping the instance-store NVMe disks into one RAID0 volume.

    EKS merges this MIME part with its own bootstrap for managed node groups.
    """
    text = "\n".join(
        [
            "MIME-Version: 1.0",
            f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"',
            "",
            f"--{MIME_BOUNDARY}",
            "Content-Type: application/node.eks.aws",
            "",
            "apiVersion: node.eks.aws/v1alpha1",
            "kind: NodeConfig",
            "spec:",
            "  instance:",
            "    localStorage:",
            "      strategy: RAID0",
            "",
            f"--{MIME_BOUNDARY}--",
            "",
        ]
    )
    return base64.b64encode(text.encode()).decode()


def efa_network_interfaces(
    count: int, cluster_security_group: pulumi.Input[str], efa_security_group: pulumi.Input[str]
) -> list[dict]:
    """One interface per network card, each its card's device 0. Card 0's is the primary, EFA
    with an IP address and the cluster's security group; the others are EFA-only (RDMA, no IP
    address, so they take none of the subnet's) in the EFA group alone: "Maximize network
    bandwidth on Amazon EC2 instances with multiple network cards" (docs.aws.amazon.com/AWSEC2/
    latest/UserGuide/efa-acc-inst-types.html)."""
    return [
        {
            "network_card_index": card,
            "device_index": 0,
            "interface_type": "efa" if card == 0 else "efa-only",
            "delete_on_termination": "true",
            "security_groups": [cluster_security_group, efa_security_group]
            if card == 0
            else [efa_security_group],
        }
        for card in range(count)
    ]


def own_placement_group(pool: NodePool) -> bool:
    """An EFA pool gets a cluster placement group of its own, unless its capacity reservation
    names one (its instances launch nowhere else) or it is a Capacity Block: a group made later
    holds none of the block's instances, so EC2 would launch none (terraform-aws-eks PR #3730,
    eksctl #7949); a block's instances are colocated already."""
    return bool(pool.efa) and not pool.capacity_block and not pool.reservation_placement_group


def rolls_without_spare_capacity(resource_type: str, inputs: Mapping[str, Any]) -> bool:
    """Whether a rendered node group or launch template belongs to a capacity-block pool: a
    change to it replaces nodes that have no spare instance to move to (for `diff`)."""
    if resource_type == "aws:eks/nodeGroup:NodeGroup":
        return inputs.get("capacityType") == CAPACITY_TYPES["capacity-block"]
    if resource_type == "aws:ec2/launchTemplate:LaunchTemplate":
        market = inputs.get("instanceMarketOptions") or {}
        return market.get("marketType") == CAPACITY_BLOCK_MARKET
    return False


def ami_release(pool: NodePool, kubernetes_version: str) -> str | None:
    """The pinned AMI release: the pool's, else (AL2023) the default for the version."""
    if pool.ami_release_version or pool.ami_type != "al2023-nvidia":
        return pool.ami_release_version
    return DEFAULT_AL2023_RELEASES[kubernetes_version]


def efa_self_rules() -> list[dict]:
    """EFA's OS-bypass traffic needs every protocol open between the pool's own interfaces."""
    return [{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True}]


def efa_security_group(
    name: str, pool: NodePool, vpc_id: pulumi.Input[str], child: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    return aws.ec2.SecurityGroup(
        f"{name}-efa",
        description=f"EFA traffic between the nodes of GPU pool {pool.name}",
        vpc_id=vpc_id,
        ingress=[aws.ec2.SecurityGroupIngressArgs(**r) for r in efa_self_rules()],
        egress=[aws.ec2.SecurityGroupEgressArgs(**r) for r in efa_self_rules()],
        opts=child,
    )


def placement_group_name(
    name: str, pool: NodePool, child: pulumi.ResourceOptions
) -> pulumi.Input[str] | None:
    """The pool's placement group: its own cluster group (see own_placement_group), its
    reservation's, or none."""
    if own_placement_group(pool):
        return aws.ec2.PlacementGroup(f"{name}-placement", strategy="cluster", opts=child).name
    return pool.reservation_placement_group


@dataclass(frozen=True)
class GpuNodePoolArgs:
    pool: NodePool
    gpus: GpuInstance
    kubernetes_version: str
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    vpc_id: pulumi.Input[str] | None = None
    cluster_security_group_id: pulumi.Input[str] | None = None
    # Tags for what the nodes' instances create (the provider tags everything else).
    tags: Mapping[str, str] = field(default_factory=dict)
    # The node role's policies and the networking add-ons: no node joins before them.
    depends_on: Sequence[pulumi.Resource] = ()


class PoolComponent(pulumi.ComponentResource):
    """A GPU pool of either provisioner, as the composition root reads it."""

    nodes: pulumi.Resource  # what provides the pool's nodes (node group or Karpenter NodePool)
    instance_type: str
    gpus_per_node: int
    max_gpus: int

    def _publish(self, pool: NodePool, gpus: GpuInstance, nodes: pulumi.Resource) -> None:
        self.nodes = nodes
        self.instance_type = pool.instance_type
        self.gpus_per_node = gpus.gpu_count
        self.max_gpus = pool.max_size * gpus.gpu_count
        self.register_outputs(
            {
                "instanceType": self.instance_type,
                "gpusPerNode": self.gpus_per_node,
                "maxGpus": self.max_gpus,
            }
        )


class GpuNodePool(PoolComponent):
    node_group: aws.eks.NodeGroup

    def __init__(
        self, name: str, args: GpuNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        pool = args.pool
        child = pulumi.ResourceOptions(parent=self)
        template = aws.ec2.LaunchTemplate(
            f"{name}-template",
            **self._template_args(name, args, child),
            opts=child,
        )
        ignore = ["scalingConfig.desiredSize"] if pool.autoscaled else []
        self.node_group = aws.eks.NodeGroup(
            name,
            cluster_name=args.cluster_name,
            node_group_name=pool.name,
            node_role_arn=args.node_role_arn,
            subnet_ids=args.subnet_ids,
            instance_types=[pool.instance_type],
            ami_type=AMI_TYPES[pool.ami_type],
            release_version=ami_release(pool, args.kubernetes_version),
            capacity_type=CAPACITY_TYPES[pool.capacity_type],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size,
                max_size=pool.max_size,
                desired_size=pool.desired_size,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(
                max_unavailable=pool.max_unavailable,
                update_strategy=UPDATE_STRATEGIES[pool.capacity_block],
            ),
            node_repair_config=aws.eks.NodeGroupNodeRepairConfigArgs(enabled=pool.auto_repair),
            labels=pool_labels(pool, args.gpus),
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self, ignore_changes=ignore, depends_on=list(args.depends_on)
            ),
        )
        self._publish(pool, args.gpus, self.node_group)

    def _template_args(
        self, name: str, args: GpuNodePoolArgs, child: pulumi.ResourceOptions
    ) -> dict:
        pool, gpus = args.pool, args.gpus
        template: dict = {
            "metadata_options": imdsv2_metadata_options(),
            "block_device_mappings": [
                encrypted_root_volume(DATA_VOLUME_DEVICE[pool.ami_type], pool.root_volume_gib)
            ],
            "tag_specifications": tag_specifications({**args.tags, NODE_POOL_LABEL: pool.name}),
        }
        if pool.local_nvme_raid0 and gpus.local_nvme and pool.ami_type == "al2023-nvidia":
            template["user_data"] = raid0_user_data()
        if pool.capacity_block:
            template["instance_market_options"] = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(
                market_type=CAPACITY_BLOCK_MARKET
            )
        if pool.capacity_reservation_id:
            # A capacity block's, or an On-Demand Capacity Reservation the pool launches into.
            template["capacity_reservation_specification"] = (
                aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                    capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                        capacity_reservation_id=pool.capacity_reservation_id
                    )
                )
            )
        if pool.efa:
            assert args.vpc_id is not None and args.cluster_security_group_id is not None
            efa_group = efa_security_group(name, pool, args.vpc_id, child)
            template["network_interfaces"] = [
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(**nic)
                for nic in efa_network_interfaces(
                    gpus.efa_interfaces, args.cluster_security_group_id, efa_group.id
                )
            ]
        if (group := placement_group_name(name, pool, child)) is not None:
            template["placement"] = aws.ec2.LaunchTemplatePlacementArgs(group_name=group)
        return template
