"""Cluster admins: one EKS access entry with AmazonEKSClusterAdminPolicy per principal.

The creator of the cluster gets nothing of its own (bootstrapClusterCreatorAdminPermissions is
off, as terraform-aws-eks does it): whoever runs `pulumi up` is one of these principals, and
`dynamo-infra preflight` says when it is not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def principal_key(arn: str) -> str:
    """A resource-name part that depends on the principal alone: its name and a digest of the
    whole ARN. Adding or removing one admin leaves the others' entries as they are."""
    slug = re.sub(r"[^a-z0-9]+", "-", arn.rsplit("/", 1)[-1].lower()).strip("-")[:40]
    return f"{slug}-{hashlib.sha256(arn.encode()).hexdigest()[:8]}"


def admin_access_entries(
    name: str,
    cluster_name: pulumi.Input[str],
    principals: Sequence[str],
    child: pulumi.ResourceOptions,
) -> list[aws.eks.AccessPolicyAssociation]:
    associations = []
    for index, principal in enumerate(principals):
        key = f"{name}-admin-{principal_key(principal)}"
        # The name the entry had while entries were named by list position, so a stack
        # deployed then keeps its entries instead of creating a second one per principal.
        positional = pulumi.ResourceOptions(aliases=[pulumi.Alias(name=f"{name}-admin-{index}")])
        entry = aws.eks.AccessEntry(
            key,
            cluster_name=cluster_name,
            principal_arn=principal,
            type="STANDARD",
            opts=pulumi.ResourceOptions.merge(child, positional),
        )
        associations.append(
            aws.eks.AccessPolicyAssociation(
                key,
                cluster_name=cluster_name,
                principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=pulumi.ResourceOptions.merge(child, positional),
            )
        )
    return associations
