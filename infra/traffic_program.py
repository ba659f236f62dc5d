"""The composition root of a traffic stack: weighted DNS over whole environment stacks."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.dns_traffic import EnvironmentTraffic, EnvironmentTrafficArgs
from infra.stack.config import TrafficStackConfig

# Route 53 is global; its API is called in us-east-1 when the stack sets no aws:region.
ROUTE53_REGION = "us-east-1"


def environment_stack_name(reference: str) -> str:
    """A full `org/project/stack` name; a bare stack name means a stack of this project."""
    if "/" in reference:
        return reference
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{reference}"


def build_traffic(config: TrafficStackConfig) -> None:
    """A traffic stack: weighted DNS over the environments' exported public hostnames."""
    hostnames = {
        color: pulumi.StackReference(
            f"environment-{color}", stack_name=environment_stack_name(reference)
        ).require_output("publicHostname")
        for color, reference in config.environments.items()
    }
    # The stack disables the default AWS provider (as every stack does), so the records name
    # this one: no region or profile is taken from the environment of whoever runs `up`.
    provider = aws.Provider("aws", region=pulumi.Config("aws").get("region") or ROUTE53_REGION)
    EnvironmentTraffic(
        "public-entry",
        EnvironmentTrafficArgs(
            dns=config.dns, weights=config.traffic_weights(), hostnames=hostnames
        ),
        opts=pulumi.ResourceOptions(providers=[provider]),
    )
    pulumi.export("activeEnvironment", config.active)
    pulumi.export("weights", config.traffic_weights())
    pulumi.export("environments", dict(config.environments))
