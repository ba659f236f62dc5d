"""Model-aware arguments: output parsers the model needs, and drafts that bypass the cache."""

from __future__ import annotations

from infra.deployment.checked import check_stack
from tests.conftest import PROJECT_ROOT, Rendered


def test_gpt_oss_workers_get_dynamos_harmony_parsers(rendered: dict[str, Rendered]) -> None:
    graphs = {d["metadata"]["name"]: d for d in rendered["prod"].objects("DynamoGraphDeployment")}
    for key in ("prefill", "decode"):
        args = graphs["gpt-oss-120b-blue"]["spec"]["services"][key]["extraPodSpec"][
            "mainContainer"
        ]["args"]
        assert args[args.index("--dyn-reasoning-parser") + 1] == "gpt_oss"
        assert args[args.index("--dyn-tool-call-parser") + 1] == "harmony"
    qwen = graphs["qwen3-0-6b-blue"]["spec"]["services"]["TRTLLMWorker"]
    assert "--dyn-reasoning-parser" not in qwen["extraPodSpec"]["mainContainer"]["args"]


def test_a_draft_named_by_hugging_face_id_beside_cached_weights_is_a_warning() -> None:
    warnings = check_stack(PROJECT_ROOT, "prod").warnings
    (draft,) = [w for w in warnings if "draft model" in w.message]
    assert draft.file == "engine_configs/llama-4-maverick/agg.yaml" and draft.line == 14


def test_worker_monitors_keep_the_slot_and_skip_non_leader_multinode_pods(
    rendered: dict[str, Rendered],
) -> None:
    monitors = {m["metadata"]["name"]: m for m in rendered["prod"].objects("PodMonitor")}
    (endpoint,) = monitors["deepseek-r1-worker"]["spec"]["podMetricsEndpoints"]
    graph, leaders_only = endpoint["relabelings"]
    assert graph["targetLabel"] == "graph"
    assert graph["sourceLabels"] == [
        "__meta_kubernetes_pod_label_nvidia_com_dynamo_graph_deployment_name"
    ]
    assert leaders_only == {
        "sourceLabels": ["__meta_kubernetes_pod_label_grove_io_podclique"],
        "regex": ".*-wkr",
        "action": "drop",
    }
