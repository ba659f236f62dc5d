"""The NetworkPolicy evaluator against small hand-written policies, one Kubernetes rule at a time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from infra.offline.network_reach import (
    NAMESPACE_NAME_LABEL,
    External,
    NetworkPolicies,
    Node,
    Pod,
)

NS = "serving"
CLIENT = Pod("client", NS, {"app": "client"})
SERVER = Pod("server", NS, {"app": "server"}, ports={"http": 8000})
INTERNET = External("203.0.113.9", "internet")
DENY_ALL: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def policy(spec: dict[str, Any], namespace: str = NS, name: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def admitting(ingress: list[dict[str, Any]], **namespace_labels: dict[str, str]) -> NetworkPolicies:
    """Ingress rules on SERVER alone, so a flow to it is decided by these rules only."""
    spec = {"podSelector": {"matchLabels": {"app": "server"}}, "ingress": ingress}
    return NetworkPolicies([policy(spec)], namespace_labels)


def test_without_policies_everything_flows() -> None:
    policies = NetworkPolicies([])
    assert policies.allows(CLIENT, SERVER, 8000)
    assert policies.allows(INTERNET, SERVER, 8000, "UDP")


def test_default_deny_blocks_both_directions() -> None:
    policies = NetworkPolicies([policy(DENY_ALL, name="deny-all")])
    verdict = policies.check(CLIENT, SERVER, 8000)
    assert not verdict.allowed
    assert "egress of serving/client isolated by [serving/deny-all]" in verdict.reason
    assert "ingress of serving/server isolated by [serving/deny-all]" in verdict.reason
    assert not policies.allows(CLIENT, INTERNET, 443)
    assert not policies.allows(INTERNET, SERVER, 8000)


def test_an_egress_allow_without_an_ingress_allow_is_denied() -> None:
    egress = {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}
    policies = NetworkPolicies([policy(DENY_ALL, name="deny-all"), policy(egress, name="out")])
    verdict = policies.check(CLIENT, SERVER, 8000)
    assert not verdict.allowed
    assert "egress of serving/client allowed by serving/out" in verdict.reason
    assert "no ingress rule matches" in verdict.reason


def test_an_egress_allow_and_an_ingress_allow_together_admit_the_flow() -> None:
    out = {"podSelector": {}, "egress": [{"to": [{"podSelector": {}}]}]}
    into = {"podSelector": {}, "ingress": [{"from": [{"podSelector": {}}]}]}
    policies = NetworkPolicies([policy(DENY_ALL), policy(out, name="out"), policy(into, name="in")])
    assert policies.allows(CLIENT, SERVER, 8000)
    assert not policies.allows(CLIENT, INTERNET, 443)


def test_rules_of_every_selecting_policy_add_up() -> None:
    web = {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]}
    tls = {
        "podSelector": {"matchLabels": {"app": "server"}},
        "ingress": [{"ports": [{"port": 443}]}],
    }
    policies = NetworkPolicies([policy(web, name="web"), policy(tls, name="tls")])
    assert policies.allows(CLIENT, SERVER, 80)
    assert policies.allows(CLIENT, SERVER, 443)
    assert not policies.allows(CLIENT, SERVER, 8000)
    assert not policies.allows(SERVER, CLIENT, 443)


EGRESS_TO_10_8 = [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]


@pytest.mark.parametrize(
    ("spec", "egress_isolated", "ingress_isolated"),
    [
        ({"podSelector": {}}, False, True),
        ({"podSelector": {}, "egress": EGRESS_TO_10_8}, True, True),
        # An empty egress list does not add Egress: the API server defaults on len(egress) != 0.
        ({"podSelector": {}, "egress": []}, False, True),
        ({"podSelector": {}, "policyTypes": [], "egress": EGRESS_TO_10_8}, True, True),
        ({"podSelector": {}, "policyTypes": ["Egress"], "ingress": []}, True, False),
        ({"podSelector": {}, "policyTypes": ["Ingress"], "egress": EGRESS_TO_10_8}, False, True),
    ],
)
def test_policy_types_default_to_ingress_plus_egress_when_there_are_egress_rules(
    spec: dict[str, Any], egress_isolated: bool, ingress_isolated: bool
) -> None:
    policies = NetworkPolicies([policy(spec)])
    assert policies.allows(CLIENT, INTERNET, 443) is not egress_isolated
    assert policies.allows(INTERNET, SERVER, 8000) is not ingress_isolated


def test_an_empty_rule_allows_everything_and_no_rule_allows_nothing() -> None:
    stranger = Pod("stranger", "elsewhere", {"app": "other"})
    for flow in [(stranger, SERVER, 1, "TCP"), (INTERNET, SERVER, 65535, "UDP")]:
        assert admitting([{}]).allows(*flow)
        assert admitting([{"from": [], "ports": []}]).allows(*flow)
        assert not admitting([]).allows(*flow)
        assert not NetworkPolicies([policy({"podSelector": {}})]).allows(*flow)


def test_yaml_nulls_are_absent_fields() -> None:
    assert admitting([{"from": None, "ports": None}]).allows(INTERNET, SERVER, 8000)
    nulls = {"podSelector": {}, "policyTypes": None, "ingress": None, "egress": None}
    policies = NetworkPolicies([policy(nulls)])
    assert not policies.allows(INTERNET, SERVER, 8000)
    assert policies.allows(CLIENT, INTERNET, 443)


def test_a_named_port_resolves_on_the_destination_pod() -> None:
    policies = admitting([{"ports": [{"port": "http"}]}])
    assert policies.allows(CLIENT, SERVER, 8000)
    assert not policies.allows(CLIENT, SERVER, 8001)
    unnamed = Pod("unnamed", NS, {"app": "server"})
    assert not policies.allows(CLIENT, unnamed, 8000)


def test_a_named_port_in_an_egress_rule_also_resolves_on_the_destination() -> None:
    client = Pod("client", NS, {"app": "client"}, ports={"http": 9999})
    spec = {
        "podSelector": {"matchLabels": {"app": "client"}},
        "egress": [{"ports": [{"port": "http"}]}],
    }
    policies = NetworkPolicies([policy(spec)])
    assert policies.allows(client, SERVER, 8000)
    assert not policies.allows(client, SERVER, 9999)
    assert not policies.allows(client, External("10.0.0.1"), 8000)  # nothing to resolve it on


def test_end_port_makes_an_inclusive_range() -> None:
    policies = admitting([{"ports": [{"port": 9000, "endPort": 9010}]}])
    ports = (8999, 9000, 9005, 9010, 9011)
    assert {p for p in ports if policies.allows(CLIENT, SERVER, p)} == {9000, 9005, 9010}


def test_the_protocol_defaults_to_tcp_and_must_match() -> None:
    assert not admitting([{"ports": [{"port": 53}]}]).allows(CLIENT, SERVER, 53, "UDP")
    udp = admitting([{"ports": [{"protocol": "UDP", "port": 53}]}])
    assert udp.allows(CLIENT, SERVER, 53, "UDP")
    assert not udp.allows(CLIENT, SERVER, 53)
    sctp_any_port = admitting([{"ports": [{"protocol": "SCTP"}]}])
    assert sctp_any_port.allows(CLIENT, SERVER, 38412, "SCTP")
    assert not sctp_any_port.allows(CLIENT, SERVER, 38412, "TCP")


@pytest.mark.parametrize(
    ("operator", "values", "labels", "selected"),
    [
        ("In", ["a", "b"], {"tier": "b"}, True),
        ("In", ["a", "b"], {"tier": "c"}, False),
        ("In", ["a", "b"], {}, False),
        ("NotIn", ["a", "b"], {"tier": "c"}, True),
        ("NotIn", ["a", "b"], {"tier": "a"}, False),
        ("NotIn", ["a", "b"], {}, True),  # a missing key is not in the set
        ("Exists", [], {"tier": ""}, True),
        ("Exists", [], {}, False),
        ("DoesNotExist", [], {}, True),
        ("DoesNotExist", [], {"tier": "a"}, False),
    ],
)
def test_match_expression_operators(
    operator: str, values: list[str], labels: dict[str, str], selected: bool
) -> None:
    expression = {"key": "tier", "operator": operator, "values": values}
    policies = admitting([{"from": [{"podSelector": {"matchExpressions": [expression]}}]}])
    assert policies.allows(Pod("source", NS, labels), SERVER, 8000) is selected


def test_match_labels_and_match_expressions_must_all_hold() -> None:
    selector = {
        "matchLabels": {"app": "client", "team": "ml"},
        "matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}],
    }
    policies = admitting([{"from": [{"podSelector": selector}]}])
    assert policies.allows(Pod("c", NS, {"app": "client", "team": "ml", "x": "y"}), SERVER, 80)
    assert not policies.allows(Pod("c", NS, {"app": "client"}), SERVER, 80)
    assert not policies.allows(
        Pod("c", NS, {"app": "client", "team": "ml", "canary": "1"}), SERVER, 80
    )


def test_a_pod_selector_peer_only_reaches_the_policys_namespace() -> None:
    policies = admitting([{"from": [{"podSelector": {}}]}])
    assert policies.allows(CLIENT, SERVER, 8000)
    assert not policies.allows(Pod("client", "elsewhere", {"app": "client"}), SERVER, 8000)
    assert not policies.allows(INTERNET, SERVER, 8000)


def test_a_namespace_selector_peer_admits_every_pod_of_matching_namespaces() -> None:
    policies = admitting(
        [{"from": [{"namespaceSelector": {"matchLabels": {"role": "edge"}}}]}],
        gateway={"role": "edge"},
    )
    assert policies.allows(Pod("anything", "gateway"), SERVER, 8000)
    assert not policies.allows(Pod("anything", "elsewhere"), SERVER, 8000)
    assert not policies.allows(CLIENT, SERVER, 8000)


def test_namespaces_carry_their_name_label_which_cannot_be_overridden() -> None:
    by_name = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: "gateway"}}}
    assert admitting([{"from": [by_name]}]).allows(Pod("gw", "gateway"), SERVER, 8000)
    spoofing = admitting([{"from": [by_name]}], elsewhere={NAMESPACE_NAME_LABEL: "gateway"})
    assert not spoofing.allows(Pod("gw", "elsewhere"), SERVER, 8000)


EDGE = {"namespaceSelector": {"matchLabels": {"role": "edge"}}}
PROXY = {"podSelector": {"matchLabels": {"app": "proxy"}}}


def test_namespace_and_pod_selectors_in_one_peer_must_both_match() -> None:
    policies = admitting([{"from": [EDGE | PROXY]}], gateway={"role": "edge"})
    assert policies.allows(Pod("proxy", "gateway", {"app": "proxy"}), SERVER, 8000)
    assert not policies.allows(Pod("other", "gateway", {"app": "other"}), SERVER, 8000)
    assert not policies.allows(Pod("proxy", NS, {"app": "proxy"}), SERVER, 8000)


def test_namespace_and_pod_selectors_in_two_peers_either_match() -> None:
    policies = admitting([{"from": [EDGE, PROXY]}], gateway={"role": "edge"})
    assert policies.allows(Pod("other", "gateway", {"app": "other"}), SERVER, 8000)
    assert policies.allows(Pod("proxy", NS, {"app": "proxy"}), SERVER, 8000)
    assert not policies.allows(Pod("proxy", "elsewhere", {"app": "proxy"}), SERVER, 8000)


def test_an_ip_block_matches_external_addresses_outside_its_exceptions() -> None:
    block = {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.96.0.0/12"]}}
    spec = {"podSelector": {}, "egress": [{"to": [block], "ports": [{"port": 443}]}]}
    policies = NetworkPolicies([policy(spec)])
    assert policies.allows(CLIENT, External("10.1.2.3"), 443)
    assert not policies.allows(CLIENT, External("10.1.2.3"), 80)
    assert not policies.allows(CLIENT, External("10.96.0.1", "api-server"), 443)
    assert not policies.allows(CLIENT, External("10.111.255.255"), 443)
    assert policies.allows(CLIENT, External("10.112.0.0"), 443)
    assert not policies.allows(CLIENT, External("192.0.2.1"), 443)
    assert not policies.allows(CLIENT, External("2001:db8::1"), 443)


def test_an_ip_block_matches_a_pod_by_its_vpc_address() -> None:
    """On the VPC CNI pods have VPC addresses, so a block covering the VPC covers its pods."""
    policies = admitting([{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]}])
    assert policies.allows(replace(CLIENT, ip="10.0.3.7"), SERVER, 8000)
    assert not policies.allows(replace(CLIENT, ip="10.1.3.7"), SERVER, 8000)
    assert not policies.allows(CLIENT, SERVER, 8000)  # an address not modelled matches no block


def test_a_pod_and_its_own_node_always_reach_each_other() -> None:
    """The NetworkPolicy API: traffic to and from the pod's node is always allowed (kubelet
    probes), whatever the policies say; another node gets no such pass."""
    isolated = NetworkPolicies([policy(DENY_ALL, name="deny-all")])
    server = replace(SERVER, node="node-a")
    own, other = Node("node-a", "10.0.1.5"), Node("node-b", "10.0.2.5")
    assert isolated.allows(own, server, 8000) and isolated.allows(server, own, 10250)
    assert not isolated.allows(other, server, 8000)
    kubelet_proxy = Pod("agent", NS, host_network=True, node_ip="10.0.1.5", node="node-a")
    assert isolated.allows(kubelet_proxy, server, 8000)
    assert "own node" in isolated.check(own, server, 8000).reason


def test_a_host_network_pod_is_its_node_ip_and_never_isolated() -> None:
    node_agent = Pod("agent", NS, {"app": "agent"}, host_network=True, node_ip="10.0.1.5")
    from_nodes = {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}]}]}
    policies = NetworkPolicies(
        [policy(DENY_ALL, name="deny-all"), policy(from_nodes, name="nodes")]
    )
    assert policies.allows(node_agent, SERVER, 8000)
    assert policies.allows(INTERNET, node_agent, 9100)
    assert not policies.allows(CLIENT, node_agent, 9100)  # the client's egress is still closed
    by_selector = admitting([{"from": [{"podSelector": {}}]}])
    assert not by_selector.allows(node_agent, SERVER, 8000)


def test_policies_in_other_namespaces_never_select_a_pod() -> None:
    elsewhere = {
        "podSelector": {"matchLabels": {"app": "server"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    policies = NetworkPolicies([policy(elsewhere, namespace="elsewhere")])
    verdict = policies.check(CLIENT, SERVER, 8000)
    assert verdict.allowed
    assert "ingress of serving/server is not isolated" in verdict.reason


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"podSelector": {}, "egres": []}, "spec.egres"),
        ({"ingress": []}, "spec.podSelector"),
        ({"podSelector": {}, "policyTypes": ["Inbound"]}, "spec.policyTypes"),
        ({"podSelector": {}, "egress": [{"from": []}]}, "spec.egress.0.from"),
        ({"podSelector": {}, "ingress": [{"from": [{}]}]}, "a peer is an ipBlock"),
        (
            {
                "podSelector": {},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}} | PROXY]}],
            },
            "not both",
        ),
        (
            {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}]},
            "cidr",
        ),
        (
            {
                "podSelector": {},
                "egress": [
                    {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}
                ],
            },
            "not a strict subset",
        ),
        ({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}, "need values"),
        (
            {
                "podSelector": {
                    "matchExpressions": [{"key": "a", "operator": "Like", "values": ["b"]}]
                }
            },
            "operator",
        ),
        ({"podSelector": {"matchLabels": {"a": 1}}}, "matchLabels.a"),
        ({"podSelector": {}, "ingress": [{"ports": [{"port": "8000"}]}]}, "ports.0.port"),
        ({"podSelector": {}, "ingress": [{"ports": [{"port": True}]}]}, "ports.0.port"),
        ({"podSelector": {}, "ingress": [{"ports": [{"port": 70000}]}]}, "ports.0.port"),
        (
            {"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 9000}]}]},
            "endPort",
        ),
        ({"podSelector": {}, "ingress": [{"ports": [{"port": 9000, "endPort": 80}]}]}, "endPort"),
        ({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}, "protocol"),
    ],
)
def test_malformed_policies_are_rejected_naming_the_policy(
    spec: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match="NetworkPolicy serving/bad") as raised:
        NetworkPolicies([policy(spec, name="bad")])
    assert problem in str(raised.value)


def test_only_networking_v1_network_policies_are_accepted() -> None:
    wrong_kind = policy({"podSelector": {}}, name="bad") | {"kind": "CiliumNetworkPolicy"}
    with pytest.raises(ValueError, match="NetworkPolicy serving/bad"):
        NetworkPolicies([wrong_kind])


@pytest.mark.parametrize(("port", "protocol"), [(0, "TCP"), (65536, "TCP"), (53, "ICMP")])
def test_a_flow_needs_a_real_port_and_protocol(port: int, protocol: str) -> None:
    with pytest.raises(ValueError, match="not a flow"):
        NetworkPolicies([]).allows(CLIENT, SERVER, port, protocol)


def test_endpoints_reject_bad_addresses() -> None:
    with pytest.raises(ValueError):
        External("not-an-ip")
    with pytest.raises(ValueError, match="node_ip"):
        Pod("agent", NS, host_network=True)
    with pytest.raises(ValueError, match="not an ip"):
        Pod("agent", NS, host_network=True, node_ip="10.0.1.5", ip="10.0.1.6")
    with pytest.raises(ValueError):
        Node("n", "nowhere")
