"""`dynamo-infra diff`: modes, outputs, the markdown PR comment, and a git ref as the base."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.offline.diff_format import ROLLS, UPDATES_IN_PLACE
from tests.conftest import PROJECT_ROOT, Rendered
from tests.dgd_layouts import container_path

SNAPSHOT = Path(__file__).parent / "snapshots" / "diff-markdown.md"


def write_render(directory: Path, resources: dict[str, tuple[dict, dict]]) -> Path:
    """A minimal render output: index.json plus one YAML file per resource."""
    entries = []
    for file, (entry, document) in resources.items():
        (directory / file).parent.mkdir(parents=True, exist_ok=True)
        (directory / file).write_text(yaml.safe_dump(document, sort_keys=True))
        entries.append({**entry, "file": file})
    (directory / "index.json").write_text(json.dumps({"stack": "demo", "resources": entries}))
    return directory


def dgd(image: str, replicas: int) -> dict:
    worker = {"replicas": replicas, "extraPodSpec": {"mainContainer": {"image": image}}}
    return {
        "apiVersion": "nvidia.com/v1alpha1",
        "kind": "DynamoGraphDeployment",
        "metadata": {"name": "m-blue", "namespace": "m"},
        "spec": {"services": {"TRTLLMWorker": worker}},
    }


def k8s_entry(kind: str, name: str, namespace: str = "m", **extra: object) -> dict:
    return {
        "type": f"kubernetes:test:{kind}",
        "name": f"{namespace}-{name}",
        "kind": kind,
        "namespace": namespace,
        "k8sName": name,
        **extra,
    }


@pytest.fixture
def renders(tmp_path: Path) -> tuple[Path, Path]:
    secret = {"apiVersion": "v1", "kind": "Secret", "stringData": {"HF_TOKEN": "[secret]"}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"agg.yaml": "a: 1\nb: 2\n"}}
    base = write_render(
        tmp_path / "base",
        {
            "kubernetes/m/DynamoGraphDeployment-m-blue.yaml": (
                k8s_entry("DynamoGraphDeployment", "m-blue"),
                dgd("img:1.1.0", 1),
            ),
            "kubernetes/m/Secret-hf-token-secret.yaml": (
                k8s_entry("Secret", "hf-token-secret", secrets={"hfToken": "aaaa"}),
                secret,
            ),
            "kubernetes/m/ConfigMap-m-engine.yaml": (k8s_entry("ConfigMap", "m-engine"), config),
            "kubernetes/_cluster/Namespace-old.yaml": (
                k8s_entry("Namespace", "old", namespace=""),
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old"}},
            ),
        },
    )
    changed_config = {**config, "data": {"agg.yaml": "a: 1\nb: 3\n"}}
    head = write_render(
        tmp_path / "head",
        {
            "kubernetes/m/DynamoGraphDeployment-m-blue.yaml": (
                k8s_entry("DynamoGraphDeployment", "m-blue"),
                dgd("img:1.1.1", 2),
            ),
            "kubernetes/m/Secret-hf-token-secret.yaml": (
                k8s_entry("Secret", "hf-token-secret", secrets={"hfToken": "bbbb"}),
                secret,
            ),
            "kubernetes/m/ConfigMap-m-engine.yaml": (
                k8s_entry("ConfigMap", "m-engine"),
                changed_config,
            ),
            "kubernetes/m/Service-m.yaml": (
                k8s_entry("Service", "m"),
                {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 8000}]}},
            ),
        },
    )
    return base, head


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_markdown_comment_matches_the_snapshot(
    renders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = renders
    code, out, _ = run(
        ["diff", "--base-dir", str(base), "--head-dir", str(head), "--output", "markdown"], capsys
    )
    assert code == 0
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(out)
    assert out == SNAPSHOT.read_text()


def test_json_output_lists_every_resource_and_field(
    renders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, head = renders
    code, out, _ = run(
        ["diff", "--base-dir", str(base), "--head-dir", str(head), "--output", "json"], capsys
    )
    report = json.loads(out)
    assert code == 0
    assert report["summary"] == {"added": 1, "removed": 1, "changed": 3}
    by_label = {r["label"]: r for r in report["resources"]}
    graph = by_label["DynamoGraphDeployment m/m-blue"]
    assert {f["path"]: (f["before"], f["after"]) for f in graph["fields"]} == {
        "spec.services.TRTLLMWorker.extraPodSpec.mainContainer.image": ("img:1.1.0", "img:1.1.1"),
        "spec.services.TRTLLMWorker.replicas": (1, 2),
    }
    secret = by_label["Secret m/hf-token-secret"]
    assert secret["secretChanged"] is True and secret["fields"] == []
    assert by_label["Service m/m"]["status"] == "added"
    assert by_label["Namespace old"]["status"] == "removed"


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--project-dir", str(PROJECT_ROOT)]
    assert run([*root, "diff", "dev"], capsys)[0] == 2  # neither --base nor dirs
    assert run([*root, "diff", "--base", "HEAD"], capsys)[0] == 2  # no stack
    assert run([*root, "diff", "--base-dir", str(tmp_path)], capsys)[0] == 2  # no head
    code, _, err = run(
        [*root, "diff", "--base-dir", str(tmp_path), "--head-dir", str(tmp_path)], capsys
    )
    assert code == 1 and "not a render output" in err


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_diff_against_a_git_ref_renders_the_base_with_its_own_commit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rendered: dict[str, Rendered]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("infra", "components", "stacks", "engine_configs"):
        shutil.copytree(
            PROJECT_ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(PROJECT_ROOT / "Pulumi.yaml", repo / "Pulumi.yaml")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    stack = repo / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("runtime:1.2.0", "runtime:1.2.1"))

    code, out, err = run(["--project-dir", str(repo), "diff", "dev", "--base", "HEAD"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "stack dev: 0 added, 0 removed, 1 changed"
    assert "~ DynamoGraphDeployment qwen3-0-6b/qwen3-0-6b-blue" in out
    # Each service's image, in the layout dev's release emits (the shipped render's graph).
    [graph] = rendered["dev"].objects("DynamoGraphDeployment")
    lines = [line.strip() for line in out.splitlines()]
    assert lines[2:5] == [
        UPDATES_IN_PLACE,
        f"! {ROLLS}: Frontend, TRTLLMWorker",
        f"{container_path(graph, 'Frontend', 'image')}:",
    ]
    for service in ("Frontend", "TRTLLMWorker"):
        at = lines.index(f"{container_path(graph, service, 'image')}:")
        assert lines[at + 1 : at + 3] == [
            "-   nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.0",
            "+   nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.2.1",
        ]
    # The temporary worktree is gone again.
    listed = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True, check=True
    )
    assert len(listed.stdout.splitlines()) == 1

    # An unknown ref is a usage error, in plain words (no git output).
    code, _, err = run(["--project-dir", str(repo), "diff", "dev", "--base", "no-such-ref"], capsys)
    assert code == 2 and "dynamo-infra diff:" in err
    assert "--base 'no-such-ref' is not a branch, tag or commit of this repository" in err


@pytest.mark.parametrize(
    ("index", "message"),
    [
        ({"resources": [{"file": "../../../etc/passwd", "type": "t", "name": "n"}]}, "outside"),
        ({"resources": [{"type": "t", "name": "n"}]}, "needs the strings file, type and name"),
        ({"resources": [{"file": "gone.yaml", "type": "t", "name": "n"}]}, "cannot read"),
        ({"resources": "all"}, "not a render index"),
        ([], "not a render index"),
    ],
)
def test_a_malformed_render_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], index: object, message: str
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text(json.dumps(index))
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    root = ["--project-dir", str(PROJECT_ROOT)]
    code, _, err = run(
        [*root, "diff", "--base-dir", str(broken), "--head-dir", str(broken)], capsys
    )
    assert code == 1 and message in err and "Traceback" not in err
    code, _, err = run(
        [*root, "diff", "--base-dir", str(broken), "--head-dir", str(not_a_dir)], capsys
    )
    assert code == 1 and "is not a directory" in err
