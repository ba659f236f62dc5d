"""A model's topology constraint: Grove and KAI keep its graph inside one domain of the cluster's
ClusterTopology. Emitted in each DGD layout's own form, refused without a ClusterTopology (the
webhook's rule #7), and fixed at creation (U4: `diff` says the operator refuses a change)."""

from __future__ import annotations

import jsonschema
import pytest

from components.dgd import GRAPH_BUILDERS, GraphInputs
from components.platform import build_dynamo_platform_values
from infra.deployment.checked import check_stack_values
from infra.deployment.operator_rules import operator_update_refusals
from infra.offline.crd_bundle import ShippedSchemas
from infra.offline.validate import strict_schema
from infra.stack.dynamo_versions import DGD_V1ALPHA1, DGD_V1BETA1
from infra.stack.errors import StackConfigError
from infra.stack.model_config import Model
from infra.stack.platform_config import PlatformSpec
from tests.conftest import PROJECT_ROOT

from .helpers import values

IMAGE = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0"
TOPOLOGY_KEY = {DGD_V1ALPHA1: "topologyProfile", DGD_V1BETA1: "clusterTopologyName"}


def packed(domain: str | None = "zone") -> Model:
    return Model.model_validate(
        {"name": "m", "source": {"huggingFace": "Qwen/Qwen3-0.6B"}, "image": IMAGE}
        | ({"packDomain": domain} if domain else {})
    )


def graph(api_version: str, model: Model, topology: str | None = "gb-topology") -> dict:
    inputs = GraphInputs(namespace="m", dgd_api_version=api_version, cluster_topology=topology)
    return GRAPH_BUILDERS[api_version](model, "blue", inputs)


@pytest.mark.parametrize("api_version", sorted(GRAPH_BUILDERS))
def test_each_layout_carries_the_constraint_its_schema_takes(api_version: str) -> None:
    dgd = graph(api_version, packed())
    assert dgd["spec"]["topologyConstraint"] == {
        TOPOLOGY_KEY[api_version]: "gb-topology",
        "packDomain": "zone",
    }
    release = "1.1.0" if api_version == DGD_V1ALPHA1 else "1.2.0"
    schema = ShippedSchemas.for_pins({"dynamo_platform": release}).get(
        api_version, "DynamoGraphDeployment"
    )
    assert schema is not None
    validator = jsonschema.Draft202012Validator(strict_schema(schema))
    assert [e.message for e in validator.iter_errors(dgd)] == []
    assert "topologyConstraint" not in graph(api_version, packed(None))["spec"]


def test_a_pack_domain_without_a_cluster_topology_is_refused() -> None:
    raw = values()
    raw["models"][0]["packDomain"] = "zone"
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (issue,) = [i for i in caught.value.issues if i.path == "models[0].packDomain"]
    assert (
        "platform.clusterTopology" in issue.message and "dynamographdeployment.go" in issue.message
    )
    raw["platform"] = {"clusterTopology": "gb-topology"}
    check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)


def test_a_domain_outside_the_webhooks_format_is_refused() -> None:
    with pytest.raises(ValueError):
        packed("Zone_A")


@pytest.mark.parametrize("api_version", sorted(GRAPH_BUILDERS))
def test_the_operator_refuses_changing_the_constraint_of_a_running_graph(api_version: str) -> None:
    before = graph(api_version, packed())
    assert operator_update_refusals(before, graph(api_version, packed())) == []
    (refusal,) = operator_update_refusals(before, graph(api_version, packed("rack")))
    assert "topologyConstraint cannot be added, removed or changed" in refusal
    (refusal,) = operator_update_refusals(graph(api_version, packed(None)), before)
    assert "none -> gb-topology/zone" in refusal


def test_grove_and_kai_come_with_a_packed_model() -> None:
    dumped = build_dynamo_platform_values(PlatformSpec(), grove=True).dump()
    assert dumped["global"]["grove"]["install"] and dumped["global"]["kai-scheduler"]["install"]
