"""What Karpenter may do in AWS: its controller's policy, its nodes' role, its interruption queue.

Facts from Karpenter v1.14's getting-started CloudFormation template (aws/karpenter-provider-aws,
website/content/en/v1.14/getting-started/getting-started-with-karpenter/cloudformation.yaml):
the controller's statements, the queue's retention and encryption, the events it listens to.
Every write is scoped to this cluster's tags; `Resource: "*"` only for the reads EC2, pricing and
zonal shift cannot scope to a resource.
"""

from __future__ import annotations

import json
from typing import Any

# Tags Karpenter puts on everything it launches, and the conditions that hold it to them.
CLUSTER_TAG = "kubernetes.io/cluster/{cluster}"
NODEPOOL_TAG = "karpenter.sh/nodepool"
NODECLASS_TAG = "karpenter.k8s.aws/ec2nodeclass"
REGION_TAG = "topology.kubernetes.io/region"
EKS_CLUSTER_TAG = "eks:eks-cluster-name"
# What a node's instance launches with: images, snapshots and network parts are not Karpenter's.
LAUNCH_INPUTS = (
    "image",
    "snapshot",
    "security-group",
    "subnet",
    "capacity-reservation",
    "placement-group",
)
LAUNCHED = (
    "fleet",
    "instance",
    "volume",
    "network-interface",
    "launch-template",
    "spot-instances-request",
)
REGIONAL_READS = (
    "ec2:DescribeCapacityReservations",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribePlacementGroups",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
)
# The interruption queue keeps a message 5 minutes: older news of an instance is stale.
QUEUE_RETENTION_SECONDS = 300
# The EventBridge events Karpenter acts on (source, detail-type), each by its rule's name.
INTERRUPTION_EVENTS = {
    "scheduled-change": ("aws.health", "AWS Health Event"),
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "capacity-reservation-interruption": (
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
    ),
}
# Karpenter's nodes: the same managed policies as our managed node groups (the VPC CNI has a
# role of its own, so no CNI policy here).
KARPENTER_NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
)


def controller_policy(
    partition: str,
    account: str,
    region: str,
    cluster: str,
    node_role_arn: str,
    queue_arn: str,
) -> dict:
    """The controller's IAM policy document for one cluster."""
    ec2 = f"arn:{partition}:ec2:{region}"
    profiles = f"arn:{partition}:iam::{account}:instance-profile/*"
    cluster_arn = f"arn:{partition}:eks:{region}:{account}:cluster/{cluster}"
    owned = {f"aws:ResourceTag/{CLUSTER_TAG.format(cluster=cluster)}": "owned"}
    owned_request = {
        f"aws:RequestTag/{CLUSTER_TAG.format(cluster=cluster)}": "owned",
        f"aws:RequestTag/{EKS_CLUSTER_TAG}": cluster,
    }
    any_nodepool = {f"aws:ResourceTag/{NODEPOOL_TAG}": "*"}
    launched = [f"{ec2}:*:{kind}/*" for kind in LAUNCHED]
    profile_owned = owned | {f"aws:ResourceTag/{REGION_TAG}": region}
    profile_request = owned_request | {f"aws:RequestTag/{REGION_TAG}": region}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AllowScopedEC2InstanceAccessActions",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": [
                f"{ec2}::{kind}/*" if kind in ("image", "snapshot") else f"{ec2}:*:{kind}/*"
                for kind in LAUNCH_INPUTS
            ],
        },
        {
            "Sid": "AllowScopedEC2LaunchTemplateAccessActions",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": f"{ec2}:*:launch-template/*",
            "Condition": {"StringEquals": owned, "StringLike": any_nodepool},
        },
        {
            "Sid": "AllowScopedEC2InstanceActionsWithTags",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Resource": launched,
            "Condition": {
                "StringEquals": owned_request,
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceCreationTagging",
            "Action": "ec2:CreateTags",
            "Resource": launched,
            "Condition": {
                "StringEquals": owned_request
                | {"ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": {f"aws:RequestTag/{NODEPOOL_TAG}": "*"},
            },
        },
        {
            "Sid": "AllowScopedResourceTagging",
            "Action": "ec2:CreateTags",
            "Resource": f"{ec2}:*:instance/*",
            "Condition": {
                "StringEquals": owned,
                "StringLike": any_nodepool,
                "StringEqualsIfExists": {f"aws:RequestTag/{EKS_CLUSTER_TAG}": cluster},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": [EKS_CLUSTER_TAG, "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "AllowScopedDeletion",
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            "Condition": {"StringEquals": owned, "StringLike": any_nodepool},
        },
        {
            "Sid": "AllowPassingInstanceRole",
            "Action": "iam:PassRole",
            "Resource": node_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {
            "Sid": "AllowScopedInstanceProfileCreationActions",
            "Action": "iam:CreateInstanceProfile",
            "Resource": profiles,
            "Condition": {
                "StringEquals": profile_request,
                "StringLike": {f"aws:RequestTag/{NODECLASS_TAG}": "*"},
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileTagActions",
            "Action": "iam:TagInstanceProfile",
            "Resource": profiles,
            "Condition": {
                "StringEquals": profile_owned | profile_request,
                "StringLike": {
                    f"aws:ResourceTag/{NODECLASS_TAG}": "*",
                    f"aws:RequestTag/{NODECLASS_TAG}": "*",
                },
            },
        },
        {
            "Sid": "AllowScopedInstanceProfileActions",
            "Action": [
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            "Resource": profiles,
            "Condition": {
                "StringEquals": profile_owned,
                "StringLike": {f"aws:ResourceTag/{NODECLASS_TAG}": "*"},
            },
        },
        {
            "Sid": "AllowInstanceProfileReadActions",
            "Action": "iam:GetInstanceProfile",
            "Resource": profiles,
        },
        {
            "Sid": "AllowAPIServerEndpointDiscovery",
            "Action": "eks:DescribeCluster",
            "Resource": cluster_arn,
        },
        {
            "Sid": "AllowInterruptionQueueActions",
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "Resource": queue_arn,
        },
        {
            "Sid": "AllowSSMReadActions",
            "Action": "ssm:GetParameter",
            "Resource": f"arn:{partition}:ssm:{region}::parameter/aws/service/*",
        },
        # The reads below name no resource EC2, IAM, pricing or zonal shift could scope them to.
        {
            "Sid": "AllowRegionalReadActions",
            "Action": list(REGIONAL_READS),
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {"Sid": "AllowPricingReadActions", "Action": "pricing:GetProducts", "Resource": "*"},
        {
            "Sid": "AllowUnscopedInstanceProfileListAction",
            "Action": "iam:ListInstanceProfiles",
            "Resource": "*",
        },
        {
            "Sid": "AllowZonalShiftStatusReadOnly",
            "Action": "arc-zonal-shift:GetManagedResource",
            "Resource": "*",
            "Condition": {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}},
        },
    ]
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", **statement} for statement in statements],
    }


def queue_policy(queue_arn: str) -> str:
    """EventBridge (and SQS itself) may send to the queue; nothing reaches it without TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                },
                {
                    "Sid": "DenyHTTP",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        },
        sort_keys=True,
    )


def event_pattern(source: str, detail_type: str) -> str:
    return json.dumps({"source": [source], "detail-type": [detail_type]}, sort_keys=True)


def arn_parts(arn: str) -> tuple[str, str]:
    """(partition, account) of an ARN."""
    _, partition, _, _, account, _ = arn.split(":", 5)
    return partition, account
