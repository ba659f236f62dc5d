"""Stack config: defaults, typos, cross-checks, and every problem reported at once."""

from __future__ import annotations

import copy
import tempfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.deployment.checked import check_stack
from infra.stack.dynamo_versions import DEFAULT_DYNAMO_VERSION
from infra.stack.eks_versions import DEFAULT_KUBERNETES_VERSION, EKS_KUBERNETES_VERSIONS
from infra.stack.errors import StackConfigError
from infra.stack.instances import CATALOG
from infra.stack.model_config import Topology
from infra.stack.names import dns1123_label_problem
from tests.conftest import Project

from .eks_stack import BASE, values
from .helpers import PROJECT_ROOT, parse


def problems(raw: dict) -> list[str]:
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    error = caught.value
    return [issue.render(error.source) for issue in error.issues]  # errors; notes aside


def test_short_stack_file_gets_defaults() -> None:
    config = parse(values())
    qwen = config.models[0]
    assert qwen.topology is Topology.AGG
    assert qwen.active == "blue" and list(qwen.slots) == ["blue"]
    assert qwen.engine_config("agg", "blue") == "engine_configs/qwen3-0-6b/agg.yaml"
    assert qwen.role("agg").gpus_per_worker == 1
    assert config.platform.dynamo_version == DEFAULT_DYNAMO_VERSION
    assert config.platform.chart_pins()["dynamo_platform"] == DEFAULT_DYNAMO_VERSION
    assert config.platform.etcd.enabled is False


def test_gpus_beyond_the_node_name_file_field_and_pool() -> None:
    raw = values()
    raw["models"][1]["decode"]["gpusPerWorker"] = 16
    assert problems(raw) == [
        # The engine config still asks for 4 GPUs: both sides of the mismatch are named.
        "engine_configs/gpt-oss-120b/decode.yaml:3:1: tensor_parallel_size: the engine spans "
        "4 GPUs (tensor_parallel_size 4 × pipeline_parallel_size 1), but the worker gets 16 "
        "(gpusPerWorker 16 × nodes 1) "
        "(engine config of dynamo-trtllm:models[1].decode.engineConfig)",
        "stacks/Pulumi.test.yaml: dynamo-trtllm:models[1].decode.gpusPerWorker: 16 GPUs asked, "
        "node pool 'h100' (p5.48xlarge) has 8",
    ]


def test_typo_suggests_the_key_meant() -> None:
    raw = values()
    raw["models"][0]["replicsa"] = 2
    raw["models"][0]["nodePool"] = "l4"
    raw["models"][1]["prefill"]["gpusPerWorkr"] = 2
    found = problems(raw)
    assert any("models[0].replicsa: unknown key 'replicsa'" in p for p in found)
    assert any(
        "models[1].prefill.gpusPerWorkr: unknown key 'gpusPerWorkr'; did you mean 'gpusPerWorker'?"
        in p
        for p in found
    )


def test_unknown_top_level_key() -> None:
    raw = values(modle=[])
    assert any(
        "dynamo-trtllm:modle: unknown key 'modle'; did you mean 'models'?" in p
        for p in problems(raw)
    )


def test_every_problem_is_reported_at_once() -> None:
    raw = values(observability={"enabeld": True})
    raw["models"][0]["frontend"] = {"replicas": 0}
    raw["models"][1]["nodePool"] = "missing"
    raw["models"][1]["topology"] = "disagregated"
    raw["models"].append(dict(raw["models"][0], name="other", nodePool="missing", frontend={}))
    found = problems(raw)
    assert any(
        "models[0].frontend.replicas: Input should be greater than or equal to 1" in p
        for p in found
    )
    assert any("observability.enabeld" in p for p in found)
    assert any("models[1].topology" in p for p in found)
    # model 2 parsed fine, so its cross-check ran too
    assert any(
        "models[2].nodePool: node pool 'missing' does not exist (pools: l4, h100)" in p
        for p in found
    )


def test_missing_engine_config_file_names_the_path() -> None:
    raw = values()
    raw["models"][0]["agg"] = {"engineConfig": "engine_configs/nope/agg.yaml"}
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:models[0].agg.engineConfig: "
        "engine config file 'engine_configs/nope/agg.yaml' not found"
    ]


def test_name_too_long_for_kubernetes() -> None:
    raw = values()
    raw["models"][0]["name"] = "a" * 50
    raw["models"][0]["agg"] = {"engineConfig": "engine_configs/qwen3-0-6b/agg.yaml"}
    found = problems(raw)
    assert any("models[0].name: derived Kubernetes name" in p and "at most 63" in p for p in found)


def test_invalid_kubernetes_name() -> None:
    raw = values()
    raw["models"][0]["name"] = "Qwen3_0.6B"
    assert any(
        "models[0].name: 'Qwen3_0.6B' is not a valid Kubernetes name" in p for p in problems(raw)
    )


def test_role_not_in_topology_and_missing_active_slot() -> None:
    raw = values()
    raw["models"][0]["decode"] = {"gpusPerWorker": 1}
    raw["models"][0]["active"] = "green"
    found = problems(raw)
    assert any("models[0].decode: topology agg has no decode role" in p for p in found)
    assert any(
        "models[0].active: active slot 'green' is not defined under slots" in p for p in found
    )


def test_multinode_needs_its_topology_and_enough_nodes() -> None:
    raw = values()
    raw["models"][1]["prefill"]["nodes"] = 2
    assert any(
        "models[1].prefill.nodes: 2 nodes per worker needs topology disagg-multinode" in p
        for p in problems(raw)
    )
    raw["models"][1]["topology"] = "disagg-multinode"
    raw["models"][1]["prefill"]["nodes"] = 5
    assert any("grows to at most 4 (maxSize)" in p for p in problems(raw))


def test_unknown_instance_type_needs_gpu_facts() -> None:
    raw = values()
    raw["nodePools"][0]["instanceType"] = "p9.96xlarge"
    assert any(
        "nodePools[0].instanceType: 'p9.96xlarge' is not in the GPU instance catalog" in p
        for p in problems(raw)
    )
    assert not any("no memory limit" in p for p in problems(raw))  # no follow-on of the same
    raw["nodePools"][0]["gpu"] = {"gpuProduct": "X1", "gpusPerNode": 4, "gpuMemoryGib": 96}
    assert any("models[0].agg.memory: no memory limit can be derived" in p for p in problems(raw))
    raw["nodePools"][0]["gpu"]["memoryGib"] = 512  # the node's: a worker's share is the default
    parse(raw)


def test_pool_bad_input() -> None:
    raw = values()
    raw["nodePools"][0] |= {"desiredSize": 5, "efa": True}
    raw["nodePools"][1] |= {"capacityType": "capacity-block"}
    raw["nodePools"].append(copy.deepcopy(raw["nodePools"][1]))
    found = problems(raw)
    assert any("nodePools[0].desiredSize: 5 is outside [minSize 0, maxSize 2]" in p for p in found)
    assert any("nodePools[0].efa: g6.xlarge has no EFA network interface" in p for p in found)
    assert any("nodePools[1].capacityReservationId" in p for p in found)
    assert any("nodePools[2].name: node pool name 'h100' is used twice" in p for p in found)


def test_s3_weights_need_the_cache_and_weights_add_up() -> None:
    raw = values(modelCache={"enabled": False})
    raw["models"][0]["source"] = {"s3": {"uri": "s3://bucket/models/qwen", "sizeGib": 2}}
    raw["models"][0]["slots"] = {"blue": {}, "green": {}}
    raw["models"][0]["weights"] = {"blue": 90, "green": 20}
    found = problems(raw)
    assert any(
        "models[0].source.s3: weights in S3 are served through the model cache" in p for p in found
    )
    assert any(
        "models[0].weights: weights must be >= 0 and add up to 100 (got 110)" in p for p in found
    )


def test_source_needs_exactly_one_origin() -> None:
    raw = values()
    raw["models"][0]["source"] = {}
    assert any(
        "models[0].source: give exactly one of huggingFace or s3" in p for p in problems(raw)
    )


def test_secret_keys_are_not_unknown() -> None:
    raw = values(hfToken="x")
    raw.pop("hfToken")
    parse(values())


NAME = st.text(alphabet="abcxyz019-_.A", min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(name=NAME)
def test_model_names_accepted_exactly_when_kubernetes_accepts_them(name: str) -> None:
    raw = copy.deepcopy(BASE)
    raw["models"] = [raw["models"][0]]
    raw["models"][0]["name"] = name
    raw["models"][0]["agg"] = {"engineConfig": "engine_configs/qwen3-0-6b/agg.yaml"}
    children_fit = all(
        dns1123_label_problem(f"{name}-blue-{s}") is None for s in ("frontend", "trtllmworker")
    )
    # The operator's webhook with Grove: DGD name + service key <= 45 characters.
    grove_fits = len(f"{name}-blue") + len("trtllmworker") <= 45
    if dns1123_label_problem(name) is None and children_fit and grove_fits:
        assert parse(raw).models[0].name == name
    else:
        with pytest.raises(StackConfigError) as caught:
            parse(raw)
        assert "models[0].name" in caught.value.report()


@settings(max_examples=60, deadline=None)
@given(instance=st.sampled_from(sorted(CATALOG)), gpus=st.integers(min_value=1, max_value=16))
def test_gpus_per_worker_fits_exactly_the_catalog_count(instance: str, gpus: int) -> None:
    raw = copy.deepcopy(BASE)
    raw["nodePools"][0]["instanceType"] = instance
    raw["models"] = [raw["models"][0]]
    raw["models"][0]["agg"] = {"gpusPerWorker": gpus, "engineConfig": "agg.yaml"}
    with tempfile.TemporaryDirectory() as root:
        # An engine config whose tensor parallelism matches, so only the pool can object.
        Path(root, "agg.yaml").write_text(f"tensor_parallel_size: {gpus}\n")
        if gpus <= CATALOG[instance].gpu_count:
            parse(raw, Path(root))
        else:
            with pytest.raises(StackConfigError, match=rf"{gpus} GPUs asked"):
                parse(raw, Path(root))


def test_unknown_top_level_key_does_not_hide_model_problems() -> None:
    raw = values(modelz=[])
    raw["models"][1]["nodePool"] = "missing"
    raw["models"][0]["frontend"] = {"replicas": 0}
    found = problems(raw)
    assert any("dynamo-trtllm:modelz: unknown key" in p for p in found)
    assert any("models[1].nodePool: node pool 'missing' does not exist" in p for p in found)


def test_workers_beyond_the_pools_maximum_size_are_refused() -> None:
    raw = values()
    raw["nodePools"][1] |= {"desiredSize": 4}
    raw["models"][1]["decode"]["replicas"] = 4  # 4 + 16 GPUs on a pool of 4 × 8
    raw["models"][1]["slots"] = {"blue": {}, "green": {}}  # both colors run: 2 × 20 GPUs
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:nodePools[1].desiredSize: the scheduler cannot "
        "place gpt-oss-120b/green decode #4, gpt-oss-120b/green prefill #1 on pool 'h100': its "
        "pods need 5 p5.48xlarge nodes, desiredSize is 4; a managed node group without "
        "`autoscaled` runs exactly desiredSize nodes (see `dynamo-infra plan` for the placement)"
    ]
    raw["models"][1]["slots"]["green"] = {"prefill": {"replicas": 0}, "decode": {"replicas": 0}}
    parse(raw)


def test_multinode_workers_need_weights_on_a_shared_volume() -> None:
    raw = values()
    raw["models"][1]["topology"] = "disagg-multinode"
    raw["models"][1]["decode"] = {"gpusPerWorker": 8, "nodes": 2}
    found = problems(raw)
    assert any(
        "models[1].source: every node of a multinode worker reads the weights from one shared "
        "volume" in line
        for line in found
    )


def test_kv_routing_takes_engine_configs_without_an_event_buffer() -> None:
    """The worker sizes its KV event buffer itself under --publish-events-and-metrics."""
    raw = values()
    raw["models"][1]["topology"] = "disagg-router"  # gpt-oss prefill.yaml sets no event buffer
    parse(raw)


def test_invalid_engine_config_is_reported_with_stack_and_file_key_paths(tmp_path: Path) -> None:
    (tmp_path / "agg.yaml").write_text("kv_cache_config:\n  free_gpu_memory_fractoin: 0.5\n")
    raw = values()
    raw["models"] = [raw["models"][0]]
    raw["models"][0]["agg"] = {"engineConfig": "agg.yaml"}
    with pytest.raises(StackConfigError) as caught:
        parse(raw, tmp_path)
    (line,) = [issue.render() for issue in caught.value.issues]
    assert line.startswith("agg.yaml:2:3: kv_cache_config.free_gpu_memory_fractoin: unknown key")
    assert line.endswith("(engine config of dynamo-trtllm:models[0].agg.engineConfig)")
    assert "did you mean 'free_gpu_memory_fraction'?" in line


def test_weights_that_cannot_fit_the_gpus_stop_the_stack() -> None:
    raw = values()
    raw["models"][0]["plan"] = {"architecture": "meta-llama/Llama-3.3-70B-Instruct"}
    (line,) = problems(raw)
    assert line.startswith(
        "stacks/Pulumi.test.yaml: dynamo-trtllm:models[0].agg.gpusPerWorker: blue slot does not "
        "fit on L4: weights alone need "
    )


def test_unknown_architecture_is_named() -> None:
    raw = values()
    raw["models"][0]["plan"] = {"architecture": "acme/not-a-model"}
    (line,) = problems(raw)
    assert "models[0].plan.architecture: 'acme/not-a-model' is not in the model catalog" in line


def test_a_weighted_split_needs_a_gateway_and_workers_on_both_sides() -> None:
    raw = values()
    raw["models"][0]["slots"] = {"blue": {}, "green": {"agg": {"replicas": 0}}}
    raw["models"][0]["weights"] = {"blue": 90, "green": 10}
    raw["nodePools"][0] |= {"desiredSize": 2, "maxSize": 2}
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:models[0].slots.green: slot green receives 10% "
        "of requests but has no agg workers (replicas 0)",
        "stacks/Pulumi.test.yaml: dynamo-trtllm:models[0].weights: a weighted split needs a "
        "Gateway API HTTPRoute: set traffic.gateway (the stable Service can only select one slot)",
    ]
    raw["traffic"] = {
        "gateway": {"name": "inference", "namespace": "gateway", "domain": "inference.example.com"}
    }
    raw["models"][0]["slots"]["green"] = {}
    assert parse(raw).models[0].traffic_weights() == {"blue": 90, "green": 10}


def test_active_must_name_a_defined_slot() -> None:
    raw = values()
    raw["models"][0]["active"] = "green"
    assert any(
        "models[0].active: active slot 'green' is not defined under slots (defined: blue)" in p
        for p in problems(raw)
    )


def test_traffic_stack_is_checked_on_its_own_keys() -> None:
    traffic = {
        "role": "traffic",
        "environments": {"blue": "prod", "green": "prod-green"},
        "dns": {"hostedZoneId": "Z0123456789EXAMPLE", "recordName": "inference.example.com"},
        "active": "green",
        "weights": {"blue": 50, "green": 50},
    }
    assert parse(traffic).traffic_weights() == {"blue": 50, "green": 50}
    traffic["weights"] = {"blue": 50, "green": 40}
    assert any("weights must be >= 0 and add up to 100" in p for p in problems(traffic))
    traffic["weights"] = {"blue": 50, "green": 50}
    traffic["dns"]["ttll"] = 60
    assert problems(traffic) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:dns.ttll: unknown key 'ttll'; did you mean "
        "'ttl'? allowed: hostedZoneId, recordName, ttl"
    ]


def test_unknown_stack_role_is_named() -> None:
    assert problems(values(role="trafic")) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:role: 'trafic' is not one of 'environment', "
        "'traffic'"
    ]


def test_single_zone_pools_need_a_zone_of_the_vpc() -> None:
    raw = values()
    raw["nodePools"][1] |= {"efa": True, "availabilityZone": "us-west-2c"}
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:nodePools[1].availabilityZone: us-west-2c is not "
        "one of the VPC's availability zones (us-west-2a, us-west-2b)"
    ]
    raw["nodePools"][1]["availabilityZone"] = "eu-west-1a"
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:nodePools[1].availabilityZone: eu-west-1a is not "
        "a zone of region us-west-2 (cluster.region)"
    ]
    raw["nodePools"][1] |= {
        "efa": False,
        "availabilityZone": None,
        "capacityType": "capacity-block",
        "capacityReservationId": "cr-1",
    }
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:nodePools[1].availabilityZone: a capacity block "
        "is reserved in one zone: name its availability zone"
    ]


def test_single_zone_pools_on_an_existing_vpc_name_their_subnets() -> None:
    raw = values()
    raw["cluster"]["vpc"] = {
        "id": "vpc-1",
        "privateSubnetIds": ["subnet-a", "subnet-b"],
        "controlPlaneSubnets": [
            {"id": "subnet-c1", "cidr": "10.1.250.0/28"},
            {"id": "subnet-c2", "cidr": "10.1.250.16/28"},
        ],
    }
    raw["nodePools"][1] |= {"efa": True, "availabilityZone": "us-west-2a"}
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:nodePools[1].subnetIds: on an existing VPC, give "
        "the private subnet(s) of us-west-2a for this pool"
    ]
    raw["nodePools"][1]["subnetIds"] = ["subnet-a"]
    parse(raw)


def test_a_memory_cache_tier_must_fit_the_nodes_ram() -> None:
    raw = values(modelCache={"medium": "MEM"})
    raw["models"][1]["source"] = {"s3": {"uri": "s3://models-bucket/gpt-oss", "sizeGib": 65}}
    raw["models"][1]["nodePool"] = "l4"
    raw["models"][1]["prefill"] = raw["models"][1]["decode"] = {"gpusPerWorker": 1}
    found = problems(raw)
    assert any(
        "modelCache.medium: a MEM tier for gpt-oss-120b (blue) needs 78 GiB of RAM, nodes of "
        "pool 'l4' (g6.xlarge) have 16 GiB: use SSD" in line
        for line in found
    )


def test_models_pulled_from_hugging_face_get_a_cold_start_warning() -> None:
    from infra.deployment.checked import check_stack_values

    warnings = check_stack_values(values(), "stacks/Pulumi.test.yaml", PROJECT_ROOT).warnings
    assert len(warnings) == 2 and "Hugging Face at start" in warnings[0].message
    assert warnings[0].path == "models[0].source" and warnings[0].severity == "warning"


def test_high_availability_needs_three_system_nodes() -> None:
    raw = values(platform={"highAvailability": True})
    assert problems(raw) == [
        "stacks/Pulumi.test.yaml: dynamo-trtllm:cluster.systemNodeGroup.minSize: "
        "platform.highAvailability runs 3 NATS servers, one per node, on the system nodes: "
        "minSize must be at least 3 (is 2)"
    ]
    raw["cluster"]["systemNodeGroup"] = {"minSize": 3, "desiredSize": 3, "maxSize": 4}
    parse(raw)


def test_a_model_cannot_share_a_namespace_the_platform_or_kubernetes_runs() -> None:
    raw = values()
    raw["models"][0]["namespace"] = "dynamo-system"
    raw["models"][1]["name"] = "kube-system"
    found = problems(raw)
    assert any(
        "models[0].namespace: namespace 'dynamo-system' belongs to the platform" in p for p in found
    )
    assert any("models[1].name: namespace 'kube-system' belongs to Kubernetes" in p for p in found)


def test_monitoring_cannot_share_the_platform_namespace() -> None:
    raw = values(observability={"enabled": True, "namespace": "dynamo-system"})
    assert any(
        "observability.namespace: 'dynamo-system' is already the platform's namespace" in p
        for p in problems(raw)
    )


# --- the cluster's access path, version and region ------------------------------------------


def with_cluster(**cluster: object) -> dict:
    raw = values()
    raw["cluster"] |= cluster
    return raw


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (
            {"mode": "private"},
            "dynamo-trtllm:cluster.endpointAccess: mode private: with no public endpoint, "
            "`pulumi up` must run inside the VPC or a network routed to it: set runner "
            "(in-vpc or connected-network) and runnerCidrs",
        ),
        (
            {"mode": "private", "runner": "in-vpc"},
            "dynamo-trtllm:cluster.endpointAccess: mode private: with no public endpoint",
        ),
        (
            {"mode": "public-and-private"},
            "dynamo-trtllm:cluster.endpointAccess: mode public-and-private needs "
            "publicAccessCidrs: the networks `pulumi up` and kubectl come from (no silent "
            "0.0.0.0/0; list it to mean the internet)",
        ),
        (None, "dynamo-trtllm:cluster.endpointAccess: required key missing"),
    ],
)
def test_the_api_servers_access_path_is_stated(endpoint: dict | None, expected: str) -> None:
    raw = values()
    raw["cluster"].pop("endpointAccess")
    if endpoint is not None:
        raw["cluster"]["endpointAccess"] = endpoint
    (found,) = [p for p in problems(raw) if "endpointAccess" in p]
    assert found.startswith(f"stacks/Pulumi.test.yaml: {expected}")


def test_the_old_endpoint_keys_are_unknown() -> None:
    found = problems(with_cluster(endpointPublicAccess=False))
    assert any("unknown key 'endpointPublicAccess'" in p for p in found)


def test_stated_access_paths_are_accepted() -> None:
    private = {
        "mode": "private",
        "runner": "connected-network",
        "runnerCidrs": ["10.8.0.0/16"],
        "vpcReachable": True,  # a later `up`: the first cannot reach a new VPC privately
    }
    config = parse(with_cluster(endpointAccess=private))
    assert config.cluster.endpoint_access.runner_cidrs == ["10.8.0.0/16"]
    everywhere = {"mode": "public-and-private", "publicAccessCidrs": ["0.0.0.0/0"]}
    assert parse(with_cluster(endpointAccess=everywhere))  # stated explicitly: a warning only


def test_cidrs_are_networks() -> None:
    access = {"mode": "public-and-private", "publicAccessCidrs": ["203.0.113.7/24"]}
    (found,) = [p for p in problems(with_cluster(endpointAccess=access)) if "203.0" in p]
    assert "'203.0.113.7/24' has host bits set: the network is 203.0.113.0/24" in found


def test_an_unknown_kubernetes_version_is_refused() -> None:
    (found,) = problems(with_cluster(kubernetesVersion="1.31"))
    assert found.endswith(
        "dynamo-trtllm:cluster.kubernetesVersion: EKS does not create clusters with Kubernetes "
        "1.31: it offers 1.32, 1.33, 1.34, 1.35, 1.36"
    )


def test_the_default_kubernetes_version_is_in_standard_support_today() -> None:
    config = parse(values())
    assert config.cluster.kubernetes_version == DEFAULT_KUBERNETES_VERSION
    assert EKS_KUBERNETES_VERSIONS[DEFAULT_KUBERNETES_VERSION].phase(date.today()) == "standard"


def test_aws_region_must_equal_the_cluster_region(project: Project) -> None:
    config = project.stack_config("dev")
    config["aws:region"] = "eu-west-1"
    project.write_stack("dev", config)
    with pytest.raises(StackConfigError) as caught:
        check_stack(project.root, "dev")
    (found,) = [i for i in caught.value.issues if i.path == "aws:region"]
    assert found.message.startswith("'eu-west-1' differs from dynamo-trtllm:cluster.region")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["nodePools"][0].update(maxSize=10**30), "nodePools[0].maxSize"),
        (lambda r: r["models"][0].update(agg={"replicas": 10**9}), "models[0].agg.replicas"),
        (lambda r: r["models"][0].update(agg={"nodes": 10**9}), "models[0].agg.nodes"),
        (lambda r: r["nodePools"][0].update(rootVolumeGib=10**7), "nodePools[0].rootVolumeGib"),
        (
            lambda r: r["cluster"].update(
                systemNodeGroup={"minSize": 3, "desiredSize": 1, "maxSize": 2}
            ),
            "cluster.systemNodeGroup",
        ),
    ],
)
def test_sizes_beyond_what_aws_allows_are_refused_not_simulated(change, expected: str) -> None:
    """An extra zero (or 10^30) is a line-located error, never a simulation that eats memory."""
    raw = values()
    change(raw)
    assert any(f"dynamo-trtllm:{expected}:" in p for p in problems(raw))


def test_a_number_for_a_boolean_is_refused() -> None:
    raw = values()
    raw["cluster"]["protect"] = 0
    assert any("cluster.protect: expected true or false, not a number" in p for p in problems(raw))


def test_a_section_of_the_wrong_shape_is_named_in_plain_words() -> None:
    raw = values()
    raw["models"][0]["agg"] = [1]
    raw["nodePools"] = {"l4": {}}
    found = problems(raw)
    assert any("models[0].agg: expected a mapping of keys, not a list" in p for p in found)
    assert any("nodePools: expected a list, not a mapping" in p for p in found)
    assert not any("valid dictionary" in p or "instance of" in p for p in found)
