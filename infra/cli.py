"""`dynamo-infra`: offline render and validation of stacks.

Exit codes: 0 ok, 1 validation failure (bad config, schema failure), 2 usage error.
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.commands import crds, starter
from infra.commands.common import EXIT_USAGE
from infra.commands.console import Parser
from infra.commands.live import preflight_command, rollout_command
from infra.commands.offline import (
    check_engine_configs_command,
    diff_command,
    plan_command,
    render_command,
    scan_command,
    validate_command,
)
from infra.stack.dynamo_versions import DEFAULT_DYNAMO_VERSION, PROFILES, profile
from infra.stack.model_config import ENGINE_ROLES
from infra.trtllm.field_versions import TrtllmVersion

EPILOG = "Exit codes: 0 ok, 1 validation failure, 2 usage error."

# One or two command lines per command, shown at the end of its --help.
EXAMPLES = {
    "render": ["dynamo-infra render dev --out build"],
    "validate": ["dynamo-infra validate dev", "dynamo-infra validate --all --strict"],
    "diff": [
        "dynamo-infra diff prod --base origin/main",
        "dynamo-infra diff staging --base HEAD~1 --output markdown > diff.md",
    ],
    "promote": [
        "dynamo-infra promote staging --model qwen3-0-6b --to green --weight 10",
        "dynamo-infra promote prod-traffic --to green",
    ],
    "rollback": ["dynamo-infra rollback staging --model qwen3-0-6b"],
    "status": ["dynamo-infra status prod", "dynamo-infra status prod --model deepseek-r1"],
    "preflight": ["dynamo-infra preflight prod --profile prod-admin"],
    "scan": ["dynamo-infra scan --all"],
    "plan": ["dynamo-infra plan prod --isl 8192 --osl 1024"],
    "check-engine-config": [
        "dynamo-infra check-engine-config --role prefill engine_configs/deepseek-r1/prefill.yaml"
    ],
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dynamo-trtllm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _trtllm_version(text: str) -> str:
    try:
        return str(TrtllmVersion.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="dynamo-infra",
        description="Render and validate dynamo-trtllm stacks offline (no cloud, no cluster), "
        "and promote between blue/green slots on a live one.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"dynamo-infra {_version()}")
    parser.add_argument(
        "--project-dir", type=Path, default=None, help="project root (default: found from cwd)"
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )

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
        help="directory of CRD YAML files (searched recursively), over the shipped schemas; "
        "repeatable",
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
    promote.add_argument(
        "--policy-pack-config",
        type=Path,
        metavar="FILE",
        help="the policy pack's configuration for this stack's `pulumi up` (as CI passes it)",
    )

    rollback = commands.add_parser(
        "rollback",
        help="undo the last promotion step: end a canary, or switch back to the other slot",
        description="The same gates and verification as promote, towards the previous slot.",
        epilog=EPILOG,
    )
    rollback.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    rollback.add_argument("--model", help="model name (environment stacks; not for traffic stacks)")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback.add_argument(
        "--policy-pack-config",
        type=Path,
        metavar="FILE",
        help="the policy pack's configuration for this stack's `pulumi up` (as CI passes it)",
    )

    status = commands.add_parser(
        "status",
        help="per model and slot: share of traffic, replicas, DGD readiness",
        description="For each model (or one) and each slot of a deployed stack: the share of "
        "requests it gets, its workers' replicas and whether its DynamoGraphDeployment is "
        "Ready, read from the cluster. Needs the Pulumi CLI, a login to the stack's backend "
        "and cluster access.",
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
    check.add_argument(
        "--trtllm-version",
        type=_trtllm_version,
        default=profile(DEFAULT_DYNAMO_VERSION).trtllm_version,
        metavar="VERSION",
        help="the TensorRT-LLM release the files run on (default: %(default)s, in Dynamo "
        f"{DEFAULT_DYNAMO_VERSION}'s runtime; Dynamo releases: "
        + ", ".join(f"{p.version} -> {p.trtllm_version}" for p in PROFILES.values())
        + "): keys it does not take yet are errors",
    )
    check.add_argument("--output", choices=["text", "json"], default="text")
    crds.register(commands)
    for command in commands.choices.values():
        for action in command._actions:
            if action.help is None and action.dest == "output":
                action.help = "how to print the result"
    for name, lines in EXAMPLES.items():
        command = commands.choices[name]
        command.epilog = "examples:\n" + "".join(f"  {line}\n" for line in lines) + (f"\n{EPILOG}")
    starter.register(commands)
    return parser


# Commands that run for seconds on data held in memory: the cyclic collector waits until they end.
OFFLINE_COMMANDS = frozenset({"render", "validate", "plan", "diff", "scan", "check-engine-config"})


def main(argv: list[str] | None = None, *, process_ends: bool = False) -> int:
    """process_ends: the process exits after the command, so the cyclic collector stays paused
    to the end rather than scanning the whole heap once more before exit."""
    args = _parser().parse_args(argv)
    if args.command not in OFFLINE_COMMANDS:
        return _run(args)
    with _collector_paused(resume=not process_ends):
        return _run(args)


def console() -> int:
    """The `dynamo-infra` script: `main`, and no last full collection as the process ends."""
    code = main(process_ends=True)
    gc.freeze()
    return code


@contextmanager
def _collector_paused(resume: bool) -> Iterator[None]:
    """A render builds a heap of short-lived objects with few reference cycles. Reference
    counting frees them as it goes; Python's cyclic collector would also scan the whole heap
    again and again as it grows (half of a render's CPU time at 200 models, measured with
    benchmarks/). Paused for the command, cycles wait for its end: a few MiB more at peak.
    Resumed (resume), its first run scans everything the command left: seconds at 200 models."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled and resume:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    from infra.program import project_root

    if args.command == "check-engine-config":
        return check_engine_configs_command(args)
    root = (args.project_dir or project_root()).resolve()
    if not (root / "Pulumi.yaml").is_file():
        print(f"dynamo-infra: {root} has no Pulumi.yaml (use --project-dir)", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "render":
        return render_command(args, root)
    if args.command == "plan":
        return plan_command(args, root)
    if args.command == "preflight":
        return preflight_command(args, root)
    if args.command == "diff":
        return diff_command(args, root)
    if args.command == "scan":
        return scan_command(args, root)
    if args.command == "crds":
        return crds.crds_command(args, root)
    if args.command == "init":
        return starter.init_command(args, root)
    if args.command == "add-model":
        return starter.add_model_command(args, root)
    if args.command in ("promote", "rollback", "status"):
        return rollout_command(args, root)
    return validate_command(args, root)


if __name__ == "__main__":
    sys.exit(console())
