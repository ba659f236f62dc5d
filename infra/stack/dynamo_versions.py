"""Version profiles: what each supported Dynamo release means for a stack.

A stack picks a release with `platform.dynamoVersion`; the profile says which platform chart to
install, which DynamoGraphDeployment API version its operator takes, which runtime images carry
which TensorRT-LLM, which admission-webhook rules apply and which shipped schemas validate the
render. Supporting a new release is one entry here (plus its schemas: `dynamo-infra crds`).
"""

from __future__ import annotations

from dataclasses import dataclass

RUNTIME_IMAGE_REPOSITORY = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime"
EFA_IMAGE_SUFFIX = "-efa-amd64"  # the variant built with libfabric and the AWS OFI NCCL plugin
DGD_V1ALPHA1 = "nvidia.com/v1alpha1"
DGD_V1BETA1 = "nvidia.com/v1beta1"


@dataclass(frozen=True)
class DynamoProfile:
    version: str
    platform_chart: str  # the dynamo-platform Helm chart version
    dgd_api_version: str  # what we emit; 1.2+ still serves v1alpha1, deprecated
    trtllm_version: str  # the TensorRT-LLM inside the runtime image
    webhook_rules: str  # the operator release whose admission rules apply
    # The platform chart installs its NATS by `global.nats.install` (1.2.0's Chart.yaml
    # condition), not by `nats.enabled` (1.1.0's): a key the other release does not read.
    nats_installed_by_global: bool

    @property
    def runtime_image(self) -> str:
        return f"{RUNTIME_IMAGE_REPOSITORY}:{self.version}"

    @property
    def efa_runtime_image(self) -> str:
        return f"{self.runtime_image}{EFA_IMAGE_SUFFIX}"

    def default_image(self, efa: bool) -> str:
        return self.efa_runtime_image if efa else self.runtime_image


# TensorRT-LLM per runtime image: Dynamo's release-artifact pages (1.1.x: 1.3.0rc11) and the
# 1.2.0 tree's pyproject pin (1.3.0rc14).
PROFILES: dict[str, DynamoProfile] = {
    profile.version: profile
    for profile in (
        DynamoProfile("1.1.0", "1.1.0", DGD_V1ALPHA1, "1.3.0rc11", "1.1.0", False),
        DynamoProfile("1.2.0", "1.2.0", DGD_V1BETA1, "1.3.0rc14", "1.2.0", True),
    )
}
# The newest release whose schemas, examples and webhook rules we validate against.
DEFAULT_DYNAMO_VERSION = "1.2.0"


def profile(version: str) -> DynamoProfile:
    try:
        return PROFILES[version]
    except KeyError:
        known = ", ".join(PROFILES)
        raise ValueError(
            f"Dynamo {version!r} has no version profile (supported: {known})"
        ) from None
