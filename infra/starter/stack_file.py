"""Stack-file text for the starter: a new stack, or one more model in an existing stack file.

Written as text rather than dumped YAML, so a new file reads like the hand-written ones and an
existing file keeps its comments and layout: add-model inserts lines and changes nothing else
(and proves it by reading the result back).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from infra.stack.config import DEFAULT_KUBERNETES_VERSION
from infra.stack.errors import CONFIG_NAMESPACE
from infra.stack.instances import GpuInstance
from infra.stack.reference import MODELINE
from infra.stack.yaml_source import YamlSourceError, load_trusted, load_yaml_text
from infra.starter.sizing import SizedModel
from infra.trtllm.memory_plan import GiB
from infra.trtllm.model_catalog import ModelFacts

ENGINE_CONFIG_DIR = "engine_configs"
# kubelet labels every node of a cloud provider with its instance type: how workers find the
# GPU nodes of a cluster we did not create.
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
_MODELS_KEY = f"{CONFIG_NAMESPACE}:models"
_PLAIN = re.compile(r"[A-Za-z][\w./:@-]*")


class StackTextError(ValueError):
    """The stack file cannot take the model as inserted text (it needs a hand edit)."""


def yaml_scalar(value: str) -> str:
    """`value` as YAML: plain when YAML reads it back as this very text, else double-quoted.

    A leading letter and no spaces keep YAML 1.1 and 1.2 in agreement, and keep what the user
    typed from becoming structure.
    """
    plain = _PLAIN.fullmatch(value) is not None and load_trusted(value) == value
    return value if plain else json.dumps(value)


def pool_name(instance: GpuInstance) -> str:
    """A pool named after its GPU, as the project's stacks name them (l4, l40s, h100-80gb)."""
    return re.sub(r"[^a-z0-9]+", "-", instance.gpu_product.lower()).strip("-")


def multinode_efa(sized: SizedModel, instance: GpuInstance) -> bool | None:
    """EFA where workers span nodes (false, TCP, where the instance has none); else unset."""
    return instance.supports_efa if sized.topology.multinode else None


@dataclass(frozen=True)
class S3Weights:
    uri: str
    region: str | None


@dataclass(frozen=True)
class ModelEntry:
    """One model of a stack, sized for the pool it runs on."""

    name: str
    facts: ModelFacts
    sized: SizedModel
    node_pool: str
    image: str
    s3: S3Weights | None = None
    # Appended to each role's file name (agg-<stack>.yaml) where the plain names hold other
    # content: configs another stack reads, which this one must neither change nor lose.
    config_suffix: str = ""

    def engine_config_path(self, role: str) -> str:
        return f"{ENGINE_CONFIG_DIR}/{self.name}/{role}{self.config_suffix}.yaml"

    def engine_configs(self) -> dict[str, str]:
        """Project-relative path -> content, one per role."""
        return {self.engine_config_path(r.role): r.engine_config for r in self.sized.roles}

    def lines(self) -> list[str]:
        """The entry as YAML lines, indented from column 0 (the list's dash goes before)."""
        lines = [f"name: {yaml_scalar(self.name)}"]
        if self.s3 is not None:
            # The catalog lookup (memory plan, parsers) and clients go by the Hugging Face id.
            lines += [
                f"servedModelName: {yaml_scalar(self.facts.hf_id)}",
                "source:",
                "  s3:",
                f"    uri: {yaml_scalar(self.s3.uri)}",
            ]
            if self.s3.region:
                lines.append(f"    region: {yaml_scalar(self.s3.region)}")
            lines += [
                "    # The catalog's checkpoint size; `dynamo-infra preflight` measures the bucket.",
                f"    sizeGib: {math.ceil(self.facts.checkpoint_bytes / GiB)}",
            ]
        else:
            lines += ["source:", f"  huggingFace: {yaml_scalar(self.facts.hf_id)}"]
        lines += [
            f"topology: {self.sized.topology.value}",
            f"nodePool: {yaml_scalar(self.node_pool)}",
            f"image: {yaml_scalar(self.image)}",
        ]
        for role in self.sized.roles:
            fit = "the smallest worker that fits" if role.fits else "no worker size fits"
            lines += [
                f"{role.role}:",
                f"  # {role.size.describe()} per worker: {fit} (`dynamo-infra plan`).",
                f"  gpusPerWorker: {role.size.gpus_per_worker}",
            ]
            if role.size.nodes > 1:
                lines.append(f"  nodes: {role.size.nodes}")
            lines.append(f"  engineConfig: {yaml_scalar(self.engine_config_path(role.role))}")
        return lines


@dataclass(frozen=True)
class NewCluster:
    mode: str  # eks or existing, as cluster.mode
    region: str | None = None  # eks
    zones: tuple[str, ...] = ()  # eks: the new VPC's availability zones
    context: str | None = None  # existing: kubeconfig context (None: the current one)
    admin_arns: tuple[str, ...] = ()  # eks: the access entries of the cluster's admins
    public_access_cidrs: tuple[str, ...] = ()  # eks: who may reach the public endpoint


def new_stack_text(
    stack: str, cluster: NewCluster, instance: GpuInstance, model: ModelEntry, dynamo_version: str
) -> str:
    """A whole stack file: the cluster, one GPU pool of `instance`, the Dynamo release and one
    model on the pool (its image should be that release's runtime)."""
    facts, topology = model.facts, model.sized.topology.value
    lines = [
        MODELINE,  # editors check the file against the generated JSON Schema
        f"# {stack}: {facts.hf_id} ({topology}) on {instance.instance_type} "
        f"({instance.gpu_count} × {instance.gpu_product}); written by `dynamo-infra init`.",
        "config:",
        # Nothing falls back to ~/.kube/config or the ambient AWS region: a new cluster's stack
        # makes AWS resources too, each through the provider built from cluster.region.
        "  pulumi:disable-default-providers: "
        + ("[kubernetes, aws]" if cluster.mode == "eks" else "[kubernetes]"),
    ]
    if cluster.mode == "eks":
        assert cluster.region is not None
        region = yaml_scalar(cluster.region)
        zones = ", ".join(yaml_scalar(zone) for zone in cluster.zones)
        lines += [
            f"  aws:region: {region}",
            f"  {CONFIG_NAMESPACE}:cluster:",
            "    mode: eks",
            f"    name: {yaml_scalar(f'dynamo-{stack}')}",
            f"    region: {region}",
            f"    kubernetesVersion: {json.dumps(DEFAULT_KUBERNETES_VERSION)}",
            "    vpc:",
            f"      availabilityZones: [{zones}]",
            "    # The public endpoint answers these networks only (your deploy runner's).",
            "    endpointAccess:",
            "      mode: public-and-private",
            f"      publicAccessCidrs: [{', '.join(yaml_scalar(c) for c in cluster.public_access_cidrs)}]",
            "    # Cluster admins: the identity `pulumi up` runs as must be one of them.",
            f"    adminPrincipalArns: [{', '.join(yaml_scalar(a) for a in cluster.admin_arns)}]",
        ]
    else:
        lines += [f"  {CONFIG_NAMESPACE}:cluster:", "    mode: existing"]
        if cluster.context:
            lines.append(f"    context: {yaml_scalar(cluster.context)}")
    lines += [f"  {CONFIG_NAMESPACE}:nodePools:", *_indent(_pool_lines(cluster, instance, model))]
    lines += [
        f"  {CONFIG_NAMESPACE}:platform:",
        "    # Pinned: a newer default release becomes a reviewed change, not a silent upgrade.",
        f"    dynamoVersion: {yaml_scalar(dynamo_version)}",
    ]
    lines += [f"  {CONFIG_NAMESPACE}:models:", *_indent(model.lines())]
    return "\n".join(lines) + "\n"


def _pool_lines(cluster: NewCluster, instance: GpuInstance, model: ModelEntry) -> list[str]:
    lines = [f"name: {yaml_scalar(model.node_pool)}", f"instanceType: {instance.instance_type}"]
    efa = multinode_efa(model.sized, instance)
    if efa is not None:
        why = "NCCL and the KV transfer between nodes" if efa else "no EFA here: TCP between nodes"
        lines += [f"# Workers span nodes ({why}).", f"efa: {'true' if efa else 'false'}"]
    if cluster.mode == "existing":
        return lines + ["nodeSelector:", f"  {INSTANCE_TYPE_LABEL}: {instance.instance_type}"]
    if efa:
        # An EFA pool sits in one cluster placement group, so in one zone.
        lines.append(f"availabilityZone: {yaml_scalar(cluster.zones[0])}")
    nodes = model.sized.nodes_needed(instance.gpu_count)
    return lines + [
        "# Pin amiReleaseVersion before production: unpinned, new nodes take the latest AMI.",
        "minSize: 0",
        f"desiredSize: {nodes}",
        f"maxSize: {nodes}",
    ]


def _indent(entry: list[str], dash: int = 4, content: int = 6) -> list[str]:
    """An entry's lines as one item of a block list: the dash at `dash`, the keys at `content`."""
    first, *rest = entry
    return [
        " " * dash + "-" + " " * (content - dash - 1) + first,
        *(" " * content + line for line in rest),
    ]


def with_model(text: str, entry: ModelEntry) -> str:
    """`text` with `entry` appended to its models list; every other byte stays as it was."""
    try:
        document = load_yaml_text(text, read_by_pulumi=True)
        config = document.value["config"]
        models = config[_MODELS_KEY]
    except (YamlSourceError, TypeError, KeyError):
        raise StackTextError(f"it has no {_MODELS_KEY} list") from None
    locations = document.source_map.locations
    first, last = (locations.get(("config", _MODELS_KEY, i)) for i in (0, len(models) - 1))
    lines = text.splitlines(keepends=True)
    item = lines[first.line - 1] if first is not None else ""
    dash = len(item) - len(item.lstrip(" "))
    if first is None or last is None or not item[dash:].startswith("-"):
        raise StackTextError(f"{_MODELS_KEY} is not a block list (`- name: ...` per model)")
    key_indent = locations[("config", _MODELS_KEY)].column - 1
    at = _end_of_list(lines, last.line, dash, key_indent)
    newline = "\r\n" if lines[0].endswith("\r\n") else "\n"
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += newline
    added = _indent(entry.lines(), dash, first.column - 1)
    result = "".join([*lines[:at], *(line + newline for line in added), *lines[at:]])
    _check_only_appended(result, document.value, load_trusted("\n".join(entry.lines())))
    return result


def _end_of_list(lines: list[str], last_item_line: int, dash: int, key_indent: int) -> int:
    """Index of the line the new item goes before: after the last item, ahead of the comments
    and blank lines that lead into the next key."""
    end = next(
        (
            index
            for index in range(last_item_line, len(lines))
            if _content(lines[index]) and _indent_of(lines[index]) <= dash
        ),
        len(lines),
    )
    while end > last_item_line and (
        not lines[end - 1].strip()
        or (lines[end - 1].lstrip().startswith("#") and _indent_of(lines[end - 1]) <= key_indent)
    ):
        end -= 1
    return end


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _check_only_appended(result: str, before: dict[str, Any], model: Any) -> None:
    """The new text reads as the old file plus one model, or the insertion went wrong."""
    config = before["config"]
    expected = {**before, "config": {**config, _MODELS_KEY: [*config[_MODELS_KEY], model]}}
    try:
        after = load_yaml_text(result, read_by_pulumi=True).value
    except YamlSourceError as error:
        raise StackTextError(f"the inserted model does not read back: {error.message}") from None
    if after != expected:
        raise StackTextError("inserting the model as text would change more than the models list")
