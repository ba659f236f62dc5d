"""Cluster: an EKS cluster with its VPC, IAM and add-ons, or an existing cluster's kubeconfig.

Either way the component hands out one Kubernetes provider that every Kubernetes resource uses.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from infra.stack.config import EksCluster, ExistingCluster

COMPONENT_TYPE = "dynamo-trtllm:cluster:Cluster"
# The Kubernetes provider replaces a ConfigMap whose data changes unless told otherwise; an engine
# config ConfigMap keeps its name, so a replace would delete it while pods still mount it. It is
# updated in place instead, and the engine-config hash in the DGD rolls the workers onto it.
ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE = True
# Managed add-ons; vpc-cni enforces NetworkPolicies only when told to.
ADDONS: dict[str, dict | None] = {
    "vpc-cni": {"enableNetworkPolicy": "true"},
    "coredns": None,
    "kube-proxy": None,
    "eks-pod-identity-agent": None,
}
NODE_POLICIES = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
)
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_SERVICE_ACCOUNT = ("kube-system", "ebs-csi-controller-sa")
DEFAULT_STORAGE_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


def irsa_trust_policy(oidc_provider_arn: str, issuer_url: str, namespace: str, account: str) -> str:
    """Only one service account of this cluster may assume the role (IAM roles for SAs)."""
    issuer = issuer_url.removeprefix("https://")
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{issuer}:aud": "sts.amazonaws.com",
                            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{account}",
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def gp3_storage_class() -> dict:
    """The cluster's default StorageClass: encrypted gp3 volumes, bound where the pod lands."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": "gp3",
            "annotations": {DEFAULT_STORAGE_CLASS_ANNOTATION: "true"},
        },
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Delete",
    }


def assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Split the VPC into one large private and one small public subnet per availability zone."""
    network = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(network.subnets(prefixlen_diff=2))
    private = [str(quarters[i]) for i in range(min(zones, 3))]
    public_block = quarters[3]
    public = [str(s) for s in list(public_block.subnets(prefixlen_diff=2))[:zones]]
    return private, public


def build_kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> str:
    """A kubeconfig that authenticates through `aws eks get-token` (no static credentials)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {"server": endpoint, "certificate-authority-data": ca_data},
                }
            ],
            "contexts": [
                {"name": cluster_name, "context": {"cluster": cluster_name, "user": "aws"}}
            ],
            "current-context": cluster_name,
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                region,
                            ],  # fmt: skip
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity] | None) -> str:
    oidcs = (identities or [])[0].oidcs or []
    return oidcs[0].issuer or ""


@dataclass(frozen=True)
class ClusterArgs:
    spec: EksCluster | ExistingCluster


class Cluster(pulumi.ComponentResource):
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    # EKS only (None for an existing cluster)
    eks_cluster: aws.eks.Cluster | None
    endpoint: pulumi.Output[str] | None
    node_role_arn: pulumi.Output[str] | None
    private_subnet_ids: pulumi.Output[list[str]] | None
    private_subnets_by_zone: dict[str, pulumi.Output[str]]  # empty for an existing VPC
    vpc_id: pulumi.Output[str] | None
    cluster_security_group_id: pulumi.Output[str] | None
    oidc_provider_arn: pulumi.Output[str] | None
    oidc_issuer_url: pulumi.Output[str] | None

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if isinstance(args.spec, ExistingCluster):
            self._existing(name, args.spec, child)
        else:
            self._eks(name, args.spec, child)
        self.register_outputs({"clusterName": self.cluster_name, "kubeconfig": self.kubeconfig})

    def _existing(self, name: str, spec: ExistingCluster, child: pulumi.ResourceOptions) -> None:
        self.eks_cluster = None
        self.endpoint = None
        self.node_role_arn = None
        self.private_subnet_ids = None
        self.private_subnets_by_zone = {}
        self.vpc_id = None
        self.cluster_security_group_id = None
        self.oidc_provider_arn = None
        self.oidc_issuer_url = None
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=spec.kubeconfig,
            context=spec.context,
            enable_server_side_apply=True,
            enable_config_map_mutable=ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE,
            opts=child,
        )
        self.cluster_name = pulumi.Output.from_input(spec.context or "current-context")
        self.kubeconfig = pulumi.Output.secret(spec.kubeconfig or "~/.kube/config")

    def _eks(self, name: str, spec: EksCluster, child: pulumi.ResourceOptions) -> None:
        private_subnets, public_subnets = self._network(name, spec, child)
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=assume_role_policy("eks.amazonaws.com"),
            opts=child,
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy",
            role=cluster_role.name,
            policy_arn="arn:aws:iam::aws:policy/AmazonEKSClusterPolicy",
            opts=child,
        )
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=spec.name,
            version=spec.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=pulumi.Output.all(private_subnets, public_subnets).apply(
                    lambda ids: [*ids[0], *ids[1]]
                ),
                endpoint_private_access=True,
                endpoint_public_access=spec.endpoint_public_access,
                public_access_cidrs=spec.public_access_cidrs,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy]),
        )
        self.eks_cluster = cluster
        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.cluster_security_group_id = cluster.vpc_config.cluster_security_group_id
        for index, principal in enumerate(spec.admin_principal_arns):
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=principal,
                opts=child,
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{index}",
                cluster_name=cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN_POLICY,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=child,
            )
        issuer_url = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer_url = issuer_url
        ebs_csi_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=pulumi.Output.all(oidc.arn, issuer_url).apply(
                lambda v: irsa_trust_policy(v[0], v[1], *EBS_CSI_SERVICE_ACCOUNT)
            ),
            opts=child,
        )
        ebs_csi_policy = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi", role=ebs_csi_role.name, policy_arn=EBS_CSI_POLICY, opts=child
        )

        node_role = aws.iam.Role(
            f"{name}-node-role",
            assume_role_policy=assume_role_policy("ec2.amazonaws.com"),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy.rsplit('/', 1)[-1]}",
                role=node_role.name,
                policy_arn=policy,
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        self.node_role_arn = node_role.arn
        self.private_subnet_ids = private_subnets

        system = spec.system_node_group
        system_nodes = aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            node_group_name="system",
            node_role_arn=node_role.arn,
            subnet_ids=private_subnets,
            instance_types=[system.instance_type],
            capacity_type="ON_DEMAND",
            ami_type="AL2023_x86_64_STANDARD",
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=system.min_size,
                max_size=system.max_size,
                desired_size=system.desired_size,
            ),
            labels={"dynamo-trtllm.io/node-role": "system"},
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
        for addon, configuration in ADDONS.items():
            aws.eks.Addon(
                f"{name}-{addon}",
                cluster_name=cluster.name,
                addon_name=addon,
                configuration_values=json.dumps(configuration) if configuration else None,
                resolve_conflicts_on_update="OVERWRITE",
                opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes]),
            )
        ebs_csi = aws.eks.Addon(
            f"{name}-aws-ebs-csi-driver",
            cluster_name=cluster.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_csi_role.arn,
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes, ebs_csi_policy]),
        )

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data
            ).apply(lambda v: build_kubeconfig(v[0], v[1], v[2], spec.region))
        )
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            enable_config_map_mutable=ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes]),
        )
        storage = gp3_storage_class()
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=storage["metadata"],
            provisioner=storage["provisioner"],
            parameters=storage["parameters"],
            volume_binding_mode=storage["volumeBindingMode"],
            allow_volume_expansion=storage["allowVolumeExpansion"],
            reclaim_policy=storage["reclaimPolicy"],
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_csi]),
        )

    def _network(
        self, name: str, spec: EksCluster, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[list[str]], pulumi.Output[list[str]]]:
        self.private_subnets_by_zone = {}
        if spec.vpc.existing:
            assert spec.vpc.id is not None
            self.vpc_id = pulumi.Output.from_input(spec.vpc.id)
            return (
                pulumi.Output.from_input(list(spec.vpc.private_subnet_ids)),
                pulumi.Output.from_input(list(spec.vpc.public_subnet_ids)),
            )
        zones = spec.vpc.availability_zones
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=spec.vpc.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": spec.name},
            opts=child,
        )
        self.vpc_id = vpc.id
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            opts=child,
        )
        private_cidrs, public_cidrs = subnet_cidrs(spec.vpc.cidr, len(zones))
        public_ids: list[pulumi.Output[str]] = []
        private_ids: list[pulumi.Output[str]] = []
        nat: aws.ec2.NatGateway | None = None
        for index, zone in enumerate(zones[: len(private_cidrs)]):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                cidr_block=public_cidrs[index],
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
            if nat is None:
                address = aws.ec2.Eip(f"{name}-nat", domain="vpc", opts=child)
                nat = aws.ec2.NatGateway(
                    f"{name}-nat", subnet_id=public.id, allocation_id=address.id, opts=child
                )
            public_ids.append(public.id)
        assert nat is not None
        private_routes = aws.ec2.RouteTable(
            f"{name}-private",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            opts=child,
        )
        for index, zone in enumerate(zones[: len(private_cidrs)]):
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[index],
                availability_zone=zone,
                tags={
                    "kubernetes.io/role/internal-elb": "1",
                    "Name": f"{spec.name}-private-{zone}",
                },
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}",
                subnet_id=private.id,
                route_table_id=private_routes.id,
                opts=child,
            )
            private_ids.append(private.id)
            self.private_subnets_by_zone[zone] = private.id
        return pulumi.Output.all(*private_ids), pulumi.Output.all(*public_ids)
