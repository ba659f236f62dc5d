"""Render output against real schemas; and the validator itself against upstream examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from infra.offline.crd_bundle import ShippedSchemas
from infra.offline.render import render_stack
from infra.offline.validate import (
    CrdSchemas,
    StackSchemas,
    UnsupportedKubernetesVersion,
    validate_render,
)
from infra.stack.config import PlatformSpec
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, Project


@pytest.fixture(scope="module")
def crds() -> StackSchemas:
    """The schemas that ship with the project, for the default chart pins every stack keeps."""
    return StackSchemas(CrdSchemas(), ShippedSchemas.for_pins(PlatformSpec().chart_pins()))


@pytest.fixture(scope="module")
def dev_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dev") / "dev"
    render_stack("dev", out, PROJECT_ROOT)
    return out


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_stack_is_valid(stack: str, crds: StackSchemas, tmp_path: Path) -> None:
    render_stack(stack, tmp_path / stack, PROJECT_ROOT)
    report = validate_render(tmp_path / stack, stack, crds, "1.33")
    assert report.failures == [] and report.no_schema == []
    assert report.checked > 5


def test_hpa_autoscaling_is_valid_and_really_checked(
    crds: StackSchemas, project: Project, tmp_path: Path
) -> None:
    """No stack in stacks/ uses the hpa autoscaler: prod with it switched on stands in."""
    config = project.stack_config("prod")
    config["dynamo-trtllm:platform"]["autoscaler"] = "hpa"
    project.write_stack("prod", config)
    out = tmp_path / "prod"
    render_stack("prod", out, project.root)
    report = validate_render(out, "prod", crds, "1.33")
    assert report.ok, report.as_dict()
    broken = _mutate(
        out,
        tmp_path,
        "HorizontalPodAutoscaler-qwen3-0-6b-blue-trtllmworker.yaml",
        lambda d: d["spec"]["metrics"][0]["external"]["target"].update(averageValu="4"),
    )
    failures = validate_render(broken, "prod", crds, "1.33").failures
    assert [f.path for f in failures] == ["spec.metrics[0].external.target"]


def test_upstream_trtllm_examples_pass_our_crd_validator(
    crds: StackSchemas, reference: Path
) -> None:
    examples = sorted((reference / "dynamo-examples" / "trtllm").glob("*.yaml"))
    checked = 0
    for path in examples:
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != "DynamoGraphDeployment":
                continue
            schema = crds.get(document["apiVersion"], document["kind"])
            assert schema is not None
            import jsonschema

            errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
            assert errors == [], f"{path.name}: {[e.message for e in errors]}"
            checked += 1
    assert checked >= 5


def _mutate(render: Path, tmp_path: Path, file_suffix: str, change) -> Path:  # type: ignore[no-untyped-def]
    copy_dir = tmp_path / "mutated"
    shutil.copytree(render, copy_dir)
    index = json.loads((copy_dir / "index.json").read_text())
    [entry] = [r for r in index["resources"] if r["file"].endswith(file_suffix)]
    path = copy_dir / entry["file"]
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))
    return copy_dir


@pytest.mark.parametrize(
    ("suffix", "change", "where"),
    [
        (
            "DynamoGraphDeployment-qwen3-0-6b-blue.yaml",
            lambda d: d["spec"]["services"]["TRTLLMWorker"].update(replicaz=2),
            "spec.services.TRTLLMWorker",
        ),
        (
            "DynamoGraphDeployment-qwen3-0-6b-blue.yaml",
            lambda d: d["spec"].update(backendFramework="tensorrt"),
            "spec.backendFramework",
        ),
        (
            "DynamoGraphDeployment-qwen3-0-6b-blue.yaml",
            lambda d: d["spec"]["services"]["TRTLLMWorker"].update(replicas="two"),
            "spec.services.TRTLLMWorker.replicas",
        ),
        ("Namespace-qwen3-0-6b.yaml", lambda d: d["metadata"].update(labelz={}), "metadata"),
        (
            "qwen3-0-6b/NetworkPolicy-default-deny.yaml",
            lambda d: d["spec"].update(policyTypes="Ingress"),
            "spec.policyTypes",
        ),
    ],
)
def test_validator_rejects_broken_objects_naming_the_path(
    suffix: str,
    change,
    where: str,
    crds: StackSchemas,
    dev_render: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    mutated = _mutate(dev_render, tmp_path, suffix, change)
    report = validate_render(mutated, "dev", crds, "1.33")
    assert not report.ok
    assert [f.path for f in report.failures] == [where]


def test_unknown_kubernetes_version_is_an_error(crds: StackSchemas, dev_render: Path) -> None:
    with pytest.raises(UnsupportedKubernetesVersion, match="does not support version '1.99'"):
        validate_render(dev_render, "dev", crds, "1.99")
