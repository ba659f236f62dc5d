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
from infra.stack.dynamo_versions import PROFILES
from infra.stack.platform_config import PlatformSpec
from tests.conftest import ENVIRONMENT_STACKS, PROJECT_ROOT, Project, stack_values
from tests.dgd_layouts import container_object, container_path, service_object, service_path


@pytest.fixture(scope="module")
def crds() -> StackSchemas:
    """The schemas that ship with the project, for the default chart pins every stack keeps."""
    return StackSchemas(CrdSchemas(), ShippedSchemas.for_pins(PlatformSpec().chart_pins()))


def release_schemas(release: str) -> StackSchemas:
    """The shipped schemas for a stack on Dynamo `release` (its platform chart's CRDs)."""
    return StackSchemas(
        CrdSchemas(), ShippedSchemas.for_pins(PlatformSpec(dynamo_version=release).chart_pins())
    )


@pytest.fixture(scope="module")
def dev_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dev") / "dev"
    render_stack("dev", out, PROJECT_ROOT)
    return out


@pytest.fixture(scope="module")
def dev_renders(dev_render: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """dev rendered on each Dynamo release: as shipped (1.2.0, v1beta1), and on 1.1.0 (v1alpha1)
    in a project copy, so the same graph is checked in both DGD layouts."""
    renders = {"1.2.0": dev_render}
    base = tmp_path_factory.mktemp("dev-releases")
    for release in sorted(set(PROFILES) - set(renders)):
        root = base / f"project-{release}"
        root.mkdir()
        project = Project(root)
        config = project.stack_config("dev")
        config.setdefault("dynamo-trtllm:platform", {})["dynamoVersion"] = release
        project.write_stack("dev", config)
        renders[release] = base / release
        render_stack("dev", renders[release], root)
    return renders


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_stack_is_valid(stack: str, crds: StackSchemas, tmp_path: Path) -> None:
    render_stack(stack, tmp_path / stack, PROJECT_ROOT)
    report = validate_render(tmp_path / stack, stack, crds, "1.33")
    assert report.failures == [] and report.no_schema == []
    assert report.checked > 5
    # and against the schemas of the Dynamo release the stack pins, as `dynamo-infra validate`
    platform = PlatformSpec.model_validate(stack_values(stack).get("dynamo-trtllm:platform", {}))
    own = validate_render(tmp_path / stack, stack, release_schemas(platform.dynamo_version), "1.33")
    assert own.failures == [] and own.no_schema == [] and own.checked == report.checked


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


DGD_FILE = "DynamoGraphDeployment-qwen3-0-6b-blue.yaml"


@pytest.mark.parametrize(
    ("suffix", "change", "where"),
    [
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


def _worker(d: dict) -> dict:
    return service_object(d, "TRTLLMWorker")


def _worker_main(d: dict) -> dict:
    return container_object(d, "TRTLLMWorker")


# (mutation of the rendered graph, the path the validator must name in that graph's layout)
GRAPH_BREAKS = {
    "unknown service field": (
        lambda d: _worker(d).update(replicaz=2),
        lambda d: service_path(d, "TRTLLMWorker", style="schema"),
    ),
    "backend": (
        lambda d: d["spec"].update(backendFramework="tensorrt"),
        lambda d: "spec.backendFramework",
    ),
    "replicas type": (
        lambda d: _worker(d).update(replicas="two"),
        lambda d: service_path(d, "TRTLLMWorker", "replicas", style="schema"),
    ),
    "image type": (
        lambda d: _worker_main(d).update(image=5),
        lambda d: container_path(d, "TRTLLMWorker", "image", style="schema"),
    ),
    "unknown container field": (
        lambda d: _worker_main(d).update(imagez="x"),
        lambda d: container_path(d, "TRTLLMWorker", style="schema"),
    ),
}
# Fields only one layout has.
LAYOUT_BREAKS = {
    "1.2.0": {
        "component type": (
            lambda d: _worker(d).update(type="router"),
            lambda d: service_path(d, "TRTLLMWorker", "type", style="schema"),
        ),
        "main container without its name": (
            lambda d: _worker_main(d).pop("name"),
            lambda d: container_path(d, "TRTLLMWorker", style="schema"),
        ),
        "native resource quantity": (
            lambda d: _worker_main(d)["resources"]["limits"].update({"nvidia.com/gpu": [1]}),
            lambda d: container_path(
                d, "TRTLLMWorker", "resources", "limits", "nvidia.com/gpu", style="schema"
            ),
        ),
        "v1alpha1 services map": (
            lambda d: d["spec"].update(services={}),
            lambda d: "spec",
        ),
    },
    "1.1.0": {
        "component type": (
            lambda d: _worker(d).update(componentType=["worker"]),
            lambda d: service_path(d, "TRTLLMWorker", "componentType", style="schema"),
        ),
        "secret env": (
            lambda d: _worker(d).update(envFromSecret={"name": "hf-token-secret"}),
            lambda d: service_path(d, "TRTLLMWorker", "envFromSecret", style="schema"),
        ),
        "v1beta1 components list": (
            lambda d: d["spec"].update(components=[]),
            lambda d: "spec",
        ),
    },
}
GRAPH_CASES = [
    pytest.param(release, *break_, id=f"{release}-{name}")
    for release in sorted(PROFILES)
    for name, break_ in (GRAPH_BREAKS | LAYOUT_BREAKS[release]).items()
]


@pytest.mark.parametrize(("release", "change", "where"), GRAPH_CASES)
def test_validator_names_the_broken_path_of_a_graph_in_its_layout(
    release: str,
    change,
    where,
    dev_renders: dict[str, Path],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    schemas = release_schemas(release)
    render = dev_renders[release]
    assert validate_render(render, "dev", schemas, "1.33").ok
    [entry] = [
        r
        for r in json.loads((render / "index.json").read_text())["resources"]
        if r["file"].endswith(DGD_FILE)
    ]
    graph = yaml.safe_load((render / entry["file"]).read_text())
    assert graph["apiVersion"] == PROFILES[release].dgd_api_version
    mutated = _mutate(render, tmp_path, DGD_FILE, change)
    report = validate_render(mutated, "dev", schemas, "1.33")
    assert not report.ok
    assert [f.path for f in report.failures] == [where(graph)]


def test_unknown_kubernetes_version_is_an_error(crds: StackSchemas, dev_render: Path) -> None:
    with pytest.raises(UnsupportedKubernetesVersion, match="does not support version '1.99'"):
        validate_render(dev_render, "dev", crds, "1.99")
