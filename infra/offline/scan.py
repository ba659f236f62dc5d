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
from dataclasses import dataclass
from pathlib import Path

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


def _finding(entry: dict) -> Finding:
    return Finding(
        check_id=entry["check_id"],
        check_name=entry["check_name"],
        resource=entry["resource"],
        file=entry["file_path"].lstrip("/"),
        reason=entry.get("check_result", {}).get("suppress_comment") or "",
    )


def parse_report(text: str) -> ScanReport:
    """checkov's JSON: one report per framework (a list), one report, or a bare summary."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ScannerError(f"checkov printed no JSON report: {error}") from error
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
    return parse_report(result.stdout)


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
