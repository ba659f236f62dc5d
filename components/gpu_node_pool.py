"""GpuNodePool: one EKS managed node group of GPU nodes, tainted so only GPU workers land there.

Every pool gets a launch template: IMDSv2, the root volume, NVMe striping, capacity blocks and
EFA all live there rather than on the node group.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.dgd import GPU_TAINT_KEY, GPU_TAINT_VALUE
from infra.stack.config import NodePool
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
GPU_PRODUCT_LABEL = "dynamo-trtllm.io/gpu-product"
# Our own key: kubelet owns node.kubernetes.io/instance-type, and EKS refuses to set it.
INSTANCE_TYPE_LABEL = "dynamo-trtllm.io/instance-type"
MIME_BOUNDARY = "DYNAMO-TRTLLM"


def pool_labels(pool: NodePool, gpus: GpuInstance) -> dict[str, str]:
    return {
        **pool.labels,
        NODE_POOL_LABEL: pool.name,
        GPU_PRODUCT_LABEL: gpus.gpu_product,
        INSTANCE_TYPE_LABEL: pool.instance_type,
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


def efa_network_interfaces(count: int, security_group_ids: list) -> list[dict]:
    """Every network card as an EFA interface; only the first is the primary (device 0)."""
    return [
        {
            "network_card_index": card,
            "device_index": 0 if card == 0 else 1,
            "interface_type": "efa",
            "delete_on_termination": "true",
            "security_groups": security_group_ids,
        }
        for card in range(count)
    ]


def efa_self_rules() -> list[dict]:
    """EFA's OS-bypass traffic needs every protocol open between the pool's own interfaces."""
    return [{"protocol": "-1", "from_port": 0, "to_port": 0, "self": True}]


@dataclass(frozen=True)
class GpuNodePoolArgs:
    pool: NodePool
    gpus: GpuInstance
    cluster_name: pulumi.Input[str]
    node_role_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    vpc_id: pulumi.Input[str] | None = None
    cluster_security_group_id: pulumi.Input[str] | None = None


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
            release_version=pool.ami_release_version,
            capacity_type=CAPACITY_TYPES[pool.capacity_type],
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_size,
                max_size=pool.max_size,
                desired_size=pool.desired_size,
            ),
            labels=pool_labels(pool, args.gpus),
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=GPU_TAINT_KEY, value=GPU_TAINT_VALUE, effect="NO_SCHEDULE"
                )
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

    def _template_args(
        self, name: str, args: GpuNodePoolArgs, child: pulumi.ResourceOptions
    ) -> dict:
        pool, gpus = args.pool, args.gpus
        template: dict = {
            "metadata_options": aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_tokens="required",  # IMDSv2 only
                http_put_response_hop_limit=2,  # pods on the host network path still reach it
            ),
            "block_device_mappings": [
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=DATA_VOLUME_DEVICE[pool.ami_type],
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=pool.root_volume_gib,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            "tag_specifications": [
                aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type="instance", tags={NODE_POOL_LABEL: pool.name}
                )
            ],
        }
        if pool.local_nvme_raid0 and gpus.local_nvme and pool.ami_type == "al2023-nvidia":
            template["user_data"] = raid0_user_data()
        if pool.capacity_type == "capacity-block":
            template["instance_market_options"] = aws.ec2.LaunchTemplateInstanceMarketOptionsArgs(
                market_type="capacity-block"
            )
            template["capacity_reservation_specification"] = (
                aws.ec2.LaunchTemplateCapacityReservationSpecificationArgs(
                    capacity_reservation_target=aws.ec2.LaunchTemplateCapacityReservationSpecificationCapacityReservationTargetArgs(
                        capacity_reservation_id=pool.capacity_reservation_id
                    )
                )
            )
        if pool.efa:
            assert args.vpc_id is not None and args.cluster_security_group_id is not None
            efa_group = aws.ec2.SecurityGroup(
                f"{name}-efa",
                description=f"EFA traffic between the nodes of GPU pool {pool.name}",
                vpc_id=args.vpc_id,
                ingress=[aws.ec2.SecurityGroupIngressArgs(**r) for r in efa_self_rules()],
                egress=[aws.ec2.SecurityGroupEgressArgs(**r) for r in efa_self_rules()],
                opts=child,
            )
            placement = aws.ec2.PlacementGroup(f"{name}-placement", strategy="cluster", opts=child)
            template["placement"] = aws.ec2.LaunchTemplatePlacementArgs(group_name=placement.name)
            groups = [args.cluster_security_group_id, efa_group.id]
            template["network_interfaces"] = [
                aws.ec2.LaunchTemplateNetworkInterfaceArgs(**nic)
                for nic in efa_network_interfaces(gpus.efa_interfaces, groups)
            ]
        return template
