"""The cluster's network: a new VPC (public, private and control-plane subnets per zone, an
internet gateway, one NAT gateway or one per zone) or the subnets of an existing one.

Resources are children of the Cluster component, under the names they always had.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra.stack.cluster_config import EksCluster, split_vpc

ANYWHERE = "0.0.0.0/0"


@dataclass
class ClusterNetwork:
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    # The EKS control plane's network interfaces, and nothing else: NetworkPolicies name the API
    # server by these subnets' CIDRs.
    control_plane_subnet_ids: pulumi.Output[list[str]]
    private_subnets_by_zone: dict[str, pulumi.Output[str]] = field(default_factory=dict)


def build_network(name: str, spec: EksCluster, child: pulumi.ResourceOptions) -> ClusterNetwork:
    if spec.vpc.existing:
        assert spec.vpc.id is not None
        return ClusterNetwork(
            vpc_id=pulumi.Output.from_input(spec.vpc.id),
            private_subnet_ids=pulumi.Output.from_input(list(spec.vpc.private_subnet_ids)),
            control_plane_subnet_ids=pulumi.Output.from_input(
                [s.id for s in spec.vpc.control_plane_subnets]
            ),
        )
    zones = spec.vpc.availability_zones
    vpc = aws.ec2.Vpc(
        f"{name}-vpc",
        cidr_block=spec.vpc.cidr,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags={"Name": spec.name},
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=spec.protect)),
    )
    gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
    public_routes = aws.ec2.RouteTable(
        f"{name}-public",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, gateway_id=gateway.id)],
        opts=child,
    )
    layout = split_vpc(spec.vpc.cidr, len(zones))
    zones = zones[: len(layout.private)]
    per_zone = spec.vpc.nat_gateways == "perAz"
    nats: dict[str, aws.ec2.NatGateway] = {}
    for index, zone in enumerate(zones):
        public = aws.ec2.Subnet(
            f"{name}-public-{zone}",
            vpc_id=vpc.id,
            cidr_block=layout.public[index],
            availability_zone=zone,
            map_public_ip_on_launch=True,
            tags={"kubernetes.io/role/elb": "1", "Name": f"{spec.name}-public-{zone}"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-{zone}",
            subnet_id=public.id,
            route_table_id=public_routes.id,
            opts=child,
        )
        if per_zone or not nats:
            # The single gateway keeps the name it had before gateways could be per zone.
            suffix = f"nat-{zone}" if per_zone else "nat"
            address = aws.ec2.Eip(f"{name}-{suffix}", domain="vpc", opts=child)
            nats[zone] = aws.ec2.NatGateway(
                f"{name}-{suffix}", subnet_id=public.id, allocation_id=address.id, opts=child
            )
    private_routes = {
        zone: aws.ec2.RouteTable(
            f"{name}-private-{zone}" if per_zone else f"{name}-private",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block=ANYWHERE, nat_gateway_id=nat.id)],
            opts=child,
        )
        for zone, nat in nats.items()
    }
    private_ids: dict[str, pulumi.Output[str]] = {}
    for index, zone in enumerate(zones):
        private = aws.ec2.Subnet(
            f"{name}-private-{zone}",
            vpc_id=vpc.id,
            cidr_block=layout.private[index],
            availability_zone=zone,
            tags={"kubernetes.io/role/internal-elb": "1", "Name": f"{spec.name}-private-{zone}"},
            opts=child,
        )
        routes = private_routes[zone] if per_zone else next(iter(private_routes.values()))
        aws.ec2.RouteTableAssociation(
            f"{name}-private-{zone}",
            subnet_id=private.id,
            route_table_id=routes.id,
            opts=child,
        )
        private_ids[zone] = private.id
    # No route table of their own: the VPC's main table routes inside the VPC, all they need.
    control_plane_ids = [
        aws.ec2.Subnet(
            f"{name}-control-plane-{zone}",
            vpc_id=vpc.id,
            cidr_block=layout.control_plane[index],
            availability_zone=zone,
            tags={"Name": f"{spec.name}-control-plane-{zone}"},
            opts=child,
        ).id
        for index, zone in enumerate(zones)
    ]
    return ClusterNetwork(
        vpc_id=vpc.id,
        control_plane_subnet_ids=pulumi.Output.all(*control_plane_ids),
        private_subnet_ids=pulumi.Output.all(*private_ids.values()),
        private_subnets_by_zone=private_ids,
    )
