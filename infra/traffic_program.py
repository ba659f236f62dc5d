"""The composition root of a traffic stack: weighted DNS over whole environment stacks."""

from __future__ import annotations

import pulumi

from components.dns_traffic import EnvironmentTraffic, EnvironmentTrafficArgs
from infra.stack.config import TrafficStackConfig


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
    EnvironmentTraffic(
        "public-entry",
        EnvironmentTrafficArgs(
            dns=config.dns, weights=config.traffic_weights(), hostnames=hostnames
        ),
    )
    pulumi.export("activeEnvironment", config.active)
    pulumi.export("weights", config.traffic_weights())
    pulumi.export("environments", dict(config.environments))
