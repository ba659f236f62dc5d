"""What a change does beyond its fields: a replace instead of an update (the providers'
replace-on-change properties), the DGD services whose pods roll, an upgrade's notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from components.cluster import ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE
from components.gpu_node_pool import rolls_without_spare_capacity
from components.karpenter_pool import NODE_CLASS_API, NODE_POOL_API, drifts_nodes
from infra.offline.replace_fields import kubernetes_replacing_fields
from infra.offline.replace_fields import replacing_fields as aws_replacing_fields
from infra.offline.rollouts import graph_services, rolled_services

if TYPE_CHECKING:
    from infra.offline.diff import FieldChange, RenderedResource


KARPENTER_TYPES = (f"kubernetes:{NODE_POOL_API}:", f"kubernetes:{NODE_CLASS_API}:")


def upgrade_notes(
    old: RenderedResource, new: RenderedResource, fields: list[FieldChange]
) -> tuple[str, ...]:
    """What an upgrade does beyond its fields, and where the safer path is."""
    notes = []
    old_api = old.document.get("apiVersion") if isinstance(old.document, dict) else None
    new_api = new.document.get("apiVersion") if isinstance(new.document, dict) else None
    if old_api and new_api and old_api != new_api:
        notes.append(
            f"the same object moves from {old_api} to {new_api} (updated in place; the operator "
            "stores and converts it); to try the new release on one slot first, see README "
            '"Upgrading Dynamo"'
        )
    if (
        new.group == "HelmRelease"
        and isinstance(new.document, dict)
        and new.document.get("chart") == "dynamo-platform"
        and any(f.path == "version" for f in fields)
    ):
        notes.append(
            "a Dynamo platform upgrade: the operator and its webhook restart and re-reconcile "
            "every graph; for a production environment prefer a whole new environment behind "
            'the traffic stack (README "Upgrading Dynamo")'
        )
    if new.type.startswith(KARPENTER_TYPES) and drifts_nodes(new.kind, [f.path for f in fields]):
        notes.append(
            "Karpenter replaces this pool's nodes as they drift (karpenter.maxDisruptedNodes at "
            "a time, each new node up before the old one drains); workers still loading their "
            "weights, and multinode groups, hold their node until they may move"
        )
    if isinstance(new.document, dict) and rolls_without_spare_capacity(new.type, new.document):
        notes.append(
            "a capacity-block pool: this change replaces its nodes, and the block has no spare "
            "instance to start a new one on; scale the pool's models down first"
        )
    return tuple(notes)


def replacing_fields(
    old: RenderedResource,
    new: RenderedResource,
    fields: list[FieldChange],
    secret_changed: bool = False,
) -> tuple[str, ...]:
    """The changed fields that make Pulumi replace the resource: the provider's replace-on-change
    properties (infra/offline/replace_fields.py) under the provider options the program sets.
    A changed secret is a change of the data it renders as `[secret]`."""
    paths = [f.path for f in fields if not f.path.startswith("(")]
    if secret_changed and new.kind == "Secret":
        paths.append("stringData")
    document = new.document if isinstance(new.document, dict) else {}
    if new.group == "HelmRelease":
        found = kubernetes_replacing_fields("helm.sh/v3", "Release", paths)
    elif new.kind:
        found = kubernetes_replacing_fields(
            str(document.get("apiVersion", "")),
            new.kind,
            paths,
            config_map_mutable=ENGINE_CONFIG_MAPS_UPDATE_IN_PLACE,
            immutable=bool(document.get("immutable")),
            patch=new.type.endswith("Patch"),
        )
    else:
        found = aws_replacing_fields(new.type, paths)
    if (old.k8s_name, old.namespace) != (new.k8s_name, new.namespace):
        found += [p for p in ("metadata.name", "metadata.namespace") if p not in found]
    return tuple(dict.fromkeys(found))


def rolls_of(new: RenderedResource, fields: list[FieldChange]) -> tuple[str, ...]:
    if new.kind != "DynamoGraphDeployment" or not isinstance(new.document, dict):
        return ()
    return tuple(rolled_services((f.path for f in fields), graph_services(new.document)))
