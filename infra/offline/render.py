"""Offline render: run the unchanged program under a recording Pulumi mock runtime.

Writes what `pulumi up` would create, one YAML file per resource plus index.json, so a reviewer
can diff it and `validate` can check it, without cloud credentials or a cluster.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra.deployment.checked import CheckedStack, check_stack_values
from infra.offline.render_output import OutputRefused, render_dir_refusal, write_render
from infra.stack.config import StackConfig, TrafficStackConfig
from infra.stack.errors import CONFIG_NAMESPACE, ConfigIssue
from infra.stack.loading import read_stack_file, source_label, stack_file
from infra.stack.yaml_source import dump_yaml

PROJECT = "dynamo-trtllm"
REDACTED = "[secret]"
# Pulumi marks secret values in RPC payloads with this signature.
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
_STACK_REFERENCE = "pulumi:pulumi:StackReference"
_HELM_SDK_INPUTS = {"compat"}  # set by the SDK itself, not by us


class RenderError(Exception):
    """The program could not be rendered (not a config error: those are StackConfigError)."""


@dataclass(frozen=True)
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    # Lifecycle options Pulumi applies (ignoreChanges, protect, ...): shown in index.json, so a
    # reviewer and `diff` see them.
    lifecycle: dict[str, Any] = field(default_factory=dict)


class RecordingMocks(pulumi_mocks.Mocks):
    """Records every custom resource; answers with its inputs plus plausible computed outputs."""

    def __init__(self, stack: str) -> None:
        self.stack = stack
        self.recorded: list[Recorded] = []
        # The lifecycle options of the registration being answered, per thread: the SDK
        # registers resources from several threads at once.
        self._answering = threading.local()

    @property
    def lifecycle(self) -> dict[str, Any]:
        return dict(getattr(self._answering, "lifecycle", {}))

    @lifecycle.setter
    def lifecycle(self, options: dict[str, Any]) -> None:
        self._answering.lifecycle = options

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == _STACK_REFERENCE:
            # Another stack's outputs (a read, not a resource this stack creates): not rendered.
            return f"{args.name}-id", {"outputs": _referenced_outputs(args.inputs.get("name"))}
        if not args.custom:  # ComponentResources hold no state of their own
            return None, {}
        self.recorded.append(Recorded(args.typ, args.name, dict(args.inputs), self.lifecycle))
        return mock_id(args.typ, args.name), {**args.inputs, **_computed_outputs(args, self.stack)}

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


class LifecycleMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, handing each registration's lifecycle options to the recording mocks."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recording = mocks

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the RPC's name
        self.recording.lifecycle = lifecycle_options(request)
        return super().RegisterResource(request)


def lifecycle_options(request: Any) -> dict[str, Any]:
    """The options of a RegisterResource request that differ from Pulumi's defaults."""
    options = {
        "protect": bool(getattr(request, "protect", False)),
        "retainOnDelete": bool(getattr(request, "retainOnDelete", False)),
        "deleteBeforeReplace": bool(getattr(request, "deleteBeforeReplace", False)),
        "ignoreChanges": sorted(getattr(request, "ignoreChanges", []) or []),
        "replaceOnChanges": sorted(getattr(request, "replaceOnChanges", []) or []),
    }
    return {key: value for key, value in options.items() if value}


def _referenced_outputs(stack_name: str | None) -> dict[str, Any]:
    """Plausible outputs of an environment stack a traffic stack reads."""
    short = str(stack_name or "stack").rsplit("/", 1)[-1]
    return {"publicHostname": f"{short}.public.mock.invalid"}


# EC2's ID prefixes, so IDs read by patterns downstream (Karpenter's selector terms) look real.
EC2_ID_PREFIXES = {
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "sg",
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/placementGroup:PlacementGroup": "pg",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt",
}


def mock_id(resource_type: str, name: str) -> str:
    """The ID a render gives a resource (EC2's shape for EC2 kinds)."""
    prefix = EC2_ID_PREFIXES.get(resource_type)
    if prefix is None:
        return f"{name}-id"
    return f"{prefix}-{hashlib.sha256(name.encode()).hexdigest()[:17]}"


_RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"


def _computed_outputs(args: pulumi_mocks.MockResourceArgs, stack: str) -> dict[str, Any]:
    """Values the cloud would compute, so dependent resources see realistic shapes."""
    if args.typ == _RANDOM_PASSWORD:
        # Made up per name: a render shows where the password goes, never a real one.
        return {"result": f"mock-password-{args.name}", "bcryptHash": f"$2a$10$mock.{args.name}"}
    if not args.typ.startswith("aws:"):
        return {}
    name = args.inputs.get("name") or args.name
    outputs: dict[str, Any] = {
        "arn": f"arn:aws:mock:us-east-1:000000000000:{args.typ.split(':')[-1].lower()}/{name}",
        "name": name,
    }
    if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
        outputs["latestVersion"] = 1
    if args.typ == "aws:eks/cluster:Cluster":
        vpc_config = dict(args.inputs.get("vpcConfig") or {})
        outputs |= {
            "vpcConfig": {**vpc_config, "clusterSecurityGroupId": f"sg-{name}-cluster"},
            "endpoint": f"https://{name}.eks.mock.invalid",
            "certificateAuthority": {"data": base64.b64encode(b"mock-ca").decode()},
            "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.mock.invalid/id/{stack}"}]}],
        }
    return outputs


def run_under_mocks(
    stack: str,
    values: dict[str, Any],
    secrets: dict[str, str],
    other: dict[str, Any],
    root: Path,
    checked: CheckedStack | None = None,
) -> list[Recorded]:
    """Execute the Pulumi program with the given config under the recording mocks."""
    from infra.program import run

    mocks = RecordingMocks(stack)
    # A fresh root stack resource per render, so renders in one process do not share state.
    pulumi_settings.ROOT.set(None)
    pulumi_mocks.set_mocks(
        mocks, project=PROJECT, stack=stack, preview=False, monitor=LifecycleMonitor(mocks)
    )
    config = {f"{CONFIG_NAMESPACE}:{k}": json.dumps(v) for k, v in values.items()}
    config |= {f"{CONFIG_NAMESPACE}:{k}": v for k, v in secrets.items()}
    config |= {k: v if isinstance(v, str) else json.dumps(v) for k, v in other.items()}
    set_all_config(config, [f"{CONFIG_NAMESPACE}:{k}" for k in secrets])
    _sync_await(run_pulumi_func(lambda: run(root, log_warnings=False, checked=checked)))
    return mocks.recorded


@dataclass(frozen=True)
class RenderResult:
    config: StackConfig | TrafficStackConfig
    resources: list[dict[str, Any]]  # index.json entries
    warnings: list[ConfigIssue]  # located in the stack file


def render_stack(stack: str, out_dir: Path, root: Path) -> RenderResult:
    """Render one stack into out_dir atomically.

    Raises OutputRefused when out_dir may not be written (before anything runs), StackConfigError
    for bad config (before anything runs), OutputFailed when writing fails, RenderError otherwise.
    Either way no partial out_dir is left behind.
    """
    if problem := render_dir_refusal(out_dir, root):
        raise OutputRefused(problem)  # before any work, so nothing is touched
    source = source_label(stack)
    stack_values = read_stack_file(stack_file(root, stack), source)
    # Every problem of the file, checked once before the program runs; the program takes the
    # checked config as it is.
    checked = check_stack_values(
        stack_values.values,
        source,
        root,
        source_map=stack_values.source_map,
        file_issues=stack_values.issues,
        secrets=frozenset(stack_values.secrets),
        environments=stack_values.environments,
    )
    try:
        recorded = run_under_mocks(
            stack, stack_values.values, stack_values.secrets, stack_values.other, root, checked
        )
    except Exception as error:  # the checks passed, so this is our bug, not the user's input
        if os.environ.get("DYNAMO_INFRA_DEBUG"):
            raise
        raise RenderError(
            f"{source}: the program failed on this stack ({type(error).__name__}: {error}); "
            "this is a bug in dynamo-trtllm's checks: please report it with the stack file "
            "(DYNAMO_INFRA_DEBUG=1 shows the traceback)"
        ) from None
    secrets = {
        key: SecretSource(value, stack_values.secret_fingerprints[key])
        for key, value in stack_values.secrets.items()
        if value
    }
    try:
        files = render_files(recorded, secrets)
    except RenderError as error:
        raise RenderError(f"{source}: {error}") from None
    entries = [entry for entry, _ in files]
    index: dict[str, Any] = {"stack": stack, "resources": entries}
    if isinstance(checked.config, StackConfig):
        # What the render was made for: a diff applies that release's operator rules.
        index["dynamoVersion"] = checked.config.platform.dynamo_version
    write_render(
        out_dir,
        index,
        {e["file"]: body for e, body in files},
        root,
    )
    return RenderResult(checked.config, entries, checked.warnings)


@dataclass(frozen=True)
class SecretSource:
    """A secret as the program sees it offline, and the fingerprint of its stack-file text."""

    value: str
    fingerprint: str


def render_files(
    recorded: list[Recorded], secrets: dict[str, SecretSource]
) -> list[tuple[dict[str, Any], str]]:
    """(index entry, YAML text) per resource, sorted by file path.

    An entry lists the fingerprints of the secrets its resource carries (`secrets`), so a diff
    of two renders can report "changed (secret)" while the files only ever hold `[secret]`.
    """
    secret_values = [source.value for source in secrets.values()]
    rendered: dict[str, tuple[dict[str, Any], str]] = {}
    for resource in recorded:
        document = _clean(resource.inputs, secret_values)
        entry: dict[str, Any] = {"type": resource.type, "name": resource.name}
        if resource.lifecycle:
            entry["lifecycle"] = resource.lifecycle
        carried = {
            key: source.fingerprint
            for key, source in secrets.items()
            if _mentions(resource.inputs, source.value)
        }
        if carried:
            entry["secrets"] = carried
        if resource.type == _HELM_RELEASE:
            document = _helm_document(document)
            path = f"helm/{document['namespace']}/{document['name']}.yaml"
        elif resource.type.startswith("kubernetes:"):
            document = _kubernetes_document(document)
            metadata = document.get("metadata", {})
            namespace = metadata.get("namespace")
            entry |= {
                "apiVersion": document["apiVersion"],
                "kind": document["kind"],
                "namespace": namespace,
                "k8sName": metadata.get("name"),
            }
            path = f"kubernetes/{namespace or '_cluster'}/{document['kind']}-{metadata.get('name')}.yaml"
        else:
            package, _, rest = resource.type.partition(":")
            module, _, kind = rest.partition(":")
            path = f"{package}/{module.split('/')[0]}/{kind}/{resource.name}.yaml"
        if path in rendered:  # two resources with one name: Pulumi would refuse the second
            raise RenderError(
                f"two resources would both be written as {path}: "
                f"{rendered[path][0]['name']!r} and {resource.name!r}"
            )
        entry["file"] = path
        rendered[path] = (entry, _to_yaml(document))
    return [rendered[path] for path in sorted(rendered)]


def _kubernetes_document(inputs: dict[str, Any]) -> dict[str, Any]:
    """A plain manifest: apiVersion, kind, metadata first; Secret payloads always redacted."""
    document = dict(inputs)
    if document.get("kind") == "Secret":
        for field in ("data", "stringData"):
            if isinstance(document.get(field), dict):
                document[field] = {key: REDACTED for key in document[field]}
            elif field in document:
                document[field] = REDACTED
    return document


def _helm_document(inputs: dict[str, Any]) -> dict[str, Any]:
    settings = {
        k: v
        for k, v in inputs.items()
        if k not in {"chart", "repositoryOpts", "version", "namespace", "values", "name"}
        and k not in _HELM_SDK_INPUTS
    }
    return {
        "name": inputs.get("name"),
        "chart": inputs.get("chart"),
        "repo": (inputs.get("repositoryOpts") or {}).get("repo"),
        "version": inputs.get("version"),
        "namespace": inputs.get("namespace"),
        "values": inputs.get("values") or {},
        "settings": settings,
    }


def _clean(value: Any, secret_values: list[str]) -> Any:
    """Unwrap RPC values: secrets redacted, integral floats back to ints (mocks send floats)."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG_KEY) == _SECRET_SIG:
            inner = value.get("value")
            # Keep a secret map's keys visible (a reviewer sees *which* keys), hide the values.
            return {k: REDACTED for k in inner} if isinstance(inner, dict) else REDACTED
        return {k: _clean(v, secret_values) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, secret_values) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and any(secret in value for secret in secret_values):
        return REDACTED
    return value


def _mentions(value: Any, text: str) -> bool:
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(_mentions(v, text) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, text) for v in value)
    return False


def _to_yaml(document: Any) -> str:
    return dump_yaml(document)
