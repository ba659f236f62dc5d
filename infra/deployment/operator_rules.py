"""The Dynamo operator's admission webhook, mirrored: what it would refuse, said before `pulumi up`.

Rules of the operator version the stack pins (1.1.0), from ai-dynamo/dynamo
`deploy/operator/internal/webhook/validation/` at tag v1.1.0 (dynamographdeployment.go = DGD,
shared.go = SH). Create-time rules run on the resolved deployment; the update-only ones compare
two DGD manifests (`dynamo-infra diff`), since only an update can break them.
"""

from __future__ import annotations

from typing import Any

from infra.deployment.resolved import Deployment
from infra.stack.config import COLORS
from infra.stack.derived_names import WORKER_SERVICES, dgd_name, service_keys
from infra.stack.errors import ConfigIssue

# consts.MaxCombinedGroveResourceNameLength: Grove names pods <PCS>-<replica>-<clique>-<suffix>.
GROVE_NAME_LIMIT = 45
_ZERO_QUANTITY = {"0", "0Ki", "0Mi", "0Gi", "0Ti", "0k", "0M", "0G", "0T"}


def operator_create_issues(deployment: Deployment) -> list[ConfigIssue]:
    """What the 1.1.0 webhook refuses on CREATE (and on every UPDATE) of our DGDs."""
    issues: list[ConfigIssue] = []
    for resolved in deployment.models:
        model = resolved.model
        for color in (c for c in COLORS if c in model.slots):
            graph = dgd_name(model, color)
            for key in service_keys(model):
                role = next((r for r, k in WORKER_SERVICES.items() if k == key), None)
                nodes = model.role(role).nodes if role else 1
                service = key.lower()
                # DGD:317-353 (Grove is the default pathway: annotation nvidia.com/enable-grove
                # is not "false"): single-node dgd+svc, multinode dgd+svc+svc-ldr <= 45.
                length = len(graph) + len(service)
                if nodes > 1:
                    length += len(f"{service}-ldr")
                if length > GROVE_NAME_LIMIT:
                    over = length - GROVE_NAME_LIMIT
                    shape = f"{graph} + {service}" + (f" + {service}-ldr" if nodes > 1 else "")
                    issues.append(
                        ConfigIssue(
                            f"{resolved.path}.name",
                            f"the Dynamo operator's webhook refuses DGD {graph!r}: with Grove, "
                            f"{shape} is {length} characters, the limit is {GROVE_NAME_LIMIT} "
                            f"(dynamographdeployment.go, operator 1.1.0): shorten the model "
                            f"name by {over}",
                        )
                    )
        for role in model.topology.roles:
            size = model.role(role).shared_memory
            if size.strip() in _ZERO_QUANTITY:  # SH:173-179
                issues.append(
                    ConfigIssue(
                        f"{resolved.path}.{role}.sharedMemory",
                        "the Dynamo operator refuses a shared-memory size of zero "
                        "(shared.go, operator 1.1.0): give a size, e.g. 8Gi",
                    )
                )
    return list(dict.fromkeys(issues))


def operator_update_refusals(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why the 1.1.0 webhook would refuse updating DGD `before` to `after` (empty: it accepts).

    U1 backendFramework immutable (DGD:157-160); U2 a service cannot switch between single-node
    and multinode (DGD:163-177); U5 no service may be added or removed (DGD:191-228); U6 with
    the scaling adapter on, `replicas` (absent counts as 1) is the adapter's (DGD:233-277).
    """
    refusals: list[str] = []
    old_spec, new_spec = before.get("spec", {}), after.get("spec", {})
    if old_spec.get("backendFramework") != new_spec.get("backendFramework"):
        refusals.append(
            f"spec.backendFramework cannot change ({old_spec.get('backendFramework')!r} -> "
            f"{new_spec.get('backendFramework')!r}): delete and recreate the graph"
        )
    old_services, new_services = old_spec.get("services", {}), new_spec.get("services", {})
    added, removed = (
        sorted(set(new_services) - set(old_services)),
        sorted(set(old_services) - set(new_services)),
    )
    if added or removed:
        refusals.append(
            "services cannot be added or removed on a running graph "
            f"(added {added or 'none'}, removed {removed or 'none'}): deploy the new shape in "
            "the other slot and promote it"
        )
    for key in sorted(set(old_services) & set(new_services)):
        old, new = old_services[key], new_services[key]
        if _multinode(old) != _multinode(new):
            refusals.append(
                f"spec.services.{key} cannot switch between single-node and multinode: use the "
                "other slot"
            )
        if (new.get("scalingAdapter") or {}).get("enabled") and _replicas(old) != _replicas(new):
            refusals.append(
                f"spec.services.{key}.replicas cannot change ({_replicas(old)} -> "
                f"{_replicas(new)}) while its scaling adapter is on: only the operator and the "
                "planner may; set replicas with the adapter off first, then turn it on"
            )
    return refusals


def _multinode(service: dict[str, Any]) -> bool:
    return int((service.get("multinode") or {}).get("nodeCount", 1)) > 1


def _replicas(service: dict[str, Any]) -> int:
    replicas = service.get("replicas")
    return 1 if replicas is None else int(replicas)
