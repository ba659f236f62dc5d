"""The floor a render is measured against: the same SDK, the same number of trivial resources.

Loads the Pulumi SDK modules the components use (found in their source, so the list follows
the code), installs the same recording mock runtime, and registers N resources with no inputs.
What a render costs above this is ours.

    python -m benchmarks.floor N [--collector default|as-render]

`as-render` gives the floor the render's collector policy (infra.cli: the cyclic collector paused
for the command, no full collection at exit), so a ratio against it shows what is ours beyond
that policy.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import re
import sys
from pathlib import Path

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
_SDK_USE = re.compile(r"\b(aws|k8s)\.([a-z0-9_]+(?:\.v[0-9a-z]+)?)\.([A-Z]\w*)")
_RANDOM_USE = re.compile(r"\brandom\.([A-Z]\w*)\(")
_PACKAGES = {"aws": "pulumi_aws", "k8s": "pulumi_kubernetes"}


def load_sdk_modules() -> list[str]:
    """Load every SDK class the program's components construct resources from.

    The SDK's modules load lazily, on first attribute access: touching each class loads what
    the program loads.
    """
    names = set()
    for source in [*(ROOT / "components").glob("*.py"), *(ROOT / "infra").glob("*.py")]:
        text = source.read_text()
        names |= {f"{_PACKAGES[p]}.{module}.{cls}" for p, module, cls in _SDK_USE.findall(text)}
        names |= {f"pulumi_random.{cls}" for cls in _RANDOM_USE.findall(text)}
    for name in sorted(names):
        module, _, cls = name.rpartition(".")
        getattr(importlib.import_module(module), cls)
    return sorted(names)


class TrivialMocks(pulumi_mocks.Mocks):
    """Answers every registration with its (empty) inputs, as the render's mocks do."""

    def __init__(self) -> None:
        self.recorded = 0

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        self.recorded += 1
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


class Trivial(pulumi.CustomResource):
    def __init__(self, name: str) -> None:
        super().__init__("benchmark:index:Trivial", name, {})


def main(count: int, collector: str = "default") -> int:
    if collector == "as-render":
        gc.disable()
    load_sdk_modules()
    mocks = TrivialMocks()
    pulumi_settings.ROOT.set(None)
    pulumi_mocks.set_mocks(mocks, project="floor", stack="floor", preview=False)
    _sync_await(run_pulumi_func(lambda: [Trivial(f"r{i}") for i in range(count)]))
    if collector == "as-render":
        gc.freeze()
    return 0 if mocks.recorded == count else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int)
    parser.add_argument("--collector", choices=["default", "as-render"], default="default")
    arguments = parser.parse_args()
    sys.exit(main(arguments.count, arguments.collector))
