"""Cluster: an EKS cluster with its VPC, IAM and add-ons, or an existing cluster's kubeconfig.

Either way the component hands out one Kubernetes provider that every Kubernetes resource uses.
The EKS parts live by concern in cluster_network, cluster_iam, cluster_access_entries,
cluster_addons and node_launch_template; this module puts them in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_access_entries import admin_access_entries
from components.cluster_addons import (
    AFTER_NODES,
    BEFORE_NODES,
    managed_addons,
    vpc_cni_configuration,
)
from components.cluster_iam import (
    CLUSTER_POLICY,
    EBS_CSI_POLICY,
    EBS_CSI_SERVICE_ACCOUNT,
    NODE_POLICIES,
    VPC_CNI_POLICY,
    VPC_CNI_SERVICE_ACCOUNT,
    assume_role_policy,
    secrets_key,
    service_account_role,
    service_role,
)
from components.cluster_kubernetes import build_kubeconfig, gp3_storage_class
from components.cluster_network import build_network
from components.node_launch_template import (
    encrypted_root_volume,
    imdsv2_metadata_options,
    tag_specifications,
)
from components.system_network_policies import kube_system_policies
from infra.stack.cluster_config import EksCluster, ExistingCluster
from infra.stack.eks_versions import DEFAULT_AL2023_RELEASES, EBS_CSI_DRIVER, VPC_CNI

COMPONENT_TYPE = "dynamo-trtllm:cluster:Cluster"
# The Kubernetes provider replaces a ConfigMap whose data changes unless told otherwise; an engine
# config ConfigMap keeps its name, so a replace would delete it while pods still mount it. It is
# updated in place instead, and the engine-config hash in the DGD rolls the workers onto it.
ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE = True
SYSTEM_NODE_LABELS = {"dynamo-trtllm.io/node-role": "system"}
SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
SYSTEM_ROOT_DEVICE = "/dev/xvda"  # AL2023 keeps images and pod data on its root volume
# A create-only EKS setting: an existing cluster keeps the value it was made with rather than
# being replaced (terraform-aws-eks main.tf ignores it the same way).
CREATE_ONLY_ACCESS_FIELD = "accessConfig.bootstrapClusterCreatorAdminPermissions"


def _oidc_issuer(identities: Sequence[aws.eks.outputs.ClusterIdentity] | None) -> str:
    oidcs = (identities or [])[0].oidcs or []
    return oidcs[0].issuer or ""


def control_plane_log_group(cluster_name: str) -> str:
    """Where EKS writes control-plane logs: made first, with its retention, so EKS does not make
    it without one (docs.aws.amazon.com/eks/latest/userguide/control-plane-logs.html)."""
    return f"/aws/eks/{cluster_name}/cluster"


def system_ami_release(spec: EksCluster) -> str:
    return (
        spec.system_node_group.ami_release_version
        or DEFAULT_AL2023_RELEASES[spec.kubernetes_version]
    )


@dataclass(frozen=True)
class ClusterArgs:
    spec: EksCluster | ExistingCluster
    # Tags for what the system nodes' instances create (the provider tags everything else).
    node_tags: Mapping[str, str] = field(default_factory=dict)


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
    # What a node group must wait for: its role's policies and the networking add-ons.
    node_prerequisites: list[pulumi.Resource]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if isinstance(args.spec, ExistingCluster):
            self._existing(name, args.spec, child)
        else:
            self._eks(name, args.spec, args.node_tags, child)
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
        self.node_prerequisites = []
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

    def _eks(
        self,
        name: str,
        spec: EksCluster,
        node_tags: Mapping[str, str],
        child: pulumi.ResourceOptions,
    ) -> None:
        network = build_network(name, spec, child)
        self.vpc_id = network.vpc_id
        self.private_subnet_ids = network.private_subnet_ids
        self.private_subnets_by_zone = network.private_subnets_by_zone
        cluster = self._control_plane(name, spec, network.control_plane_subnet_ids, child)
        admins = admin_access_entries(name, cluster.name, spec.admin_principal_arns, child)
        addon_roles = self._service_account_roles(name, cluster, child)
        role_policies = [attachment for _, attachment in addon_roles.values()]

        def install(
            addons: Sequence[str], after: Sequence[pulumi.Resource]
        ) -> dict[str, aws.eks.Addon]:
            return managed_addons(
                name,
                cluster.name,
                spec.addons.pinned(spec.kubernetes_version),
                addons,
                {VPC_CNI: vpc_cni_configuration(spec.network_policy_enforcing_mode)},
                {addon: role.arn for addon, (role, _) in addon_roles.items()},
                pulumi.ResourceOptions(parent=self, depends_on=[*after, *role_policies]),
            )

        node_role, node_policies = service_role(
            f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES, child
        )
        self.node_role_arn = node_role.arn
        self.node_prerequisites = [*node_policies, *install(BEFORE_NODES, []).values()]
        system_nodes = self._system_nodes(name, spec, cluster, node_role, node_tags, child)

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(
                cluster.name, cluster.endpoint, cluster.certificate_authority.data
            ).apply(lambda v: build_kubeconfig(v[0], v[1], v[2], spec.region))
        )
        # Kubernetes objects wait for nodes to run on and for the deployer's admin access.
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            enable_server_side_apply=True,
            enable_config_map_mutable=ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[system_nodes, *admins]),
        )
        in_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        strict = spec.network_policy_enforcing_mode == "strict"
        system_policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-kube-system-{policy['metadata']['name']}",
                metadata=policy["metadata"],
                spec=policy["spec"],
                opts=in_cluster,
            )
            for policy in (kube_system_policies() if strict else [])
        ]
        workloads = install(AFTER_NODES, [system_nodes, *system_policies])
        storage = gp3_storage_class(node_tags, retain=spec.protect)
        k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata=storage["metadata"],
            provisioner=storage["provisioner"],
            parameters=storage["parameters"],
            volume_binding_mode=storage["volumeBindingMode"],
            allow_volume_expansion=storage["allowVolumeExpansion"],
            reclaim_policy=storage["reclaimPolicy"],
            opts=pulumi.ResourceOptions.merge(
                in_cluster, pulumi.ResourceOptions(depends_on=[workloads[EBS_CSI_DRIVER]])
            ),
        )

    def _control_plane(
        self,
        name: str,
        spec: EksCluster,
        control_plane_subnets: pulumi.Output[list[str]],
        child: pulumi.ResourceOptions,
    ) -> aws.eks.Cluster:
        """The EKS cluster: logged, Secrets encrypted, protected, reachable as stated."""
        cluster_role = aws.iam.Role(
            f"{name}-cluster-role",
            assume_role_policy=assume_role_policy("eks.amazonaws.com"),
            opts=child,
        )
        prerequisites: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-policy",
                role=cluster_role.name,
                policy_arn=CLUSTER_POLICY,
                opts=child,
            )
        ]
        stateful = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=spec.protect))
        logs = spec.control_plane_logs
        if logs.types:
            prerequisites.append(
                aws.cloudwatch.LogGroup(
                    f"{name}-control-plane-logs",
                    name=control_plane_log_group(spec.name),
                    retention_in_days=logs.retention_days,
                    opts=stateful,
                )
            )
        encryption = None
        if spec.secrets_encryption:
            key, key_usage = secrets_key(name, spec.name, cluster_role, spec.protect, child)
            prerequisites.append(key_usage)
            encryption = aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn),
                resources=["secrets"],
            )
        access = spec.endpoint_access
        public = access.mode == "public-and-private"
        cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=spec.name,
            version=spec.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                # EKS puts its network interfaces (the private endpoint, the API server's
                # calls into the VPC) here; nodes use the private subnets. A change moves them
                # in place as long as every zone the cluster began with keeps one
                # (docs.aws.amazon.com/eks/latest/userguide/network-reqs.html).
                subnet_ids=control_plane_subnets,
                endpoint_private_access=True,
                endpoint_public_access=public,
                public_access_cidrs=list(access.public_access_cidrs) if public else None,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            enabled_cluster_log_types=list(logs.types),
            encryption_config=encryption,
            upgrade_policy=aws.eks.ClusterUpgradePolicyArgs(
                support_type=spec.upgrade_policy.support_type
            ),
            deletion_protection=spec.protect,
            opts=pulumi.ResourceOptions.merge(
                stateful,
                pulumi.ResourceOptions(
                    depends_on=prerequisites, ignore_changes=[CREATE_ONLY_ACCESS_FIELD]
                ),
            ),
        )
        self.eks_cluster = cluster
        self.cluster_name = cluster.name
        self.endpoint = cluster.endpoint
        self.cluster_security_group_id = cluster.vpc_config.cluster_security_group_id
        for cidr in access.runner_cidrs:
            # A private endpoint answers what the cluster security group lets in on 443: the
            # runner's network (docs.aws.amazon.com/eks/latest/userguide/cluster-endpoint.html).
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-runner-{cidr.replace('.', '-').replace('/', '-')}",
                security_group_id=self.cluster_security_group_id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"pulumi up runner ({access.runner}) to the API server",
                opts=child,
            )
        return cluster

    def _service_account_roles(
        self, name: str, cluster: aws.eks.Cluster, child: pulumi.ResourceOptions
    ) -> dict[str, tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]]:
        """The cluster's OIDC provider, and an IAM role for each add-on that calls AWS."""
        issuer_url = cluster.identities.apply(_oidc_issuer)
        oidc = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=issuer_url,
            client_id_lists=["sts.amazonaws.com"],
            opts=child,
        )
        self.oidc_provider_arn = oidc.arn
        self.oidc_issuer_url = issuer_url
        return {
            EBS_CSI_DRIVER: service_account_role(
                f"{name}-ebs-csi",
                oidc.arn,
                issuer_url,
                EBS_CSI_SERVICE_ACCOUNT,
                EBS_CSI_POLICY,
                child,
            ),
            VPC_CNI: service_account_role(
                f"{name}-vpc-cni",
                oidc.arn,
                issuer_url,
                VPC_CNI_SERVICE_ACCOUNT,
                VPC_CNI_POLICY,
                child,
            ),
        }

    def _system_nodes(
        self,
        name: str,
        spec: EksCluster,
        cluster: aws.eks.Cluster,
        node_role: aws.iam.Role,
        node_tags: Mapping[str, str],
        child: pulumi.ResourceOptions,
    ) -> aws.eks.NodeGroup:
        """On-demand nodes for the platform, with the launch template every node of ours has."""
        system = spec.system_node_group
        template = aws.ec2.LaunchTemplate(
            f"{name}-system-template",
            metadata_options=imdsv2_metadata_options(),
            block_device_mappings=[
                encrypted_root_volume(SYSTEM_ROOT_DEVICE, system.root_volume_gib)
            ],
            tag_specifications=tag_specifications(node_tags),
            opts=child,
        )
        return aws.eks.NodeGroup(
            f"{name}-system",
            cluster_name=cluster.name,
            # A prefix, not a fixed name: a replacement can then start before the old group goes.
            node_group_name_prefix="system-",
            node_role_arn=node_role.arn,
            subnet_ids=self.private_subnet_ids,
            instance_types=[system.instance_type],
            capacity_type="ON_DEMAND",
            ami_type=SYSTEM_AMI_TYPE,
            release_version=system_ami_release(spec),
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=system.min_size,
                max_size=system.max_size,
                desired_size=system.desired_size,
            ),
            labels=SYSTEM_NODE_LABELS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.node_prerequisites),
        )
