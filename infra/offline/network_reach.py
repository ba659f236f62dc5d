"""Which flows a set of NetworkPolicies allows, with networking.k8s.io/v1 semantics.

Tests use it to prove what rendered policies permit and deny, instead of matching strings.
What Kubernetes leaves to the network plugin is fixed as the VPC CNI does it: a pod-network pod
with an `ip` (the VPC CNI gives pods VPC addresses) is matched by ipBlock peers covering it, one
without an `ip` by none; a hostNetwork pod is its node's IP: never isolated, and matched only by
ipBlock peers covering `node_ip`. Traffic between a pod and its own node (a `Node`, or a
hostNetwork pod on it: the kubelet's probes) is always allowed, as the NetworkPolicy API says.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic.alias_generators import to_camel

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

Direction = Literal["Ingress", "Egress"]
Protocol = Literal["TCP", "UDP", "SCTP"]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Pod:
    """A pod as policies see it; `ports` are its named container ports, for named-port rules."""

    name: str
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: Mapping[str, int] = field(default_factory=dict)
    host_network: bool = False
    node_ip: str | None = None  # the address a hostNetwork pod's traffic carries
    ip: str | None = None  # a pod-network pod's own address (None: matched by no ipBlock)
    node: str | None = None  # the node it runs on

    def __post_init__(self) -> None:
        if self.host_network != (self.node_ip is not None):
            raise ValueError(f"pod {self}: node_ip is required with host_network, and only then")
        if self.host_network and self.ip is not None:
            raise ValueError(f"pod {self}: a hostNetwork pod has its node's address, not an ip")
        for address in (self.node_ip, self.ip):
            if address is not None:
                ipaddress.ip_address(address)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class External:
    """An address outside the pod network: the API server, S3, the internet."""

    ip: str
    name: str = ""

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.ip)

    def __str__(self) -> str:
        return f"{self.name} ({self.ip})" if self.name else self.ip


@dataclass(frozen=True)
class Node:
    """A node itself (the kubelet, host processes), at its address."""

    name: str
    ip: str

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.ip)

    def __str__(self) -> str:
        return f"node {self.name} ({self.ip})"


Endpoint = Pod | External | Node


def _node_of(endpoint: Endpoint) -> str | None:
    """The node an endpoint is on, when it is the node itself or shares its network."""
    if isinstance(endpoint, Node):
        return endpoint.name
    if isinstance(endpoint, Pod) and endpoint.host_network:
        return endpoint.node
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether a flow is allowed, and why: which policies isolate or admit each end."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class _Flow:
    src: Endpoint
    dst: Endpoint
    port: int
    protocol: str


def _cidr(value: Any) -> Network:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a CIDR")
    return ipaddress.ip_network(value, strict=False)  # the API server accepts host bits


Cidr = Annotated[Network, PlainValidator(_cidr)]
PortNumber = Annotated[int, Field(strict=True, ge=1, le=65535)]
# An IANA service name: the only kind of named port the API server accepts.
_SERVICE_NAME = r"^(?=.*[a-z])(?!.*--)[a-z0-9](?:[-a-z0-9]{0,13}[a-z0-9])?$"
PortName = Annotated[str, Field(pattern=_SERVICE_NAME)]


class _Shape(BaseModel):
    """A part of a NetworkPolicy as the API server takes it: camelCase, unknown fields rejected."""

    # python-re: the port-name pattern needs lookaheads.
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, frozen=True, regex_engine="python-re"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        """A YAML null is an absent field to the API server."""
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data


class _Requirement(_Shape):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> _Requirement:
        if bool(self.values) != (self.operator in ("In", "NotIn")):
            raise ValueError("In and NotIn need values; Exists and DoesNotExist take none")
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        has_value = self.key in labels and labels[self.key] in self.values
        return {
            "In": has_value,
            "NotIn": not has_value,  # so a pod without the key matches, as in Kubernetes
            "Exists": self.key in labels,
            "DoesNotExist": self.key not in labels,
        }[self.operator]


class _Selector(_Shape):
    match_labels: dict[str, str] = {}
    match_expressions: tuple[_Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.match_expressions
        )


class _IpBlock(_Shape):
    cidr: Cidr
    holes: tuple[Cidr, ...] = Field((), alias="except")

    @model_validator(mode="after")
    def _holes_inside(self) -> _IpBlock:
        for hole in self.holes:
            if hole.prefixlen <= self.cidr.prefixlen or hole.network_address not in self.cidr:
                raise ValueError(f"except {hole} is not a strict subset of cidr {self.cidr}")
        return self

    def contains(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return address in self.cidr and not any(address in hole for hole in self.holes)


class _Peer(_Shape):
    pod_selector: _Selector | None = None
    namespace_selector: _Selector | None = None
    ip_block: _IpBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> _Peer:
        selectors = (self.pod_selector, self.namespace_selector)
        if (self.ip_block is None) == all(selector is None for selector in selectors):
            raise ValueError("a peer is an ipBlock or pod/namespace selectors, not both or none")
        return self


class _Port(_Shape):
    protocol: Protocol = "TCP"
    port: PortNumber | PortName | None = None  # None: every port of the protocol
    end_port: PortNumber | None = None

    @model_validator(mode="after")
    def _range_from_number(self) -> _Port:
        if self.end_port is not None and (
            not isinstance(self.port, int) or self.port > self.end_port
        ):
            raise ValueError("endPort needs a numeric port no greater than it")
        return self

    def matches(self, flow: _Flow) -> bool:
        if flow.protocol != self.protocol or self.port is None:
            return flow.protocol == self.protocol
        if isinstance(self.port, str):  # resolves on the destination, in ingress and egress alike
            return isinstance(flow.dst, Pod) and flow.dst.ports.get(self.port) == flow.port
        return self.port <= flow.port <= (self.end_port or self.port)


class _Rule(_Shape):
    """What ingress and egress rules share; each names its peers field (from / to) itself."""

    peers: tuple[_Peer, ...] = ()  # empty: every peer
    ports: tuple[_Port, ...] = ()  # empty: every port


class _IngressRule(_Rule):
    peers: tuple[_Peer, ...] = Field((), alias="from")


class _EgressRule(_Rule):
    peers: tuple[_Peer, ...] = Field((), alias="to")


class _Spec(_Shape):
    pod_selector: _Selector
    policy_types: tuple[Direction, ...] = ()
    ingress: tuple[_IngressRule, ...] = ()
    egress: tuple[_EgressRule, ...] = ()


class _Metadata(BaseModel):
    """Only what identifies the policy; labels, annotations and the like are ignored."""

    name: str
    namespace: str = Field(min_length=1)


class _NetworkPolicy(_Shape):
    api_version: Literal["networking.k8s.io/v1"]
    kind: Literal["NetworkPolicy"]
    metadata: _Metadata
    spec: _Spec

    @property
    def name(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    def rules_isolating(self, pod: Pod, direction: Direction) -> tuple[_Rule, ...] | None:
        """This policy's rules for `pod` in `direction`, or None if it does not isolate it there."""
        # The API server's defaulting: an empty list is absent, and so are empty egress rules.
        types = self.spec.policy_types or (
            ("Ingress", "Egress") if self.spec.egress else ("Ingress",)
        )
        if pod.namespace != self.metadata.namespace or direction not in types:
            return None
        if not self.spec.pod_selector.matches(pod.labels):
            return None
        return self.spec.ingress if direction == "Ingress" else self.spec.egress


class NetworkPolicies:
    """NetworkPolicy manifests, as rendered, with the labels of the namespaces they refer to."""

    def __init__(
        self,
        manifests: Iterable[Mapping[str, Any]],
        namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self._policies = tuple(_parse_policy(manifest) for manifest in manifests)
        self._namespace_labels = dict(namespace_labels or {})

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self.check(src, dst, port, protocol).allowed

    def check(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> Verdict:
        """A flow passes only if the source's egress and the destination's ingress both admit it."""
        if protocol not in get_args(Protocol) or not 1 <= port <= 65535:
            raise ValueError(f"not a flow: {protocol}/{port}")
        flow = _Flow(src, dst, port, protocol)
        sides = [self._side("Egress", src, dst, flow), self._side("Ingress", dst, src, flow)]
        allowed = all(admitted for admitted, _ in sides)
        outcome = "allowed" if allowed else "denied"
        reasons = "; ".join(reason for _, reason in sides)
        return Verdict(allowed, f"{protocol}/{port} {src} -> {dst} {outcome}: {reasons}")

    def _side(
        self, direction: Direction, subject: Endpoint, peer: Endpoint, flow: _Flow
    ) -> tuple[bool, str]:
        side = f"{direction.lower()} of {subject}"
        if isinstance(subject, External | Node) or subject.host_network:
            return True, f"{side} is not subject to NetworkPolicy"
        if subject.node is not None and _node_of(peer) == subject.node:
            return True, f"{side} is with its own node, always allowed"
        isolating = {
            policy.name: rules
            for policy in self._policies
            if (rules := policy.rules_isolating(subject, direction)) is not None
        }
        if not isolating:
            return True, f"{side} is not isolated"
        admitting = [
            name
            for name, rules in isolating.items()
            # A policy only selects pods of its own namespace: the subject's.
            if any(self._admits(rule, subject.namespace, peer, flow) for rule in rules)
        ]
        if admitting:
            return True, f"{side} allowed by {', '.join(admitting)}"
        names = ", ".join(isolating)
        return False, f"{side} isolated by [{names}] and no {direction.lower()} rule matches"

    def _admits(self, rule: _Rule, namespace: str, peer: Endpoint, flow: _Flow) -> bool:
        if rule.ports and not any(port.matches(flow) for port in rule.ports):
            return False
        return not rule.peers or any(self._matches(p, namespace, peer) for p in rule.peers)

    def _matches(self, peer: _Peer, policy_namespace: str, endpoint: Endpoint) -> bool:
        if isinstance(endpoint, External | Node) or endpoint.host_network:
            ip = endpoint.ip if isinstance(endpoint, External | Node) else str(endpoint.node_ip)
            return peer.ip_block is not None and peer.ip_block.contains(ip)
        if peer.ip_block is not None:
            return endpoint.ip is not None and peer.ip_block.contains(endpoint.ip)
        if peer.namespace_selector is None:
            in_namespace = endpoint.namespace == policy_namespace
        else:
            labels = self._namespace_labels.get(endpoint.namespace, {})
            labels = {**labels, NAMESPACE_NAME_LABEL: endpoint.namespace}
            in_namespace = peer.namespace_selector.matches(labels)
        return in_namespace and (
            peer.pod_selector is None or peer.pod_selector.matches(endpoint.labels)
        )


def _parse_policy(manifest: Mapping[str, Any]) -> _NetworkPolicy:
    try:
        return _NetworkPolicy.model_validate(manifest)
    except ValidationError as error:
        metadata = manifest.get("metadata") or {}
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
        )
        raise ValueError(
            f"NetworkPolicy {metadata.get('namespace')}/{metadata.get('name')}: {problems}"
        ) from None
