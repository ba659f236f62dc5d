"""How dynamo-infra talks to a person: argument errors with a suggestion, help that shows every
default and an example, progress and colour on a terminal only (plain when piped or in CI)."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from rich.console import Console

_STDERR = Console(stderr=True, highlight=False)
_STDOUT = Console(highlight=False)


def _for_a_person(console: Console) -> bool:
    """Progress and colour only for a person at a terminal: never piped, never in CI."""
    return console.is_terminal and not os.environ.get("CI") and "NO_COLOR" not in os.environ


@contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner with `message` on stderr while the block runs, on a terminal only."""
    if not _for_a_person(_STDERR):
        yield
        return
    with _STDERR.status(message, spinner="dots"):
        yield


def status_word(ok: bool) -> str:
    """`ok` or `FAIL`, green or red on a terminal, plain otherwise."""
    word = "ok" if ok else "FAIL"
    if not _for_a_person(_STDOUT):
        return word
    colour = "\033[32m" if ok else "\033[1;31m"
    return f"{colour}{word}\033[0m"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and examples as written; every option's default shown when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or default in (None, False, [], argparse.SUPPRESS)
            or not action.option_strings
        ):
            return text
        return f"{text} (default: {default})"


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)")


class Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a mistyped command, choice or option."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        hint = self._suggestion(message)
        self.exit(2, f"{self.prog}: error: {message}{hint}\n")

    def _suggestion(self, message: str) -> str:
        if choice := _INVALID_CHOICE.search(message):
            given = choice.group(1)
            known = [c.strip().strip("'") for c in choice.group(2).split(",")]
            close = difflib.get_close_matches(given, known, n=1)
            return f"; did you mean {close[0]!r}?" if close else ""
        if unknown := _UNRECOGNIZED.search(message):
            options = sorted(self._all_options())
            hints = []
            for word in unknown.group(1).split():
                flag = word.split("=")[0]
                if flag.startswith("-") and (close := difflib.get_close_matches(flag, options, 1)):
                    hints.append(f"{close[0]} (not {flag})")
            return f"; did you mean {', '.join(hints)}?" if hints else ""
        return ""

    def _all_options(self) -> set[str]:
        """This parser's options and every subcommand's (argparse reports a subcommand's
        unknown option from the top parser)."""
        options = {s for a in self._actions for s in a.option_strings}
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    options |= {s for a in sub._actions for s in a.option_strings}
        return options
