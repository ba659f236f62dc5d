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


def _parsers(args: list[str]) -> tuple[str | None, str | None]:
    def value(flag: str) -> str | None:
        return args[args.index(flag) + 1] if flag in args else None

    return value("--dyn-reasoning-parser"), value("--dyn-tool-call-parser")


def test_each_catalog_model_gets_the_parsers_of_its_output_format(
    rendered: dict[str, Rendered],
) -> None:
    """Without them a reasoning model's thinking lands in the answer and tool calls in plain
    text: Qwen3 thinks and calls tools in hermes blocks, DeepSeek-R1 only reasons, Llama 4
    calls tools in Python syntax."""
    expected = {
        "qwen3-0-6b-blue": ("qwen3", "hermes"),
        "deepseek-r1-blue": ("deepseek_r1", None),
        "llama-4-maverick-blue": (None, "pythonic"),
    }
    graphs = {d["metadata"]["name"]: d for d in rendered["prod"].objects("DynamoGraphDeployment")}
    for graph, parsers in expected.items():
        workers = [
            service["extraPodSpec"]["mainContainer"]["args"]
            for key, service in graphs[graph]["spec"]["services"].items()
            if key != "Frontend"
        ]
        assert workers and all(_parsers(args) == parsers for args in workers), graph


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
