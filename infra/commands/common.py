"""What every dynamo-infra command shares: exit codes, stack lookup, how problems are reported."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def stack_names(root: Path) -> list[str]:
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml")
        for p in (root / "stacks").glob("Pulumi.*.yaml")
    )


def failed(args: argparse.Namespace, message: str, code: int) -> int:
    """A failure that is not a config problem: stderr in text mode, a JSON object otherwise."""
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"ok": False, "error": message}))
    else:
        print(f"dynamo-infra {args.command}: {message}", file=sys.stderr)
    return code


def config_failed(args: argparse.Namespace, error: Any) -> int:
    """Every problem of a stack file: the report on stderr, or structured in JSON mode."""
    if getattr(args, "output", "text") == "json":
        print(json.dumps({"ok": False, "problems": error.as_dicts()}, indent=2))
    else:
        print(str(error), file=sys.stderr)
    return EXIT_FAILED


def print_warnings(warnings: list[Any]) -> None:
    for warning in warnings:
        print(warning.render(), file=sys.stderr)


def unknown_stack(stack: str, root: Path) -> int:
    known = ", ".join(stack_names(root)) or "none"
    print(
        f"dynamo-infra: no stack {stack!r}: stacks/Pulumi.{stack}.yaml does not exist "
        f"(stacks: {known})",
        file=sys.stderr,
    )
    return EXIT_USAGE


def selected_stacks(args: argparse.Namespace, root: Path) -> list[str] | int:
    """STACK... or --all, every name known; else the usage exit code after saying why."""
    if args.all == bool(args.stacks):
        print(f"dynamo-infra {args.command}: give stack names or --all (not both)", file=sys.stderr)
        return EXIT_USAGE
    stacks: list[str] = stack_names(root) if args.all else args.stacks
    for stack in stacks:
        if stack not in stack_names(root):
            return unknown_stack(stack, root)
    return stacks


def load_stack(root: Path, stack: str, fit_check: bool = True, args: Any = None) -> Any:
    """The checked config of a stack, or the exit code after saying what is wrong."""
    from infra.deployment.checked import load_stack_config
    from infra.stack.errors import StackConfigError

    if stack not in stack_names(root):
        return unknown_stack(stack, root)
    try:
        return load_stack_config(root, stack, fit_check)
    except StackConfigError as error:
        if args is not None:
            return config_failed(args, error)
        print(str(error), file=sys.stderr)
        return EXIT_FAILED


def check_stack(args: argparse.Namespace, root: Path, fit_check: bool = True, **kwargs: Any) -> Any:
    """The checked stack (config, deployment, warnings), or the exit code after its problems."""
    from infra.deployment.checked import check_stack
    from infra.stack.errors import StackConfigError

    if args.stack not in stack_names(root):
        return unknown_stack(args.stack, root)
    try:
        return check_stack(root, args.stack, fit_check, **kwargs)
    except StackConfigError as error:
        return config_failed(args, error)
