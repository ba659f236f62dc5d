"""The offline commands: render, validate, scan, diff, plan, check-engine-config."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from infra.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    check_stack,
    config_failed,
    failed,
    print_warnings,
    selected_stacks,
    stack_names,
    unknown_stack,
)
from infra.commands.console import progress, status_word


def render_command(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.render import RenderError, render_stack
    from infra.offline.render_output import OutputFailed, OutputRefused
    from infra.stack.errors import StackConfigError

    if args.stack not in stack_names(root):
        return unknown_stack(args.stack, root)
    try:
        result = render_stack(args.stack, args.out, root)
    except OutputRefused as error:
        return failed(args, f"refused: {error}", EXIT_USAGE)
    except StackConfigError as error:
        return config_failed(args, error)
    except (RenderError, OutputFailed) as error:
        return failed(args, str(error), EXIT_FAILED)
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
        print_warnings(result.warnings)
        print(f"rendered stack {args.stack!r}: {len(resources)} resources -> {args.out}")
    return EXIT_OK


def validate_command(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.crd_bundle import ShippedSchemas
    from infra.offline.render import RenderError, render_stack
    from infra.offline.render_output import (
        OutputFailed,
        OutputRefused,
        publish_render,
        renders_dir_refusal,
    )
    from infra.offline.validate import (
        CrdSchemas,
        StackSchemas,
        UnsupportedKubernetesVersion,
        schema_version,
        validate_render,
    )
    from infra.stack.config import DEFAULT_KUBERNETES_VERSION, StackConfig
    from infra.stack.errors import StackConfigError

    stacks = selected_stacks(args, root)
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
    # Every stack renders into scratch; --out receives the renders only when all of them pass,
    # so a failing stack leaves nothing half-written there.
    with tempfile.TemporaryDirectory(prefix="dynamo-infra-") as scratch:
        base = Path(scratch)
        for number, stack in enumerate(stacks, 1):
            out = base / stack
            try:
                with progress(f"validating {stack} ({number}/{len(stacks)})"):
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
                print_warnings(rendered.warnings)
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
            pins = config.platform.chart_pins() if isinstance(config, StackConfig) else {}
            schemas = StackSchemas(crds, ShippedSchemas.for_pins(pins))
            try:
                report = validate_render(out, stack, schemas, version)
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
                result["renderDir"] = str(args.out / stack)
            results.append(result)
            if args.output == "text":
                print_report(report, args.out / stack if args.out else None)
        if args.out and ok:
            try:
                for stack in stacks:
                    publish_render(base / stack, args.out / stack, root)
            except (OutputRefused, OutputFailed) as error:
                ok = False
                results.append({"stack": "", "ok": False, "error": str(error)})
                if args.output == "text":
                    print(f"FAIL: {error}", file=sys.stderr)
        elif args.out and args.output == "text":
            print(f"nothing written to {args.out}: a stack failed", file=sys.stderr)
    if args.output == "json":
        print(json.dumps({"ok": ok, "stacks": results}, indent=2, sort_keys=True))
    return EXIT_OK if ok else EXIT_FAILED


def print_report(report: Any, out: Path | None) -> None:
    status = status_word(report.ok)
    where = f"; render in {out}" if out else ""
    # An object no schema covers is a failure too: nothing checked it.
    failures = len(report.failures) + len(report.no_schema)
    unchecked = f" ({len(report.no_schema)} objects without a schema)" if report.no_schema else ""
    print(
        f"{status} {report.stack}: {report.checked} Kubernetes objects checked against Kubernetes "
        f"{report.kubernetes_version} and CRD schemas, {failures} failures{unchecked}{where}"
    )
    for failure in report.failures:
        print(f"  {failure.object} ({failure.file}): {failure.path}: {failure.message}")
    for missing in report.no_schema:
        print(f"  no schema available for {missing}")


def scan_command(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.render import RenderError, render_stack
    from infra.offline.scan import ScannerError, find_checkov, format_report, scan_many
    from infra.stack.errors import StackConfigError

    stacks = selected_stacks(args, root)
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
        for number, stack in enumerate(stacks, 1):
            out = Path(scratch) / stack
            try:
                with progress(f"rendering {stack} ({number}/{len(stacks)})"):
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
            with progress(f"checkov over {len(manifests)} stack(s)"):
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


def diff_command(args: argparse.Namespace, root: Path) -> int:
    from infra.offline.diff import DiffError, diff_renders
    from infra.offline.diff_format import format_json, format_markdown, format_text
    from infra.offline.diff_git import diff_against_ref
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
    if by_ref and args.stack not in stack_names(root):
        return unknown_stack(args.stack, root)
    if by_ref and (problem := unknown_ref(root, args.base)):
        print(f"dynamo-infra diff: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if by_ref:
            with progress(f"rendering {args.stack} at {args.base} and in the working tree"):
                result = diff_against_ref(root, args.base, args.stack)
        else:
            result = diff_renders(args.base_dir, args.head_dir)
    except (DiffError, StackConfigError, RenderError) as error:
        print(f"dynamo-infra diff: {error}", file=sys.stderr)
        return EXIT_FAILED
    formats = {"text": format_text, "markdown": format_markdown, "json": format_json}
    sys.stdout.write(formats[args.output](result))
    return EXIT_OK


def unknown_ref(root: Path, ref: str) -> str | None:
    """Why `ref` cannot be the diff's base, in plain words (None: it names a commit)."""
    import subprocess

    inside = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        check=False,
    )
    if inside.returncode != 0:
        return f"{root} is not in a git repository: --base needs one (or use --base-dir)"
    found = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        return (
            f"--base {ref!r} is not a branch, tag or commit of this repository "
            "(`git fetch` first for a remote branch such as origin/main)"
        )
    return None


def plan_command(args: argparse.Namespace, root: Path) -> int:
    from infra.deployment.placement import format_placement, place
    from infra.deployment.planning import plan_stack
    from infra.deployment.resolved import ProjectFiles
    from infra.deployment.system_nodes import format_system_placement, pack_system_nodes
    from infra.trtllm.memory_plan import format_plan_table

    if (args.isl is not None and args.isl < 1) or (args.osl is not None and args.osl < 1):
        print("dynamo-infra plan: --isl and --osl must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    files = ProjectFiles(root)
    checked = check_stack(args, root, fit_check=False, files=files)
    if isinstance(checked, int):
        return checked
    if checked.deployment is None:
        print(f"{args.stack} is a traffic stack: it runs no model, there is nothing to plan")
        return EXIT_OK
    fetch_notes: list[str] = []
    if args.fetch:
        fetched, fetch_notes = fetched_facts(checked.deployment)
        if fetched:  # the same pass again, with the fetched facts (files are not read again)
            checked = check_stack(args, root, fit_check=False, files=files, fetched=fetched)
            if isinstance(checked, int):
                return checked
    assert checked.deployment is not None
    warnings = checked.warnings
    rows = plan_stack(checked.deployment, args.isl, args.osl)
    placements = place(checked.deployment)
    system = pack_system_nodes(checked.deployment)
    ok = (
        all(row.plan is None or row.plan.fits for row in rows)
        and not any(p.unplaced for p in placements)
        and not (system is not None and system.unplaced)
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
    print_warnings(warnings)
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
    if system is not None:
        print(format_system_placement(system))
    return EXIT_OK if ok else EXIT_FAILED


def fetched_facts(deployment: Any) -> tuple[dict[str, Any], list[str]]:
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


def check_engine_configs_command(args: argparse.Namespace) -> int:
    from infra.trtllm.engine_config import (
        EngineConfigIssue,
        Runtime,
        check_engine_config_file,
        tensorrt_llm_issues,
    )
    from infra.trtllm.engine_rules import file_rule_issues

    runtime = Runtime(args.trtllm_version)
    found: dict[Path, list[EngineConfigIssue]] = {}
    for file in args.files:
        result = check_engine_config_file(file, runtime)
        issues = list(result.issues) + file_rule_issues(result, args.role)
        if result.args is not None:
            issues += tensorrt_llm_issues(result.raw) or []
        found[file] = sorted({result.locate(issue) for issue in issues})
    # Warnings are said, not refused (as in validate without --strict).
    refused = {file: any(i.severity == "error" for i in issues) for file, issues in found.items()}
    ok = not any(refused.values())
    if args.output == "json":
        files = [
            {
                "file": str(file),
                "ok": not refused[file],
                "problems": [issue.as_dict(str(file)) for issue in issues],
            }
            for file, issues in found.items()
        ]
        print(json.dumps({"ok": ok, "files": files}, indent=2))
        return EXIT_OK if ok else EXIT_FAILED
    for file, issues in found.items():
        if not refused[file]:
            print(f"ok {file}")
        for issue in issues:
            print(issue.render(str(file)), file=sys.stderr)
    return EXIT_OK if ok else EXIT_FAILED
