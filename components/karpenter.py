"""Karpenter: the controller that starts GPU nodes for pods that wait and removes empty ones.

Installed when a pool has `provisioner: karpenter`: its CRDs and controller from the official
charts (pinned), an IAM role for its service account, a role for the nodes it launches (with the
EKS access entry they join with: the cluster authenticates by access entries only), and the SQS
queue EventBridge fills with spot, rebalance, health and reservation notices, so nodes are
drained before EC2 takes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_iam import irsa_trust_policy, service_role
from components.helm_values import (
    ContainerResources,
    KarpenterController,
    KarpenterServiceAccount,
    KarpenterSettings,
    KarpenterValues,
    ResourceAmounts,
)
from components.karpenter_iam import (
    INTERRUPTION_EVENTS,
    KARPENTER_NODE_POLICIES,
    QUEUE_RETENTION_SECONDS,
    arn_parts,
    controller_policy,
    event_pattern,
    queue_policy,
)
from components.system_network_policies import karpenter_policy
from infra.stack.pool_config import (
    KARPENTER_CONTROLLER_CPU,
    KARPENTER_CONTROLLER_MEMORY,
    karpenter_controller_replicas,
)

COMPONENT_TYPE = "dynamo-trtllm:nodes:Karpenter"
# Karpenter's documented install namespace and service account (getting-started guide).
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
CRD_CHART = "oci://public.ecr.aws/karpenter/karpenter-crd"
CONTROLLER_CHART = "oci://public.ecr.aws/karpenter/karpenter"
CONTROLLER_RESOURCES = ResourceAmounts(
    cpu=KARPENTER_CONTROLLER_CPU, memory=KARPENTER_CONTROLLER_MEMORY
)
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"


def build_karpenter_values(
    cluster_name: str,
    queue_name: str,
    role_arn: str,
    system_nodes: int,
    node_selector: dict[str, str],
) -> KarpenterValues:
    """The controller on the system nodes (never on a node it manages), with its IAM role."""
    return KarpenterValues(
        settings=KarpenterSettings(cluster_name=cluster_name, interruption_queue=queue_name),
        service_account=KarpenterServiceAccount(
            name=SERVICE_ACCOUNT, annotations={IRSA_ANNOTATION: role_arn}
        ),
        replicas=karpenter_controller_replicas(system_nodes),
        node_selector=node_selector,
        controller=KarpenterController(
            resources=ContainerResources(requests=CONTROLLER_RESOURCES, limits=CONTROLLER_RESOURCES)
        ),
    )


@dataclass(frozen=True)
class KarpenterArgs:
    cluster_name: str  # the EKS cluster's name (cluster.name)
    region: str
    cluster: aws.eks.Cluster
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    chart_version: str
    system_nodes: int  # the system node group's minSize
    system_node_selector: dict[str, str]
    # The VPC CNI enforces strict mode: the controller's pods need a NetworkPolicy of their own.
    network_policy: bool = True


class Karpenter(pulumi.ComponentResource):
    node_role: aws.iam.Role
    controller: k8s.helm.v3.Release

    def __init__(self, name: str, args: KarpenterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.node_role, node_policies = service_role(
            f"{name}-node-role", "ec2.amazonaws.com", KARPENTER_NODE_POLICIES, child
        )
        # Karpenter's nodes are not a managed node group, so EKS makes them no access entry.
        node_access = aws.eks.AccessEntry(
            f"{name}-nodes",
            cluster_name=args.cluster.name,
            principal_arn=self.node_role.arn,
            type="EC2_LINUX",
            opts=child,
        )
        queue = self._interruption_queue(name, args.cluster_name, child)
        role = aws.iam.Role(
            f"{name}-controller",
            assume_role_policy=pulumi.Output.all(
                args.oidc_provider_arn, args.oidc_issuer_url
            ).apply(lambda v: irsa_trust_policy(v[0], v[1], NAMESPACE, SERVICE_ACCOUNT)),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-controller",
            role=role.id,
            policy=pulumi.Output.all(args.cluster.arn, self.node_role.arn, queue.arn).apply(
                lambda v: json.dumps(
                    controller_policy(*arn_parts(v[0]), args.region, args.cluster_name, v[1], v[2]),
                    sort_keys=True,
                )
            ),
            opts=child,
        )
        crds = k8s.helm.v3.Release(
            f"{name}-crd",
            name="karpenter-crd",
            chart=CRD_CHART,
            version=args.chart_version,
            namespace=NAMESPACE,
            opts=child,
        )
        network: list[pulumi.Resource] = []
        if args.network_policy:
            manifest = karpenter_policy()
            network.append(
                k8s.networking.v1.NetworkPolicy(
                    f"{name}-network",
                    metadata=manifest["metadata"],
                    spec=manifest["spec"],
                    opts=child,
                )
            )
        values = role.arn.apply(
            lambda arn: build_karpenter_values(
                args.cluster_name,
                args.cluster_name,
                arn,
                args.system_nodes,
                args.system_node_selector,
            ).dump()
        )
        self.controller = k8s.helm.v3.Release(
            name,
            name="karpenter",
            chart=CONTROLLER_CHART,
            version=args.chart_version,
            namespace=NAMESPACE,
            # The CRDs come from their own chart, which Helm also upgrades (it never upgrades a
            # chart's crds/ folder).
            skip_crds=True,
            values=values,
            atomic=True,
            timeout=600,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[crds, policy, node_access, *node_policies, *network],
            ),
        )
        self.register_outputs({"interruptionQueue": queue.name, "nodeRole": self.node_role.name})

    def _interruption_queue(
        self, name: str, queue_name: str, child: pulumi.ResourceOptions
    ) -> aws.sqs.Queue:
        """The queue (named as the cluster, as Karpenter's template does) and its events."""
        queue = aws.sqs.Queue(
            f"{name}-interruptions",
            name=queue_name,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-interruptions",
            queue_url=queue.url,
            policy=queue.arn.apply(queue_policy),
            opts=child,
        )
        for event, (source, detail_type) in INTERRUPTION_EVENTS.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event}",
                description=f"Karpenter: {detail_type}",
                event_pattern=event_pattern(source, detail_type),
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event}",
                rule=rule.name,
                arn=queue.arn,
                target_id="KarpenterInterruptionQueueTarget",
                opts=child,
            )
        return queue
