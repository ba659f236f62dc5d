"""The starter commands: init (a new stack file) and add-model (one more model in a stack file).

Both build every file in memory, run the checks `validate` and `plan` run on a staged copy of
what the stack reads, and write only when those pass, never over an existing file. A failed
check prints its problems, located as usual, and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
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
from infra.stack.names import dns1123_label_problem
from infra.stack.platform_config import PlatformSpec
from infra.stack.project_paths import project_file
from infra.trtllm.model_catalog import CATALOG as MODEL_CATALOG
from infra.trtllm.model_catalog import ModelFacts, lookup_model

if TYPE_CHECKING:
    from infra.deployment.checked import CheckedStack
    from infra.deployment.resolved import Deployment
    from infra.starter.sizing import SizedModel
    from infra.starter.stack_file import ModelEntry, S3Weights

# The dev stack's shape: the cheapest GPU node that serves a catalog model, in a new cluster.
DEFAULT_CLUSTER_MODE = "eks"
DEFAULT_REGION = "us-west-2"
DEFAULT_INSTANCE_TYPE = "g6.xlarge"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_TOPOLOGY = Topology.AGG.value
CLUSTER_MODES = ("eks", "existing")
# Multinode is not asked for: a disaggregated model turns disagg-multinode when it needs to.
TOPOLOGIES = tuple(t.value for t in Topology if not t.multinode)
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

Ask = Callable[[str], str]


class UsageProblem(Exception):
    """An answer the starter cannot use, or a file it will not overwrite: exit 2."""


def register(commands: Any) -> None:
    """The init and add-model subcommands (`commands` is the CLI's subparsers)."""
    init = commands.add_parser(
        "init",
        help="write a working stack file and its engine configs from a few answers",
        description="Write stacks/Pulumi.<STACK>.yaml (a cluster, one GPU pool, one model) and\n"
        "the model's engine configs per role, each worker sized to the pool's GPUs by the\n"
        "memory plan. Flags answer the questions; on a terminal the missing ones are asked\n"
        "(Enter takes the default in brackets), otherwise the defaults apply. The result\n"
        "passes the checks of `validate` and `plan` before anything is written.",
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
    init.add_argument("--context", help="existing cluster: kubeconfig context (default: current)")
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
    return _answered(_init, args, root)


def add_model_command(args: argparse.Namespace, root: Path) -> int:
    return _answered(_add_model, args, root)


def _answered(
    command: Callable[[argparse.Namespace, Path, Ask | None], int],
    args: argparse.Namespace,
    root: Path,
) -> int:
    """Run a starter command; questions go to a person at a terminal, piped runs take defaults."""
    try:
        return command(args, root, input if sys.stdin.isatty() else None)
    except UsageProblem as problem:
        return failed(args, str(problem), EXIT_USAGE)
    except (EOFError, KeyboardInterrupt):
        return failed(args, "no answer: nothing written", EXIT_USAGE)


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
    mode = _choice(
        _answer(args.cluster_mode, "Cluster: eks (new) or existing", DEFAULT_CLUSTER_MODE, ask),
        CLUSTER_MODES,
        "--cluster-mode",
    )
    region = args.region
    zones: tuple[str, ...] = ()
    if mode == "eks":
        region = _answer(args.region, "AWS region", DEFAULT_REGION, ask)
        zones = _zones(args.zones) or (f"{region}a", f"{region}b")
    instance_type = _answer(args.instance_type, "GPU instance type", DEFAULT_INSTANCE_TYPE, ask)
    instance = INSTANCE_CATALOG.get(instance_type)
    if instance is None:
        raise UsageProblem(
            f"{instance_type!r} is not in the GPU instance catalog: {', '.join(INSTANCE_CATALOG)}"
        )
    facts = _catalog_model(_answer(args.model, "Model (Hugging Face id)", DEFAULT_MODEL, ask))
    topology = _topology(args, ask)
    sized = size_model(facts, instance, topology)
    platform = PlatformSpec()  # the default Dynamo release, which the file then pins
    entry = ModelEntry(
        _model_name(args.name, facts),
        facts,
        sized,
        pool_name(instance),
        platform.profile.default_image(bool(multinode_efa(sized, instance))),
        _weights(args.s3_uri, sized, facts, region, ask),
    )
    admins: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()
    if mode == "eks":
        admins = _required(
            args.admin_arn, "IAM ARN of the cluster's admin role", "--admin-arn", ask
        )
        cidrs = _required(
            args.public_access_cidr,
            "CIDR that may reach the API endpoint",
            "--public-access-cidr",
            ask,
        )
    cluster = NewCluster(mode, region, zones, args.context, admins, cidrs)
    text = new_stack_text(stack, cluster, instance, entry, platform.dynamo_version)
    return _check_and_write(args, root, entry, topology, text, None, ())


def _add_model(args: argparse.Namespace, root: Path, ask: Ask | None) -> int:
    from infra.starter.sizing import size_model
    from infra.starter.stack_file import ModelEntry, StackTextError, with_model

    facts = _catalog_model(args.model)
    checked = check_stack(args, root)  # the stack as it is must pass before it grows
    if isinstance(checked, int):
        return checked
    config = checked.config
    if not isinstance(config, StackConfig) or checked.deployment is None:
        raise UsageProblem(f"{args.stack} is a traffic stack: it runs no model")
    name = _model_name(args.name, facts)
    if any(model.name == name for model in config.models):
        raise UsageProblem(f"{args.stack} already has a model {name!r}: give another --name")
    topology = _topology(args, ask)
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
    chosen = _choice(
        _answer(args.node_pool, f"Node pool ({', '.join(sized_on)})", fitting, ask),
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
        _weights(args.s3_uri, sized, facts, region, ask),
    )
    before = stack_file(root, args.stack).read_bytes()
    try:
        text = with_model(before.decode("utf-8"), entry)
    except StackTextError as error:
        raise UsageProblem(
            f"cannot add the model to {source_label(args.stack)}: {error}; add it by hand"
        ) from None
    return _check_and_write(
        args, root, entry, topology, text, before, _files_read(checked.deployment)
    )


def _answer(given: str | None, question: str, default: str, ask: Ask | None) -> str:
    """The flag's value; else the person's answer (Enter: the default); else the default."""
    if given is not None:
        return given
    if ask is None:
        return default
    return ask(f"{question} [{default}]: ").strip() or default


def _required(
    given: list[str] | None, question: str, flag: str, ask: Ask | None
) -> tuple[str, ...]:
    """Answers without a safe default: the flags, else the person's answer, else a refusal."""
    if given:
        return tuple(given)
    if ask is None:
        raise UsageProblem(f"give {flag} (no terminal to ask, and no safe default)")
    answer = ask(f"{question}: ").strip()
    if not answer:
        raise UsageProblem(f"{flag} is needed; nothing written")
    return (answer,)


def _choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    if value not in choices:
        raise UsageProblem(f"{flag} {value!r}: choose one of {', '.join(choices)}")
    return value


def _topology(args: argparse.Namespace, ask: Ask | None) -> Topology:
    question = f"Topology ({', '.join(TOPOLOGIES)})"
    return Topology(
        _choice(_answer(args.topology, question, DEFAULT_TOPOLOGY, ask), TOPOLOGIES, "--topology")
    )


def _zones(given: str | None) -> tuple[str, ...]:
    return tuple(zone.strip() for zone in (given or "").split(",") if zone.strip())


def _catalog_model(key: str) -> ModelFacts:
    facts = lookup_model(key)
    if facts is None:
        raise UsageProblem(
            f"{key!r} is not in the model catalog (infra/trtllm/model_catalog.py), whose facts "
            f"size the workers: {', '.join(MODEL_CATALOG)}"
        )
    return facts


def _model_name(given: str | None, facts: ModelFacts) -> str:
    name = given or facts.alias.replace(".", "-")
    if problem := dns1123_label_problem(name):
        raise UsageProblem(f"--name: {problem}")
    return name


def _weights(
    uri: str | None, sized: SizedModel, facts: ModelFacts, region: str | None, ask: Ask | None
) -> S3Weights | None:
    """S3 weights when asked for, and required where a worker spans nodes."""
    from infra.starter.stack_file import S3Weights

    if uri is None and sized.topology.multinode:
        nodes = max(role.size.nodes for role in sized.roles)
        reason = (
            f"{facts.hf_id}'s workers span {nodes} nodes, and every node of a multinode worker "
            "reads the weights from the model cache"
        )
        if ask is None:
            raise UsageProblem(f"{reason}: give --s3-uri s3://bucket/prefix (no terminal to ask)")
        print(reason)
        uri = ask("S3 URI of the weights (s3://bucket/prefix): ").strip()
        if not uri:
            raise UsageProblem(f"{reason}: an S3 URI is needed; nothing written")
    return S3Weights(uri, region) if uri else None


def _files_read(deployment: Deployment) -> set[str]:
    """Project files a stack's checks read besides the stack file: engine configs, config.json."""
    engines = {
        role.engine.path
        for resolved in deployment.models
        for role in resolved.roles.values()
        if role.engine is not None
    }
    return engines | {
        resolved.model.plan.architecture
        for resolved in deployment.models
        if resolved.model.plan.architecture
    }


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
    engine_configs = entry.engine_configs()
    new_configs = _not_yet_written(root, engine_configs, args.command)
    try:
        checked = _checked_in_staging(
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
        _write(root, new_configs, stack_path, stack_text.encode("utf-8"), stack_before)
    except FileExistsError as error:
        raise UsageProblem(f"{error.filename} appeared meanwhile; nothing written") from None
    except OSError as error:
        return failed(args, f"cannot write {error.filename}: {error.strerror}", EXIT_FAILED)
    print_warnings(checked.warnings)
    for relative in [*new_configs, stack_path]:
        print(f"wrote {relative}")
    for relative in sorted(set(engine_configs) - set(new_configs)):
        print(f"kept {relative} (already there, the same)")
    if entry.sized.topology is not requested:
        print(f"{entry.name}: its workers span nodes, so the topology is disagg-multinode")
    _print_plan(checked, entry.name)
    print(
        f"next: dynamo-infra validate {args.stack}, dynamo-infra preflight "
        f"{args.stack}, then `pulumi stack select {args.stack}` and `pulumi up`"
    )
    return EXIT_OK


def _not_yet_written(root: Path, files: dict[str, str], command: str) -> dict[str, str]:
    """The files to create; one already there is kept when it says the same, else refused."""
    new = {}
    for relative, text in files.items():
        path = root / relative
        if not path.exists():
            new[relative] = text
        elif not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            raise UsageProblem(
                f"{relative} exists: {command} never overwrites a file; nothing written "
                "(give the model another name with --name)"
            )
    return new


def _checked_in_staging(
    root: Path, stack: str, files: dict[str, str], read_by_stack: Iterable[str]
) -> CheckedStack:
    """check_stack on a scratch project: what the stack reads today, plus the new files."""
    from infra.deployment.checked import check_stack as check_stack_files

    with tempfile.TemporaryDirectory(prefix="dynamo-infra-starter-") as scratch:
        staged = Path(scratch)
        for relative in read_by_stack:
            source = project_file(root, relative)
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)
            elif source.is_file():  # else a catalog key, not a file
                shutil.copy2(source, target)
        for relative, text in files.items():
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        return check_stack_files(staged, stack, fit_check=True)


def _write(
    root: Path,
    new_files: dict[str, str],
    stack_path: str,
    stack_data: bytes,
    stack_before: bytes | None,
) -> None:
    """On any failure the files and folders this run created are removed, and only those."""
    created: list[Path] = []
    try:
        for relative, text in new_files.items():
            _create(root / relative, text.encode("utf-8"), created)
        if stack_before is None:
            _create(root / stack_path, stack_data, created)
        else:
            _replace(root / stack_path, stack_data, stack_before)
    except BaseException:
        for path in reversed(created):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
        raise


def _create(path: Path, data: bytes, created: list[Path]) -> None:
    for folder in reversed(list(takewhile(lambda p: not p.exists(), path.parents))):
        folder.mkdir()
        created.append(folder)
    with path.open("xb") as handle:  # exclusive: never over a file that appeared meanwhile
        created.append(path)
        handle.write(data)


def _replace(path: Path, data: bytes, before: bytes) -> None:
    """Atomically, and only over the bytes the model was inserted into."""
    if path.read_bytes() != before:
        raise UsageProblem(f"{path.name} changed while the model was added; nothing written")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
