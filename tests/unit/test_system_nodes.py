"""The stack's own pods on the system nodes: frontends and Karpenter must fit desiredSize nodes."""

from __future__ import annotations

import pytest

from infra.deployment.checked import check_stack_values
from infra.deployment.system_nodes import system_pods
from infra.stack.errors import StackConfigError
from infra.stack.instances import cpu_instance
from tests.conftest import PROJECT_ROOT

from .helpers import values


def _checked(raw: dict):
    return check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)


def test_system_instance_shapes_follow_their_family() -> None:
    assert (cpu_instance("m6i.xlarge").vcpu, cpu_instance("m6i.xlarge").memory_gib) == (4, 16)  # type: ignore[union-attr]
    assert cpu_instance("r7i.2xlarge").memory_gib == 64  # type: ignore[union-attr]
    assert cpu_instance("t3.micro") is None


def test_frontends_that_do_not_fit_the_system_nodes_are_refused() -> None:
    raw = values()
    raw["cluster"]["systemNodeGroup"] = {
        "instanceType": "m6i.large",
        "minSize": 1,
        "desiredSize": 1,
    }
    raw["models"][0]["frontend"] = {"replicas": 4, "memory": "2Gi"}  # 8 GiB on one 8 GiB node
    with pytest.raises(StackConfigError) as caught:
        _checked(raw)
    (issue,) = [i for i in caught.value.issues if i.path == "cluster.systemNodeGroup.desiredSize"]
    assert "m6i.large nodes, desiredSize is 1" in issue.message
    assert "qwen3-0-6b/blue frontend" in issue.message
    raw["cluster"]["systemNodeGroup"] |= {"desiredSize": 3, "maxSize": 3}
    _checked(raw)


def test_karpenter_controllers_count_on_the_system_nodes() -> None:
    raw = values()
    raw["nodePools"][0] = {
        "name": "l4",
        "instanceType": "g6.xlarge",
        "provisioner": "karpenter",
        "maxSize": 2,
    }
    checked = _checked(raw)
    labels = [pod.label for pod in system_pods(checked.deployment)]
    assert "karpenter #1" in labels and any("frontend" in label for label in labels)
