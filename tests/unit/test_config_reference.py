"""The generated stack-file reference and JSON Schema: current, met by every stack, as strict as
the loader, and listing what the README leaves out."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from jsonschema import Draft7Validator, ValidationError

from infra.stack import reference
from infra.stack.config import DnsSpec, EksCluster, GpuFacts, NodePool
from infra.stack.loading import read_stack_file
from infra.stack.model_config import FrontendSpec, WorkerRole
from infra.stack.platform_config import ModelCacheSpec, NatsSpec
from infra.stack.schema_check import check_values
from tests.conftest import PROJECT_ROOT, STACKS, TRAFFIC_STACKS

SCHEMA = json.loads((PROJECT_ROOT / reference.SCHEMA_FILE).read_text(encoding="utf-8"))
VALIDATOR = Draft7Validator(SCHEMA)
Config = dict[str, Any]


def stack_document(stack: str) -> dict[str, Any]:
    text = (PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def _with_causes(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        yield error
        yield from _with_causes(error.context or [])


def schema_errors(document: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """Each error the schema finds (those of anyOf members too), as YAML path and message."""
    errors = _with_causes(VALIDATOR.iter_errors(document))
    return [(list(error.absolute_path), error.message) for error in errors]


def loader_errors(document: dict[str, Any], tmp_path: Path) -> list[str]:
    """What the loader refuses in the document: the YAML paths of its errors."""
    path = tmp_path / "Pulumi.case.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    stack = read_stack_file(path, "stacks/Pulumi.case.yaml")
    checked = check_values(stack.values, stack.source_map, stack.issues)
    return [issue.yaml_path for issue in checked.issues if issue.severity == "error"]


# --- (a) the committed files are what the models generate ----------------------------------


@pytest.mark.parametrize("path", sorted(reference.generated_files()), ids=str)
def test_committed_file_is_what_the_models_generate(path: Path) -> None:
    committed = (PROJECT_ROOT / path).read_text(encoding="utf-8")
    assert committed == reference.generated_files()[path], (
        f"{path} is stale: run `python -m infra.stack.reference --write`"
    )


def test_check_names_each_stale_file_and_write_makes_them_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert reference.main(["--check"], project_root=tmp_path) == 1
    missing = capsys.readouterr().err
    assert str(reference.REFERENCE_FILE) in missing and str(reference.SCHEMA_FILE) in missing

    assert reference.main(["--write"], project_root=tmp_path) == 0
    assert reference.main(["--check"], project_root=tmp_path) == 0

    (tmp_path / reference.SCHEMA_FILE).write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert reference.main(["--check"], project_root=tmp_path) == 1
    stale = capsys.readouterr().err
    assert f"{reference.SCHEMA_FILE} is stale" in stale and reference.REGENERATE in stale
    assert str(reference.REFERENCE_FILE) not in stale


# --- (b) every stack file meets the schema and points editors at it ------------------------


def test_schema_is_a_valid_draft_07_schema() -> None:
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"
    Draft7Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("stack", STACKS)
def test_stack_file_starts_with_the_modeline_and_meets_the_schema(stack: str) -> None:
    text = (PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    assert text.splitlines()[0] == reference.MODELINE
    assert (PROJECT_ROOT / "stacks" / reference.MODELINE.partition("=")[2]).resolve() == (
        PROJECT_ROOT / reference.SCHEMA_FILE
    )
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(yaml.safe_load(text))
    ]
    assert errors == []


@pytest.mark.parametrize("key", sorted(reference.PULUMI_FILE_KEYS))
def test_pulumi_keys_beside_config_are_accepted_by_schema_and_loader(
    key: str, tmp_path: Path
) -> None:
    document = stack_document("dev") | {key: "passphrase"}
    assert schema_errors(document) == []
    assert loader_errors(document, tmp_path) == []


def test_another_key_beside_config_is_refused_by_both(tmp_path: Path) -> None:
    document = stack_document("dev") | {"configs": {}}
    assert schema_errors(document) == [
        ([], "Additional properties are not allowed ('configs' was unexpected)")
    ]
    assert loader_errors(document, tmp_path) == ["configs"]


# --- (c) mistakes a user makes are refused, where the user looks ---------------------------


def _rename(mapping: Config, old: str, new: str) -> None:
    mapping[new] = mapping.pop(old)


class Mistake(NamedTuple):
    stack: str
    change: Callable[[Config], None]  # applied to the stack file's `config:`
    schema_path: list[Any]  # where the schema reports it, and what it says
    schema_says: str
    loader_path: str  # where the loader reports it


MISTAKES = {
    "misspelled key in the cluster": Mistake(
        "dev",
        lambda c: _rename(c["dynamo-trtllm:cluster"], "vpc", "vcp"),
        ["config", "dynamo-trtllm:cluster"],
        "'vcp' was unexpected",
        "dynamo-trtllm:cluster.vcp",
    ),
    "text for a number": Mistake(
        "dev",
        lambda c: c["dynamo-trtllm:models"][0].update(frontend={"replicas": "two"}),
        ["config", "dynamo-trtllm:models", 0, "frontend", "replicas"],
        "'two' is not of type 'integer'",
        "dynamo-trtllm:models[0].frontend.replicas",
    ),
    "boolean for a number": Mistake(
        "dev",
        lambda c: c["dynamo-trtllm:models"][0].update(agg={"gpusPerWorker": True}),
        ["config", "dynamo-trtllm:models", 0, "agg", "gpusPerWorker"],
        "True is not of type 'integer'",
        "dynamo-trtllm:models[0].agg.gpusPerWorker",
    ),
    "misspelled section": Mistake(
        "dev",
        lambda c: _rename(c, "dynamo-trtllm:nodePools", "dynamo-trtllm:nodePool"),
        ["config"],
        "'dynamo-trtllm:nodePool' was unexpected",
        "dynamo-trtllm:nodePool",
    ),
    "misspelled namespace": Mistake(
        "dev",
        lambda c: _rename(c, "dynamo-trtllm:models", "dynamo-trtlm:models"),
        ["config"],
        "'dynamo-trtlm:models' was unexpected",
        "dynamo-trtlm:models",
    ),
    "plaintext secret": Mistake(
        "dev",
        lambda c: c.update({"dynamo-trtllm:hfToken": "hf_plaintext"}),
        ["config", "dynamo-trtllm:hfToken"],
        "'hf_plaintext' is not of type 'object'",
        "dynamo-trtllm:hfToken",
    ),
    "eks cluster without aws:region": Mistake(
        "dev",
        lambda c: c.pop("aws:region"),
        ["config"],
        "'aws:region' is a required property",
        "aws:region",
    ),
    "existing-cluster keys without mode (it defaults to eks)": Mistake(
        "local",
        lambda c: c["dynamo-trtllm:cluster"].pop("mode"),
        ["config", "dynamo-trtllm:cluster"],
        "'context' was unexpected",
        "dynamo-trtllm:cluster.context",
    ),
    "misspelled role": Mistake(
        "dev",
        lambda c: c.update({"dynamo-trtllm:role": "trafic"}),
        ["config", "dynamo-trtllm:role"],
        "'trafic' is not one of ['environment', 'traffic']",
        "dynamo-trtllm:role",
    ),
    "a traffic stack's key in an environment stack": Mistake(
        "dev",
        lambda c: c.update({"dynamo-trtllm:dns": {}}),
        ["config"],
        "'dynamo-trtllm:dns' was unexpected",
        "dynamo-trtllm:dns",
    ),
    "an environment stack's key in a traffic stack": Mistake(
        TRAFFIC_STACKS[0],
        lambda c: c.update({"dynamo-trtllm:models": []}),
        ["config"],
        "'dynamo-trtllm:models' was unexpected",
        "dynamo-trtllm:models",
    ),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_schema_and_loader_both_refuse(name: str, tmp_path: Path) -> None:
    mistake = MISTAKES[name]
    document = copy.deepcopy(stack_document(mistake.stack))
    mistake.change(document["config"])
    errors = schema_errors(document)
    assert any(
        path == mistake.schema_path and mistake.schema_says in text for path, text in errors
    ), errors
    assert mistake.loader_path in loader_errors(document, tmp_path)


def test_other_namespaces_take_only_what_the_program_reads(tmp_path: Path) -> None:
    document = stack_document("dev")
    document["config"] |= {"pulumi:tags": {"team": "ml"}}
    assert schema_errors(document) == []
    assert loader_errors(document, tmp_path) == []
    document["config"] |= {"kubernetes:context": "kind-dynamo"}  # the provider is explicit
    assert schema_errors(document) != []
    assert "kubernetes:context" in loader_errors(document, tmp_path)


# --- (d) the reference lists what the README does not -------------------------------------


def reference_rows() -> dict[str, list[str]]:
    """The first table row of each key in docs/configuration.md: its cells after the key."""
    rows: dict[str, list[str]] = {}
    text = (PROJECT_ROOT / reference.REFERENCE_FILE).read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("| `"):
            key, *cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows.setdefault(key.strip("`"), cells)
    return rows


def shown(default: Any) -> str:
    return "unset" if default is None else f"`{json.dumps(default)}`"


def test_reference_lists_the_vpc_and_gpu_fact_keys() -> None:
    rows = reference_rows()
    assert "cluster.vpc.cidr" in rows and "cluster.vpc.controlPlaneSubnets" in rows
    for name, field in GpuFacts.model_fields.items():
        assert f"nodePools[].gpu.{field.alias or name}" in rows


DEFAULTS = {
    "cluster.protect": EksCluster.model_fields["protect"],
    "nodePools[].rootVolumeGib": NodePool.model_fields["root_volume_gib"],
    "platform.nats.jetstreamStorage": NatsSpec.model_fields["jetstream_storage"],
    "models[].agg.sharedMemory": WorkerRole.model_fields["shared_memory"],
    "models[].prefill.sharedMemory": WorkerRole.model_fields["shared_memory"],
    "models[].decode.sharedMemory": WorkerRole.model_fields["shared_memory"],
    "modelCache.path": ModelCacheSpec.model_fields["path"],
    "modelCache.highWatermark": ModelCacheSpec.model_fields["high_watermark"],
    "modelCache.lowWatermark": ModelCacheSpec.model_fields["low_watermark"],
    "dns.ttl": DnsSpec.model_fields["ttl"],
    "models[].frontend.replicas": FrontendSpec.model_fields["replicas"],
}


@pytest.mark.parametrize("key", sorted(DEFAULTS))
def test_reference_shows_the_models_default(key: str) -> None:
    _, default, *_ = reference_rows()[key]
    assert default == shown(DEFAULTS[key].default)


def test_reference_describes_keys_from_our_comments() -> None:
    # The cache path's default lives in a comment above the field, not in the field.
    *_, description = reference_rows()["modelCache.path"]
    assert description == reference.field_comments(ModelCacheSpec)["path"] != ""
