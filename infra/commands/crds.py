"""`dynamo-infra crds build|fetch`: regenerate the shipped custom-resource schemas."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from infra.commands.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, stack_names

EXAMPLES = """examples:
  dynamo-infra crds build --reference ../shared/reference   # from local copies of the CRDs
  dynamo-infra crds fetch --dry-run                          # the release URLs it would read
  dynamo-infra crds fetch                                    # from the pinned releases (network)
"""


def register(commands: Any) -> None:
    crds = commands.add_parser(
        "crds",
        help="regenerate the custom-resource schemas validate ships with",
        description="Rebuild infra/offline/crd_schemas/ for every chart version the stacks pin "
        "(and every version the reference data holds): structural schemas, prose stripped, "
        "with a PROVENANCE.json per upstream release.",
        epilog=EXAMPLES,
    )
    actions = crds.add_subparsers(dest="crds_action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="from local copies of the upstream CRDs",
        epilog=EXAMPLES,
    )
    build.add_argument(
        "--reference",
        type=Path,
        required=True,
        metavar="DIR",
        help="root of the upstream reference data (crds/<project>/..., dynamo-<version>/crds)",
    )
    fetch = actions.add_parser(
        "fetch",
        help="from the pinned releases on GitHub (needs network)",
        epilog=EXAMPLES,
    )
    fetch.add_argument(
        "--dry-run", action="store_true", help="print the URLs it would read and stop"
    )


def crds_command(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.crd_bundle import (
        BundleError,
        build_bundle,
        bundle_targets,
        reference_reader,
        url_reader,
        write_bundles,
    )

    pins = pinned_charts(root)
    if isinstance(pins, int):
        return pins
    targets = list(bundle_targets(pins))
    if args.crds_action == "build":
        if not args.reference.is_dir():
            print(f"dynamo-infra crds: {args.reference} is not a directory", file=sys.stderr)
            return EXIT_USAGE
        reader = reference_reader(args.reference)
    else:
        if args.dry_run:
            for family, version in targets:
                for file in family.files:
                    print(family.url(version, file))
            return EXIT_OK
        reader = url_reader()
    try:
        # Everything read before anything is written.
        bundles = build_bundle(reader, targets, from_reference=args.crds_action == "build")
        write_bundles(bundles)
    except (BundleError, OSError) as error:
        print(f"dynamo-infra crds {args.crds_action}: {error}", file=sys.stderr)
        return EXIT_FAILED
    for name, files in sorted(bundles.items()):
        print(f"{name}: {len(files) - 1} schema files")
    return EXIT_OK


def pinned_charts(root: Path) -> list[dict[str, str]] | int:
    """The chart pins of the defaults and of every stack (a stack that does not load stops us)."""
    from infra.commands.common import load_stack
    from infra.stack.config import StackConfig
    from infra.stack.platform_config import PlatformSpec

    pins = [PlatformSpec().chart_pins()]
    for stack in stack_names(root):
        config = load_stack(root, stack, fit_check=False)
        if isinstance(config, int):
            return config
        if isinstance(config, StackConfig):
            pins.append(config.platform.chart_pins())
    return pins
