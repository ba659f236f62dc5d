"""Side-by-side measurements of the offline tools, as ratios (alternating runs, medians).

CPU time (user + system) and peak RSS of each command come from the kernel's accounting of the
child process, so a busy machine slows both sides of a ratio alike. Each round runs every
command of a comparison once, in alternating order; the figures are medians over the rounds.

    python -m benchmarks.run [--rounds N] [--models 10,50,100,200] [--test-suite REF]

--test-suite REF also times the whole test suite here against the suite at git REF (checked
out in a temporary worktree): several minutes per round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Sample:
    cpu: float  # seconds, user + system
    rss_mib: float  # peak resident set


def run_once(argv: list[str], cwd: Path) -> Sample:
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(argv)}")
    return Sample(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def compare(commands: dict[str, tuple[list[str], Path]], rounds: int) -> dict[str, Sample]:
    """Median CPU time and peak RSS per command, the commands alternating within each round."""
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    names = list(commands)
    for index in range(rounds):
        order = names if index % 2 == 0 else list(reversed(names))
        for name in order:
            argv, cwd = commands[name]
            samples[name].append(run_once(argv, cwd))
    return {
        name: Sample(
            statistics.median(s.cpu for s in found), statistics.median(s.rss_mib for s in found)
        )
        for name, found in samples.items()
    }


def registrations(project: Path, stack: str) -> int:
    """How many resources (custom and component) a render of `stack` registers."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from infra.offline import render\n"
        "count = [0]\n"
        "original = render.RecordingMocks.new_resource\n"
        "def counting(self, args):\n"
        "    count[0] += 1\n"
        "    return original(self, args)\n"
        "render.RecordingMocks.new_resource = counting\n"
        "import tempfile\n"
        "with tempfile.TemporaryDirectory() as out:\n"
        f"    render.render_stack({stack!r}, Path(out) / 'r', Path({str(project)!r}))\n"
        "print(count[0])\n"
    )
    result = subprocess.run(
        [PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip().splitlines()[-1])


def render_command(project: Path, stack: str, out: Path) -> list[str]:
    return [
        PYTHON, "-m", "infra.cli", "--project-dir", str(project), "render", stack, "--out", str(out),
    ]  # fmt: skip


def floor_command(count: int, collector: str = "default") -> list[str]:
    return [PYTHON, "-m", "benchmarks.floor", str(count), "--collector", collector]


def scratch_parent() -> str | None:
    """Renders write thousands of files: on tmpfs when there is one, so the file system's
    varying cost (seconds on a busy disk) stays out of the ratios; the floor writes none."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def synthetic_project(scratch: Path, models: int) -> Path:
    """A copy of the project whose `bench` stack serves `models` small agg models on one pool."""
    project = scratch / f"project-{models}"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    shutil.copytree(ROOT / "engine_configs", project / "engine_configs")
    (project / "stacks").mkdir()
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    template = config["dynamo-trtllm:models"][0]
    config["dynamo-trtllm:nodePools"][0] |= {"maxSize": models}  # dev's Karpenter pool
    # Room on the system nodes for every model's 2 GiB frontend (six to an m6i.xlarge).
    system = -(-models // 6)
    config["dynamo-trtllm:cluster"]["systemNodeGroup"] |= {"desiredSize": system, "maxSize": system}
    config["dynamo-trtllm:models"] = [
        template
        | {
            "name": f"m{index:03d}",
            "agg": {"engineConfig": f"engine_configs/{template['name']}/agg.yaml"},
        }
        for index in range(models)
    ]
    (project / "stacks" / "Pulumi.bench.yaml").write_text(yaml.safe_dump({"config": config}))
    return project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--models", default="10,50,100,200")
    parser.add_argument("--test-suite", metavar="REF", help="also time the tests against REF")
    args = parser.parse_args(argv)
    report: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="dynamo-bench-", dir=scratch_parent()) as scratch_name:
        scratch = Path(scratch_name)

        count = registrations(ROOT, "prod")
        prod = compare(
            {
                "render prod": (render_command(ROOT, "prod", scratch / "prod"), ROOT),
                "floor": (floor_command(count), ROOT),
                "floor as render": (floor_command(count, "as-render"), ROOT),
            },
            args.rounds,
        )
        ratio = prod["render prod"].cpu / prod["floor"].cpu
        same = prod["render prod"].cpu / prod["floor as render"].cpu
        report["render prod / floor"] = round(ratio, 2)
        report["render prod / floor with the render's collector policy"] = round(same, 2)
        print(
            f"render prod: {prod['render prod'].cpu:.2f} s CPU, floor ({count} registrations): "
            f"{prod['floor'].cpu:.2f} s -> {ratio:.2f}x; floor with the render's collector "
            f"policy: {prod['floor as render'].cpu:.2f} s -> {same:.2f}x"
        )

        crds = ROOT.parent / "shared" / "reference" / "crds"
        if crds.is_dir():
            validate = [
                PYTHON, "-m", "infra.cli", "validate", "prod", "--crd-dir", str(crds),
            ]  # fmt: skip
            both = compare(
                {
                    "validate prod": (validate, ROOT),
                    "render prod": (render_command(ROOT, "prod", scratch / "prod"), ROOT),
                },
                args.rounds,
            )
            ratio = both["validate prod"].cpu / both["render prod"].cpu
            report["validate prod / render prod"] = round(ratio, 2)
            print(
                f"validate prod: {both['validate prod'].cpu:.2f} s CPU, render prod: "
                f"{both['render prod'].cpu:.2f} s -> {ratio:.2f}x"
            )
        else:
            print(f"validate prod / render prod: skipped ({crds} is not here)")

        per_resource: dict[int, float] = {}
        for models in (int(k) for k in args.models.split(",")):
            project = synthetic_project(scratch, models)
            count = registrations(project, "bench")
            out = scratch / f"bench-{models}"
            measured = compare(
                {
                    "render": (render_command(project, "bench", out), ROOT),
                    "floor": (floor_command(count), ROOT),
                    "floor as render": (floor_command(count, "as-render"), ROOT),
                },
                args.rounds,
            )
            index = json.loads((out / "index.json").read_text())
            resources = len(index["resources"])
            per_resource[models] = measured["render"].cpu / resources
            ratio = measured["render"].cpu / measured["floor"].cpu
            same = measured["render"].cpu / measured["floor as render"].cpu
            report[f"{models} models"] = {
                "resources": resources,
                "render / floor": round(ratio, 2),
                "render / floor with the render's collector policy": round(same, 2),
                "ms per resource": round(per_resource[models] * 1000, 2),
                "peak RSS MiB": round(measured["render"].rss_mib),
            }
            print(
                f"{models:>4} models: {resources} resources, render {measured['render'].cpu:.2f} s "
                f"/ floor {measured['floor'].cpu:.2f} s = {ratio:.2f}x "
                f"({same:.2f}x with the render's collector policy), "
                f"{per_resource[models] * 1000:.2f} ms per resource, "
                f"peak RSS {measured['render'].rss_mib:.0f} MiB"
            )
        if len(per_resource) > 1:
            first, last = min(per_resource), max(per_resource)
            growth = per_resource[last] / per_resource[first]
            report[f"time per resource, {last} vs {first} models"] = round(growth, 2)
            print(f"time per resource at {last} models = {growth:.2f}x that at {first} models")

        if args.test_suite:
            report["test suite"] = _test_suite(args.test_suite, scratch, max(1, args.rounds // 2))
    print(json.dumps(report, indent=2))
    return 0


def _test_suite(ref: str, scratch: Path, rounds: int) -> dict[str, float]:
    """The test suite here against the suite at `ref`, each in its own checkout's virtualenv."""
    base = scratch / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), ref], check=True
    )
    shared = ROOT.parent / "shared"
    if shared.is_dir():  # the conformance tests read ../shared/reference on both sides
        (scratch / "shared").symlink_to(shared)
    checkov = ROOT / ".venv-scanner" / "bin" / "checkov"
    try:
        command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        env_here = {**os.environ, "DYNAMO_INFRA_CHECKOV": str(checkov)}
        env_base = {**env_here, "PYTHONPATH": str(base)}
        samples: dict[str, list[float]] = {"here": [], ref: []}
        for index in range(rounds):
            order = ["here", ref] if index % 2 == 0 else [ref, "here"]
            for side in order:
                cwd = ROOT if side == "here" else base
                env = env_here if side == "here" else env_base
                process = subprocess.Popen(
                    command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                _, _, usage = os.wait4(process.pid, 0)
                samples[side].append(usage.ru_utime + usage.ru_stime)
        here, before = statistics.median(samples["here"]), statistics.median(samples[ref])
        print(f"test suite: {here:.0f} s CPU here, {before:.0f} s at {ref} -> {here / before:.2f}x")
        return {"here s": round(here), f"{ref} s": round(before), "ratio": round(here / before, 2)}
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False
        )


if __name__ == "__main__":
    sys.exit(main())
