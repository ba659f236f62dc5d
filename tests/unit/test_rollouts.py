"""What a DGD change restarts: the services whose pod template changes, not a replica count."""

from __future__ import annotations

from infra.offline.rollouts import graph_services, rolled_services

SERVICES = ["Frontend", "TRTLLMDecodeWorker", "TRTLLMPrefillWorker"]


def test_a_replica_count_rolls_nothing() -> None:
    assert rolled_services(["spec.services.TRTLLMDecodeWorker.replicas"], SERVICES) == []


def test_a_service_pod_change_rolls_that_service_only() -> None:
    changed = ["spec.services.TRTLLMPrefillWorker.extraPodSpec.mainContainer.image"]
    assert rolled_services(changed, SERVICES) == ["TRTLLMPrefillWorker"]


def test_the_graph_wide_engine_hash_rolls_every_service() -> None:
    changed = ["spec.annotations.nvidia.com/engine-config-hash", "metadata.annotations.x"]
    assert rolled_services(changed, SERVICES) == SERVICES


def test_the_dgd_objects_own_metadata_rolls_nothing() -> None:
    assert rolled_services(['metadata.annotations["pulumi.com/timeoutSeconds"]'], SERVICES) == []


def test_the_v1beta1_component_list_is_read_too() -> None:
    document = {"spec": {"components": [{"name": "decode"}, {"name": "prefill"}]}}
    assert graph_services(document) == ["decode", "prefill"]
    changed = ["spec.components[name=decode].podTemplate.spec.containers[name=main].args"]
    assert rolled_services(changed, graph_services(document)) == ["decode"]
    assert rolled_services(["spec.components[name=prefill].replicas"], ["prefill"]) == []
