"""NetworkPolicies for the add-on pods in kube-system, needed once the VPC CNI enforces strict
mode: there "you must have a network policy defined for every pod in your cluster", host-network
pods excepted (aws/amazon-vpc-cni-k8s README, NETWORK_POLICY_ENFORCING_MODE).

aws-node, kube-proxy and the Pod Identity agent run on the host network; CoreDNS and the EBS CSI
driver (controller and node plugin) do not, and without these they would get no network.
"""

from __future__ import annotations

KUBE_SYSTEM = "kube-system"
DNS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
HTTPS = [{"protocol": "TCP", "port": 443}]
# CoreDNS: liveness 8080, readiness 8181, metrics 9153 (the EKS add-on's Deployment).
COREDNS_PROBES = [{"protocol": "TCP", "port": port} for port in (8080, 8181, 9153)]
# The EBS CSI driver's liveness port on the controller and the node plugin (its chart's own
# NetworkPolicy templates allow it for the kubelet).
EBS_CSI_HEALTH = [{"protocol": "TCP", "port": 9808}]


def _policy(name: str, selector: dict[str, str], ingress: list, egress: list) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": KUBE_SYSTEM},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def kube_system_policies() -> list[dict]:
    """CoreDNS answers DNS from anywhere and asks upstream resolvers and the API server; the EBS
    CSI driver talks to the EC2, STS and Kubernetes APIs (HTTPS) and resolves their names."""
    return [
        _policy(
            "coredns",
            {"k8s-app": "kube-dns"},
            ingress=[{"ports": DNS}, {"ports": COREDNS_PROBES}],
            egress=[{"ports": DNS}, {"ports": HTTPS}],
        ),
        _policy(
            "aws-ebs-csi-driver",
            {"app.kubernetes.io/name": "aws-ebs-csi-driver"},
            ingress=[{"ports": EBS_CSI_HEALTH}],
            egress=[{"ports": DNS}, {"ports": HTTPS}],
        ),
    ]


# Karpenter's controller: metrics on 8080, health probes on 8081 (charts/karpenter values,
# controller.metrics.port and controller.healthProbe.port, v1.14.1).
KARPENTER_PORTS = [{"protocol": "TCP", "port": port} for port in (8080, 8081)]


def karpenter_policy() -> dict:
    """Karpenter calls the EC2, IAM, SQS, SSM, pricing and Kubernetes APIs (HTTPS) and resolves
    their names; it answers metrics scrapes and the kubelet's probes."""
    return _policy(
        "karpenter",
        {"app.kubernetes.io/name": "karpenter"},
        ingress=[{"ports": KARPENTER_PORTS}],
        egress=[{"ports": DNS}, {"ports": HTTPS}],
    )
