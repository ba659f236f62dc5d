"""Each answer `init` and `add-model` need: from its flag, asked on a terminal, or its default;
a missing or impossible one is refused naming the flag to give."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from infra.commands.common import (
    EXIT_USAGE,
    failed,
)
from infra.stack.model_config import Topology
from infra.stack.names import dns1123_label_problem
from infra.trtllm.model_catalog import CATALOG as MODEL_CATALOG
from infra.trtllm.model_catalog import ModelFacts, lookup_model

if TYPE_CHECKING:
    from infra.starter.sizing import SizedModel
    from infra.starter.stack_file import S3Weights
from infra.commands.starter_files import (
    UsageProblem,
)

DEFAULT_TOPOLOGY = Topology.AGG.value
# Multinode is not asked for: a disaggregated model turns disagg-multinode when it needs to.
TOPOLOGIES = tuple(t.value for t in Topology if not t.multinode)
Ask = Callable[[str], str]


def answered(
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


def answer(given: str | None, question: str, default: str, ask: Ask | None) -> str:
    """The flag's value; else the person's answer (Enter: the default); else the default."""
    if given is not None:
        return given
    if ask is None:
        return default
    return ask(f"{question} [{default}]: ").strip() or default


def required(given: list[str] | None, question: str, flag: str, ask: Ask | None) -> tuple[str, ...]:
    """Answers without a safe default: the flags, else the person's answer, else a refusal."""
    if given:
        return tuple(given)
    if ask is None:
        raise UsageProblem(f"give {flag} (no terminal to ask, and no safe default)")
    answer = ask(f"{question}: ").strip()
    if not answer:
        raise UsageProblem(f"{flag} is needed; nothing written")
    return (answer,)


def choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    if value not in choices:
        raise UsageProblem(f"{flag} {value!r}: choose one of {', '.join(choices)}")
    return value


def topology_answer(args: argparse.Namespace, ask: Ask | None) -> Topology:
    question = f"Topology ({', '.join(TOPOLOGIES)})"
    return Topology(
        choice(answer(args.topology, question, DEFAULT_TOPOLOGY, ask), TOPOLOGIES, "--topology")
    )


def zones_answer(given: str | None) -> tuple[str, ...]:
    return tuple(zone.strip() for zone in (given or "").split(",") if zone.strip())


def catalog_model(key: str) -> ModelFacts:
    facts = lookup_model(key)
    if facts is None:
        raise UsageProblem(
            f"{key!r} is not in the model catalog (infra/trtllm/model_catalog.py), whose facts "
            f"size the workers: {', '.join(MODEL_CATALOG)}"
        )
    return facts


def model_name_answer(given: str | None, facts: ModelFacts) -> str:
    name = given or facts.alias.replace(".", "-")
    if problem := dns1123_label_problem(name):
        raise UsageProblem(f"--name: {problem}")
    return name


def weights_answer(
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
