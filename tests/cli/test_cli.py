"""The dynamo-infra command line: help, exit codes, JSON output, atomic and secret-safe render."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from tests.conftest import PROJECT_ROOT, Project
from tests.dgd_layouts import services


@pytest.mark.parametrize(
    "command",
    [[], ["render"], ["validate"], ["plan"], ["check-engine-config"], ["preflight"], ["diff"]],
)
def test_help_on_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    assert "Exit codes: 0 ok, 1 validation failure, 2 usage error." in capsys.readouterr().out


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "dynamo-infra"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "render" in result.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["render", "dev"])  # --out missing
    assert exited.value.code == 2
    root = ["--project-dir", str(PROJECT_ROOT)]
    assert main([*root, "render", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main([*root, "validate"]) == 2
    assert main([*root, "validate", "dev", "--crd-dir", str(tmp_path / "missing")]) == 2


def test_bad_stack_fails_with_file_and_field_and_leaves_no_output(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project.stack_config("prod")
    config["dynamo-trtllm:models"][1]["decode"]["gpusPerWorker"] = 16
    config["dynamo-trtllm:models"][0]["imagee"] = "typo"
    project.write_stack("prod", config)
    out = tmp_path / "out"
    code = main(["--project-dir", str(project.root), "render", "prod", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert re.search(
        r"stacks/Pulumi\.prod\.yaml:\d+:\d+: dynamo-trtllm:models\[1\]\.decode\.gpusPerWorker: "
        r"16 GPUs asked, node pool 'h100' \(p5\.48xlarge\) has 8",
        err,
    )
    assert "models[0].imagee: unknown key 'imagee'; did you mean 'image'?" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["project"]  # no staging dir left either


def test_two_renders_are_byte_identical(tmp_path: Path) -> None:
    root = ["--project-dir", str(PROJECT_ROOT)]
    assert main([*root, "render", "prod", "--out", str(tmp_path / "a")]) == 0
    assert main([*root, "render", "prod", "--out", str(tmp_path / "b")]) == 0
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b and len(files_a) > 50
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


@pytest.mark.parametrize("release", ["1.2.0", "1.1.0"])  # the v1beta1 and v1alpha1 layouts
def test_render_contains_no_secret_value(project: Project, tmp_path: Path, release: str) -> None:
    config = project.stack_config("dev")
    config.setdefault("dynamo-trtllm:platform", {})["dynamoVersion"] = release
    token = "v1:AAAABBBBhfTokenCiphertext=="
    pull = "v1:CCCCDDDDpullSecretCiphertext=="
    config["dynamo-trtllm:hfToken"] = {"secure": token}
    config["dynamo-trtllm:imagePullSecret"] = {"secure": pull}
    project.write_stack("dev", config)
    out = tmp_path / "out"
    assert main(["--project-dir", str(project.root), "render", "dev", "--out", str(out)]) == 0
    text = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert token not in text and pull not in text
    secret_file = "Secret-hf-token-secret.yaml"
    secret = (out / "kubernetes/qwen3-0-6b" / secret_file).read_text()
    assert "HF_TOKEN: '[secret]'" in secret
    dgd = yaml.safe_load(
        (out / "kubernetes/qwen3-0-6b/DynamoGraphDeployment-qwen3-0-6b-blue.yaml").read_text()
    )
    # The graph names the Secrets, never their values: the worker takes every key of the token's
    # as env, and every pod pulls its image with the pull secret.
    [pull_secret] = [
        d
        for d in (out / "kubernetes/qwen3-0-6b").glob("Secret-*.yaml")
        if d.name not in (secret_file, "Secret-nats-credentials.yaml")
    ]
    pull_document = yaml.safe_load(pull_secret.read_text())
    assert pull_document["type"] == "kubernetes.io/dockerconfigjson"
    pull_name = pull_document["metadata"]["name"]
    graph = services(dgd)
    assert graph["TRTLLMWorker"].container.env_from == [{"secretRef": {"name": "hf-token-secret"}}]
    # the frontend fetches the tokenizer and config of a Hugging Face model: with the token too
    assert graph["Frontend"].container.env_from == [{"secretRef": {"name": "hf-token-secret"}}]
    for service in graph.values():
        assert service.pod.image_pull_secrets == [{"name": pull_name}]


def test_a_plaintext_secret_is_refused_before_anything_renders(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:hfToken"] = "hf_PlaintextTokenValue123"
    project.write_stack("dev", config)
    out = tmp_path / "out"
    assert main(["--project-dir", str(project.root), "render", "dev", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert re.search(
        r"stacks/Pulumi\.dev\.yaml:\d+:3: dynamo-trtllm:hfToken: a secret stored in plaintext", err
    )
    assert "pulumi config set --secret dynamo-trtllm:hfToken" in err
    assert "hf_PlaintextTokenValue123" not in err and not out.exists()


def test_render_index_follows_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dev"
    assert (
        main(
            [
                "--project-dir",
                str(PROJECT_ROOT),
                "render",
                "dev",
                "--out",
                str(out),
                "--output",
                "json",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    index = json.loads((out / "index.json").read_text())
    assert index["stack"] == "dev" and summary["resources"] == len(index["resources"])
    kinds = [r for r in index["resources"] if "kind" in r]
    assert kinds and all(
        {"type", "name", "file", "apiVersion", "kind", "namespace", "k8sName"} <= set(r)
        for r in kinds
    )
    assert all((out / r["file"]).is_file() for r in index["resources"])
    node_group = (out / "aws/eks/NodeGroup/cluster-system.yaml").read_text()
    assert "desiredSize: 1\n" in node_group  # integers stay integers


def test_validate_from_a_plain_clone_needs_no_crd_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--project-dir", str(PROJECT_ROOT), "validate", "dev", "--output", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["ok"] is True
    [dev] = result["stacks"]
    assert (
        dev["stack"] == "dev"
        and dev["checked"] > 5
        and dev["failures"] == []
        and dev["noSchema"] == []
    )


def test_validate_with_a_given_crd_dir(reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "--project-dir",
            str(PROJECT_ROOT),
            "validate",
            "dev",
            "--crd-dir",
            str(reference / "crds"),
        ]
    )
    assert code == 0, capsys.readouterr().err


def test_a_pin_without_shipped_schemas_says_how_to_get_them(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project.stack_config("prod")
    config["dynamo-trtllm:platform"].setdefault("charts", {})["fluid"] = "1.0.9"
    project.write_stack("prod", config)
    code = main(["--project-dir", str(project.root), "validate", "prod"])
    out = capsys.readouterr().out
    assert code == 1
    assert (
        "no schema available for Dataset/deepseek-r1/weights-blue" in out
        and "no schemas ship for fluid 1.0.9 (platform.charts.fluid); run `dynamo-infra crds fetch`"
        in out
    ), out
    # an object nothing checked counts as a failure: never "0 failures" beside FAIL
    assert " 0 failures" not in out and "objects without a schema)" in out


def test_check_engine_config_accepts_the_projects_files(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (PROJECT_ROOT / "engine_configs").glob("*/decode.yaml"))
    assert main(["check-engine-config", "--role", "decode", *files]) == 0
    assert capsys.readouterr().out.count("ok ") == len(files)


def test_check_engine_config_names_each_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text("kv_cache_config:\n  free_gpu_memory_fraction: 1.5\nmax_batch_szie: 8\n")
    no_transceiver = tmp_path / "prefill.yaml"
    no_transceiver.write_text("tensor_parallel_size: 2\n")
    code = main(["check-engine-config", "--role", "prefill", str(typo), str(no_transceiver)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{typo}:2:3: kv_cache_config.free_gpu_memory_fraction: " in err
    assert f"{typo}:3:1: max_batch_szie: unknown key" in err
    assert f"{no_transceiver}: cache_transceiver_config: a prefill worker" in err


def test_check_engine_config_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_batch_size: 8\nmax_batch_szie: 8\n")
    assert main(["check-engine-config", "--output", "json", str(bad)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    (issue,) = report["files"][0]["problems"]
    # The shape every command reports a problem in.
    assert issue == {
        "file": str(bad),
        "line": 2,
        "column": 1,
        "path": "max_batch_szie",
        "message": "unknown key; did you mean 'max_batch_size'?",
        "severity": "error",
    }


def test_check_engine_config_warnings_are_said_not_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TensorRT-LLM drops graph sizes above max_batch_size; upstream's Qwen3 prefill relies on it."""
    prefill = tmp_path / "prefill.yaml"
    prefill.write_text(
        "max_batch_size: 1\ncache_transceiver_config:\n  backend: DEFAULT\n"
        "cuda_graph_config:\n  batch_sizes: [1, 2, 4]\n"
    )
    assert main(["check-engine-config", "--role", "prefill", str(prefill)]) == 0
    out, err = capsys.readouterr()
    assert f"ok {prefill}" in out
    assert f"{prefill}:5:3: warning: cuda_graph_config.batch_sizes: " in err
    assert main(["check-engine-config", "--output", "json", str(prefill)]) == 0
    (problem,) = json.loads(capsys.readouterr().out)["files"][0]["problems"]
    assert problem["severity"] == "warning" and problem["path"] == "cuda_graph_config.batch_sizes"


def test_check_engine_config_refuses_an_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "agg.yaml"
    empty.write_text("# to do\n")
    assert main(["check-engine-config", str(empty)]) == 1
    assert f"{empty}:1:1: the engine config is empty" in capsys.readouterr().err


def test_check_engine_config_checks_for_a_tensorrt_llm_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = tmp_path / "agg.yaml"
    newer.write_text("num_serve_frontends: 2\n")
    assert main(["check-engine-config", str(newer)]) == 1  # the default profile's rc14
    assert "TensorRT-LLM 1.3.0rc14 refuses it" in capsys.readouterr().err
    assert main(["check-engine-config", "--trtllm-version", "1.3.0rc11", str(newer)]) == 1
    assert "TensorRT-LLM 1.3.0rc11 refuses it" in capsys.readouterr().err
    assert main(["check-engine-config", "--trtllm-version", "1.3.0rc24", str(newer)]) == 0
    with pytest.raises(SystemExit) as exited:
        main(["check-engine-config", "--trtllm-version", "latest", str(newer)])
    assert exited.value.code == 2


def test_plan_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    root = ["--project-dir", str(PROJECT_ROOT)]
    assert main([*root, "plan", "prod"]) == 0
    table = capsys.readouterr().out
    decode_line = next(line for line in table.splitlines() if line.startswith("deepseek-r1/blue "))
    assert "8×2" in decode_line and decode_line.endswith("yes")
    # The system nodes' packing too: the platform's pods beside the frontends.
    system = next(line for line in table.splitlines() if line.startswith("system nodes "))
    assert "(m6i.xlarge)" in system and "of 3 nodes used (desiredSize)" in system
    assert "dynamo-platform/dynamo-operator" in table
    assert main([*root, "plan", "prod", "--isl", "4096", "--osl", "256", "--output", "json"]) == 0
    roles = json.loads(capsys.readouterr().out)["roles"]
    decode = next(r for r in roles if r["model"] == "deepseek-r1" and r["role"] == "decode")
    assert decode["isl"] == 4096 and decode["osl"] == 256 and decode["fits"] is True
    assert decode["kvBytesPerToken"] == 62 * 576  # 61 layers + the MTP layer, FP8 MLA latent


def test_plan_and_validate_refuse_weights_that_do_not_fit(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:models"][0]["plan"] = {"architecture": "Qwen/Qwen3-32B"}
    project.write_stack("dev", config)
    root = ["--project-dir", str(project.root)]
    assert main([*root, "plan", "dev"]) == 1
    assert "NO" in capsys.readouterr().out
    assert main([*root, "validate", "dev"]) == 1
    assert "agg.gpusPerWorker: blue slot does not fit on L4" in capsys.readouterr().err


def test_promote_needs_the_right_arguments_per_stack_kind(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = ["--project-dir", str(PROJECT_ROOT)]
    assert main([*root, "promote", "staging"]) == 2
    assert "staging needs --model" in capsys.readouterr().err
    assert main([*root, "promote", "prod-traffic", "--model", "qwen3-0-6b"]) == 2
    assert "prod-traffic is a traffic stack: no --model" in capsys.readouterr().err


def test_promote_says_what_it_needs_when_the_stack_is_out_of_reach(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Pulumi CLI on PATH: promote must stop before changing anything, with the reason.
    monkeypatch.setenv("PATH", "/nonexistent")
    before = (PROJECT_ROOT / "stacks" / "Pulumi.staging.yaml").read_text()
    code = main(
        ["--project-dir", str(PROJECT_ROOT), "promote", "staging", "--model", "qwen3-0-6b", "--yes"]
    )
    assert code == 1
    assert "the Pulumi CLI is not on PATH: install it" in capsys.readouterr().err
    assert (PROJECT_ROOT / "stacks" / "Pulumi.staging.yaml").read_text() == before


def test_preflight_without_credentials_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    root = ["--project-dir", str(PROJECT_ROOT)]
    assert main([*root, "preflight", "prod"]) == 1
    assert "no AWS credentials found" in capsys.readouterr().err
    assert main([*root, "preflight", "local"]) == 0
    assert "nothing to check" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"dynamo-infra \d+\.\d+\.\d+\n", capsys.readouterr().out)


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["valdate", "dev"], "did you mean 'validate'?"),
        (["validate", "dev", "--crd-dirr", "x"], "did you mean --crd-dir (not --crd-dirr)?"),
        (["diff", "dev", "--output", "markdwn"], "did you mean 'markdown'?"),
    ],
)
def test_a_mistyped_command_or_option_gets_a_suggestion(
    argv: list[str], suggestion: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert suggestion in capsys.readouterr().err


def test_help_shows_defaults_and_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("validate", "diff", "status", "promote"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "examples:\n  dynamo-infra " + command in text, command
    with pytest.raises(SystemExit):
        main(["diff", "--help"])
    assert "(default: text)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    assert "Ready, read from the cluster" in capsys.readouterr().out


def test_diff_with_an_unknown_base_is_a_usage_error_in_plain_words(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["--project-dir", str(PROJECT_ROOT), "diff", "dev", "--base", "no-such-branch"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--base 'no-such-branch' is not a branch, tag or commit of this repository" in err
    assert "fatal:" not in err and "rev-parse" not in err


def test_a_live_command_without_the_pulumi_cli_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    code = main(["--project-dir", str(PROJECT_ROOT), "status", "dev"])
    assert code == 1
    assert "the Pulumi CLI is not on PATH: install it" in capsys.readouterr().err


def test_output_is_plain_when_piped() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "--project-dir", str(PROJECT_ROOT), "validate", "dev"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("ok dev: ")


@pytest.mark.parametrize(
    ("argv", "paused"),
    [
        (["render", "dev", "--out", "x"], True),
        (["validate", "dev"], True),
        (["status", "dev"], False),
    ],
)
def test_offline_commands_run_with_the_cyclic_collector_paused_and_restore_it(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], paused: bool
) -> None:
    import gc

    import infra.cli

    seen: list[bool] = []
    monkeypatch.setattr(infra.cli, "_run", lambda args: seen.append(gc.isenabled()) or 0)
    assert gc.isenabled()
    assert main(argv) == 0
    assert seen == [not paused]  # long-running commands (promote, status) keep it
    assert gc.isenabled()


def test_the_console_script_leaves_the_collector_paused_as_the_process_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resuming it would scan the whole heap a render left once more just before exit."""
    import gc

    import infra.cli

    monkeypatch.setattr(infra.cli, "_run", lambda args: 0)
    try:
        assert main(["validate", "dev"], process_ends=True) == 0
        assert not gc.isenabled()
        assert main(["status", "dev"], process_ends=True) == 0  # never paused
        assert not gc.isenabled()
    finally:
        gc.enable()
