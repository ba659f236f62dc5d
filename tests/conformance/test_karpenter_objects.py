"""The Karpenter objects we render pass the CEL rules Karpenter's CRDs carry (v1.14.1), which
the API server evaluates on create; `validate` evaluates them too (infra/offline/cel_rules.py).
The rules come from the shipped schema bundle (the drift test ties it to the upstream CRDs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.offline.cel_rules import broken_rules, rule_count
from infra.offline.crd_bundle import BUNDLE_DIR
from infra.offline.render import render_stack
from tests.conftest import Project, Rendered

BUNDLE = BUNDLE_DIR / "karpenter-1.14.1"
KINDS = {
    "NodePool": "karpenter.sh_nodepools.json",
    "EC2NodeClass": "karpenter.k8s.aws_ec2nodeclasses.json",
}


def _schema(kind: str) -> dict[str, Any]:
    return json.loads((BUNDLE / KINDS[kind]).read_text())["versions"]["v1"]


def karpenter_objects(render: Rendered) -> list[dict]:
    return [obj for kind in KINDS for obj in render.objects(kind)]


@pytest.fixture(scope="module")
def capacity_block(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """prod with its Karpenter L40S pool in a capacity block: a reservation, one zone."""
    root = tmp_path_factory.mktemp("project")
    project = Project(root)
    config = project.stack_config("prod")
    (l40s,) = [p for p in config["dynamo-trtllm:nodePools"] if p["name"] == "l40s"]
    l40s |= {
        "capacityType": "capacity-block",
        "capacityReservationId": "cr-0fedcba9876543210",
        "availabilityZone": "us-east-1b",
    }
    project.write_stack("prod", config)
    out = tmp_path_factory.mktemp("render") / "prod"
    render_stack("prod", out, root)
    return Rendered(out)


def test_the_bundle_carries_the_rules_it_is_checked_against() -> None:
    assert rule_count(_schema("EC2NodeClass")) > 40 and rule_count(_schema("NodePool")) > 15


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_rendered_karpenter_object_passes_its_crds_rules(
    rendered: dict[str, Rendered], stack: str
) -> None:
    objects = karpenter_objects(rendered[stack])
    assert {o["kind"] for o in objects} == set(KINDS)
    for obj in objects:
        assert list(broken_rules(_schema(obj["kind"]), obj)) == [], obj["metadata"]["name"]


def test_a_capacity_block_pool_on_karpenter_passes_too(capacity_block: Rendered) -> None:
    (node_class,) = capacity_block.objects("EC2NodeClass")
    assert node_class["spec"]["capacityReservationSelectorTerms"] == [
        {"id": "cr-0fedcba9876543210"}
    ]
    assert "placementGroupSelector" not in node_class["spec"]  # a block is colocated already
    (pool,) = capacity_block.objects("NodePool")
    requirements = {r["key"]: r["values"] for r in pool["spec"]["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"] == ["reserved"]
    for obj in karpenter_objects(capacity_block):
        assert list(broken_rules(_schema(obj["kind"]), obj)) == [], obj["metadata"]["name"]


def test_the_rules_catch_what_karpenter_would_refuse() -> None:
    schema = _schema("EC2NodeClass")
    bad = {
        "spec": {
            "role": "nodes",
            "amiSelectorTerms": [{"alias": "al2023@v20260714"}, {"id": "ami-0abc"}],
            "subnetSelectorTerms": [{"id": "subnet-0a"}],
            "securityGroupSelectorTerms": [{"id": "sg-0a"}],
            "tags": {"karpenter.sh/nodepool": "mine"},
        }
    }
    broken = [b.rule for b in broken_rules(schema, bad)]
    assert any("alias" in rule for rule in broken)
    assert any("karpenter.sh/nodepool" in rule for rule in broken)
    labels = {"spec": {"template": {"metadata": {"labels": {"kubernetes.io/hostname": "x"}}}}}
    assert list(broken_rules(_schema("NodePool"), labels))


def test_validate_refuses_what_only_a_crd_rule_forbids(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A reserved label on the pool passes the structural schema; Karpenter's CEL refuses it at
    `pulumi up`, so `validate` does now."""
    from infra.cli import main

    root = tmp_path_factory.mktemp("project")
    project = Project(root)
    config = project.stack_config("prod")
    (l40s,) = [p for p in config["dynamo-trtllm:nodePools"] if p["name"] == "l40s"]
    l40s["labels"] = {"kubernetes.io/hostname": "x"}
    project.write_stack("prod", config)
    code = main(["--project-dir", str(root), "validate", "prod"])
    assert code == 1
