"""Launch-template parts every node of ours gets, system and GPU alike."""

from __future__ import annotations

from collections.abc import Mapping

import pulumi_aws as aws

# IMDSv2 only, with a hop limit of 1: a pod on the pod network is one hop further than the
# node, so it cannot reach instance metadata and the node role's credentials; pods get AWS
# access through IRSA instead. EKS best practices, "Restrict access to the instance profile
# assigned to the worker node" (docs.aws.amazon.com/eks/latest/best-practices/
# identity-and-access-management.html); terraform-aws-eks eks-managed-node-group defaults.
IMDS_HOP_LIMIT = 1
# What a node's instance creates: the provider's default tags reach only the resources it
# creates itself, not what the node group's Auto Scaling group launches.
TAGGED_RESOURCE_TYPES = ("instance", "volume", "network-interface")


def imdsv2_metadata_options() -> aws.ec2.LaunchTemplateMetadataOptionsArgs:
    return aws.ec2.LaunchTemplateMetadataOptionsArgs(
        http_endpoint="enabled",
        http_tokens="required",
        http_put_response_hop_limit=IMDS_HOP_LIMIT,
    )


def encrypted_root_volume(
    device: str, size_gib: int
) -> aws.ec2.LaunchTemplateBlockDeviceMappingArgs:
    return aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
        device_name=device,
        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
            volume_size=size_gib,
            volume_type="gp3",
            encrypted="true",
            delete_on_termination="true",
        ),
    )


def tag_specifications(tags: Mapping[str, str]) -> list[aws.ec2.LaunchTemplateTagSpecificationArgs]:
    """The same tags on the instance, its volumes and its network interfaces (cost attribution
    of GPU nodes)."""
    return [
        aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=dict(tags))
        for kind in TAGGED_RESOURCE_TYPES
    ]
