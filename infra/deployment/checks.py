"""Checks on the resolved deployment: what needs the engine configs and the model facts.

Engine configs parse as TensorRT-LLM would and fit the worker the stack gives them; weights fit
their GPUs; models the catalog lacks are said loudly.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.deployment.operator_rules import operator_create_issues
from infra.deployment.placement import placement_issues
from infra.deployment.planning import fit_issues
from infra.deployment.readiness import ready_timeout_seconds, weights_gib
from infra.deployment.resolved import (
    Deployment,
    EngineFile,
    ProjectFiles,
    ResolvedModel,
    ResolvedRole,
    engine_config_key,
    platform_runtime,
)
from infra.deployment.system_nodes import system_node_issues
from infra.stack.errors import CONFIG_NAMESPACE, ConfigIssue
from infra.stack.model_config import Model
from infra.stack.names import GRAFANA_ADMIN_KEY
from infra.stack.platform_config import PlatformSpec
from infra.trtllm.engine_config import EngineConfigIssue, tensorrt_llm_issues
from infra.trtllm.engine_rules import (
    WorkerShape,
    disaggregated_pair_issues,
    file_rule_issues,
    stack_rule_issues,
)
from infra.trtllm.model_catalog import gated_repository


def deployment_issues(deployment: Deployment, fit_check: bool = True) -> list[ConfigIssue]:
    """Engine-config problems of every role, then the GPU-memory fit of the models that stand."""
    issues: list[ConfigIssue] = []
    fit_ready: list[ResolvedModel] = []
    for resolved in deployment.models:
        model_issues = [
            issue for role in resolved.roles.values() for issue in _engine_issues(resolved, role)
        ]
        model_issues += _disaggregated_pair_issues(resolved)
        if resolved.facts_problem:
            model_issues.append(
                ConfigIssue(f"{resolved.path}.plan.architecture", resolved.facts_problem)
            )
        model_issues += _gated_issues(resolved, deployment)
        model_issues += _memory_limit_issues(resolved)
        issues += model_issues
        if not any(i.severity == "error" for i in model_issues):
            fit_ready.append(resolved)
        elif fit_check and resolved.model.engine == "trtllm":
            issues.append(
                ConfigIssue(
                    resolved.path,
                    "GPU-memory fit not checked: fix this model's problems first",
                    severity="note",
                )
            )
    issues += operator_create_issues(
        deployment, webhook_rules=deployment.config.platform.profile.webhook_rules
    )
    issues += placement_issues(deployment)
    issues += system_node_issues(deployment)
    issues += _grafana_admin_issues(deployment)
    if fit_check:
        issues += fit_issues(deployment, fit_ready)
    return issues


def _memory_limit_issues(resolved: ResolvedModel) -> list[ConfigIssue]:
    """Every graph container has a memory limit (the policy pack refuses a DGD without): a
    worker's default is its share of its node, which needs the node's memory."""
    if resolved.model.engine != "trtllm":
        return []
    issues = []
    for role in resolved.roles.values():
        if role.pool is None or role.gpus is None:
            continue  # a missing pool, or an instance type without facts: reported already
        spec = resolved.model.role(role.role)
        if spec.memory is None and (role.placement is None or role.placement.memory_mib is None):
            issues.append(
                ConfigIssue(
                    f"{resolved.path}.{role.role}.memory",
                    "no memory limit can be derived for these workers (their pool's instance "
                    "facts give no memory): set memory, requested and limited, or the pool's "
                    "gpu.memoryGib",
                )
            )
    return list(dict.fromkeys(issues))


def _grafana_admin_issues(deployment: Deployment) -> list[ConfigIssue]:
    """kube-prometheus-stack's Grafana keeps the chart's well-known admin password unless told
    another: the stack installs it only with one of its own, from a Pulumi secret."""
    if (
        not deployment.config.observability.installs_grafana
        or GRAFANA_ADMIN_KEY in deployment.secrets
    ):
        return []
    where = GRAFANA_ADMIN_KEY
    if deployment.environments:
        imported = ", ".join(deployment.environments)
        return [
            ConfigIssue(
                where,
                f"the stack file sets no Grafana admin password: it must come from the imported "
                f"ESC environment ({imported}), or `pulumi up` stops",
                severity="warning",
            )
        ]
    return [
        ConfigIssue(
            where,
            "observability.installKubePrometheusStack: Grafana would keep its chart's default "
            "admin password; `pulumi config set --secret dynamo-trtllm:grafanaAdminPassword ...`",
        )
    ]


def _gated_issues(resolved: ResolvedModel, deployment: Deployment) -> list[ConfigIssue]:
    """A gated Hugging Face repository downloads only with a token: without one, 401 at start.

    A stack importing Pulumi ESC environments may get the token from one: a warning then.
    """
    model = resolved.model
    if model.engine != "trtllm" or "hfToken" in deployment.secrets:
        return []
    imported = ", ".join(deployment.environments)
    issues = []
    for color in sorted(model.slots):
        repo = model.source_for(color).hugging_face
        if repo and gated_repository(repo):
            where = (
                f"{resolved.path}.slots.{color}.source.huggingFace"
                if model.slots[color] and model.slots[color].source
                else f"{resolved.path}.source.huggingFace"
            )
            fix = (
                "accept its licence on huggingface.co, then `pulumi config set --secret "
                "dynamo-trtllm:hfToken hf_...`"
            )
            issues.append(
                ConfigIssue(
                    where,
                    f"{repo} is gated on Hugging Face and the stack file sets no "
                    f"dynamo-trtllm:hfToken: it must come from the imported ESC environment "
                    f"({imported}), or every worker fails with 401 at start",
                    severity="warning",
                )
                if imported
                else ConfigIssue(
                    where,
                    f"{repo} is gated on Hugging Face: without a token every worker fails with "
                    f"401 at start; {fix}",
                )
            )
    return list(dict.fromkeys(issues))


def _engine_issues(resolved: ResolvedModel, role: ResolvedRole) -> list[ConfigIssue]:
    """The role's engine config parses as TensorRT-LLM would, and fits the worker it gets."""
    if role.engine is None:
        return []
    return engine_file_issues(resolved.model, role.role, role.engine, role.engine_key)


def engine_file_issues(
    model: Model, role: str, engine: EngineFile, engine_key: str
) -> list[ConfigIssue]:
    """One engine config against TensorRT-LLM and the worker shape the model gives the role
    (GPUs per worker and nodes: the model's own keys, no cluster needed)."""
    if engine.result is None:
        return [ConfigIssue(engine_key, engine.problem or "cannot be read")]
    result = engine.result
    problems: list[EngineConfigIssue] = list(result.issues)
    if result.args is not None:
        spec = model.role(role)
        shape = WorkerShape(gpus_per_node=spec.gpus_per_worker, nodes=spec.nodes)
        problems += file_rule_issues(result, role)
        problems += stack_rule_issues(result.args, result.raw, shape)
        # Inside the TensorRT-LLM runtime image its own schema has the last word.
        problems += tensorrt_llm_issues(result.raw) or []
    return [engine_issue(result.locate(p), engine.path, engine_key) for p in problems]


def standalone_engine_issues(
    models: Sequence[tuple[int, Model]], platform: PlatformSpec, files: ProjectFiles
) -> list[ConfigIssue]:
    """The engine configs of models that stand on their own, while the cluster or node pools do
    not: checked now, so one run lists them with the cluster's problems."""
    runtime = platform_runtime(platform)
    issues = []
    for index, model in models:
        if model.engine != "trtllm":
            continue
        for color in sorted(model.slots):
            for role in model.topology.roles:
                engine = files.engine_config(model.engine_config(role, color), runtime)
                key = engine_config_key(index, model, role, color)
                issues += engine_file_issues(model, role, engine, key)
    return list(dict.fromkeys(issues))


def _disaggregated_pair_issues(resolved: ResolvedModel) -> list[ConfigIssue]:
    """Each slot's prefill and decode engine configs agree where the KV hand-over needs it."""
    issues = []
    for color in sorted(resolved.model.slots):
        roles = {role.role: role for role in resolved.slot_roles(color)}
        prefill, decode = roles.get("prefill"), roles.get("decode")
        if prefill is None or decode is None or not (prefill.engine and decode.engine):
            continue
        if prefill.engine.result is None or decode.engine.result is None:
            continue
        pair = disaggregated_pair_issues(prefill.engine.result, decode.engine.result)
        for name, problem in pair:
            role = roles[name]
            assert role.engine is not None and role.engine.result is not None
            located = role.engine.result.locate(problem)
            issues.append(engine_issue(located, role.engine.path, role.engine_key))
    # Both slots may name the same two files: one problem, said once.
    return list(dict.fromkeys(issues))


def engine_issue(problem: EngineConfigIssue, engine_config: str, stack_key: str) -> ConfigIssue:
    """A problem inside an engine config: located in that file, tied to the stack key naming it."""
    return ConfigIssue(
        problem.key_path,
        f"{problem.message} (engine config of {CONFIG_NAMESPACE}:{stack_key})",
        severity="warning" if problem.severity == "warning" else "error",
        namespace=None,
        file=engine_config,
        line=problem.line,
        column=problem.column,
    )


def _draft_download_warnings(resolved: ResolvedModel) -> list[ConfigIssue]:
    """A speculative draft named by Hugging Face id downloads on every start, cache or not."""
    model = resolved.model
    warnings = []
    for role in resolved.roles.values():
        result = role.engine.result if role.engine else None
        draft = role.hub_draft
        cached = model.source_for(role.color).s3 is not None
        if draft and result is not None and cached:
            key = next(
                (
                    k
                    for k in ("speculative_model_dir", "speculative_model")
                    if k in (result.raw.get("speculative_config") or {})
                ),
                "speculative_model_dir",
            )
            where = result.source_map.locate(("speculative_config", key))
            warnings.append(
                ConfigIssue(
                    f"speculative_config.{key}",
                    f"the draft model {draft!r} is a Hugging Face id: every {model.name} "
                    f"({role.color}) worker downloads it at start while the main weights come "
                    "from the cache; put the draft beside the weights in S3 and give its path "
                    f"under /models (engine config of {CONFIG_NAMESPACE}:{role.engine_key})",
                    severity="warning",
                    namespace=None,
                    file=role.engine.path if role.engine else None,
                    line=where.line if where else None,
                    column=where.column if where else None,
                )
            )
    return warnings


def _cold_start_warnings(resolved: ResolvedModel) -> list[ConfigIssue]:
    """A role that scales to zero in a slot taking requests: unlike replicas 0 (no worker ever,
    an error), it serves, but the first request after an idle spell waits for a whole cold start."""
    model = resolved.model
    shares = model.traffic_weights()
    warnings = []
    for role in model.topology.roles:
        colors = [
            c
            for c in sorted(model.slots)
            if shares.get(c, 0) > 0
            and (scaling := model.autoscaled(role, c)) is not None
            and scaling.scales_to_zero
        ]
        if not colors:
            continue
        size = weights_gib(resolved)
        weights = (
            f"the weights ({size:.1f} GiB) to load from "
            + ("the model cache" if model.source.s3 is not None else "Hugging Face")
            if size is not None
            else "the weights to load"
        )
        minutes = ready_timeout_seconds(resolved) // 60
        warnings.append(
            ConfigIssue(
                f"{resolved.path}.{role}.autoscaling.minReplicas",
                f"{model.name} ({', '.join(colors)}) scales its {role} workers to zero: the "
                "first request after an idle spell wakes them and waits for a GPU node to "
                f"start, the runtime image to pull, {weights} and the engine to start, up to "
                f"{minutes} minutes (the cold-start budget `pulumi up` allows); meanwhile the "
                "frontend answers 404 (the model leaves it with its last worker), so clients "
                "must retry; set minReplicas 1 where that wait is not acceptable",
                severity="warning",
            )
        )
    return warnings


def deployment_warnings(deployment: Deployment) -> list[ConfigIssue]:
    """Not errors, but worth saying before GPU-hours are spent (errors under `validate --strict`)."""
    warnings = []
    for resolved in deployment.models:
        model = resolved.model
        if model.engine != "trtllm":
            continue
        pulled = sorted(c for c in model.slots if model.source_for(c).hugging_face)
        if pulled:
            warnings.append(
                ConfigIssue(
                    f"{resolved.path}.source",
                    f"model {model.name} ({', '.join(pulled)}): every worker downloads its weights "
                    "from Hugging Face at start (slow cold starts, rate limits); an s3 source with "
                    "modelCache keeps them on the nodes",
                    severity="warning",
                )
            )
        for role in model.topology.roles:
            spec = model.role(role)
            if spec.autoscaling is not None and spec.replicas not in (0, 1):
                warnings.append(
                    ConfigIssue(
                        f"{resolved.path}.{role}.replicas",
                        f"{spec.replicas} is not sent: the role autoscales, and its scaling "
                        "adapter owns the replica count (it starts at 1; the autoscaler keeps "
                        f"it between {spec.autoscaling.min_replicas} and "
                        f"{spec.autoscaling.max_replicas}); 0 in a slot keeps that slot idle",
                        severity="warning",
                    )
                )
        warnings += _draft_download_warnings(resolved)
        warnings += _cold_start_warnings(resolved)
        if resolved.facts is None and resolved.facts_problem is None:
            warnings.append(
                ConfigIssue(
                    resolved.path,
                    f"model {model.name} ({model.display_name}) is not in the model catalog, so "
                    "whether its weights and KV cache fit the GPUs is NOT checked: set "
                    "plan.architecture (a catalog key, or a path to its config.json), or run "
                    "`dynamo-infra plan <stack> --fetch` to read its config from Hugging Face",
                    severity="warning",
                )
            )
    return warnings
