"""CacheAccess: read-only access to a model's S3 weights for the cache in its namespace.

Fluid's Alluxio master, workers and FUSE pods run under the namespace's `default` service
account: AlluxioRuntime has no field naming another (its spec offers `runAs` for the user and
group only; data.fluid.io_alluxioruntimes.yaml, Fluid v1.0.8). So that account gets an IAM role
(IAM roles for service accounts) allowed to list and read the model's prefixes and nothing else;
no static keys anywhere. The graph's own pods run as their own accounts and do not get it. The
role is made through the stack's AWS provider, which the program hands this component.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_iam import irsa_trust_policy
from infra.stack.model_config import S3Source

COMPONENT_TYPE = "dynamo-trtllm:cache:CacheAccess"
CACHE_SERVICE_ACCOUNT = "default"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def s3_read_policy(sources: Sequence[S3Source]) -> str:
    """List and get under each model prefix; no write, no other bucket, no wildcard action."""
    statements = []
    unique = {s.uri: s for s in sources}
    for index, uri in enumerate(sorted(unique)):
        bucket, prefix = unique[uri].bucket, unique[uri].prefix
        objects = f"arn:aws:s3:::{bucket}/{prefix}/*" if prefix else f"arn:aws:s3:::{bucket}/*"
        listing: dict = {
            "Sid": f"List{index}",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": f"arn:aws:s3:::{bucket}",
        }
        if prefix:
            listing["Condition"] = {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}
        statements.append(listing)
        statements.append(
            {
                "Sid": f"Read{index}",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": objects,
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


@dataclass(frozen=True)
class CacheAccessArgs:
    namespace: str
    sources: Sequence[S3Source]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    depends_on: Sequence[pulumi.Resource]


class CacheAccess(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: CacheAccessArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=pulumi.Output.all(
                args.oidc_provider_arn, args.oidc_issuer_url
            ).apply(lambda v: irsa_trust_policy(v[0], v[1], args.namespace, CACHE_SERVICE_ACCOUNT)),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-read", role=role.id, policy=s3_read_policy(args.sources), opts=child
        )
        # Annotate the existing account (server-side apply patch): the EKS webhook then hands
        # the cache pods web-identity credentials for the role, through a token volume of its
        # own, so the Kubernetes API token need not be mounted.
        k8s.core.v1.ServiceAccountPatch(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=CACHE_SERVICE_ACCOUNT,
                namespace=args.namespace,
                annotations={IRSA_ANNOTATION: role.arn},
            ),
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.role_arn = role.arn
        self.register_outputs({"roleArn": role.arn})
