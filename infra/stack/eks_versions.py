"""What EKS offers per Kubernetes version: how long it is supported, and the node AMI release and
managed add-on versions a stack pins unless it says otherwise.

Moving a default here is a reviewed change that `diff` shows (a new AMI release rolls the node
groups that take the default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

SupportPhase = Literal["standard", "extended", "ended"]


@dataclass(frozen=True)
class EksKubernetesVersion:
    version: str
    eks_release: date
    end_of_standard_support: date
    end_of_extended_support: date

    def phase(self, on: date) -> SupportPhase:
        """Which support EKS gives this version on a day (billing switches at 00:00 UTC)."""
        if on < self.end_of_standard_support:
            return "standard"
        return "extended" if on < self.end_of_extended_support else "ended"


# The EKS Kubernetes release calendar (UTC). 1.32-1.34: docs.aws.amazon.com/eks/latest/userguide/
# kubernetes-versions.html (awsdocs/amazon-eks-user-guide latest/ug/versioning/
# kubernetes-versions.adoc); 1.35: endoflife.date/amazon-eks; 1.36: released 2026-06-02 (its first
# AMIs are amazon-eks-ami v20260610), its end dates follow EKS's rule of 14 months of standard and
# 12 of extended support (same page). `aws eks describe-cluster-versions` has the live dates.
EKS_KUBERNETES_VERSIONS: dict[str, EksKubernetesVersion] = {
    v.version: v
    for v in (
        EksKubernetesVersion("1.32", date(2025, 1, 23), date(2026, 3, 23), date(2027, 3, 23)),
        EksKubernetesVersion("1.33", date(2025, 5, 29), date(2026, 7, 29), date(2027, 7, 29)),
        EksKubernetesVersion("1.34", date(2025, 10, 2), date(2026, 12, 2), date(2027, 12, 2)),
        EksKubernetesVersion("1.35", date(2026, 1, 28), date(2027, 3, 27), date(2028, 3, 27)),
        EksKubernetesVersion("1.36", date(2026, 6, 2), date(2027, 8, 2), date(2028, 8, 2)),
    )
}
# In standard support until 2027-03-27, with pinned add-on versions below.
DEFAULT_KUBERNETES_VERSION = "1.35"

# The EKS-optimized AL2023 AMI release (a managed node group's releaseVersion) pinned by default:
# amazon-eks-ami release v20260714 (awslabs/amazon-eks-ami CHANGELOG.md, "AMI Release v20260714").
# One release version serves the NVIDIA and the standard AL2023 AMI types.
DEFAULT_AL2023_RELEASES: dict[str, str] = {
    "1.32": "1.32.13-20260714",
    "1.33": "1.33.13-20260714",
    "1.34": "1.34.9-20260714",
    "1.35": "1.35.6-20260714",
    "1.36": "1.36.2-20260714",
}

# The managed add-ons every EKS cluster of ours runs, by their EKS add-on names.
VPC_CNI = "vpc-cni"
KUBE_PROXY = "kube-proxy"
COREDNS = "coredns"
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
EBS_CSI_DRIVER = "aws-ebs-csi-driver"
ADDONS = (VPC_CNI, KUBE_PROXY, COREDNS, POD_IDENTITY_AGENT, EBS_CSI_DRIVER)

# Add-on versions pinned by default. 1.35: the newest of each in `aws eks describe-addon-versions
# --kubernetes-version 1.35`, as cookpad/terraform-aws-eks versions.tf recorded them (commit
# f696246, 2026-03-05); eks-pod-identity-agent as public EKS 1.35 stacks pin it. Other versions
# name theirs under cluster.addons; `dynamo-infra preflight` checks every one against EKS.
DEFAULT_ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.35": {
        VPC_CNI: "v1.21.1-eksbuild.3",
        KUBE_PROXY: "v1.35.0-eksbuild.2",
        COREDNS: "v1.13.2-eksbuild.1",
        POD_IDENTITY_AGENT: "v1.3.10-eksbuild.3",
        EBS_CSI_DRIVER: "v1.56.0-eksbuild.1",
    },
}
