"""dynamo-infra init / add-model: stacks that pass validate and plan, written only when they do."""

from __future__ import annotations

import difflib
import io
import re
from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.deployment.checked import load_stack_config
from infra.stack.dynamo_versions import profile
from tests.conftest import REFERENCE, Project

# The shipped schemas validate on their own; the reference CRDs are added when they are there.
CRD_ARGS = ["--crd-dir", str(REFERENCE / "crds")] if (REFERENCE / "crds").is_dir() else []


# What a new EKS cluster needs answered: there is no safe default for either.
EKS_ANSWERS = (
    "--admin-arn",
    "arn:aws:iam::111122223333:role/deploy",
    "--public-access-cidr",
    "203.0.113.0/24",
)


def run(project: Project, *argv: str) -> int:
    return main(["--project-dir", str(project.root), *argv])


def files_of(project: Project) -> dict[str, bytes]:
    """Every file of the copy's stacks/ and engine_configs/, by relative path."""
    return {
        str(path.relative_to(project.root)): path.read_bytes()
        for folder in ("stacks", "engine_configs")
        for path in sorted((project.root / folder).rglob("*"))
        if path.is_file()
    }


def engine_config(project: Project, relative: str) -> dict:
    return yaml.safe_load((project.root / relative).read_text())


class Terminal(io.StringIO):
    """Typed answers, one per line, on what looks like a terminal."""

    def isatty(self) -> bool:
        return True


def test_init_then_add_model_pass_validate_and_plan(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            project,
            "init",
            "starter",
            *EKS_ANSWERS,
            "--instance-type",
            "g6e.12xlarge",
            "--model",
            "Qwen/Qwen3-32B",
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "wrote engine_configs/qwen3-32b/agg.yaml" in out
    assert "wrote stacks/Pulumi.starter.yaml" in out
    # A fresh Pulumi backend has no stack of that name yet: plain `stack select` would fail.
    assert "`pulumi stack select --create starter` and `pulumi up`" in out
    config = project.stack_config("starter")
    [pool] = config["dynamo-trtllm:nodePools"]
    [model] = config["dynamo-trtllm:models"]
    assert config["aws:region"] == config["dynamo-trtllm:cluster"]["region"] == "us-west-2"
    assert pool == {
        "name": "l40s",
        "instanceType": "g6e.12xlarge",
        "minSize": 0,
        "desiredSize": 1,
        "maxSize": 1,
    }
    assert model["nodePool"] == "l40s" and model["topology"] == "agg"
    release = config["dynamo-trtllm:platform"]["dynamoVersion"]
    assert model["image"] == profile(release).runtime_image
    # 61 GiB of bf16 weights: one 45 GiB L40S is too small, two hold them with room for KV.
    assert model["agg"]["gpusPerWorker"] == 2
    assert engine_config(project, model["agg"]["engineConfig"])["tensor_parallel_size"] == 2

    code = run(
        project,
        "add-model",
        "starter",
        "Qwen/Qwen3-0.6B",
        "--name",
        "qwen-small",
        "--topology",
        "disagg",
    )
    assert code == 0, capsys.readouterr().err
    assert "wrote engine_configs/qwen-small/prefill.yaml" in capsys.readouterr().out
    added = project.stack_config("starter")["dynamo-trtllm:models"][1]
    assert added["topology"] == "disagg" and added["nodePool"] == "l40s"
    for role in ("prefill", "decode"):
        tuned = engine_config(project, added[role]["engineConfig"])
        assert tuned["tensor_parallel_size"] == added[role]["gpusPerWorker"] == 1
        assert tuned["cache_transceiver_config"] == {"backend": "DEFAULT"}

    assert run(project, "validate", "starter", *CRD_ARGS) == 0, capsys.readouterr().err
    assert run(project, "plan", "starter") == 0


def test_a_worker_spanning_nodes_makes_a_multinode_stack_on_efa(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        project,
        "init",
        "big",
        *EKS_ANSWERS,
        "--region",
        "us-east-1",
        "--instance-type",
        "p5.48xlarge",
        "--model",
        "deepseek-ai/DeepSeek-R1",
        "--name",
        "r1",
        "--topology",
        "disagg",
        "--s3-uri",
        "s3://example-models/deepseek-ai/DeepSeek-R1",
    )
    assert code == 0, capsys.readouterr().err
    config = project.stack_config("big")
    [pool] = config["dynamo-trtllm:nodePools"]
    [model] = config["dynamo-trtllm:models"]
    assert pool["efa"] is True and pool["availabilityZone"] == "us-east-1a"
    assert pool["maxSize"] == 4  # two gangs of two nodes
    assert model["topology"] == "disagg-multinode" and model["image"].endswith("-efa-amd64")
    assert model["prefill"]["nodes"] == 2 and model["prefill"]["gpusPerWorker"] == 8
    assert model["servedModelName"] == "deepseek-ai/DeepSeek-R1"  # the catalog's key
    assert engine_config(project, model["decode"]["engineConfig"])["tensor_parallel_size"] == 16
    assert run(project, "plan", "big") == 0


def test_existing_files_are_never_overwritten(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_of(project)
    assert run(project, "init", "dev") == 2
    assert "stacks/Pulumi.dev.yaml exists" in capsys.readouterr().err
    assert files_of(project) == before
    # Both names the default model's config could take hold other content: a real conflict.
    taken = project.root / "engine_configs/qwen3-0-6b/agg-fresh.yaml"
    taken.write_text("# someone's own tuning\nmax_batch_size: 4\n")
    before = files_of(project)
    assert run(project, "init", "fresh", *EKS_ANSWERS) == 2
    err = capsys.readouterr().err
    assert (
        "engine_configs/qwen3-0-6b/agg.yaml and engine_configs/qwen3-0-6b/agg-fresh.yaml exist "
        "with other content: init never overwrites a file; nothing written" in err
    )
    assert "--name" in err
    assert files_of(project) == before


@pytest.mark.parametrize(
    "argv",
    [
        # README's examples, from a plain clone: the project ships engine_configs/qwen3-0-6b/.
        ["init", "dev2", "--admin-arn", "arn:aws:iam::123456789012:role/admin",
         "--public-access-cidr", "203.0.113.0/24"],
        ["init", "lab", "--cluster-mode", "existing", "--context", "lab",
         "--instance-type", "g6e.12xlarge"],
    ],
)  # fmt: skip
def test_the_default_model_gets_its_own_engine_config_beside_the_projects(
    project: Project, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    stack = argv[1]
    shipped = files_of(project)
    assert run(project, *argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    [model] = project.stack_config(stack)["dynamo-trtllm:models"]
    assert model["agg"]["engineConfig"] == f"engine_configs/qwen3-0-6b/agg-{stack}.yaml"
    assert f"wrote engine_configs/qwen3-0-6b/agg-{stack}.yaml" in out
    # The stacks that read the shipped configs read the same bytes as before.
    now = files_of(project)
    assert {path: now[path] for path in shipped} == shipped
    assert set(now) - set(shipped) == {
        f"stacks/Pulumi.{stack}.yaml",
        f"engine_configs/qwen3-0-6b/agg-{stack}.yaml",
    }
    assert run(project, "validate", stack, *CRD_ARGS) == 0, capsys.readouterr().err


def test_add_model_writes_beside_engine_configs_of_the_same_name(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:nodePools"][0]["maxSize"] = 2  # room for a second model
    project.write_stack("dev", config)
    shipped = files_of(project)
    # staging's qwen3-vl-2b configs are tuned for its L40S pool, not for dev's L4.
    assert run(project, "add-model", "dev", "Qwen/Qwen3-VL-2B-Instruct") == 0, (
        capsys.readouterr().err
    )
    added = project.stack_config("dev")["dynamo-trtllm:models"][1]
    assert added["agg"]["engineConfig"] == "engine_configs/qwen3-vl-2b/agg-dev.yaml"
    now = files_of(project)
    assert set(now) - set(shipped) == {"engine_configs/qwen3-vl-2b/agg-dev.yaml"}
    assert all(now[path] == data for path, data in shipped.items() if "Pulumi.dev" not in path)


@pytest.mark.parametrize(
    ("link", "argv"),
    [
        ("engine_configs/evil", ["add-model", "dev", "Qwen/Qwen3-0.6B", "--name", "evil"]),
        ("engine_configs/evil", ["init", "fresh", *EKS_ANSWERS, "--name", "evil"]),
        ("stacks/Pulumi.fresh.yaml", ["init", "fresh", *EKS_ANSWERS, "--name", "q"]),
    ],
)
def test_nothing_is_written_through_a_symlink(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    link: str,
    argv: list[str],
) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:nodePools"][0]["maxSize"] = 2  # room for a second model
    project.write_stack("dev", config)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside if link == "engine_configs/evil" else outside / "Pulumi.fresh.yaml"
    (project.root / link).symlink_to(target)
    before = files_of(project)
    assert run(project, *argv) == 2
    err = capsys.readouterr().err
    assert f"{link} is a symlink" in err and "nothing written" in err
    assert list(outside.iterdir()) == []
    assert files_of(project) == before


def test_identical_engine_configs_are_kept_not_rewritten(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(project, "init", "one", *EKS_ANSWERS, "--name", "qwen-small") == 0
    written = files_of(project)
    capsys.readouterr()
    assert run(project, "init", "two", *EKS_ANSWERS, "--name", "qwen-small") == 0
    assert "kept engine_configs/qwen-small/agg.yaml" in capsys.readouterr().out
    now = files_of(project)
    assert set(now) - set(written) == {"stacks/Pulumi.two.yaml"}
    assert all(now[path] == data for path, data in written.items())


def test_without_a_terminal_a_missing_required_answer_is_a_clear_error(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_of(project)
    code = run(
        project,
        "init",
        "big",
        *EKS_ANSWERS,
        "--instance-type",
        "p5.48xlarge",
        "--model",
        "deepseek-ai/DeepSeek-R1",
        "--topology",
        "disagg",
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "deepseek-ai/DeepSeek-R1's workers span 2 nodes" in err
    assert "give --s3-uri s3://bucket/prefix (no terminal to ask)" in err
    assert files_of(project) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["init", "x", "--model", "org/unknown"], "'org/unknown' is not in the model catalog"),
        (["init", "x", "--instance-type", "m5.large"], "'m5.large' is not in the GPU instance"),
        (["init", "x", "--topology", "disagg-multinode"], "--topology 'disagg-multinode': choose"),
        (["init", "../x"], "'../x' is not a stack name"),
        (["add-model", "dev", "Qwen/Qwen3-0.6B", "--name", "Bad_Name"], "--name: 'Bad_Name'"),
        (["add-model", "dev", "Qwen/Qwen3-0.6B"], "dev already has a model 'qwen3-0-6b'"),
        (["add-model", "local", "Qwen/Qwen3-0.6B", "--name", "q"], "local has no GPU node pool"),
    ],
)
def test_unusable_answers_are_usage_errors(
    project: Project, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = files_of(project)
    assert run(project, *argv) == 2
    assert message in capsys.readouterr().err
    assert files_of(project) == before


def test_a_model_the_instance_cannot_hold_gets_the_plans_error_and_nothing_is_written(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files_of(project)
    assert run(project, "init", "tiny", *EKS_ANSWERS, "--model", "Qwen/Qwen3-32B") == 1
    err = capsys.readouterr().err
    assert re.search(
        r"stacks/Pulumi\.tiny\.yaml:\d+:\d+: dynamo-trtllm:models\[0\]\.agg\.gpusPerWorker: blue "
        r"slot does not fit on L4: weights alone need 61\.0 GiB per GPU, more than the 22\.4 GiB "
        r"GPU \(see `dynamo-infra plan`\)",
        err,
    )
    assert "dynamo-infra init: nothing written" in err
    assert run(project, "add-model", "dev", "Qwen/Qwen3-32B") == 1
    assert "models[1].agg.gpusPerWorker: blue slot does not fit on L4" in capsys.readouterr().err
    assert files_of(project) == before


def test_add_model_keeps_every_line_of_the_stack_file(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project.root / "stacks" / "Pulumi.staging.yaml"
    # staging's two l40s nodes are full: a third one for the new model's workers
    path.write_text(path.read_text().replace("desiredSize: 2\n", "desiredSize: 3\n", 1))
    before = path.read_text()
    assert (
        run(project, "add-model", "staging", "Qwen/Qwen3-32B", "--topology", "disagg-router") == 0
    )
    changes = list(difflib.ndiff(before.splitlines(), path.read_text().splitlines()))
    assert not [line for line in changes if line.startswith("- ")]
    added = [line[2:] for line in changes if line.startswith("+ ")]
    assert added[0] == "    - name: qwen3-32b"
    # Inserted after the last model, ahead of the sections (and their comments) that follow.
    after = path.read_text().splitlines()
    assert after.index(added[-1]) < after.index("  dynamo-trtllm:observability:")
    assert [m.name for m in load_stack_config(project.root, "staging").models][-1] == "qwen3-32b"
    capsys.readouterr()


def test_add_model_follows_the_files_own_list_style(project: Project) -> None:
    config = project.stack_config("dev")
    config["dynamo-trtllm:nodePools"][0]["maxSize"] = 2  # room for a second model
    project.write_stack("dev", config)
    # yaml.safe_dump writes list items at their key's indentation.
    assert "\n  - name: qwen3-0-6b\n" in (project.root / "stacks/Pulumi.dev.yaml").read_text()
    assert run(project, "add-model", "dev", "Qwen/Qwen3-VL-2B-Instruct", "--name", "vl") == 0
    text = (project.root / "stacks/Pulumi.dev.yaml").read_text()
    assert "\n  - name: vl\n    source:\n      huggingFace: Qwen/Qwen3-VL-2B-Instruct\n" in text
    assert [m.name for m in load_stack_config(project.root, "dev").models] == ["qwen3-0-6b", "vl"]


def test_on_a_terminal_each_missing_answer_is_asked_with_its_default(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # cluster mode, region, instance type, model, topology: Enter keeps a default.
    monkeypatch.setattr(
        "sys.stdin",
        Terminal(
            "\neu-west-1\ng6e.xlarge\nQwen/Qwen2-VL-7B-Instruct\n\n"
            "arn:aws:iam::111122223333:role/deploy\n203.0.113.0/24\n"
        ),
    )
    assert run(project, "init", "asked") == 0
    out = capsys.readouterr().out
    for question in (
        "Cluster: eks (new) or existing [eks]: ",
        "AWS region [us-west-2]: ",
        "GPU instance type [g6.xlarge]: ",
        "Model (Hugging Face id) [Qwen/Qwen3-0.6B]: ",
        "Topology (agg, agg-router, disagg, disagg-router) [agg]: ",
    ):
        assert question in out
    config = project.stack_config("asked")
    assert config["dynamo-trtllm:cluster"]["vpc"]["availabilityZones"] == [
        "eu-west-1a",
        "eu-west-1b",
    ]
    assert config["dynamo-trtllm:nodePools"][0]["instanceType"] == "g6e.xlarge"
    assert config["dynamo-trtllm:models"][0]["source"] == {
        "huggingFace": "Qwen/Qwen2-VL-7B-Instruct"
    }


def test_an_existing_cluster_selects_its_nodes_by_instance_type(project: Project) -> None:
    assert (
        run(
            project,
            "init",
            "lab",
            *EKS_ANSWERS,
            "--cluster-mode",
            "existing",
            "--context",
            "lab",
            "--name",
            "q",
        )
        == 0
    )
    config = project.stack_config("lab")
    assert config["dynamo-trtllm:cluster"] == {"mode": "existing", "context": "lab"}
    assert "aws:region" not in config
    # No AWS resource in a cluster we did not create: only Kubernetes has a default to refuse.
    assert config["pulumi:disable-default-providers"] == ["kubernetes"]
    [pool] = config["dynamo-trtllm:nodePools"]
    assert pool["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6.xlarge"}
    assert run(project, "validate", "lab", *CRD_ARGS) == 0


@pytest.mark.parametrize("command", ["init", "add-model"])
def test_help_shows_defaults_and_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert "(default: agg)" in out and f"dynamo-infra {command} " in out and "Exit codes:" in out


def test_help_names_the_answers_that_have_no_default(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["init", "--help"])
    description = " ".join(capsys.readouterr().out.split("positional arguments")[0].split())
    assert "otherwise the defaults apply" in description
    # ... except for these two, which the command refuses to guess without a terminal.
    assert "--admin-arn and --public-access-cidr have no safe default" in description
    admin, cidr = EKS_ANSWERS[:2], EKS_ANSWERS[2:]
    for given, missing in ((cidr, "--admin-arn"), (admin, "--public-access-cidr")):
        assert run(project, "init", "x", *given) == 2
        assert f"give {missing} (no terminal to ask" in capsys.readouterr().err
    # The kubeconfig context does default: the current one.
    assert run(project, "init", "x", "--cluster-mode", "existing", "--name", "q") == 0
    assert project.stack_config("x")["dynamo-trtllm:cluster"] == {"mode": "existing"}


def test_a_new_stack_file_is_native_to_editors_and_pulumi(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.stack.reference import MODELINE

    assert (
        main(
            [
                "--project-dir",
                str(project.root),
                "init",
                "fresh",
                *EKS_ANSWERS,
                "--name",
                "fresh-model",
            ]
        )
        == 0
    )
    text = (project.root / "stacks" / "Pulumi.fresh.yaml").read_text()
    assert text.splitlines()[0] == MODELINE
    # As the shipped EKS stacks: neither ~/.kube/config nor the ambient AWS region is used.
    assert "pulumi:disable-default-providers: [kubernetes, aws]" in text
