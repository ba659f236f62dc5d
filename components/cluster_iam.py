"""IAM of an EKS cluster: the roles EKS and the nodes assume, the IAM roles for service accounts
of its add-ons, and the KMS key that envelope-encrypts Kubernetes Secrets.

Policy documents are pure functions (tested directly); the rest wraps them, parented to the
Cluster component under the names they always had.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

CLUSTER_POLICY = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
# The node role needs no CNI policy: the VPC CNI has its own role (VPC_CNI_SERVICE_ACCOUNT).
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
)
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
# The VPC CNI's aws-node DaemonSet runs as kube-system/aws-node; EKS recommends its policy on a
# role of its own rather than on the node role (docs.aws.amazon.com/eks/latest/userguide/
# cni-iam-role.html).
VPC_CNI_POLICY = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
VPC_CNI_SERVICE_ACCOUNT = ("kube-system", "aws-node")
# What EKS needs of the Secrets key through the cluster role (terraform-aws-eks main.tf,
# aws_iam_policy.cluster_encryption).
SECRETS_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey")


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, account: str) -> str:
    """Only one service account of this cluster may assume the role (IAM roles for SAs)."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:aud": "sts.amazonaws.com",
                            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{account}",
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def secrets_key_policy(key_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": list(SECRETS_KEY_ACTIONS), "Resource": key_arn}
            ],
        },
        sort_keys=True,
    )


def service_role(
    name: str, service: str, policies: Sequence[str], child: pulumi.ResourceOptions
) -> tuple[aws.iam.Role, list[aws.iam.RolePolicyAttachment]]:
    """A role an AWS service assumes, with AWS-managed policies attached one by one."""
    role = aws.iam.Role(name, assume_role_policy=assume_role_policy(service), opts=child)
    attachments = [
        aws.iam.RolePolicyAttachment(
            f"{name.removesuffix('-role')}-{policy.rsplit('/', 1)[-1]}",
            role=role.name,
            policy_arn=policy,
            opts=child,
        )
        for policy in policies
    ]
    return role, attachments


def service_account_role(
    name: str,
    oidc_provider_arn: pulumi.Input[str],
    issuer_url: pulumi.Input[str],
    service_account: tuple[str, str],
    policy_arn: str,
    child: pulumi.ResourceOptions,
) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
    """An IAM role for one Kubernetes service account, with one AWS-managed policy."""
    role = aws.iam.Role(
        name,
        assume_role_policy=pulumi.Output.all(oidc_provider_arn, issuer_url).apply(
            lambda v: irsa_trust_policy(v[0], v[1], *service_account)
        ),
        opts=child,
    )
    attachment = aws.iam.RolePolicyAttachment(
        name, role=role.name, policy_arn=policy_arn, opts=child
    )
    return role, attachment


def secrets_key(
    name: str,
    cluster_name: str,
    cluster_role: aws.iam.Role,
    protect: bool,
    child: pulumi.ResourceOptions,
) -> tuple[aws.kms.Key, aws.iam.RolePolicy]:
    """A customer KMS key for Secrets envelope encryption, rotated yearly, and the cluster
    role's use of it. Protected with the cluster: Secrets encrypted with it die with it."""
    key = aws.kms.Key(
        f"{name}-secrets",
        description=f"EKS Secrets envelope encryption of {cluster_name}",
        enable_key_rotation=True,
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=protect)),
    )
    aws.kms.Alias(
        f"{name}-secrets",
        name=f"alias/eks/{cluster_name}",
        target_key_id=key.key_id,
        opts=child,
    )
    usage = aws.iam.RolePolicy(
        f"{name}-secrets",
        role=cluster_role.id,
        policy=key.arn.apply(secrets_key_policy),
        opts=child,
    )
    return key, usage
