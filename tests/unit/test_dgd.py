"""DGD builder: the shape of each topology follows the operator's conventions."""

from __future__ import annotations

import pytest

from components.dgd import (
    COLOR_LABEL,
    EFA_RESOURCE,
    ENGINE_HASH_ANNOTATION,
    GRAPH_BUILDERS,
    GraphInputs,
    WorkerParallelism,
    WorkerPlacement,
    build_dgd,
    engine_config_hash,
)
from components.dgd_parts import HF_HOME
from infra.deployment.operator_rules import operator_update_refusals
from infra.deployment.readiness import OPERATOR_STARTUP_SECONDS
from infra.stack.model_config import Model
from tests.dgd_layouts import container_object, service_object, services

IMAGE = "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.1.0"


def model(**fields) -> Model:
    base = {"name": "m", "source": {"huggingFace": "Qwen/Qwen3-0.6B"}, "image": IMAGE}
    return Model.model_validate(base | fields)


def inputs(**fields) -> GraphInputs:
    return GraphInputs(
        namespace="m", engine_config_map="m-blue-engine-config", engine_config_hash="abc", **fields
    )


def argv(service: dict) -> list[str]:
    container = service["extraPodSpec"]["mainContainer"]
    return [*container["command"], *container["args"]]


def flag(service: dict, name: str) -> str:
    args = argv(service)
    return args[args.index(name) + 1]


def test_agg_has_frontend_and_one_worker() -> None:
    dgd = build_dgd(model(), "blue", inputs(hf_token_secret="hf-token-secret"))
    assert dgd["apiVersion"] == "nvidia.com/v1alpha1"
    assert dgd["metadata"]["name"] == "m-blue"
    spec = dgd["spec"]
    assert spec["backendFramework"] == "trtllm"
    assert set(spec["services"]) == {"Frontend", "TRTLLMWorker"}
    worker = spec["services"]["TRTLLMWorker"]
    assert worker["componentType"] == "worker"
    assert worker["envFromSecret"] == "hf-token-secret"
    assert worker["resources"]["limits"]["gpu"] == "1"
    assert argv(worker)[:3] == ["python3", "-m", "dynamo.trtllm"]
    assert (
        argv(worker)[argv(worker).index("--extra-engine-args") + 1]
        == "/etc/dynamo-trtllm/engine/agg.yaml"
    )
    assert "--publish-events-and-metrics" not in argv(worker)
    assert argv(spec["services"]["Frontend"])[-2:] == ["--router-mode", "round-robin"]


def test_router_topology_turns_on_kv_routing_and_events() -> None:
    spec = build_dgd(model(topology="agg-router"), "blue", inputs())["spec"]
    assert argv(spec["services"]["Frontend"])[-2:] == ["--router-mode", "kv"]
    assert "--publish-events-and-metrics" in argv(spec["services"]["TRTLLMWorker"])


def test_disagg_router_publishes_kv_events_from_prefill_only() -> None:
    services = build_dgd(model(topology="disagg-router"), "blue", inputs())["spec"]["services"]
    assert flag(services["Frontend"], "--router-mode") == "kv"
    assert "--publish-events-and-metrics" in argv(services["prefill"])
    assert "--publish-events-and-metrics" not in argv(services["decode"])


def test_parallelism_flags_come_from_the_engine_config_layout() -> None:
    layout = WorkerParallelism(tensor=8, pipeline=2, expert=8, gpus_per_node=8)
    m = model(topology="disagg-multinode", prefill={"gpusPerWorker": 8, "nodes": 2})
    services = build_dgd(m, "blue", inputs(parallelism={"prefill": layout}))["spec"]["services"]
    prefill = services["prefill"]
    assert flag(prefill, "--tensor-parallel-size") == "8"
    assert flag(prefill, "--pipeline-parallel-size") == "2"
    assert flag(prefill, "--expert-parallel-size") == "8"
    assert flag(prefill, "--gpus-per-node") == "8"
    assert "--tensor-parallel-size" not in argv(services["decode"])


def test_multimodal_models_run_workers_in_multimodal_mode() -> None:
    worker = build_dgd(model(multimodal=True), "blue", inputs())["spec"]["services"]["TRTLLMWorker"]
    assert flag(worker, "--modality") == "multimodal"


@pytest.mark.parametrize("topology", ["disagg", "disagg-router"])
def test_disagg_has_prefill_and_decode_workers(topology: str) -> None:
    spec = build_dgd(model(topology=topology), "green", inputs())["spec"]
    assert set(spec["services"]) == {"Frontend", "prefill", "decode"}
    for role, key in (("prefill", "prefill"), ("decode", "decode")):
        service = spec["services"][key]
        assert service["subComponentType"] == role
        command = argv(service)
        assert command[command.index("--disaggregation-mode") + 1] == role
        assert command[command.index("--extra-engine-args") + 1].endswith(f"/{role}.yaml")


def test_multinode_worker_spans_nodes_with_efa() -> None:
    m = model(topology="disagg-multinode", decode={"gpusPerWorker": 8, "nodes": 2})
    placement = WorkerPlacement(node_selector={"pool": "h100"}, efa_interfaces=32)
    spec = build_dgd(m, "blue", inputs(placements={"decode": placement}))["spec"]
    decode = spec["services"]["decode"]
    assert decode["multinode"] == {"nodeCount": 2}
    assert decode["resources"]["limits"] == {"gpu": "8", "custom": {EFA_RESOURCE: "32"}}
    assert decode["extraPodSpec"]["nodeSelector"] == {"pool": "h100"}
    assert decode["extraPodSpec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert "multinode" not in spec["services"]["prefill"]
    assert {"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "1"} in spec["envs"]


def test_cached_weights_mount_the_pvc_and_prefer_cache_nodes() -> None:
    m = model(source={"s3": {"uri": "s3://models-bucket/p", "sizeGib": 10}})
    spec = build_dgd(m, "blue", inputs(model_pvc="weights-blue", cache_node_label="fluid.io/x"))[
        "spec"
    ]
    worker = spec["services"]["TRTLLMWorker"]
    assert spec["pvcs"] == [{"name": "weights-blue", "create": False}]
    assert worker["volumeMounts"] == [{"name": "weights-blue", "mountPoint": "/models"}]
    assert argv(worker)[argv(worker).index("--model-path") + 1] == "/models"
    terms = worker["extraPodSpec"]["affinity"]["nodeAffinity"]
    assert (
        terms["preferredDuringSchedulingIgnoredDuringExecution"][0]["preference"][
            "matchExpressions"
        ][0]["key"]
        == "fluid.io/x"
    )


def test_slot_overrides_image_and_replicas() -> None:
    m = model(
        agg={"replicas": 3}, slots={"blue": {}, "green": {"image": "img:2", "agg": {"replicas": 0}}}
    )
    blue = build_dgd(m, "blue", inputs())["spec"]["services"]["TRTLLMWorker"]
    green = build_dgd(m, "green", inputs())["spec"]["services"]["TRTLLMWorker"]
    assert (blue["replicas"], green["replicas"]) == (3, 0)
    assert green["extraPodSpec"]["mainContainer"]["image"] == "img:2"
    assert build_dgd(m, "green", inputs())["spec"]["labels"][COLOR_LABEL] == "green"


def test_an_idle_autoscaled_slot_comes_back_through_a_pinned_count_the_webhook_accepts() -> None:
    """With the adapter on, replicas may not change (nil counts as 1): 0 -> adapter is refused;
    0 -> pinned 1 (adapter off) -> adapter passes, step by step."""
    scaling = {"autoscaling": {"maxReplicas": 4}}

    def green(slot_role: dict) -> dict:
        slots = {"blue": {}, "green": {"agg": slot_role} if slot_role else {}}
        return build_dgd(model(agg=scaling, slots=slots), "green", inputs())

    idle, pinned, scaled = green({"replicas": 0}), green({"replicas": 1}), green({})
    assert "scalingAdapter" not in pinned["spec"]["services"]["TRTLLMWorker"]
    assert pinned["spec"]["services"]["TRTLLMWorker"]["replicas"] == 1
    assert operator_update_refusals(idle, scaled)  # what the webhook refuses
    assert operator_update_refusals(idle, pinned) == []
    assert operator_update_refusals(pinned, scaled) == []
    assert "pin the slot's replicas" in operator_update_refusals(idle, scaled)[0]


def test_engine_config_hash_rolls_workers_on_content_change() -> None:
    before = engine_config_hash({"agg.yaml": "max_batch_size: 16\n"})
    after = engine_config_hash({"agg.yaml": "max_batch_size: 32\n"})
    assert before != after
    dgd = build_dgd(model(), "blue", inputs())
    assert dgd["spec"]["annotations"][ENGINE_HASH_ANNOTATION] == "abc"


def test_mocker_runs_without_gpus() -> None:
    worker = build_dgd(model(engine="mocker"), "blue", inputs())["spec"]["services"]["TRTLLMWorker"]
    assert argv(worker) == [
        "python3", "-m", "dynamo.mocker",
        "--model-path", "Qwen/Qwen3-0.6B",
        "--model-name", "Qwen/Qwen3-0.6B",
    ]  # fmt: skip
    assert "tolerations" not in worker["extraPodSpec"]
    assert worker["resources"] == {"requests": {"memory": "2Gi"}, "limits": {"memory": "2Gi"}}


@pytest.mark.parametrize("api_version", sorted(GRAPH_BUILDERS))
def test_workers_keep_hugging_face_downloads_across_container_restarts(api_version: str) -> None:
    """HF_HOME is on a volume of the pod: a crashed worker restarts without downloading again."""
    dgd = GRAPH_BUILDERS[api_version](model(), "blue", inputs(dgd_api_version=api_version))
    views = services(dgd)
    worker, frontend = views["TRTLLMWorker"], views["Frontend"]
    assert worker.container.env_values["HF_HOME"] == HF_HOME
    (mount,) = [m for m in worker.container.volume_mounts if m["mountPath"] == HF_HOME]
    (volume,) = [v for v in worker.pod.volumes if v["name"] == mount["name"]]
    assert volume == {"name": mount["name"], "emptyDir": {}}
    assert "HF_HOME" not in frontend.container.env_values  # the frontend downloads nothing


def _pod_and_container(dgd: dict, name: str) -> tuple[dict, dict]:
    service = service_object(dgd, name)
    pod = service["extraPodSpec"] if "extraPodSpec" in service else service["podTemplate"]["spec"]
    return pod, container_object(dgd, name)


@pytest.mark.parametrize("api_version", sorted(GRAPH_BUILDERS))
def test_graph_pods_are_confined_and_drop_what_their_role_does_not_use(api_version: str) -> None:
    build = GRAPH_BUILDERS[api_version]
    single = build(model(), "blue", inputs(dgd_api_version=api_version))
    multinode = build(
        model(topology="disagg-multinode", prefill={"nodes": 2}, decode={"nodes": 2}),
        "blue",
        inputs(dgd_api_version=api_version),
    )
    cases = [
        (single, "Frontend", ["ALL"]),
        (single, "TRTLLMWorker", None),
        (multinode, "decode", None),
    ]
    dropped = {}
    for dgd, name, expected in cases:
        pod, container = _pod_and_container(dgd, name)
        assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        dropped[name] = context["capabilities"]["drop"]
        if expected is not None:
            assert dropped[name] == expected
    # sshd (multinode) keeps what a single-node worker gives up: chroot, audit, port 22
    assert set(dropped["TRTLLMWorker"]) - set(dropped["decode"]) == {
        "SYS_CHROOT", "AUDIT_WRITE", "NET_BIND_SERVICE",
    }  # fmt: skip
    assert "NET_RAW" in dropped["decode"]


def test_every_container_has_a_memory_limit_a_worker_its_share_of_the_node() -> None:
    p5 = WorkerPlacement({"pool": "h100"}, memory_mib=500_000)
    dgd = build_dgd(model(), "blue", inputs(placements={"agg": p5}))
    services = dgd["spec"]["services"]
    assert services["Frontend"]["resources"]["limits"]["memory"] == "2Gi"
    worker = services["TRTLLMWorker"]["resources"]
    assert worker["limits"]["memory"] == worker["requests"]["memory"] == "500000Mi"
    explicit = build_dgd(model(agg={"memory": "64Gi"}), "blue", inputs(placements={"agg": p5}))
    assert explicit["spec"]["services"]["TRTLLMWorker"]["resources"]["limits"]["memory"] == "64Gi"


@pytest.mark.parametrize("api_version", sorted(GRAPH_BUILDERS))
def test_only_a_worker_loading_past_the_operator_probe_states_its_own(api_version: str) -> None:
    """164 min to Ready (20 of them before the container starts): 144 min of load, beyond the
    operator's 2 h startup probe; 60 min is well within it and leaves the operator's probe."""
    build = GRAPH_BUILDERS[api_version]
    disagg = model(topology="disagg")
    long = build(
        disagg, "blue", inputs(ready_timeout_seconds=164 * 60, dgd_api_version=api_version)
    )
    for name in ("prefill", "decode"):
        probe = container_object(long, name)["startupProbe"]
        assert probe["httpGet"] == {"path": "/live", "port": "system"}
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 1.5 * 144 * 60
        assert probe["periodSeconds"] * probe["failureThreshold"] > OPERATOR_STARTUP_SECONDS
    assert "startupProbe" not in container_object(long, "Frontend")
    for timeout in (60 * 60, 0):  # an hour to Ready; no wait at all
        short = build(
            disagg, "blue", inputs(ready_timeout_seconds=timeout, dgd_api_version=api_version)
        )
        assert all("startupProbe" not in container_object(short, n) for n in services(short))
    # A mocker starts in seconds whatever its budget says.
    mocker = build(
        model(engine="mocker"),
        "blue",
        inputs(ready_timeout_seconds=164 * 60, dgd_api_version=api_version),
    )
    assert "startupProbe" not in container_object(mocker, "TRTLLMWorker")
