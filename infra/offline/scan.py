"""Security scan of rendered manifests with checkov's Kubernetes checks.

checkov pins old boto3 and packaging releases, so it lives in its own virtualenv
(`.venv-scanner`, made by README's set-up) instead of the one Pulumi runs in.
A finding is fixed in the builder that writes the resource, or suppressed there with a
`checkov.io/skip<n>: <CHECK>=<reason>` annotation; checkov reports suppressions as skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCANNER_VENV = ".venv-scanner"
CHECKOV_VERSION = "3.3.30"
CHECKOV_ENV = "DYNAMO_INFRA_CHECKOV"
INSTALL_HINT = (
    f"python3 -m venv {SCANNER_VENV} && {SCANNER_VENV}/bin/pip install -q "
    f"'checkov=={CHECKOV_VERSION}' (README quick start)"
)


class ScannerError(Exception):
    """checkov is missing or did not produce a report."""


@dataclass(frozen=True)
class Finding:
    check_id: str
    check_name: str
    resource: str  # <Kind>.<namespace>.<name>
    file: str  # relative to the scanned directory
    reason: str = ""  # the suppression's reason, for skipped checks


@dataclass(frozen=True)
class ScanReport:
    passed: int
    failed: list[Finding]
    skipped: list[Finding]
    resources: int


def find_checkov(root: Path) -> Path:
    """$DYNAMO_INFRA_CHECKOV, else the project's scanner venv, else checkov on PATH."""
    candidates = [os.environ.get(CHECKOV_ENV), str(root / SCANNER_VENV / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    on_path = shutil.which("checkov")
    if on_path:
        return Path(on_path)
    raise ScannerError(f"checkov not found; install it with: {INSTALL_HINT}")


def _finding(entry: dict, under: str = "") -> Finding:
    """A finding, its file relative to the scanned tree (`under`: that tree's name, if any)."""
    file = entry["file_path"].lstrip("/")
    return Finding(
        check_id=entry["check_id"],
        check_name=entry["check_name"],
        resource=entry["resource"],
        file=file.removeprefix(f"{under}/") if under else file,
        reason=entry.get("check_result", {}).get("suppress_comment") or "",
    )


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ScannerError(f"checkov printed no JSON report: {error}") from error


def parse_report(text: str) -> ScanReport:
    """checkov's JSON: one report per framework (a list), one report, or a bare summary."""
    document = _json(text)
    reports = document if isinstance(document, list) else [document]
    passed = resources = 0
    failed: list[Finding] = []
    skipped: list[Finding] = []
    for report in reports:
        summary = report.get("summary", report)
        passed += summary["passed"]
        resources += summary["resource_count"]
        results = report.get("results", {})
        failed += [_finding(e) for e in results.get("failed_checks", [])]
        skipped += [_finding(e) for e in results.get("skipped_checks", [])]
    return ScanReport(passed=passed, failed=failed, skipped=skipped, resources=resources)


def scan_manifests(directory: Path, checkov: Path) -> ScanReport:
    """Run checkov's Kubernetes checks over every manifest under `directory`, offline."""
    return parse_report(_run_checkov(directory, checkov))


def scan_many(directories: dict[str, Path], checkov: Path) -> dict[str, ScanReport]:
    """One checkov run over several manifest trees (its start-up is most of a scan's time).

    Each tree is copied under its name into one scratch directory; findings are split back by
    that first path component.
    """
    with tempfile.TemporaryDirectory(prefix="dynamo-infra-scan-") as scratch:
        for name, directory in directories.items():
            shutil.copytree(directory, Path(scratch) / name)
        document = _json(_run_checkov(Path(scratch), checkov))
    reports = document if isinstance(document, list) else [document]
    entries: dict[str, list[dict]] = {"passed": [], "failed": [], "skipped": []}
    for report in reports:
        results = report.get("results", {})
        for outcome in entries:
            entries[outcome] += results.get(f"{outcome}_checks", [])
    split: dict[str, ScanReport] = {}
    for name in directories:
        mine = {
            outcome: [e for e in found if _top(e) == name] for outcome, found in entries.items()
        }
        resources = {(e["file_path"], e["resource"]) for found in mine.values() for e in found}
        split[name] = ScanReport(
            passed=len(mine["passed"]),
            failed=[_finding(e, name) for e in mine["failed"]],
            skipped=[_finding(e, name) for e in mine["skipped"]],
            resources=len(resources),
        )
    return split


def _top(entry: dict) -> str:
    return entry["file_path"].lstrip("/").split("/", 1)[0]


def _run_checkov(directory: Path, checkov: Path) -> str:
    command = [
        str(checkov),
        "--directory", str(directory),
        "--framework", "kubernetes",
        "--skip-download",  # no Prisma Cloud guideline fetch: offline and deterministic
        "--compact",  # not --quiet: it drops the suppressed checks from the report
        "--output", "json",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):  # 1 means "some check failed"
        raise ScannerError(f"checkov exited {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result.stdout


def format_report(stack: str, report: ScanReport) -> str:
    lines = [
        f"{stack}: {report.resources} resources, {report.passed} checks passed, "
        f"{len(report.failed)} failed, {len(report.skipped)} suppressed"
    ]
    lines += [
        f"  FAILED {f.check_id} {f.resource} ({f.file}): {f.check_name}" for f in report.failed
    ]
    lines += [f"  suppressed {f.check_id} {f.resource}: {f.reason}" for f in report.skipped]
    return "\n".join(lines)
