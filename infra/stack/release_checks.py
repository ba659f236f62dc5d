"""Checks between the releases a stack picks (Dynamo, Kubernetes) and what it runs on them."""

from __future__ import annotations

import re

from infra.stack.config import StackConfig
from infra.stack.dynamo_versions import RUNTIME_IMAGE_REPOSITORY
from infra.stack.errors import ConfigIssue

_RELEASE_TAG = re.compile(r"^(\d+)\.(\d+)\.\d+")


def runtime_release_issues(config: StackConfig, indexes: list[int]) -> list[ConfigIssue]:
    """A runtime image of another Dynamo minor than the platform's (patch releases mix)."""
    profile = config.platform.profile
    platform = _RELEASE_TAG.match(profile.version)
    assert platform is not None
    issues = []
    for index, model in zip(indexes, config.models, strict=True):
        for color in sorted(model.slots):
            image = model.image_for(color)
            if image is None or "@" in image:
                continue
            repository, _, tag = image.rpartition(":")
            release = _RELEASE_TAG.match(tag)
            if repository != RUNTIME_IMAGE_REPOSITORY or release is None:
                continue
            if release.groups()[:2] != platform.groups()[:2]:
                slot = model.slots.get(color)
                where = (
                    f"models[{index}].slots.{color}.image"
                    if slot is not None and slot.image
                    else f"models[{index}].image"
                )
                issues.append(
                    ConfigIssue(
                        where,
                        f"{model.name} ({color}) runs runtime {tag} on the Dynamo "
                        f"{profile.version} platform (platform.dynamoVersion): the operator "
                        f"builds pods for its own release, whose runtime carries TensorRT-LLM "
                        f"{profile.trtllm_version}; use {profile.runtime_image} (or its "
                        "-efa-amd64 variant)",
                        severity="warning",
                    )
                )
    return issues


# ValidatingAdmissionPolicy is served as admissionregistration.k8s.io/v1 from Kubernetes 1.30
# (KEP-3488, GA in 1.30).
ADMISSION_POLICY_MINOR = 30


def admission_policy_issues(config: StackConfig) -> list[ConfigIssue]:
    minor = int(config.cluster.kubernetes_version.split(".")[1])
    if not config.security.admission_policies or minor >= ADMISSION_POLICY_MINOR:
        return []
    return [
        ConfigIssue(
            "security.admissionPolicies",
            f"Kubernetes {config.cluster.kubernetes_version} has no ValidatingAdmissionPolicy "
            "v1 (1.30 and later): upgrade the cluster, or set security.admissionPolicies: false "
            "and accept that only the policy pack guards what the deployer writes",
        )
    ]
