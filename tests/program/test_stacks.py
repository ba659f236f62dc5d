"""Whole stacks under the Pulumi mock runtime: what each environment would create."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.dgd import engine_config_hash
from infra.offline.render import render_stack
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, Project, Rendered
from tests.dgd_layouts import services


def test_every_stack_renders(rendered: dict[str, Rendered]) -> None:
    assert set(rendered) == {"dev", "staging", "prod", "local", "prod-traffic"}
    for stack in ENVIRONMENT_STACKS:
        assert rendered[stack].objects("DynamoGraphDeployment")


def test_traffic_stack_as_shipped_points_at_the_one_environment_that_exists(
    rendered: dict[str, Rendered],
) -> None:
    """prod-green does not exist until an upgrade needs it: the shipped stack deploys without it."""
    [record] = [
        rendered["prod-traffic"].load(r)
        for r in rendered["prod-traffic"].of_type("aws:route53/record:Record")
    ]
    assert record["name"] == "*.inference.example.com" and record["setIdentifier"] == "blue"
    assert [p["weight"] for p in record["weightedRoutingPolicies"]] == [100]
    assert record["records"] == ["prod.public.mock.invalid"]
    assert rendered["prod-traffic"].of_type("kubernetes:") == []


def test_traffic_stack_weights_dns_between_referenced_environments(
    project: Project, tmp_path: Path
) -> None:
    config = project.stack_config("prod-traffic")
    config["dynamo-trtllm:environments"]["green"] = "prod-green"
    project.write_stack("prod-traffic", config)
    render_stack("prod-traffic", tmp_path / "out", project.root)
    traffic = Rendered(tmp_path / "out")
    records = {r["name"]: traffic.load(r) for r in traffic.of_type("aws:route53/record:Record")}
    assert set(records) == {"public-entry-blue", "public-entry-green"}
    blue, green = records["public-entry-blue"], records["public-entry-green"]
    assert blue["name"] == green["name"] == "*.inference.example.com"
    assert (blue["setIdentifier"], green["setIdentifier"]) == ("blue", "green")
    assert [p["weight"] for p in blue["weightedRoutingPolicies"]] == [100]
    assert [p["weight"] for p in green["weightedRoutingPolicies"]] == [0]
    # each record points at its environment stack's exported publicHostname (mocked)
    assert blue["records"] == ["prod.public.mock.invalid"]
    assert green["records"] == ["prod-green.public.mock.invalid"]


def test_both_slots_render_and_the_stable_entry_follows_traffic(
    rendered: dict[str, Rendered],
) -> None:
    staging = rendered["staging"]
    graphs = {g["metadata"]["name"] for g in staging.objects("DynamoGraphDeployment")}
    assert {"qwen3-0-6b-blue", "qwen3-0-6b-green"} <= graphs
    service = next(s for s in staging.objects("Service") if s["metadata"]["name"] == "qwen3-0-6b")
    assert service["spec"]["selector"]["dynamo-trtllm.io/color"] == "blue"
    # every model gets a route once the stack has a gateway; this one carries the canary
    route = next(r for r in staging.objects("HTTPRoute") if r["metadata"]["name"] == "qwen3-0-6b")
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [
        ("qwen3-0-6b-blue-frontend", 90),
        ("qwen3-0-6b-green-frontend", 10),
    ]
    assert route["spec"]["parentRefs"] == [{"name": "inference", "namespace": "gateway"}]


def test_local_creates_no_aws_resource(rendered: dict[str, Rendered]) -> None:
    local = rendered["local"]
    assert local.of_type("aws:") == []
    worker = services(local.objects("DynamoGraphDeployment")[0])["TRTLLMWorker"]
    assert worker.container.command[2] == "dynamo.mocker"


def test_dev_is_one_single_gpu_pool_and_one_agg_model(rendered: dict[str, Rendered]) -> None:
    dev = rendered["dev"]
    (pool,) = dev.objects("NodePool")  # Karpenter's: no GPU node until the worker asks
    requirements = {r["key"]: r["values"] for r in pool["spec"]["template"]["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ["g6.xlarge"]
    assert pool["spec"]["template"]["spec"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    (node_class,) = dev.objects("EC2NodeClass")
    assert node_class["spec"]["amiSelectorTerms"] == [{"alias": "al2023@v20260714"}]
    [dgd] = dev.objects("DynamoGraphDeployment")
    assert set(services(dgd)) == {"Frontend", "TRTLLMWorker"}


def test_prod_has_disagg_multinode_ha_platform(rendered: dict[str, Rendered]) -> None:
    prod = rendered["prod"]
    dgds = {d["metadata"]["name"]: d for d in prod.objects("DynamoGraphDeployment")}
    assert {"gpt-oss-120b-blue", "gpt-oss-120b-green", "deepseek-r1-blue"} <= set(dgds)
    decode = services(dgds["deepseek-r1-blue"])["decode"]
    assert decode.nodes == 2
    limits = decode.container.resources["limits"]
    assert {k: v for k, v in limits.items() if k != "memory"} == {
        "nvidia.com/gpu": "8",
        "vpc.amazonaws.com/efa": "32",
        "hugepages-2Mi": "5120Mi",
    }
    # a whole p5 (its capacity: 7.5% below nominal) less the kubelet's reservation, the EFA huge
    # pages and the DaemonSets' reserve
    capacity = int(2048 * 1024 * 0.925)
    assert limits["memory"] == f"{capacity - (255 + 11 * 100 + 100) - 10256 - 4096}Mi"
    pools = {r["name"] for r in prod.of_type("aws:eks/nodeGroup")}
    assert "pool-h100" in pools  # the capacity block; l40s is Karpenter's (test_karpenter)
    platform = yaml.safe_load((prod.out / "helm/dynamo-system/dynamo-platform.yaml").read_text())
    assert platform["version"] == "1.1.0"
    assert platform["values"]["nats"]["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert platform["values"]["nats"]["config"]["merge"]["max_payload"] == 15 * 1024 * 1024


def test_stable_service_selects_the_active_color(rendered: dict[str, Rendered]) -> None:
    services = {s["metadata"]["name"]: s for s in rendered["prod"].objects("Service")}
    selector = services["gpt-oss-120b"]["spec"]["selector"]
    assert selector["dynamo-trtllm.io/color"] == "blue"
    assert selector["nvidia.com/dynamo-component-type"] == "frontend"


def test_cached_models_mount_the_datasets_pvc(rendered: dict[str, Rendered]) -> None:
    mounted_in: dict[str, set[tuple[str, str]]] = {}
    for stack in ENVIRONMENT_STACKS:
        datasets = {
            (d["metadata"]["namespace"], d["metadata"]["name"])
            for d in rendered[stack].objects("Dataset")
        }
        mounted = mounted_in.setdefault(stack, set())
        for dgd in rendered[stack].objects("DynamoGraphDeployment"):
            for service in services(dgd).values():
                mounted |= {(dgd["metadata"]["namespace"], c) for c in service.pod.claims()}
        assert mounted <= datasets, stack
    assert ("gpt-oss-120b", "weights-blue") in mounted_in["prod"]


def test_every_owned_namespace_denies_by_default(rendered: dict[str, Rendered]) -> None:
    for stack in ENVIRONMENT_STACKS:
        owned = {n["metadata"]["name"] for n in rendered[stack].objects("Namespace")}
        denied = {
            p["metadata"]["namespace"]
            for p in rendered[stack].objects("NetworkPolicy")
            if p["metadata"]["name"] == "default-deny"
            and p["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
        }
        assert owned and denied == owned, stack


def test_pod_security_is_loosened_only_where_the_pods_need_it(
    rendered: dict[str, Rendered],
) -> None:
    prod = rendered["prod"]
    enforced = {
        n["metadata"]["name"]: n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for n in prod.objects("Namespace")
    }
    # Models cached from S3: Fluid's FUSE pod is privileged and runs in the model's namespace.
    assert enforced["gpt-oss-120b"] == enforced["deepseek-r1"] == "privileged"
    assert enforced["qwen3-0-6b"] == "baseline"
    assert enforced["keda"] == "restricted"
    for namespace in prod.objects("Namespace"):
        annotations = namespace["metadata"]["annotations"]
        assert annotations["dynamo-trtllm.io/pod-security-reason"]


def test_engine_config_ships_as_configmap_with_its_hash(rendered: dict[str, Rendered]) -> None:
    dev = rendered["dev"]
    # dev's other ConfigMap is the Grafana dashboard of its Prometheus.
    [config_map] = [c for c in dev.objects("ConfigMap") if "agg.yaml" in c["data"]]
    assert (
        config_map["data"]["agg.yaml"]
        == (PROJECT_ROOT / "engine_configs/qwen3-0-6b/agg.yaml").read_text()
    )
    [dgd] = dev.objects("DynamoGraphDeployment")
    worker = services(dgd)["TRTLLMWorker"]
    assert {"name": "engine-config", "configMap": {"name": config_map["metadata"]["name"]}} in (
        worker.pod.volumes
    )
    assert {
        "name": "engine-config",
        "mountPath": "/etc/dynamo-trtllm/engine",
        "readOnly": True,
    } in worker.container.volume_mounts
    assert worker.container.arg("--extra-engine-args") == "/etc/dynamo-trtllm/engine/agg.yaml"
    # The content hash rolls the workers when a config changes: on the graph and its pods.
    digest = engine_config_hash(config_map["data"])
    assert dgd["metadata"]["annotations"]["dynamo-trtllm.io/engine-config-hash"] == digest
    assert dgd["spec"]["annotations"]["dynamo-trtllm.io/engine-config-hash"] == digest


def test_worker_flags_follow_each_engine_config(rendered: dict[str, Rendered]) -> None:
    graphs = {g["metadata"]["name"]: g for g in rendered["prod"].objects("DynamoGraphDeployment")}
    decode = services(graphs["deepseek-r1-blue"])["decode"]
    # engine_configs/deepseek-r1/decode.yaml: TP16 / EP16 over 2 nodes of 8 GPUs.
    assert decode.container.arg("--tensor-parallel-size") == "16"
    assert decode.container.arg("--expert-parallel-size") == "16"
    assert decode.container.arg("--gpus-per-node") == "8"
    assert decode.container.arg("--extra-engine-args") == "/etc/dynamo-trtllm/engine/decode.yaml"
    assert decode.nodes == 2
    config_maps = {c["metadata"]["name"]: c for c in rendered["prod"].objects("ConfigMap")}
    shipped = config_maps["deepseek-r1-blue-engine-config"]["data"]["decode.yaml"]
    assert shipped == (PROJECT_ROOT / "engine_configs/deepseek-r1/decode.yaml").read_text()
    vl = next(
        g
        for g in rendered["staging"].objects("DynamoGraphDeployment")
        if g["metadata"]["name"] == "qwen3-vl-2b-blue"
    )
    assert services(vl)["TRTLLMWorker"].container.arg("--modality") == "multimodal"
    # staging's disaggregated graph: each half runs its own engine config in its own mode.
    disagg = next(
        g
        for g in rendered["staging"].objects("DynamoGraphDeployment")
        if g["metadata"]["name"] == "qwen3-disagg-blue"
    )
    for half in ("prefill", "decode"):
        worker = services(disagg)[half].container
        assert worker.arg("--disaggregation-mode") == half
        assert worker.arg("--extra-engine-args") == f"/etc/dynamo-trtllm/engine/{half}.yaml"


def test_multinode_workers_get_grove_from_the_platform_chart(
    rendered: dict[str, Rendered],
) -> None:
    def platform_values(stack: str) -> dict:
        releases = [rendered[stack].load(r) for r in rendered[stack].of_type("kubernetes:helm")]
        return next(r for r in releases if r["chart"] == "dynamo-platform")["values"]

    assert platform_values("prod")["global"]["grove"] == {"install": True, "enabled": True}
    assert "grove" not in platform_values("dev")["global"]
