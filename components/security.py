"""Security: the namespaces we own (with Pod Security labels), their Secrets and NetworkPolicies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components.network_policies import (
    NAMESPACE_KIND_LABEL,
    NamespaceKind,
    NetworkPlan,
    namespace_policies,
)
from infra.stack.names import GRAFANA_ADMIN_SECRET

COMPONENT_TYPE = "dynamo-trtllm:security:Security"
PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
HF_TOKEN_SECRET = "hf-token-secret"
# The Grafana chart's defaults for admin.existingSecret's keys; the user is Grafana's own.
GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"
GRAFANA_ADMIN_USER = "admin"
IMAGE_PULL_SECRET = "image-pull-secret"
S3_CREDENTIALS_SECRET = "s3-credentials"
S3_KEY_ID_FIELD = "aws.accessKeyId"
S3_SECRET_KEY_FIELD = "aws.secretKey"


@dataclass(frozen=True)
class OwnedNamespace:
    name: str
    pod_security: PodSecurityLevel
    why: str  # recorded as an annotation: the reason for anything looser than restricted
    kind: NamespaceKind
    model: str | None = None  # the model a serving namespace serves

    @property
    def serving(self) -> bool:
        """Runs Dynamo graphs: gets the Secrets the workers read."""
        return self.kind is NamespaceKind.SERVING


def build_namespace(ns: OwnedNamespace, enforce: bool) -> dict:
    # The kind label lets cluster-wide objects (the admission bindings) select only the
    # namespaces of one kind; only cluster administrators may label namespaces.
    labels = {"app.kubernetes.io/managed-by": "pulumi", NAMESPACE_KIND_LABEL: ns.kind.value}
    if enforce:
        labels |= {
            "pod-security.kubernetes.io/enforce": ns.pod_security,
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
        }
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": ns.name,
            "labels": labels,
            "annotations": {"dynamo-trtllm.io/pod-security-reason": ns.why},
        },
    }


@dataclass(frozen=True)
class SecurityArgs:
    namespaces: list[OwnedNamespace]
    network: NetworkPlan
    pod_security: bool
    network_policies: bool
    hf_token: pulumi.Output[str] | None = None
    image_pull_secret: pulumi.Output[str] | None = None
    # (access key id, secret key) for the model cache, copied only where S3 weights are cached
    s3_keys: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None
    s3_namespaces: set[str] = field(default_factory=set)
    # The namespaces whose workers download from Hugging Face: only they get the token.
    hf_namespaces: set[str] = field(default_factory=set)
    # Grafana's admin password and the namespace kube-prometheus-stack runs in, when installed.
    grafana_admin_password: pulumi.Output[str] | None = None
    monitoring_namespace: str | None = None


class Security(pulumi.ComponentResource):
    namespaces: dict[str, k8s.core.v1.Namespace]
    grafana_admin: k8s.core.v1.Secret | None
    hf_token_secret: str | None
    image_pull_secret: str | None
    s3_credentials_secret: str | None

    def __init__(self, name: str, args: SecurityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespaces = {}
        for ns in args.namespaces:
            manifest = build_namespace(ns, args.pod_security)
            self.namespaces[ns.name] = k8s.core.v1.Namespace(
                f"ns-{ns.name}", metadata=manifest["metadata"], opts=child
            )
        self.hf_token_secret = HF_TOKEN_SECRET if args.hf_token is not None else None
        self.image_pull_secret = IMAGE_PULL_SECRET if args.image_pull_secret is not None else None
        self.s3_credentials_secret = S3_CREDENTIALS_SECRET if args.s3_keys is not None else None
        for ns in args.namespaces:
            in_ns = pulumi.ResourceOptions(parent=self, depends_on=[self.namespaces[ns.name]])
            # Pods read Secrets only from their own namespace: each model namespace gets a copy.
            hf_token = args.hf_token if ns.name in args.hf_namespaces else None
            secrets: list[tuple[str, str, dict | None]] = [
                (HF_TOKEN_SECRET, "Opaque", {"HF_TOKEN": hf_token} if hf_token else None),
                (
                    IMAGE_PULL_SECRET,
                    "kubernetes.io/dockerconfigjson",
                    {".dockerconfigjson": args.image_pull_secret}
                    if args.image_pull_secret
                    else None,
                ),
            ]
            if args.s3_keys is not None and ns.name in args.s3_namespaces:
                # Key names Fluid's Alluxio mounts read through encryptOptions.
                key_id, secret_key = args.s3_keys
                secrets.append(
                    (
                        S3_CREDENTIALS_SECRET,
                        "Opaque",
                        {S3_KEY_ID_FIELD: key_id, S3_SECRET_KEY_FIELD: secret_key},
                    )
                )
            for secret_name, secret_type, data in secrets:
                if ns.serving and data is not None:
                    k8s.core.v1.Secret(
                        f"{ns.name}-{secret_name}",
                        metadata={"name": secret_name, "namespace": ns.name},
                        type=secret_type,
                        string_data=data,
                        opts=in_ns,
                    )
            if not args.network_policies:
                continue
            for policy in namespace_policies(ns.name, ns.kind, args.network, ns.model):
                k8s.networking.v1.NetworkPolicy(
                    f"{ns.name}-{policy['metadata']['name']}",
                    metadata=policy["metadata"],
                    spec=policy["spec"],
                    opts=in_ns,
                )
        self.grafana_admin = None
        if args.grafana_admin_password is not None and args.monitoring_namespace is not None:
            # Keys the Grafana chart reads with admin.existingSecret (its userKey/passwordKey).
            self.grafana_admin = k8s.core.v1.Secret(
                GRAFANA_ADMIN_SECRET,
                metadata={"name": GRAFANA_ADMIN_SECRET, "namespace": args.monitoring_namespace},
                type="Opaque",
                string_data={
                    GRAFANA_USER_KEY: GRAFANA_ADMIN_USER,
                    GRAFANA_PASSWORD_KEY: args.grafana_admin_password,
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(self.namespaces.values())),
            )
        self.register_outputs({"namespaces": list(self.namespaces)})
