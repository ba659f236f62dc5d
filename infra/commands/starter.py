"""The starter commands: init (a new stack file) and add-model (one more model in a stack file).

Both build every file in memory, run the checks `validate` and `plan` run on a staged copy of
what the stack reads, and write only when those pass, never over an existing file. A failed
check prints its problems, located as usual, and writes nothing.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    check_stack,
    config_failed,
    failed,
    print_warnings,
)
from infra.stack.config import EksCluster, StackConfig
from infra.stack.errors import StackConfigError
from infra.stack.instances import CATALOG as INSTANCE_CATALOG
from infra.stack.instances import pool_gpus
from infra.stack.loading import source_label, stack_file
from infra.stack.model_config import Topology
from infra.stack.platform_config import PlatformSpec
from infra.trtllm.model_catalog import CATALOG as MODEL_CATALOG

if TYPE_CHECKING:
    from infra.deployment.checked import CheckedStack
    from infra.starter.stack_file import ModelEntry
from infra.commands.starter_answers import (
    DEFAULT_TOPOLOGY,
    TOPOLOGIES,
    Ask,
    answer,
    answered,
    catalog_model,
    choice,
    model_name_answer,
    required,
    topology_answer,
    weights_answer,
    zones_answer,
)
from infra.commands.starter_files import (
    UsageProblem,
    checked_in_staging,
    files_read,
    in_project,
    not_yet_written,
    taken,
    write_files,
)

# The dev stack's shape: the cheapest GPU node that serves a catalog model, in a new cluster.
DEFAULT_CLUSTER_MODE = "eks"
DEFAULT_REGION = "us-west-2"
DEFAULT_INSTANCE_TYPE = "g6.xlarge"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
CLUSTER_MODES = ("eks", "existing")
# Safe in a file name and in the cluster name derived from it (dynamo-<stack>).
_STACK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,92}")

EXIT_CODES = (
    "Exit codes: 0 written, 1 the result fails the checks (nothing written), 2 usage error or a "
    "file already exists (nothing written)."
)
INIT_EPILOG = f"""examples:
  dynamo-infra init dev2                 # on a terminal: asks each answer; else the defaults
                                         # (a new EKS cluster needs --admin-arn, --public-access-cidr)
  dynamo-infra init lab --cluster-mode existing --context lab --instance-type g6e.12xlarge
  dynamo-infra init big --region us-east-1 --instance-type p5.48xlarge \\
      --admin-arn arn:aws:iam::111122223333:role/deploy --public-access-cidr 203.0.113.0/24 \\
      --model deepseek-ai/DeepSeek-R1 --topology disagg --s3-uri s3://my-models/DeepSeek-R1

{EXIT_CODES}"""
ADD_MODEL_EPILOG = f"""examples:
  dynamo-infra add-model staging Qwen/Qwen3-32B --topology disagg-router
  dynamo-infra add-model prod openai/gpt-oss-120b --name gpt-oss-canary --node-pool h100

{EXIT_CODES}"""


def register(commands: Any) -> None:
    """The init and add-model subcommands (`commands` is the CLI's subparsers)."""
    init = commands.add_parser(
        "init",
        help="write a working stack file and its engine configs from a few answers",
        description="Write stacks/Pulumi.<STACK>.yaml (a cluster, one GPU pool, one model) and\n"
        "the model's engine configs per role, each worker sized to the pool's GPUs by the\n"
        "memory plan. Flags answer the questions; on a terminal the missing ones are asked\n"
        "(Enter takes the default in brackets), otherwise the defaults apply. A new EKS\n"
        "cluster's --admin-arn and --public-access-cidr have no safe default: give them, or\n"
        "answer them on a terminal. The result passes the checks of `validate` and `plan`\n"
        "before anything is written.",
        epilog=INIT_EPILOG,
    )
    init.add_argument("stack", help="the new stack: writes stacks/Pulumi.<stack>.yaml")
    init.add_argument(
        "--cluster-mode",
        metavar="MODE",
        help="eks: a new EKS cluster and VPC; existing: the cluster of your kubeconfig "
        f"(default: {DEFAULT_CLUSTER_MODE})",
    )
    init.add_argument(
        "--region",
        help=f"AWS region of the new cluster, and of S3 weights (default: {DEFAULT_REGION})",
    )
    init.add_argument(
        "--zones",
        metavar="ZONE,ZONE",
        help="availability zones of the new VPC (default: the region's a and b)",
    )
    init.add_argument(
        "--context", help="existing cluster: kubeconfig context (default: the current one)"
    )
    init.add_argument(
        "--admin-arn",
        action="append",
        metavar="ARN",
        help="new cluster: IAM role or user that administers it, the identity `pulumi up` runs "
        "as among them (repeatable; asked for on a terminal, required otherwise)",
    )
    init.add_argument(
        "--public-access-cidr",
        action="append",
        metavar="CIDR",
        help="new cluster: a network that may reach the public API endpoint, e.g. your deploy "
        "runner's (repeatable; asked for on a terminal, required otherwise)",
    )
    init.add_argument(
        "--instance-type",
        metavar="TYPE",
        help=f"GPU instance type of the pool, a catalog size of {_families()} "
        f"(default: {DEFAULT_INSTANCE_TYPE})",
    )
    init.add_argument(
        "--model",
        metavar="HF_ID",
        help=f"Hugging Face id of a catalog model: {', '.join(MODEL_CATALOG)} "
        f"(default: {DEFAULT_MODEL})",
    )
    _model_options(init)

    add = commands.add_parser(
        "add-model",
        help="add a model and its engine configs to an existing stack file",
        description="Insert the model's entry at the end of the stack file's models (its\n"
        "comments and layout stay as they are) and write its engine configs per role, sized\n"
        "to the GPUs of the pool it lands on. The stack must pass its checks before, and the\n"
        "result after; otherwise nothing is written.",
        epilog=ADD_MODEL_EPILOG,
    )
    add.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    add.add_argument(
        "model",
        metavar="MODEL",
        help=f"Hugging Face id of a catalog model: {', '.join(MODEL_CATALOG)}",
    )
    add.add_argument(
        "--node-pool",
        metavar="POOL",
        help="the pool its workers run on (default: the first whose GPUs hold it)",
    )
    _model_options(add)


def _families() -> str:
    """p5, p5e, ... g5: the instance families the catalog holds sizes of."""
    return ", ".join(dict.fromkeys(name.partition(".")[0] for name in INSTANCE_CATALOG))


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name",
        help="model name: namespace and engine_configs/<name>/ (default: the catalog's alias)",
    )
    parser.add_argument(
        "--topology",
        metavar="TOPOLOGY",
        help=f"{', '.join(TOPOLOGIES)} (default: {DEFAULT_TOPOLOGY}); disaggregated workers "
        "that need more than a node span nodes (disagg-multinode)",
    )
    parser.add_argument(
        "--s3-uri",
        metavar="URI",
        help="take the weights from S3 through the model cache (required when workers span "
        "nodes; default: download from Hugging Face)",
    )


def init_command(args: argparse.Namespace, root: Path) -> int:
    return answered(_init, args, root)


def add_model_command(args: argparse.Namespace, root: Path) -> int:
    return answered(_add_model, args, root)


def _init(args: argparse.Namespace, root: Path, ask: Ask | None) -> int:
    from infra.starter.sizing import size_model
    from infra.starter.stack_file import (
        ModelEntry,
        NewCluster,
        multinode_efa,
        new_stack_text,
        pool_name,
    )

    stack = args.stack
    if not _STACK_NAME.fullmatch(stack):
        raise UsageProblem(
            f"{stack!r} is not a stack name for init: letters, digits, '-' and '_', at most 93"
        )
    if stack_file(root, stack).exists():
        raise UsageProblem(
            f"{source_label(stack)} exists: init writes new stacks only (add-model adds a "
            "model to one); nothing written"
        )
    mode = choice(
        answer(args.cluster_mode, "Cluster: eks (new) or existing", DEFAULT_CLUSTER_MODE, ask),
        CLUSTER_MODES,
        "--cluster-mode",
    )
    region = args.region
    zones: tuple[str, ...] = ()
    if mode == "eks":
        region = answer(args.region, "AWS region", DEFAULT_REGION, ask)
        zones = zones_answer(args.zones) or (f"{region}a", f"{region}b")
    instance_type = answer(args.instance_type, "GPU instance type", DEFAULT_INSTANCE_TYPE, ask)
    instance = INSTANCE_CATALOG.get(instance_type)
    if instance is None:
        raise UsageProblem(
            f"{instance_type!r} is not in the GPU instance catalog: {', '.join(INSTANCE_CATALOG)}"
        )
    facts = catalog_model(answer(args.model, "Model (Hugging Face id)", DEFAULT_MODEL, ask))
    topology = topology_answer(args, ask)
    sized = size_model(facts, instance, topology)
    platform = PlatformSpec()  # the default Dynamo release, which the file then pins
    entry = ModelEntry(
        model_name_answer(args.name, facts),
        facts,
        sized,
        pool_name(instance),
        platform.profile.default_image(bool(multinode_efa(sized, instance))),
        weights_answer(args.s3_uri, sized, facts, region, ask),
    )
    admins: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()
    if mode == "eks":
        admins = required(args.admin_arn, "IAM ARN of the cluster's admin role", "--admin-arn", ask)
        cidrs = required(
            args.public_access_cidr,
            "CIDR that may reach the API endpoint",
            "--public-access-cidr",
            ask,
        )
    cluster = NewCluster(mode, region, zones, args.context, admins, cidrs)
    entry = _placed(root, entry, stack, args.command)
    text = new_stack_text(stack, cluster, instance, entry, platform.dynamo_version)
    return _check_and_write(args, root, entry, topology, text, None, ())


def _add_model(args: argparse.Namespace, root: Path, ask: Ask | None) -> int:
    from infra.starter.sizing import size_model
    from infra.starter.stack_file import ModelEntry, StackTextError, with_model

    facts = catalog_model(args.model)
    checked = check_stack(args, root)  # the stack as it is must pass before it grows
    if isinstance(checked, int):
        return checked
    config = checked.config
    if not isinstance(config, StackConfig) or checked.deployment is None:
        raise UsageProblem(f"{args.stack} is a traffic stack: it runs no model")
    name = model_name_answer(args.name, facts)
    if any(model.name == name for model in config.models):
        raise UsageProblem(f"{args.stack} already has a model {name!r}: give another --name")
    topology = topology_answer(args, ask)
    eks = isinstance(config.cluster, EksCluster)
    region = config.cluster.region if isinstance(config.cluster, EksCluster) else None
    # A worker spans at most its EKS pool's maxSize nodes; an existing cluster's pools are not sized.
    sized_on = {
        pool.name: (
            pool,
            instance,
            size_model(facts, instance, topology, pool.max_size if eks else None),
        )
        for pool in config.node_pools
        if (instance := pool_gpus(pool)) is not None
    }
    if not sized_on:
        raise UsageProblem(f"{args.stack} has no GPU node pool (add one under nodePools)")
    fitting = next((pool for pool, (_, _, s) in sized_on.items() if s.fits), next(iter(sized_on)))
    chosen = choice(
        answer(args.node_pool, f"Node pool ({', '.join(sized_on)})", fitting, ask),
        tuple(sized_on),
        "--node-pool",
    )
    pool, _, sized = sized_on[chosen]
    entry = ModelEntry(
        name,
        facts,
        sized,
        pool.name,
        config.platform.profile.default_image(bool(pool.efa)),
        weights_answer(args.s3_uri, sized, facts, region, ask),
    )
    entry = _placed(root, entry, args.stack, args.command)
    before = stack_file(root, args.stack).read_bytes()
    try:
        text = with_model(before.decode("utf-8"), entry)
    except StackTextError as error:
        raise UsageProblem(
            f"cannot add the model to {source_label(args.stack)}: {error}; add it by hand"
        ) from None
    return _check_and_write(
        args, root, entry, topology, text, before, files_read(checked.deployment)
    )


def _check_and_write(
    args: argparse.Namespace,
    root: Path,
    entry: ModelEntry,
    requested: Topology,
    stack_text: str,
    stack_before: bytes | None,
    read_by_stack: Iterable[str],
) -> int:
    """Check the stack as it will be, then write it: engine configs first, the stack file last.

    stack_before: the stack file's bytes when add-model edits it (None: init creates it).
    """
    stack_path = source_label(args.stack)
    in_project(root, stack_path, args.command)
    engine_configs = entry.engine_configs()
    new_configs = not_yet_written(root, engine_configs, args.command)
    try:
        checked = checked_in_staging(
            root, args.stack, {stack_path: stack_text, **engine_configs}, read_by_stack
        )
    except StackConfigError as error:
        config_failed(args, error)
        for hint in _hints(entry, requested):
            print(f"hint: {hint}", file=sys.stderr)
        where = "" if stack_before is None else f" (lines of {stack_path} with the model added)"
        print(f"dynamo-infra {args.command}: nothing written{where}", file=sys.stderr)
        return EXIT_FAILED
    try:
        write_files(root, new_configs, stack_path, stack_text.encode("utf-8"), stack_before)
    except FileExistsError as error:
        raise UsageProblem(f"{error.filename} appeared meanwhile; nothing written") from None
    except OSError as error:
        return failed(args, f"cannot write {error.filename}: {error.strerror}", EXIT_FAILED)
    print_warnings(checked.warnings)
    for relative in [*new_configs, stack_path]:
        print(f"wrote {relative}")
    for relative in sorted(set(engine_configs) - set(new_configs)):
        print(f"kept {relative} (already there, the same)")
    if entry.config_suffix:
        folder = Path(next(iter(engine_configs))).parent.as_posix()
        print(
            f"{folder}/ holds other engine configs under the plain names, kept as they are; "
            f"this stack's end in {entry.config_suffix}.yaml"
        )
    if entry.sized.topology is not requested:
        print(f"{entry.name}: its workers span nodes, so the topology is disagg-multinode")
    _print_plan(checked, entry.name)
    print(
        f"next: dynamo-infra validate {args.stack}, dynamo-infra preflight "
        # --create: a fresh backend has no such stack yet (and selecting one that exists is
        # all --create does then).
        f"{args.stack}, then `pulumi stack select --create {args.stack}` and `pulumi up`"
    )
    return EXIT_OK


def _placed(root: Path, entry: ModelEntry, stack: str, command: str) -> ModelEntry:
    """The entry with its engine configs at engine_configs/<name>/<role>.yaml where each is free
    or already says the same; else at <role>-<stack>.yaml beside them: the plain names hold
    configs other stacks read (the project ships some), which must not change or be lost."""
    if not taken(root, entry.engine_configs(), command):
        return entry
    beside = replace(entry, config_suffix=f"-{stack}")
    if clash := taken(root, beside.engine_configs(), command):
        plain = next(iter(taken(root, entry.engine_configs(), command)))
        raise UsageProblem(
            f"{plain} and {clash[0]} exist with other content: {command} never overwrites a "
            "file; nothing written (give the model another name with --name)"
        )
    return beside


def _hints(entry: ModelEntry, requested: Topology) -> list[str]:
    hints = []
    if not entry.sized.fits and requested.roles == ("agg",):
        hints.append(
            "an aggregated worker stays on one node: a GPU with more memory holds it, or "
            "--topology disagg lets prefill and decode workers span nodes (with --s3-uri)"
        )
    if entry.facts.gated and entry.s3 is None:
        hints.append(f"{entry.facts.hf_id} is gated; weights from S3 (--s3-uri) need no token")
    return hints


def _print_plan(checked: CheckedStack, model: str) -> None:
    from infra.deployment.planning import plan_stack
    from infra.trtllm.memory_plan import format_plan_table

    assert checked.deployment is not None
    resolved = checked.deployment.model(model)
    plans = [row.plan for row in plan_stack(checked.deployment, models=[resolved]) if row.plan]
    if plans:
        print(format_plan_table(plans))
