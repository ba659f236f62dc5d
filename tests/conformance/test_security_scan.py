"""checkov's Kubernetes checks over every stack's rendered manifests: clean, and really running."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.offline.scan import (
    CHECKOV_ENV,
    CHECKOV_VERSION,
    ScannerError,
    ScanReport,
    find_checkov,
    parse_report,
    scan_manifests,
    scan_many,
)
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, Rendered


@pytest.fixture(scope="module")
def checkov() -> Path:
    # README's set-up installs the scanner; without it this suite fails rather than skips.
    return find_checkov(PROJECT_ROOT)


@pytest.fixture(scope="module")
def manifests(rendered: dict[str, Rendered]) -> dict[str, Path]:
    return {stack: rendered[stack].out / "kubernetes" for stack in ENVIRONMENT_STACKS}


@pytest.fixture(scope="module")
def reports(checkov: Path, manifests: dict[str, Path]) -> dict[str, ScanReport]:
    """Every stack in one checkov run, as `scan --all` does it."""
    return scan_many(manifests, checkov)


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_stack_scans_clean(stack: str, reports: dict[str, ScanReport]) -> None:
    report = reports[stack]
    assert report.resources > 0 and report.passed > 0
    assert report.failed == [], "\n".join(
        f"{f.check_id} {f.resource} ({f.file}): {f.check_name}" for f in report.failed
    )


def test_scanner_reports_what_we_would_break(
    checkov: Path, manifests: dict[str, Path], tmp_path: Path
) -> None:
    """A wildcard Role among dev's manifests fails; the same Role suppressed in place is listed
    with its reason."""
    scanned = tmp_path / "kubernetes"
    shutil.copytree(manifests["dev"], scanned)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "too-broad", "namespace": "qwen3-0-6b"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    suppressed = yaml.safe_load(yaml.safe_dump(role))
    suppressed["metadata"]["name"] = "suppressed"
    suppressed["metadata"]["annotations"] = {"checkov.io/skip1": "CKV_K8S_49=test fixture"}
    (scanned / "extra.yaml").write_text(yaml.safe_dump_all([role, suppressed]))

    report = scan_manifests(scanned, checkov)

    failed = {(f.check_id, f.resource) for f in report.failed}
    assert ("CKV_K8S_49", "Role.qwen3-0-6b.too-broad") in failed
    assert all(f.file == "extra.yaml" for f in report.failed)
    assert [(f.check_id, f.resource, f.reason) for f in report.skipped] == [
        ("CKV_K8S_49", "Role.qwen3-0-6b.suppressed", "test fixture")
    ]


def test_readme_installs_the_pinned_scanner() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert re.search(rf"pip install -q 'checkov=={re.escape(CHECKOV_VERSION)}'", readme)


def test_report_parsing_accepts_each_checkov_shape() -> None:
    bare = '{"passed": 0, "failed": 0, "skipped": 0, "resource_count": 0}'
    assert parse_report(bare).resources == 0
    listed = (
        '[{"summary": {"passed": 3, "resource_count": 2}, "results": {"failed_checks": '
        '[{"check_id": "CKV_K8S_1", "check_name": "n", "resource": "Pod.a.b", '
        '"file_path": "/a/Pod-b.yaml"}]}}]'
    )
    report = parse_report(listed)
    assert (report.passed, report.resources, report.failed[0].file) == (3, 2, "a/Pod-b.yaml")
    with pytest.raises(ScannerError, match="no JSON report"):
        parse_report("Traceback ...")


def test_scan_without_checkov_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(CHECKOV_ENV, str(tmp_path / "missing"))
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    shutil.copytree(PROJECT_ROOT / "stacks", tmp_path / "stacks")
    assert main(["--project-dir", str(tmp_path), "scan", "dev"]) == 2
    assert ".venv-scanner/bin/pip install -q 'checkov==" in capsys.readouterr().err


def test_scan_cli_reports_per_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project-dir", str(PROJECT_ROOT), "scan", "dev", "prod-traffic"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^dev: \d+ resources, \d+ checks passed, 0 failed", out, re.M)
    assert "prod-traffic: no Kubernetes objects" in out
