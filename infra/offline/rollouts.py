"""Which pods a DynamoGraphDeployment change rolls, from the fields that changed.

The operator builds each service's pods from the service's spec plus the graph-wide `envs`,
`labels`, `annotations` and `pvcs`; a change to any of those is a new pod template, so the
service's pods are replaced one by one (a worker restart: weights reload, in-flight requests on
it end). A replica count, the scaling adapter and the DGD object's own metadata change no pod.
Both layouts are read: v1alpha1 `spec.services.<name>` and v1beta1 `spec.components[name=...]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Fields of a service that scale it or configure its adapter without touching its pods.
_NO_ROLL = ("replicas", "scalingAdapter", "autoscaling")
# Graph-wide fields every service's pods are built from.
_GRAPH_WIDE = ("envs", "labels", "annotations", "pvcs", "backendFramework", "env")

_SERVICE = re.compile(r"^spec\.(?:services\.([^.\[]+)|components\[name=([^\]]+)\])(?:\.([^.\[]+))?")


def rolled_services(changed_paths: Iterable[str], services: Iterable[str]) -> list[str]:
    """The services whose pods a DGD update with these changed field paths replaces."""
    every = sorted(services)
    rolled: set[str] = set()
    for path in changed_paths:
        match = _SERVICE.match(path)
        if match:
            name = match.group(1) or match.group(2)
            if match.group(3) not in _NO_ROLL:
                rolled.add(name)
            continue
        top = path.removeprefix("spec.").split(".")[0].split("[")[0]
        if path.startswith("spec.") and top in _GRAPH_WIDE:
            rolled.update(every)
    return sorted(rolled)


def graph_services(document: dict) -> list[str]:
    """The service names of a DGD document, in either layout."""
    spec = document.get("spec") or {}
    if isinstance(spec.get("services"), dict):
        return sorted(spec["services"])
    return sorted(c["name"] for c in spec.get("components") or [] if isinstance(c, dict))
