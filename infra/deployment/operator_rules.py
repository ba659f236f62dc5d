"""The Dynamo operator's admission webhook, mirrored: what it would refuse, said before `pulumi up`.

Rules of the operator release a stack's profile names (`profile.webhook_rules`), from
ai-dynamo/dynamo `deploy/operator/internal/webhook/validation/` (dynamographdeployment.go,
shared.go) at tag v1.1.0 and at the 1.2.0 commit a68c04c7 (just before its tag). Row numbers (#13,
U1, ...) are those of our notes, reference/dynamo-1.2.0/webhook/NOTES.md. Create-time rules run on
the resolved deployment; the update-only ones compare two DGD manifests (`dynamo-infra diff`),
since only an update can break them.

At 1.2.0 the webhook still takes v1alpha1 only: a v1beta1 DGD is converted and checked as v1alpha1,
so the same rules hold for both layouts, and our messages name the field the manifest has. The
rules 1.2.0 adds (#9, #11, #12, #23, U3) concern fields we never emit (kvTransferPolicy,
gpuMemoryService, failover, checkpoint), so none is mirrored here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from infra.deployment.resolved import Deployment
from infra.stack.derived_names import WORKER_SERVICES, dgd_name, service_keys
from infra.stack.dynamo_versions import DGD_V1BETA1
from infra.stack.errors import ConfigIssue
from infra.stack.model_config import COLORS

# consts.MaxCombinedGroveResourceNameLength: Grove names pods <PCS>-<replica>-<clique>-<suffix>.
GROVE_NAME_LIMIT = 45
_ZERO_QUANTITY = {"0", "0Ki", "0Mi", "0Gi", "0Ti", "0k", "0M", "0G", "0T"}
_ROLE_OF_SERVICE = {key: role for role, key in WORKER_SERVICES.items()}
_DGD = "dynamographdeployment.go"


@dataclass(frozen=True)
class WebhookRules:
    """One operator release's webhook, as far as what we emit meets it."""

    version: str
    sources: dict[str, str]  # NOTES.md row -> where the rule is at this release
    # #13: the PodCliqueSet name Grove's limit counts. 1.1.0 takes the DGD name as is; 1.2.0 cuts
    # a long one (adding a hash) to the room the longest service leaves, never under this many
    # characters (internal/dynamo/graph.go:1144-1185, PCSNameForDGD). None: never cut.
    shortest_pcs_name: int | None

    def cite(self, row: str) -> str:
        return f"operator {self.version}, {self.sources[row]}"


WEBHOOK_RULES = {
    rules.version: rules
    for rules in (
        WebhookRules(
            "1.1.0",
            {
                "13": f"{_DGD}:317-353",
                "7": f"{_DGD}:492-571",
                "17": "shared.go:173-179",
                "U1": f"{_DGD}:157-160",
                "U2": f"{_DGD}:163-177",
                "U4": f"{_DGD}:672-713",
                "U5": f"{_DGD}:191-228",
                "U6": f"{_DGD}:233-277",
            },
            shortest_pcs_name=None,
        ),
        WebhookRules(
            "1.2.0",
            {
                "13": f"{_DGD}:404-466",
                "7": f"{_DGD}:608-687",
                "17": "shared.go:179-185",
                "U1": f"{_DGD}:168-171",
                "U2": f"{_DGD}:174-188",
                "U4": f"{_DGD}:788-829",
                "U5": f"{_DGD}:240-277",
                "U6": f"{_DGD}:282-326",
            },
            shortest_pcs_name=8,
        ),
    )
}


def webhook_rules_of(version: str) -> WebhookRules:
    try:
        return WEBHOOK_RULES[version]
    except KeyError:
        known = ", ".join(WEBHOOK_RULES)
        raise ValueError(f"no webhook rules mirrored for operator {version!r} ({known})") from None


def grove_name_share(service: str, nodes: int) -> int:
    """What a service adds to Grove's name: its clique, or for multinode its scaling group and
    leader clique (`<svc>` + `<svc>-ldr`)."""
    key = service.lower()
    return len(key) + (len(f"{key}-ldr") if nodes > 1 else 0)


def pcs_name_length(graph: str, shares: Iterable[int], rules: WebhookRules) -> int:
    """How long the PodCliqueSet name of DGD `graph` is, given every service's share."""
    if rules.shortest_pcs_name is None:
        return len(graph)
    return min(len(graph), max(GROVE_NAME_LIMIT - max(shares), rules.shortest_pcs_name))


def operator_create_issues(
    deployment: Deployment, *, webhook_rules: str = "1.1.0"
) -> list[ConfigIssue]:
    """What the webhook refuses on CREATE (and on every UPDATE) of our DGDs."""
    rules = webhook_rules_of(webhook_rules)
    issues: list[ConfigIssue] = []
    for resolved in deployment.models:
        model = resolved.model
        nodes = {
            key: model.role(_ROLE_OF_SERVICE[key]).nodes if key in _ROLE_OF_SERVICE else 1
            for key in service_keys(model)
        }
        shares = {key: grove_name_share(key, count) for key, count in nodes.items()}
        for color in (c for c in COLORS if c in model.slots):
            graph = dgd_name(model, color)
            pcs = pcs_name_length(graph, shares.values(), rules)
            if pcs < len(graph):
                # Accepted by the webhook, but Grove's pods then carry a cut, hashed name, and
                # our monitors' relabelling and dgd_child_names address them by the full one.
                issues.append(
                    ConfigIssue(
                        f"{resolved.path}.name",
                        f"Dynamo {webhook_rules} would cut DGD {graph!r} to {pcs} characters "
                        "(with a hash) in the names of its Grove pods, which this stack's "
                        "monitors and checks address by the full name: shorten the model name "
                        f"by {len(graph) - pcs}",
                    )
                )
            # #13, checked as if Grove were on: 1.1.0 skips it only for a DGD opting out
            # (DGD:358-361), 1.2.0 also when the operator runs without Grove (DGD:471-477).
            for key, share in shares.items():
                if pcs + share <= GROVE_NAME_LIMIT:
                    continue
                service = key.lower()
                name = graph if pcs == len(graph) else f"{graph} (cut to {pcs})"
                shape = f"{name} + {service}" + (f" + {service}-ldr" if nodes[key] > 1 else "")
                # A graph name within the room left fits uncut at either release.
                shorter = len(graph) - (GROVE_NAME_LIMIT - share)
                issues.append(
                    ConfigIssue(
                        f"{resolved.path}.name",
                        f"the Dynamo operator's webhook refuses DGD {graph!r}: with Grove, "
                        f"{shape} is {pcs + share} characters, the limit is {GROVE_NAME_LIMIT} "
                        f"({rules.cite('13')}): shorten the model name by {shorter}",
                    )
                )
        if model.pack_domain and not deployment.config.platform.cluster_topology:
            issues.append(
                ConfigIssue(
                    f"{resolved.path}.packDomain",
                    "a topology constraint needs the ClusterTopology its domains are levels of "
                    f"({rules.cite('7')}): set platform.clusterTopology to the one your cluster's "
                    "admin made",
                )
            )
        for role in model.topology.roles:
            size = model.role(role).shared_memory
            if size.strip() in _ZERO_QUANTITY:
                issues.append(
                    ConfigIssue(
                        f"{resolved.path}.{role}.sharedMemory",
                        "the Dynamo operator refuses a shared-memory size of zero "
                        f"({rules.cite('17')}): give a size, e.g. 8Gi",
                    )
                )
    return list(dict.fromkeys(issues))


@dataclass(frozen=True)
class _Service:
    """A DGD service as the update rules see it, in either layout."""

    field: str  # where it sits in the manifest, for messages
    nodes: int
    replicas: int
    scaling_adapter: bool


def _nodes(service: dict[str, Any]) -> int:
    multinode = service.get("multinode")
    # Both API versions' CRDs default nodeCount to 2.
    return 1 if multinode is None else int(multinode.get("nodeCount", 2))


def _replicas(service: dict[str, Any]) -> int:
    replicas = service.get("replicas")
    return 1 if replicas is None else int(replicas)  # U6: absent counts as 1


def _services(document: dict[str, Any]) -> tuple[str, dict[str, _Service]]:
    """The manifest's service collection field, and its services by name."""
    spec = document.get("spec", {})
    if document.get("apiVersion") == DGD_V1BETA1:
        # A list keyed by name; `scalingAdapter: {}` turns the adapter on by being there
        # (1.2.0 api/v1alpha1/shared_spec_conversion.go:539-541 converts it to enabled).
        return "spec.components", {
            c["name"]: _Service(
                f"spec.components[name={c['name']}]",
                _nodes(c),
                _replicas(c),
                c.get("scalingAdapter") is not None,
            )
            for c in spec.get("components", [])
        }
    return "spec.services", {
        key: _Service(
            f"spec.services.{key}",
            _nodes(s),
            _replicas(s),
            bool((s.get("scalingAdapter") or {}).get("enabled")),
        )
        for key, s in spec.get("services", {}).items()
    }


def operator_update_refusals(
    before: dict[str, Any], after: dict[str, Any], *, webhook_rules: str = "1.1.0"
) -> list[str]:
    """Why the webhook would refuse updating DGD `before` to `after` (empty: it accepts).

    U1 backendFramework immutable; U2 a service cannot switch between single-node and multinode;
    U4 the topology constraint is fixed at creation; U5 no service may be added or removed; U6
    with the scaling adapter on, `replicas` is the adapter's. Either manifest may be in either
    layout (a release upgrade changes it).
    """
    rules = webhook_rules_of(webhook_rules)
    refusals: list[str] = []
    old_framework = before.get("spec", {}).get("backendFramework")
    new_framework = after.get("spec", {}).get("backendFramework")
    if old_framework != new_framework:
        refusals.append(
            f"spec.backendFramework cannot change ({old_framework!r} -> {new_framework!r}): "
            f"delete and recreate the graph ({rules.cite('U1')})"
        )
    old_pack = _pack_domain(before)
    new_pack = _pack_domain(after)
    if old_pack != new_pack:
        refusals.append(
            f"spec.topologyConstraint cannot be added, removed or changed ({old_pack or 'none'} "
            f"-> {new_pack or 'none'}): deploy it in the other slot and promote it "
            f"({rules.cite('U4')})"
        )
    _, old_services = _services(before)
    collection, new_services = _services(after)
    added = sorted(set(new_services) - set(old_services))
    removed = sorted(set(old_services) - set(new_services))
    if added or removed:
        refusals.append(
            f"{collection} entries cannot be added or removed on a running graph "
            f"(added {added or 'none'}, removed {removed or 'none'}): deploy the new shape in "
            f"the other slot and promote it ({rules.cite('U5')})"
        )
    for name in sorted(set(old_services) & set(new_services)):
        old, new = old_services[name], new_services[name]
        if (old.nodes > 1) != (new.nodes > 1):
            refusals.append(
                f"{new.field} cannot switch between single-node and multinode: use the other "
                f"slot ({rules.cite('U2')})"
            )
        if new.scaling_adapter and old.replicas != new.replicas:
            refusals.append(
                f"{new.field}.replicas cannot change ({old.replicas} -> {new.replicas}) while "
                "its scaling adapter is on: only the operator and the planner may; first pin the "
                "slot's replicas to the count it runs now (the adapter off), `pulumi up`, then "
                f"remove the pin; from 0, pin 1 ({rules.cite('U6')})"
            )
    return refusals


def _pack_domain(document: dict[str, Any]) -> str | None:
    """The graph's topology constraint, the same in both layouts but for the topology's key."""
    constraint = document.get("spec", {}).get("topologyConstraint")
    if not constraint:
        return None
    topology = constraint.get("topologyProfile") or constraint.get("clusterTopologyName")
    return f"{topology}/{constraint.get('packDomain')}"
