"""Our NetworkPolicy evaluator (infra.offline.network_reach) against an independent one.

The oracle is IBM's network-config-analyzer (NCA, PyPI `network-config-analyzer`), driven
through the Python API its `--connectivity` query runs on: `ResourcesHandler.get_network_config`
over NetworkPolicy, Namespace and Pod YAML, then `NetworkConfig.allowed_connections`, computed
once per stack; each flow is then a containment check in that connectivity set.

A small synthetic cluster stands in for each stack as rendered: a frontend and a worker per color
in every serving namespace, NATS in the platform namespace, Prometheus, CoreDNS, KEDA's operator
where KEDA runs, and a stranger in an unpoliced namespace. Every ordered pair of those pods, on a
handful of ports, must get the same verdict from both.

Only pod-to-pod flows between pod-network pods are compared: no ipBlock peers, External
endpoints or hostNetwork pods, and the pods get no `ip` or `node`. The two tools model addresses
differently: ours matches a pod's `ip` (as the VPC CNI hands out VPC addresses) and a hostNetwork
pod's node IP against ipBlocks, and lets a pod reach its own node; NCA keeps ipBlocks apart from
the pods it knows and has neither hostNetwork pods nor nodes. So a pod here is matched by
ipBlocks in neither tool (the VPC-only HTTPS rule admits no pod), and flows involving addresses
are left to tests/program/test_network_flows.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.dgd import COLOR_LABEL, MODEL_LABEL, OPERATOR_COMPONENT_TYPE_LABEL
from infra.offline.network_reach import NAMESPACE_NAME_LABEL, NetworkPolicies, Pod
from tests.conftest import Rendered

pytest.importorskip("nca", reason="network-config-analyzer (the oracle) is not installed")

STACKS = ("prod", "staging")
PLATFORM_NAMESPACE = "dynamo-system"
MONITORING_NAMESPACE = "monitoring"
KEDA_NAMESPACE = "keda"
FLOWS = (
    (8000, "TCP"),  # frontend HTTP
    (9090, "TCP"),  # worker system port, Prometheus' API
    (19090, "TCP"),  # NIXL
    (4222, "TCP"),  # NATS clients
    (7777, "TCP"),  # NATS exporter
    (53, "UDP"),  # DNS
    (53, "TCP"),
    (443, "TCP"),  # HTTPS
    (22, "TCP"),  # nothing should want SSH
)


def synthetic_pods(rendered: Rendered) -> list[Pod]:
    """The pods whose flows are compared: every role the policies tell apart."""
    models = {
        dgd["metadata"]["namespace"]: dgd["metadata"]["labels"][MODEL_LABEL]
        for dgd in rendered.objects("DynamoGraphDeployment")
    }
    assert models, "the stack renders no DynamoGraphDeployment"
    pods = []
    for namespace, model in sorted(models.items()):
        for color in ("blue", "green"):
            for component, ports in (("frontend", {"http": 8000}), ("worker", {"system": 9090})):
                labels = {
                    MODEL_LABEL: model,
                    COLOR_LABEL: color,
                    OPERATOR_COMPONENT_TYPE_LABEL: component,
                }
                pods.append(Pod(f"{model}-{color}-{component}", namespace, labels, ports))
    pods += [
        Pod("nats-0", PLATFORM_NAMESPACE, {"app.kubernetes.io/name": "nats"}, {"client": 4222}),
        Pod("prometheus-0", MONITORING_NAMESPACE, {"app.kubernetes.io/name": "prometheus"}),
        Pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, {"metrics": 9153}),
        Pod("stranger", "default", {"app": "curl"}),
    ]
    if any(n["metadata"]["name"] == KEDA_NAMESPACE for n in rendered.objects("Namespace")):
        pods.append(Pod("keda-operator", KEDA_NAMESPACE, {"app": "keda-operator"}))
    assert not any(pod.host_network for pod in pods)
    return pods


def pod_manifest(pod: Pod) -> dict[str, Any]:
    ports = [
        {"name": name, "containerPort": port, "protocol": "TCP"} for name, port in pod.ports.items()
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels)},
        "spec": {"containers": [{"name": "main", "image": "example.invalid/main", "ports": ports}]},
    }


def namespace_manifest(name: str, labels: Mapping[str, str]) -> dict[str, Any]:
    labels = {**labels, NAMESPACE_NAME_LABEL: name}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


class Oracle:
    """NCA's verdicts on a cluster's pod-to-pod flows, from one connectivity computation."""

    def __init__(
        self,
        directory: Path,
        policies: list[dict[str, Any]],
        namespaces: Mapping[str, Mapping[str, str]],
        pods: Iterable[Pod],
    ) -> None:
        from nca.CoreDS.ConnectivityProperties import ConnectivityProperties
        from nca.CoreDS.Peer import BasePeerSet, PeerSet
        from nca.CoreDS.PortSet import PortSet
        from nca.CoreDS.ProtocolSet import ProtocolSet
        from nca.NetworkConfig.ResourcesHandler import ResourcesHandler
        from nca.Resources.PolicyResources.NetworkPolicy import PolicyConnectionsFilter

        pods = list(pods)
        files = {
            "policies": policies,
            "namespaces": [namespace_manifest(name, labels) for name, labels in namespaces.items()],
            "pods": [pod_manifest(pod) for pod in pods],
        }
        paths = {}
        for name, documents in files.items():
            paths[name] = directory / f"{name}.yaml"
            paths[name].write_text(yaml.safe_dump_all(documents, sort_keys=False))
        BasePeerSet.reset()  # NCA keeps its peers in a process-wide singleton, as its CLI does
        config = ResourcesHandler().get_network_config(
            np_list=[str(paths["policies"])],
            ns_list=[str(paths["namespaces"])],
            pod_list=[str(paths["pods"])],
            resource_list=None,
        )
        # What `--connectivity` computes: every allowed connection, less impossible peer kinds.
        connections = config.allowed_connections(
            res_conns_filter=PolicyConnectionsFilter.only_all_allowed_connections()
        ).all_allowed_conns
        self._connections = config.filter_conns_by_peer_types(connections)
        self._peers = {str(peer): peer for peer in config.peer_container.get_all_peers_group()}
        # Guard against silent drops: NCA skips what it cannot parse, and adds simulated pods
        # (its "livesim" kube-dns, ingress controllers) when policies name ones it lacks.
        assert set(self._peers) == {str(pod) for pod in pods}, "NCA's pods are not ours"
        loaded = {name for name, _ in config.policies_container.policies}
        expected = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in policies}
        assert loaded == expected, f"NCA loaded other policies: {sorted(loaded ^ expected)}"
        self._make = ConnectivityProperties.make_conn_props_from_dict
        self._peer_set = PeerSet
        self._protocol = ProtocolSet.get_protocol_set_with_single_protocol
        self._port = PortSet.make_port_set_with_range

    def allows(self, src: Pod, dst: Pod, port: int, protocol: str) -> bool:
        flow = self._make(
            {
                "src_peers": self._peer_set({self._peers[str(src)]}),
                "dst_peers": self._peer_set({self._peers[str(dst)]}),
                "protocols": self._protocol(protocol),
                "dst_ports": self._port(port, port),
            }
        )
        return bool(flow.contained_in(self._connections))


@pytest.mark.parametrize("stack", STACKS)
def test_our_evaluator_agrees_with_network_config_analyzer(
    rendered: dict[str, Rendered], stack: str, tmp_path: Path
) -> None:
    policies = rendered[stack].objects("NetworkPolicy")
    assert policies
    namespace_labels = {
        n["metadata"]["name"]: n["metadata"].get("labels") or {}
        for n in rendered[stack].objects("Namespace")
    }
    pods = synthetic_pods(rendered[stack])
    # Every namespace a pod or policy lives in exists, with its labels if we render it.
    for namespace in {pod.namespace for pod in pods} | {
        p["metadata"]["namespace"] for p in policies
    }:
        namespace_labels.setdefault(namespace, {})
    ours = NetworkPolicies(policies, namespace_labels)
    oracle = Oracle(tmp_path, policies, namespace_labels, pods)

    disagreements = []
    compared = 0
    for src in pods:
        for dst in pods:
            if src == dst:
                continue  # a pod's traffic to itself: plugins differ, NCA's connectivity map omits it
            for port, protocol in FLOWS:
                verdict = ours.check(src, dst, port, protocol)
                expected = oracle.allows(src, dst, port, protocol)
                compared += 1
                if verdict.allowed != expected:
                    nca = "allowed" if expected else "denied"
                    disagreements.append(f"NCA: {nca}; ours: {verdict.reason}")
    assert not disagreements, (
        f"{stack}: {len(disagreements)} of {compared} flows differ:\n" + "\n".join(disagreements)
    )
