"""EKS managed add-ons at pinned versions, taking over the self-managed ones EKS installs.

The networking add-ons (vpc-cni, kube-proxy, the Pod Identity agent) are DaemonSets that become
ACTIVE with no node, and a node cannot become Ready without the CNI: they come before any node
group. coredns and the EBS CSI driver run Deployments: they come after the system nodes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from infra.stack.eks_versions import (
    COREDNS,
    EBS_CSI_DRIVER,
    KUBE_PROXY,
    POD_IDENTITY_AGENT,
    VPC_CNI,
)

BEFORE_NODES = (VPC_CNI, KUBE_PROXY, POD_IDENTITY_AGENT)
AFTER_NODES = (COREDNS, EBS_CSI_DRIVER)
# EKS has already installed vpc-cni, kube-proxy and coredns itself: a managed add-on created
# over them must overwrite their fields, or its creation fails on the conflict
# (docs.aws.amazon.com/eks/latest/APIReference/API_CreateAddon.html, resolveConflicts).
OVERWRITE = "OVERWRITE"


def vpc_cni_configuration(enforcing_mode: str) -> dict:
    """The VPC CNI add-on's configuration values (its schema: `aws eks describe-addon-configuration
    --addon-name vpc-cni`): NetworkPolicy enforcement on, and in strict mode a new pod has no
    network until its policies apply (aws/amazon-vpc-cni-k8s README,
    NETWORK_POLICY_ENFORCING_MODE)."""
    return {
        "enableNetworkPolicy": "true",
        "env": {"NETWORK_POLICY_ENFORCING_MODE": enforcing_mode},
    }


def managed_addons(
    name: str,
    cluster_name: pulumi.Input[str],
    versions: Mapping[str, str | None],
    addons: Sequence[str],
    configurations: Mapping[str, dict],
    roles: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> dict[str, aws.eks.Addon]:
    return {
        addon: aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=cluster_name,
            addon_name=addon,
            addon_version=versions[addon],
            configuration_values=json.dumps(configurations[addon], sort_keys=True)
            if addon in configurations
            else None,
            service_account_role_arn=roles.get(addon),
            resolve_conflicts_on_create=OVERWRITE,
            resolve_conflicts_on_update=OVERWRITE,
            opts=opts,
        )
        for addon in addons
    }
