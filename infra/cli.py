"""`dynamo-infra`: offline render and validation of stacks.

Exit codes: 0 ok, 1 validation failure (bad config, schema failure), 2 usage error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.stack.config import ENGINE_ROLES

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

EPILOG = "Exit codes: 0 ok, 1 validation failure, 2 usage error."


def _stacks(root: Path) -> list[str]:
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in (root / "stacks").glob("Pulumi.*.yaml")
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamo-infra",
        description="Render and validate dynamo-trtllm stacks offline (no cloud, no cluster).",
        epilog=EPILOG,
    )
    parser.add_argument(
        "--project-dir", type=Path, default=None, help="project root (default: found from cwd)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser(
        "render",
        help="write what `pulumi up` would create, one YAML file per resource",
        description="Run the Pulumi program under a recording mock runtime and write its resources "
        "to DIR (index.json + one YAML per resource). Atomic: on error no DIR is left.",
        epilog=EPILOG,
    )
    render.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    render.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    render.add_argument("--output", choices=["text", "json"], default="text")

    validate = commands.add_parser(
        "validate",
        help="check config, render, and validate every Kubernetes object against real schemas",
        description="Config checks, then render, then each Kubernetes object against the Kubernetes "
        "OpenAPI schema of the target version and each custom resource against its CRD.",
        epilog=EPILOG,
    )
    validate.add_argument("stacks", nargs="*", metavar="STACK", help="stack names")
    validate.add_argument("--all", action="store_true", help="every stack in stacks/")
    validate.add_argument(
        "--crd-dir",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="directory of CRD YAML files (searched recursively); repeatable",
    )
    validate.add_argument(
        "--kubernetes-version",
        metavar="X.Y",
        help="Kubernetes schema version (default: the stack's cluster.kubernetesVersion)",
    )
    validate.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="keep the render output: DIR/<stack> (default: a temporary directory)",
    )
    validate.add_argument(
        "--strict",
        action="store_true",
        help="fail on warnings too (e.g. a model whose GPU-memory fit cannot be checked)",
    )
    validate.add_argument("--output", choices=["text", "json"], default="text")

    diff = commands.add_parser(
        "diff",
        help="what a change does to a stack: per resource added / removed / changed",
        description="Render STACK at git REF (in a temporary worktree, with that commit's code) "
        "and in the working tree, and report each resource added, removed or changed, with a "
        "field-level diff. Or compare two existing render outputs. Secrets are never shown: a "
        "changed secret reads 'changed (secret)'.",
        epilog=EPILOG,
    )
    diff.add_argument("stack", nargs="?", help="stack name (with --base)")
    diff.add_argument("--base", metavar="REF", help="git ref to compare the working tree with")
    diff.add_argument("--base-dir", type=Path, metavar="DIR", help="render output: before")
    diff.add_argument("--head-dir", type=Path, metavar="DIR", help="render output: after")
    diff.add_argument("--output", choices=["text", "markdown", "json"], default="text")

    promote = commands.add_parser(
        "promote",
        help="switch a model's traffic to its other slot, gated on readiness and a smoke test",
        description="Check the candidate slot's DGD is Ready and its frontend answers /health, "
        "/v1/models and one completion; then set the model's `active` (or `weights`) in the "
        "stack file and run `pulumi up` through the Automation API; then verify through the "
        "stable Service and switch back on failure. Re-running after an interruption converges. "
        "Needs the Pulumi CLI, a login to the stack's backend and cluster access.",
        epilog=EPILOG,
    )
    promote.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    promote.add_argument("--model", help="model name (environment stacks; not for traffic stacks)")
    promote.add_argument("--to", choices=["blue", "green"], help="target slot (default: the other)")
    promote.add_argument(
        "--weight",
        type=int,
        metavar="N",
        help="send N%% of requests to the target through the Gateway HTTPRoute (100: switch)",
    )
    promote.add_argument(
        "--retire-after",
        type=float,
        metavar="SECONDS",
        help="after a full switch, wait SECONDS then scale the old slot's workers to 0",
    )
    promote.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    rollback = commands.add_parser(
        "rollback",
        help="undo the last promotion step: end a canary, or switch back to the other slot",
        description="The same gates and verification as promote, towards the previous slot.",
        epilog=EPILOG,
    )
    rollback.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    rollback.add_argument("--model", help="model name (environment stacks; not for traffic stacks)")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    status = commands.add_parser(
        "status",
        help="per model and slot: share of traffic, replicas, DGD readiness",
        epilog=EPILOG,
    )
    status.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    status.add_argument("--model", help="only this model")
    status.add_argument("--output", choices=["text", "json"], default="text")

    preflight = commands.add_parser(
        "preflight",
        help="check the AWS account before anything costs money (your AWS credentials)",
        description="Against the real account and region: each pool's instance type is offered "
        "in its zones; the P/G vCPU quotas cover every pool at maxSize; capacity reservations "
        "exist, are active and match type, zone and size; every S3 model prefix exists and "
        "fits its sizeGib. Read-only calls with the default AWS credential chain.",
        epilog=EPILOG,
    )
    preflight.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    preflight.add_argument("--profile", help="AWS profile (default: the credential chain)")
    preflight.add_argument("--output", choices=["text", "json"], default="text")

    scan = commands.add_parser(
        "scan",
        help="render, then run checkov's Kubernetes security checks over the manifests",
        description="Render each stack and scan its Kubernetes manifests with checkov (from "
        "the .venv-scanner virtualenv README's set-up makes, $DYNAMO_INFRA_CHECKOV, or PATH). "
        "Exit 1 on any failed check; suppressions (checkov.io/skip annotations) are listed "
        "with their reasons.",
        epilog=EPILOG,
    )
    scan.add_argument("stacks", nargs="*", metavar="STACK", help="stack names")
    scan.add_argument("--all", action="store_true", help="every stack in stacks/")
    scan.add_argument("--output", choices=["text", "json"], default="text")

    plan = commands.add_parser(
        "plan",
        help="GPU memory plan per model and role: weights, KV cache, concurrency, fit",
        description="For each model, slot and worker role: GPUs and nodes, weight memory per "
        "GPU, KV-cache bytes per token (GQA/MLA and dtype aware), KV capacity in tokens at the "
        "configured free_gpu_memory_fraction, and how many sequences of ISL+OSL tokens fit. "
        "Exit 1 when some role cannot fit on its GPUs.",
        epilog=EPILOG,
    )
    plan.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    plan.add_argument("--isl", type=int, metavar="TOKENS", help="input tokens per request")
    plan.add_argument("--osl", type=int, metavar="TOKENS", help="output tokens per request")
    plan.add_argument(
        "--fetch",
        action="store_true",
        help="read config.json (and safetensors metadata) from Hugging Face for models the "
        "catalog lacks; cached, uses HF_TOKEN for gated models",
    )
    plan.add_argument("--output", choices=["text", "json"], default="text")

    check = commands.add_parser(
        "check-engine-config",
        help="check TensorRT-LLM engine config files on their own",
        description="Check LLM-API YAML files (--extra-engine-args) against our schema of "
        "TensorRT-LLM's TorchLlmArgs (and TensorRT-LLM's own when it is importable), plus the "
        "rules a worker of the given role needs. Unknown keys at any depth are errors.",
        epilog=EPILOG,
    )
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    check.add_argument(
        "--role",
        choices=ENGINE_ROLES,
        help="the worker role the files configure (adds role rules, e.g. prefill and decode "
        "need cache_transceiver_config)",
    )
    check.add_argument("--output", choices=["text", "json"], default="text")
    return parser


def main(argv: list[str] | None = None) -> int:
    return _run(_parser().parse_args(argv))


def _run(args: argparse.Namespace) -> int:
    from infra.program import project_root

    if args.command == "check-engine-config":
        return _check_engine_configs(args)
    root = (args.project_dir or project_root()).resolve()
    if not (root / "Pulumi.yaml").is_file():
        print(f"dynamo-infra: {root} has no Pulumi.yaml (use --project-dir)", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "render":
        return _render(args, root)
    if args.command == "plan":
        return _plan(args, root)
    if args.command == "preflight":
        return _preflight(args, root)
    if args.command == "diff":
        return _diff(args, root)
    if args.command == "scan":
        return _scan(args, root)
    if args.command in ("promote", "rollback", "status"):
        return _rollout(args, root)
    return _validate(args, root)


def _render(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.render import RenderError, render_stack
    from infra.offline.render_output import OutputFailed, OutputRefused
    from infra.stack.errors import StackConfigError

    if args.stack not in _stacks(root):
        return _unknown_stack(args.stack, root)
    try:
        result = render_stack(args.stack, args.out, root)
    except OutputRefused as error:
        return _failed(args, f"refused: {error}", EXIT_USAGE)
    except StackConfigError as error:
        return _config_failed(args, error)
    except (RenderError, OutputFailed) as error:
        return _failed(args, str(error), EXIT_FAILED)
    resources = result.resources
    if args.output == "json":
        print(
            json.dumps(
                {
                    "stack": args.stack,
                    "ok": True,
                    "out": str(args.out),
                    "resources": len(resources),
                    "problems": [w.as_dict() for w in result.warnings],
                }
            )
        )
    else:
        _print_warnings(result.warnings)
        print(f"rendered stack {args.stack!r}: {len(resources)} resources -> {args.out}")
    return EXIT_OK


def _failed(args: argparse.Namespace, message: str, code: int) -> int:
    """A failure that is not a config problem: stderr in text mode, a JSON object otherwise."""
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"ok": False, "error": message}))
    else:
        print(f"dynamo-infra {args.command}: {message}", file=sys.stderr)
    return code


def _config_failed(args: argparse.Namespace, error: Any) -> int:
    """Every problem of a stack file: the report on stderr, or structured in JSON mode."""
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"ok": False, "problems": error.as_dicts()}, indent=2))
    else:
        print(str(error), file=sys.stderr)
    return EXIT_FAILED


def _print_warnings(warnings: list[Any]) -> None:
    for warning in warnings:
        print(warning.render(), file=sys.stderr)


def _unknown_stack(stack: str, root: Path) -> int:
    known = ", ".join(_stacks(root)) or "none"
    print(
        f"dynamo-infra: no stack {stack!r}: stacks/Pulumi.{stack}.yaml does not exist "
        f"(stacks: {known})",
        file=sys.stderr,
    )
    return EXIT_USAGE


def _validate(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.render import RenderError, render_stack
    from infra.offline.render_output import OutputFailed, OutputRefused, renders_dir_refusal
    from infra.offline.validate import (
        CrdSchemas,
        UnsupportedKubernetesVersion,
        schema_version,
        validate_render,
    )
    from infra.stack.config import DEFAULT_KUBERNETES_VERSION, StackConfig
    from infra.stack.errors import StackConfigError

    stacks = _selected_stacks(args, root)
    if isinstance(stacks, int):
        return stacks
    if args.out and (problem := renders_dir_refusal(args.out, root, stacks)):
        print(f"dynamo-infra validate: refused: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.kubernetes_version:
            schema_version(args.kubernetes_version)
        crds = CrdSchemas.from_dirs(args.crd_dir)
    except (FileNotFoundError, UnsupportedKubernetesVersion) as error:
        print(f"dynamo-infra validate: {error}", file=sys.stderr)
        return EXIT_USAGE

    results: list[dict[str, Any]] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="dynamo-infra-") as scratch:
        base = args.out or Path(scratch)
        for stack in stacks:
            out = base / stack
            try:
                rendered = render_stack(stack, out, root)
            except StackConfigError as error:
                ok = False
                results.append({"stack": stack, "ok": False, "problems": error.as_dicts()})
                if args.output == "text":
                    print(f"FAIL {stack}: configuration\n{error}\n", file=sys.stderr)
                continue
            except (RenderError, OutputRefused, OutputFailed) as error:
                ok = False
                results.append({"stack": stack, "ok": False, "error": str(error)})
                if args.output == "text":
                    print(f"FAIL {stack}: {error}\n", file=sys.stderr)
                continue
            config = rendered.config
            warnings = [w.as_dict() for w in rendered.warnings]
            if args.output == "text":
                _print_warnings(rendered.warnings)
            if args.strict and rendered.warnings:
                ok = False
                if args.output == "text":
                    print(f"FAIL {stack}: warnings are errors under --strict", file=sys.stderr)
            # A traffic stack has no cluster (and no Kubernetes object to check).
            version = args.kubernetes_version or (
                config.cluster.kubernetes_version
                if isinstance(config, StackConfig)
                else DEFAULT_KUBERNETES_VERSION
            )
            try:
                report = validate_render(out, stack, crds, version)
            except UnsupportedKubernetesVersion as error:
                ok = False
                results.append(
                    {"stack": stack, "ok": False, "error": str(error), "problems": warnings}
                )
                if args.output == "text":
                    print(f"FAIL {stack}: {error}", file=sys.stderr)
                continue
            ok = ok and report.ok
            result = report.as_dict() | {"problems": warnings}
            if args.strict and warnings:
                result["ok"] = False
            if args.out:
                result["renderDir"] = str(out)
            results.append(result)
            if args.output == "text":
                _print_report(report, out if args.out else None)
    if args.output == "json":
        print(json.dumps({"ok": ok, "stacks": results}, indent=2, sort_keys=True))
    return EXIT_OK if ok else EXIT_FAILED


def _scan(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.render import RenderError, render_stack
    from infra.offline.scan import ScannerError, find_checkov, format_report, scan_many
    from infra.stack.errors import StackConfigError

    stacks = _selected_stacks(args, root)
    if isinstance(stacks, int):
        return stacks
    try:
        checkov = find_checkov(root)
    except ScannerError as error:
        print(f"dynamo-infra scan: {error}", file=sys.stderr)
        return EXIT_USAGE
    ok = True
    results = []
    with tempfile.TemporaryDirectory(prefix="dynamo-infra-scan-") as scratch:
        manifests: dict[str, Path] = {}
        for stack in stacks:
            out = Path(scratch) / stack
            try:
                render_stack(stack, out, root)
            except (StackConfigError, RenderError) as error:
                print(f"FAIL {stack}: {error}", file=sys.stderr)
                ok = False
                continue
            if (out / "kubernetes").is_dir():
                manifests[stack] = out / "kubernetes"
            else:  # a traffic stack: DNS records only
                print(f"{stack}: no Kubernetes objects")
        try:
            reports = scan_many(manifests, checkov) if manifests else {}
        except ScannerError as error:
            print(f"FAIL scan: {error}", file=sys.stderr)
            return EXIT_FAILED
    for stack, report in reports.items():
        ok = ok and not report.failed
        if args.output == "json":
            results.append({"stack": stack, **dataclasses.asdict(report)})
        else:
            print(format_report(stack, report))
    if args.output == "json":
        print(json.dumps({"ok": ok, "stacks": results}, indent=2, sort_keys=True))
    return EXIT_OK if ok else EXIT_FAILED


def _selected_stacks(args: argparse.Namespace, root: Path) -> list[str] | int:
    """STACK... or --all, every name known; else the usage exit code after saying why."""
    if args.all == bool(args.stacks):
        print(f"dynamo-infra {args.command}: give stack names or --all (not both)", file=sys.stderr)
        return EXIT_USAGE
    stacks: list[str] = _stacks(root) if args.all else args.stacks
    for stack in stacks:
        if stack not in _stacks(root):
            return _unknown_stack(stack, root)
    return stacks


def _load_stack(root: Path, stack: str, fit_check: bool = True, args: Any = None) -> Any:
    """The checked config of a stack, or the exit code after saying what is wrong."""
    from infra.deployment.checked import load_stack_config
    from infra.stack.errors import StackConfigError

    if stack not in _stacks(root):
        return _unknown_stack(stack, root)
    try:
        return load_stack_config(root, stack, fit_check)
    except StackConfigError as error:
        if args is not None:
            return _config_failed(args, error)
        print(str(error), file=sys.stderr)
        return EXIT_FAILED


def _rollout(args: argparse.Namespace, root: Path) -> int:
    """promote / rollback / status: config from the stack file, Pulumi and the cluster live."""
    from infra.live.cluster_access import ClusterAccessError
    from infra.live.promotion import PromotionFailed, PromotionRefused
    from infra.stack.config import StackConfig

    config = _load_stack(root, args.stack)
    if isinstance(config, int):
        return config
    environment_stack = isinstance(config, StackConfig)
    if args.command != "status" and environment_stack != bool(args.model):
        need = "needs --model" if environment_stack else "is a traffic stack: no --model"
        print(f"dynamo-infra {args.command}: {args.stack} {need}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "status":
            return _status(args, root, config)
        result = _run_promotion(args, root, config)
    except PromotionRefused as error:
        print(f"refused: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (PromotionFailed, ClusterAccessError, LiveStackError) as error:
        print(f"failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{result.model}: {result.before.describe()} -> {result.after.describe()}")
    if result.changed_config:
        print(f"commit stacks/Pulumi.{args.stack}.yaml: it now records this state")
    return EXIT_OK


class LiveStackError(Exception):
    """The stack's backend or cluster could not be reached."""


def _live(what: str, connect: Any) -> Any:
    try:
        return connect()
    except Exception as error:  # Pulumi CLI missing, not logged in, no such stack, no kubeconfig
        raise LiveStackError(
            f"cannot reach {what} (needs the Pulumi CLI, a login to the stack's backend and a "
            f"deployed cluster): {error}"
        ) from None


def _cluster_of(config: Any, updater: Any) -> Any:
    from infra.live.cluster_access import KubernetesCluster
    from infra.stack.config import ExistingCluster

    if isinstance(config.cluster, ExistingCluster):
        return KubernetesCluster.from_kubeconfig(config.cluster.kubeconfig, config.cluster.context)
    return KubernetesCluster.from_kubeconfig(updater.outputs()["kubeconfig"])


def _run_promotion(args: argparse.Namespace, root: Path, config: Any) -> Any:
    from infra.live.promotion import EnvironmentPromotion, Promotion
    from infra.live.stack_update import AutomationStack, StackEnvironments
    from infra.stack.config import StackConfig

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    updater = _live(f"stack {args.stack!r}", lambda: AutomationStack(root, args.stack))
    if isinstance(config, StackConfig):
        cluster = _live("the cluster", lambda: _cluster_of(config, updater))
        promotion = Promotion(args.stack, config, cluster, updater, say=print, confirm=confirm)
        if args.command == "rollback":
            return promotion.rollback(args.model)
        return promotion.promote(args.model, args.to, args.weight, args.retire_after)
    environments = StackEnvironments(root)
    switch = EnvironmentPromotion(
        args.stack, config, environments, updater, say=print, confirm=confirm
    )
    if args.command == "rollback":
        return switch.rollback()
    return switch.promote(args.to, args.weight)


def _status(args: argparse.Namespace, root: Path, config: Any) -> int:
    from infra.live.promotion import EnvironmentTarget, model_status
    from infra.live.stack_update import AutomationStack, StackEnvironments
    from infra.stack.config import StackConfig

    if not isinstance(config, StackConfig):
        target = EnvironmentTarget(StackEnvironments(root), config)
        report: dict[str, Any] = {}
        for color, share in config.traffic_weights().items():
            problems = _live(config.environments[color], lambda c=color: target.problems(c))
            report[color] = {
                "stack": config.environments[color],
                "share": share,
                "ready": not problems,
                "problems": problems,
            }
        if args.output == "json":
            print(json.dumps(report, indent=2))
            return EXIT_OK
        for color, row in report.items():
            state = (
                "every model Ready and answering" if row["ready"] else "; ".join(row["problems"])
            )
            print(f"{color} ({row['stack']}): {row['share']}% of traffic; {state}")
        return EXIT_OK

    models = [m for m in config.models if args.model in (None, m.name)]
    if not models:
        print(f"dynamo-infra status: no model {args.model!r} in {args.stack}", file=sys.stderr)
        return EXIT_USAGE
    updater = _live(f"stack {args.stack!r}", lambda: AutomationStack(root, args.stack))
    cluster = _live("the cluster", lambda: _cluster_of(config, updater))
    rows = {m.name: model_status(cluster, m) for m in models}
    if args.output == "json":
        print(
            json.dumps({name: [vars(r) for r in slots] for name, slots in rows.items()}, indent=2)
        )
        return EXIT_OK
    for name, slots in rows.items():
        for row in slots:
            ready = "Ready" if row.ready else f"not ready ({row.state}: {row.detail})"
            replicas = ", ".join(f"{r} {n}" for r, n in row.replicas.items())
            print(f"{name}/{row.color}: {row.share}% of traffic, {replicas}; {ready}")
    return EXIT_OK


def _diff(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.diff import (
        DiffError,
        diff_against_ref,
        diff_renders,
        format_json,
        format_markdown,
        format_text,
    )
    from infra.offline.render import RenderError
    from infra.stack.errors import StackConfigError

    by_ref = args.base is not None
    by_dirs = args.base_dir is not None or args.head_dir is not None
    if (
        by_ref == by_dirs
        or (by_ref and not args.stack)
        or (by_dirs and not (args.base_dir and args.head_dir))
    ):
        print(
            "dynamo-infra diff: give STACK --base REF, or --base-dir DIR --head-dir DIR",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if by_ref and args.stack not in _stacks(root):
        return _unknown_stack(args.stack, root)
    try:
        if by_ref:
            result = diff_against_ref(root, args.base, args.stack)
        else:
            result = diff_renders(args.base_dir, args.head_dir)
    except (DiffError, StackConfigError, RenderError) as error:
        print(f"dynamo-infra diff: {error}", file=sys.stderr)
        return EXIT_FAILED
    formats = {"text": format_text, "markdown": format_markdown, "json": format_json}
    sys.stdout.write(formats[args.output](result))
    return EXIT_OK


def _preflight(args: argparse.Namespace, root: Path) -> int:
    import boto3
    import botocore.exceptions

    from infra.live.preflight import format_preflight_table, run_preflight
    from infra.stack.config import EksCluster, StackConfig

    config = _load_stack(root, args.stack)
    if isinstance(config, int):
        return config
    if not isinstance(config, StackConfig) or not isinstance(config.cluster, EksCluster):
        print(
            f"{args.stack} creates no AWS capacity (existing cluster or traffic stack): nothing to check"
        )
        return EXIT_OK
    try:
        session = boto3.session.Session(
            profile_name=args.profile, region_name=config.cluster.region
        )
        credentials = session.get_credentials()
    except botocore.exceptions.BotoCoreError as error:
        print(f"dynamo-infra preflight: {error}", file=sys.stderr)
        return EXIT_FAILED
    if credentials is None:
        print(
            "dynamo-infra preflight: no AWS credentials found (environment, profile, SSO or "
            "instance role); preflight reads the real account",
            file=sys.stderr,
        )
        return EXIT_FAILED
    checks = run_preflight(config, session)
    ok = all(check.ok for check in checks)
    if args.output == "json":
        print(
            json.dumps(
                {"stack": args.stack, "ok": ok, "checks": [vars(c) for c in checks]}, indent=2
            )
        )
    else:
        print(format_preflight_table(checks))
    return EXIT_OK if ok else EXIT_FAILED


def _plan(args: argparse.Namespace, root: Path) -> int:
    from infra.deployment.placement import format_placement, place
    from infra.deployment.planning import plan_stack
    from infra.deployment.resolved import ProjectFiles
    from infra.trtllm.memory_plan import format_plan_table

    if (args.isl is not None and args.isl < 1) or (args.osl is not None and args.osl < 1):
        print("dynamo-infra plan: --isl and --osl must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    files = ProjectFiles(root)
    checked = _check_stack(args, root, fit_check=False, files=files)
    if isinstance(checked, int):
        return checked
    if checked.deployment is None:
        print(f"{args.stack} is a traffic stack: it runs no model, there is nothing to plan")
        return EXIT_OK
    fetch_notes: list[str] = []
    if args.fetch:
        fetched, fetch_notes = _fetched_facts(checked.deployment)
        if fetched:  # the same pass again, with the fetched facts (files are not read again)
            checked = _check_stack(args, root, fit_check=False, files=files, fetched=fetched)
            if isinstance(checked, int):
                return checked
    assert checked.deployment is not None
    warnings = checked.warnings
    rows = plan_stack(checked.deployment, args.isl, args.osl)
    placements = place(checked.deployment)
    ok = all(row.plan is None or row.plan.fits for row in rows) and not any(
        p.unplaced for p in placements
    )
    if args.output == "json":
        report = {
            "stack": args.stack,
            "ok": ok,
            "roles": [r.to_dict() for r in rows],
            "placement": [
                {
                    "pool": p.pool.name,
                    "maxSize": p.pool.max_size,
                    "nodesUsed": p.used,
                    "nodesNeeded": p.nodes_needed,
                    "nodes": [n.pods for n in p.nodes if n.pods],
                    "unplaced": [g.label for g in p.unplaced],
                }
                for p in placements
            ],
            "problems": [w.as_dict() for w in warnings],
            "fetch": fetch_notes,
        }
        print(json.dumps(report, indent=2))
        return EXIT_OK if ok else EXIT_FAILED
    _print_warnings(warnings)
    for note in fetch_notes:
        print(f"fetch: {note}", file=sys.stderr)
    planned = [row.plan for row in rows if row.plan is not None]
    if planned:
        print(format_plan_table(planned))
    for row in rows:
        if row.plan is None:
            print(f"{row.model}/{row.color} {row.role}: not planned: {row.skipped}")
        else:
            for note in row.plan.notes:
                print(f"{row.model}/{row.color} {row.role}: note: {note}")
    if placements:
        print("\nPlacement (every worker pod, both slots, autoscaled roles at maxReplicas):")
        print(format_placement(placements))
    return EXIT_OK if ok else EXIT_FAILED


def _check_stack(
    args: argparse.Namespace, root: Path, fit_check: bool = True, **kwargs: Any
) -> Any:
    """The checked stack (config, deployment, warnings), or the exit code after its problems."""
    from infra.deployment.checked import check_stack
    from infra.stack.errors import StackConfigError

    if args.stack not in _stacks(root):
        return _unknown_stack(args.stack, root)
    try:
        return check_stack(root, args.stack, fit_check, **kwargs)
    except StackConfigError as error:
        return _config_failed(args, error)


def _fetched_facts(deployment: Any) -> tuple[dict[str, Any], list[str]]:
    """Facts from Hugging Face for the models the catalog lacks; notes for each."""
    from infra.trtllm.model_fetch import FetchFailed, fetch_model_facts

    fetched: dict[str, Any] = {}
    notes: list[str] = []
    for resolved in deployment.models:
        model = resolved.model
        if model.engine != "trtllm" or resolved.facts is not None or resolved.facts_problem:
            continue
        hf_id = model.source.hugging_face or model.served_model_name
        if not hf_id:
            notes.append(f"{model.name}: no Hugging Face id to fetch (set plan.architecture)")
            continue
        try:
            fetched[model.name] = fetch_model_facts(hf_id)
            notes.append(f"{model.name}: facts read from Hugging Face {hf_id}")
        except FetchFailed as error:
            notes.append(f"{model.name}: {error}")
    return fetched, notes


def _check_engine_configs(args: argparse.Namespace) -> int:
    from infra.trtllm.engine_config import (
        EngineConfigIssue,
        check_engine_config_file,
        tensorrt_llm_issues,
    )
    from infra.trtllm.engine_rules import file_rule_issues

    found: dict[Path, list[EngineConfigIssue]] = {}
    for file in args.files:
        result = check_engine_config_file(file)
        issues = list(result.issues) + file_rule_issues(result, args.role)
        if result.args is not None:
            issues += tensorrt_llm_issues(result.raw) or []
        found[file] = sorted({result.locate(issue) for issue in issues})
    ok = not any(found.values())
    if args.output == "json":
        files = [
            {
                "file": str(file),
                "ok": not issues,
                "issues": [
                    {
                        "key": i.key_path,
                        "message": i.message,
                        "line": i.line,
                        "column": i.column,
                        "severity": "error",
                    }
                    for i in issues
                ],
            }
            for file, issues in found.items()
        ]
        print(json.dumps({"ok": ok, "files": files}, indent=2))
        return EXIT_OK if ok else EXIT_FAILED
    for file, issues in found.items():
        if not issues:
            print(f"ok {file}")
        for issue in issues:
            print(issue.render(str(file)), file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED


def _print_report(report: Any, out: Path | None) -> None:
    status = "ok" if report.ok else "FAIL"
    where = f"; render in {out}" if out else ""
    print(
        f"{status} {report.stack}: {report.checked} Kubernetes objects checked against Kubernetes "
        f"{report.kubernetes_version} and CRD schemas, {len(report.failures)} failures{where}"
    )
    for failure in report.failures:
        print(f"  {failure.object} ({failure.file}): {failure.path}: {failure.message}")
    for missing in report.no_schema:
        print(f"  no schema available for {missing}: give its CRD with --crd-dir")


if __name__ == "__main__":
    sys.exit(main())
