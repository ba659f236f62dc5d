"""Mistaken and hostile stack files and engine configs: refused, all at once, with their lines."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from infra.cli import main
from tests.conftest import Project

DEV = "stacks/Pulumi.dev.yaml"


def _run(project: Project, *argv: str) -> int:
    return main(["--project-dir", str(project.root), *argv])


def _validate(project: Project, capsys: pytest.CaptureFixture[str], stack: str = "dev") -> str:
    assert _run(project, "validate", stack) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _edit(project: Project, stack: str, old: str, new: str) -> None:
    path = project.root / "stacks" / f"Pulumi.{stack}.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# --- YAML itself ---------------------------------------------------------------------------


def test_a_second_block_of_the_same_key_is_refused_naming_both_lines(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.root / DEV
    path.write_text(
        path.read_text()
        + "  dynamo-trtllm:models:\n    - name: other\n      source: {huggingFace: Qwen/Qwen3-0.6B}\n"
    )
    err = _validate(project, capsys)
    first = next(i for i, line in enumerate(path.read_text().splitlines(), 1) if "models:" in line)
    assert f"key 'dynamo-trtllm:models' is given twice (lines {first} and " in err
    assert f"{DEV}:" in err


def test_duplicate_keys_in_an_engine_config_and_a_config_json(
    project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    engine = tmp_path / "agg.yaml"
    engine.write_text("max_batch_size: 8\nmax_batch_size: 16\n")
    assert main(["check-engine-config", str(engine)]) == 1
    assert f"{engine}:2:1: max_batch_size: key 'max_batch_size' is given twice (lines 1 and 2)" in (
        capsys.readouterr().err
    )
    from infra.trtllm.model_catalog import facts_from_hf_config

    config = tmp_path / "config.json"
    config.write_text('{"hidden_size": 64, "hidden_size": 128}')
    with pytest.raises(ValueError, match="given twice"):
        facts_from_hf_config(config)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      maxSize: 1\n", "      maxSize: yes\n", "`yes` is a boolean in YAML 1.1"),
        ("      maxSize: 1\n", "      maxSize: true\n", "expected a number, not a boolean"),
        ('kubernetesVersion: "1.35"', "kubernetesVersion: 1.30", 'quote it: "1.30"'),
        ("name: dynamo-dev", "name: no", "`no` is a boolean in YAML 1.1"),
    ],
)
def test_yaml_1_1_surprises_are_refused_with_the_fix(
    project: Project, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    _edit(project, "dev", old, new)
    assert expected in _validate(project, capsys)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"config:\n  dynamo-trtllm:models: \xff\xfe\n", "not UTF-8 text"),
        (b"dynamo-trtllm:models: []\n", "a stack file holds its settings under `config:`"),
        (b"config: [1, 2]\n", "`config:` must be a mapping"),
        (b"config:\n  dynamo-trtllm:models: [\n", "not valid YAML"),
        (b"- a\n- b\n", "expected a mapping with a `config:` key"),
        (b"config:\n  x: " + b"a" * (1 << 20) + b"\n", "larger than 1024 KiB"),
    ],
)
def test_unreadable_stack_files_get_one_short_message(
    project: Project, capsys: pytest.CaptureFixture[str], content: bytes, expected: str
) -> None:
    (project.root / DEV).write_bytes(content)
    err = _validate(project, capsys)
    assert expected in err and DEV in err
    assert "dynamo-trtllm::" not in err


def test_an_alias_bomb_is_refused_in_well_under_a_second(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ['config:\n  a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, 10):
        lines.append(f"  a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    (project.root / DEV).write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    err = _validate(project, capsys)
    assert time.perf_counter() - started < 5  # a bound, not a benchmark: unbounded takes minutes
    assert "expands to more than" in err


def test_an_empty_model_list(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    path = project.root / DEV
    text = path.read_text()
    path.write_text(text[: text.index("  dynamo-trtllm:models:")] + "  dynamo-trtllm:models: []\n")
    assert "models: no model: a stack serves at least one model" in _validate(project, capsys)


# --- namespaces, paths, values -----------------------------------------------------------


def test_a_misspelled_namespace_is_refused_and_its_plaintext_secret_too(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.root / DEV
    path.write_text(path.read_text() + "  dynamo-trtlm:hfToken: hf_plaintext\n")
    err = _validate(project, capsys)
    assert "unknown config namespace 'dynamo-trtlm'" in err
    assert "did you mean dynamo-trtllm:hfToken?" in err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("aws:regoin: us-west-2", "did you mean aws:region?"),
        ("aws:profile: prod-admin", "credentials or a profile come from the environment"),
        ("aws:secretKey: plaintext", "Never keep credentials in a stack file in plaintext"),
        ("kubernetes:context: other", "built from the cluster it creates"),
        (
            "pulumi:disable-default-provider: [aws]",
            "did you mean pulumi:disable-default-providers?",
        ),
    ],
)
def test_a_key_of_another_namespace_that_nothing_reads_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str], line: str, expected: str
) -> None:
    """The providers are explicit and the defaults disabled: such a key would change nothing."""
    path = project.root / DEV
    path.write_text(path.read_text() + f"  {line}\n")
    err = _validate(project, capsys)
    assert f"{line.split(':', 2)[0]}:{line.split(':', 2)[1]}: " in err and expected in err


def test_an_unknown_provider_in_disable_default_providers_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.root / DEV
    text = path.read_text().replace(
        "pulumi:disable-default-providers: [kubernetes, aws]",
        "pulumi:disable-default-providers: [kubernets, aws]",
    )
    path.write_text(text)
    assert "unknown provider package(s) 'kubernets'" in _validate(project, capsys)


@pytest.mark.parametrize("where", ["../outside.yaml", "/etc/hostname", "link.yaml"])
def test_engine_config_paths_outside_the_project_are_refused(
    project: Project, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    outside = project.root.parent / "outside.yaml"
    outside.write_text("max_batch_size: 8\n")
    (project.root / "link.yaml").symlink_to(outside)
    _edit(
        project,
        "dev",
        "      nodePool: l4\n",
        f"      nodePool: l4\n      agg:\n        engineConfig: {where}\n",
    )
    err = _validate(project, capsys)
    assert "models[0].agg.engineConfig: engine config" in err
    assert "absolute" in err or "leads out of the project" in err


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "availabilityZones: [us-west-2a, us-west-2b]",
            "cidr: 10.0.0.1/16\n      availabilityZones: [us-west-2a, us-west-2b]",
            "host bits set: the network is 10.0.0.0/16",
        ),
        (
            "availabilityZones: [us-west-2a, us-west-2b]",
            "cidr: 10.0.0.0/27\n      availabilityZones: [us-west-2a, us-west-2b]",
            "a VPC here is /16 to /22",
        ),
        (
            'kubernetesVersion: "1.35"',
            'kubernetesVersion: "1.29"',
            "EKS does not create clusters with Kubernetes 1.29",
        ),
        (
            "[us-west-2a, us-west-2b]",
            "[us-east-1a, us-west-2b]",
            "cluster.vpc.availabilityZones[0]: us-east-1a is not a zone of region us-west-2",
        ),
        (
            "aws:region: us-west-2",
            "aws:region: us-east-1",
            "differs from dynamo-trtllm:cluster.region",
        ),
        ("huggingFace: Qwen/Qwen3-0.6B", 'huggingFace: ""', "is not a Hugging Face model id"),
        ("tensorrtllm-runtime:1.2.0", "tensorrtllm-runtime", "has no tag"),
        ("tensorrtllm-runtime:1.2.0", "tensorrtllm-runtime:latest", "`latest` moves under you"),
    ],
)
def test_well_typed_but_impossible_values(
    project: Project, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    _edit(project, "dev", old, new)
    assert expected in _validate(project, capsys)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tensor_parallel_size: 0\n", "tensor_parallel_size: Input should be greater than 0"),
        (
            "lora_config:\n  lora_dirr: [a]\n",
            "lora_config.lora_dirr: unknown key; did you mean 'lora_dir'?",
        ),
        ("telemetry_config:\n  enabled: false\n", "telemetry_config.enabled: unknown key"),
        (
            "decoding_config:\n  decoding_mode: Medusa\n",
            "decoding_config.decoding_mode: unknown key (a DecodingMode",
        ),
    ],
)
def test_engine_config_sections_are_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    engine = tmp_path / "e.yaml"
    engine.write_text(text)
    assert main(["check-engine-config", str(engine)]) == 1
    assert expected in capsys.readouterr().err


# --- models the catalog lacks ---------------------------------------------------------------


def _uncatalogued(project: Project) -> None:
    _edit(project, "dev", "huggingFace: Qwen/Qwen3-0.6B", "huggingFace: example-org/unlisted-7b")


def test_a_model_outside_the_catalog_is_a_loud_warning_and_fails_strict(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _uncatalogued(project)
    assert _run(project, "plan", "dev") == 0
    assert "is not in the model catalog" in capsys.readouterr().err
    assert _run(project, "validate", "dev", "--strict", "--output", "json") == 1
    report = json.loads(capsys.readouterr().out)
    (problem,) = [p for p in report["stacks"][0]["problems"] if "catalog" in p["message"]]
    assert problem["severity"] == "warning" and problem["file"] == DEV and problem["line"]


def test_plan_fetch_says_when_it_cannot_reach_hugging_face(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _uncatalogued(project)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert _run(project, "plan", "dev", "--fetch") == 0
    err = capsys.readouterr().err
    assert "cannot fetch example-org/unlisted-7b" in err
    assert "is not in the model catalog" in err


def test_plan_fetch_uses_the_fetched_config(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import infra.trtllm.model_fetch as model_fetch

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "model_type": "llama",
                "num_hidden_layers": 32,
                "hidden_size": 4096,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "vocab_size": 128256,
                "intermediate_size": 14336,
                "torch_dtype": "bfloat16",
            }
        )
    )
    monkeypatch.setattr(model_fetch, "_safetensors_params", lambda hf_id, token: None)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: str(config))
    _uncatalogued(project)
    assert _run(project, "plan", "dev", "--fetch") == 0
    captured = capsys.readouterr()
    assert "facts read from Hugging Face example-org/unlisted-7b" in captured.err
    assert "is not in the model catalog" not in captured.err
    assert "qwen3-0-6b/blue" in captured.out  # planned


def test_a_malformed_config_json_is_a_clear_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    (project.root / "bad-config.json").write_text(
        json.dumps(
            {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 0, "vocab_size": 8}
        )
    )
    _edit(
        project,
        "dev",
        "      nodePool: l4\n",
        "      nodePool: l4\n      plan:\n        architecture: bad-config.json\n",
    )
    err = _validate(project, capsys)
    assert "num_attention_heads must be a whole number >= 1 (got 0)" in err


# --- one run, every problem, structured -------------------------------------------------------


def test_one_run_reports_every_layer_of_problems_with_lines(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.root / "stacks" / "Pulumi.prod.yaml"
    text = path.read_text()
    planted = {
        "plaintext": "  dynamo-trtllm:s3AccessKeyId: AKIAPLAIN\n",
        "namespace": "  dynamo-trtlm:platform: {}\n",
    }
    text = text.replace("config:\n", "config:\n" + "".join(planted.values()), 1)
    text = text.replace("gpusPerWorker: 8", "gpusPerWorker: 16", 1)  # cross-check
    text = text.replace("replicas: 2", "replicas: yes\n        x-replicas: 2", 1)  # YAML, schema
    path.write_text(text)
    assert _run(project, "validate", "prod", "--output", "json") == 1
    report = json.loads(capsys.readouterr().out)
    problems = report["stacks"][0]["problems"]
    messages = " | ".join(p["message"] for p in problems)
    for expected in (
        "a secret stored in plaintext",
        "unknown config namespace 'dynamo-trtlm'",
        "16 GPUs asked",
        "`yes` is a boolean in YAML 1.1",
        "unknown key 'x-replicas'",
    ):
        assert expected in messages
    for problem in problems:
        assert set(problem) == {"file", "line", "column", "path", "message", "severity"}
        assert problem["file"] and problem["line"], problem


def test_render_json_reports_problems_as_objects(
    project: Project, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _edit(project, "dev", "instanceType: g6.xlarge", "instanceTyp: g6.xlarge")
    out = tmp_path / "out"
    assert _run(project, "render", "dev", "--out", str(out), "--output", "json") == 1
    report = json.loads(capsys.readouterr().out)
    (problem,) = [p for p in report["problems"] if "unknown key" in p["message"]]
    assert problem["path"] == "dynamo-trtllm:nodePools[0].instanceTyp"
    assert problem["severity"] == "error" and problem["file"] == DEV
    lines = (project.root / DEV).read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if "instanceTyp:" in text)
    assert problem["line"] == line and problem["column"] == 7
    assert not out.exists()


def test_a_secure_value_on_a_key_that_is_not_a_secret_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pulumi would decrypt it and the program would write it in plain manifests."""
    _edit(project, "dev", "nodePool: l4\n", "nodePool:\n        secure: AAABAHsecret\n")
    assert _run(project, "validate", "dev") == 1
    err = capsys.readouterr().err
    assert (
        "dynamo-trtllm:models[0].nodePool: a `secure:` value on a key that is not a secret" in err
    )


def test_a_cluster_mistake_does_not_hide_an_engine_config_mistake(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine configs need no cluster: they are checked in the same run, with a note on
    what else waits for the cluster."""
    _edit(project, "dev", "arn:aws:iam::111122223333:role/dynamo-trtllm-deploy-dev", "not-an-arn")
    engine = project.root / "engine_configs" / "qwen3-0-6b" / "agg.yaml"
    engine.write_text(engine.read_text() + "max_batch_sise: 8\n")
    err = _validate(project, capsys)
    assert "cluster.adminPrincipalArns[0]" in err
    assert "engine_configs/qwen3-0-6b/agg.yaml:" in err and "max_batch_sise" in err
    assert "their engine configs were checked" in err


@pytest.mark.parametrize("value", ["", "null", "true", "[]", "{}"])
def test_a_secure_value_that_holds_no_ciphertext_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    path = project.root / DEV
    path.write_text(path.read_text() + f"  dynamo-trtllm:hfToken:\n    secure: {value}\n")
    assert "dynamo-trtllm:hfToken: a secret stored in plaintext" in _validate(project, capsys)


@pytest.mark.parametrize("key", ["servedModelName", "engineConfig"])
def test_an_empty_name_or_path_is_refused_not_defaulted(
    project: Project, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    config = project.stack_config("dev")
    model = config["dynamo-trtllm:models"][0]
    if key == "engineConfig":
        model.setdefault("agg", {})[key] = ""
    else:
        model[key] = ""
    project.write_stack("dev", config)
    assert "at least 1 character" in _validate(project, capsys)
