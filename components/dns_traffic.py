"""EnvironmentTraffic: the public name of a traffic stack, weighted between environment stacks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.stack.config import DnsSpec
from infra.stack.model_config import Color

COMPONENT_TYPE = "dynamo-trtllm:traffic:EnvironmentTraffic"


def weighted_record(dns: DnsSpec, color: Color, share: int) -> dict:
    """One weighted CNAME; the same name in every environment, told apart by set identifier.

    Route 53 sends a record's share of queries (weight / sum of weights); weight 0 gets none
    while another record has weight, so the standby environment stays resolvable but idle.
    """
    return {
        "zone_id": dns.hosted_zone_id,
        "name": dns.record_name,
        "type": "CNAME",
        "ttl": dns.ttl,
        "set_identifier": color,
        "weight": share,
    }


@dataclass(frozen=True)
class EnvironmentTrafficArgs:
    dns: DnsSpec
    weights: dict[Color, int]
    hostnames: Mapping[Color, pulumi.Input[str]]  # each environment's exported publicHostname


class EnvironmentTraffic(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: EnvironmentTrafficArgs, opts: pulumi.ResourceOptions | None = None
    ):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        for color, share in args.weights.items():
            record = weighted_record(args.dns, color, share)
            aws.route53.Record(
                f"{name}-{color}",
                zone_id=record["zone_id"],
                name=record["name"],
                type=record["type"],
                ttl=record["ttl"],
                set_identifier=record["set_identifier"],
                weighted_routing_policies=[
                    aws.route53.RecordWeightedRoutingPolicyArgs(weight=record["weight"])
                ],
                records=[args.hostnames[color]],
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"weights": args.weights})
