"""The commands that touch a live system: promote, rollback, status, preflight."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from infra.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, load_stack


def rollout_command(args: argparse.Namespace, root: Path) -> int:
    """promote / rollback / status: config from the stack file, Pulumi and the cluster live."""
    from infra.live.cluster_access import ClusterAccessError
    from infra.live.promotion import PromotionFailed, PromotionRefused
    from infra.stack.config import StackConfig

    config = load_stack(root, args.stack)
    if isinstance(config, int):
        return config
    environment_stack = isinstance(config, StackConfig)
    if args.command != "status" and environment_stack != bool(args.model):
        need = "needs --model" if environment_stack else "is a traffic stack: no --model"
        print(f"dynamo-infra {args.command}: {args.stack} {need}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "status":
            return status_command(args, root, config)
        result = run_promotion(args, root, config)
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


PULUMI_INSTALL = (
    "the Pulumi CLI is not on PATH: install it (`curl -fsSL https://get.pulumi.com | sh`, or "
    "see https://www.pulumi.com/docs/iac/download-install/), then `pulumi login`"
)


def live(what: str, connect: Any) -> Any:
    import shutil

    if shutil.which("pulumi") is None:
        raise LiveStackError(PULUMI_INSTALL)
    try:
        return connect()
    except Exception as error:  # Pulumi CLI missing, not logged in, no such stack, no kubeconfig
        raise LiveStackError(
            f"cannot reach {what} (needs the Pulumi CLI, a login to the stack's backend and a "
            f"deployed cluster): {error}"
        ) from None


def cluster_of(config: Any, updater: Any) -> Any:
    from infra.live.cluster_access import KubernetesCluster
    from infra.stack.config import ExistingCluster

    if isinstance(config.cluster, ExistingCluster):
        return KubernetesCluster.from_kubeconfig(config.cluster.kubeconfig, config.cluster.context)
    return KubernetesCluster.from_kubeconfig(updater.outputs()["kubeconfig"])


def run_promotion(args: argparse.Namespace, root: Path, config: Any) -> Any:
    from infra.live.promotion import EnvironmentPromotion, Promotion
    from infra.live.stack_update import AutomationStack, StackEnvironments
    from infra.stack.config import StackConfig

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            return False
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    updater = live(
        f"stack {args.stack!r}",
        lambda: AutomationStack(root, args.stack, args.policy_pack_config),
    )
    if isinstance(config, StackConfig):
        cluster = live("the cluster", lambda: cluster_of(config, updater))
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


def status_command(args: argparse.Namespace, root: Path, config: Any) -> int:
    from infra.live.promotion import EnvironmentTarget, model_status
    from infra.live.stack_update import AutomationStack, StackEnvironments
    from infra.stack.config import StackConfig

    if not isinstance(config, StackConfig):
        target = EnvironmentTarget(StackEnvironments(root), config)
        report: dict[str, Any] = {}
        for color, share in config.traffic_weights().items():
            problems = live(config.environments[color], lambda c=color: target.problems(c))
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
    updater = live(f"stack {args.stack!r}", lambda: AutomationStack(root, args.stack))
    cluster = live("the cluster", lambda: cluster_of(config, updater))
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


def preflight_command(args: argparse.Namespace, root: Path) -> int:
    import boto3
    import botocore.exceptions

    from infra.live.preflight import format_preflight_table, run_preflight
    from infra.stack.config import EksCluster, StackConfig

    config = load_stack(root, args.stack)
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
