"""From raw stack config (a stack file, or Pulumi's runtime config) to a checked StackConfig.

Each top-level section and each model is validated on its own, so one typo does not hide the
problems elsewhere: the user sees every problem at once, each with the file and YAML path.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

from infra.stack.config import (
    SECRET_KEYS,
)
from infra.stack.errors import CONFIG_NAMESPACE, ConfigIssue, StackConfigError, format_path
from infra.stack.yaml_source import SourceMap, YamlProblem, YamlSourceError, read_yaml_file

# Placeholder for `secure:` values offline, where Pulumi's decryption is not available.
SECURE_PLACEHOLDER = "[secure value: decrypted by Pulumi at deploy time]"


def stack_file(project_root: Path, stack: str) -> Path:
    return project_root / "stacks" / f"Pulumi.{stack}.yaml"


def source_label(stack: str) -> str:
    """How errors name the stack file: relative to the project, as the user edits it."""
    return f"stacks/Pulumi.{stack}.yaml"


# Config namespaces a stack file may use: ours, and the providers and Pulumi settings we run with.
KNOWN_NAMESPACES = (CONFIG_NAMESPACE, "aws", "kubernetes", "pulumi")
# What the program reads of the other namespaces. Its AWS and Kubernetes providers are explicit
# (built from cluster.region and cluster.kubeconfig) and the default ones disabled, so any other
# aws: or kubernetes: key would configure a provider nothing uses: ignored without a word.
PASSED_ON_KEYS = {
    "aws": ("region",),  # checked against cluster.region; a traffic stack's Route 53 provider
    "kubernetes": (),
    # Pulumi's own project settings read from stack config.
    "pulumi": ("disable-default-providers", "autonaming", "tags"),
}
# The packages whose default providers the program may disable (`*`: all).
PROVIDER_PACKAGES = ("aws", "kubernetes", "random", "*")


class StackFile(typing.NamedTuple):
    values: dict[str, Any]  # our namespace's keys without the prefix
    secrets: dict[str, str]  # secret key -> plaintext, or secure_placeholder(key) when encrypted
    other: dict[str, Any]  # keys of other namespaces (aws:region, ...), passed through to Pulumi
    # secret key -> digest of its text in the stack file (the ciphertext for `secure:` values),
    # so a diff can say a secret changed without seeing it.
    secret_fingerprints: dict[str, str] = {}
    source_map: SourceMap | None = None
    # Problems the file itself has (duplicate keys, plaintext secrets, unknown namespaces ...),
    # reported together with the schema's and the cross-checks'.
    issues: tuple[ConfigIssue, ...] = ()
    # Pulumi ESC environments the file imports (`environment:`): config we cannot see offline.
    environments: tuple[str, ...] = ()


def secure_placeholder(key: str) -> str:
    """What an encrypted secret looks like offline: one per key, so its uses can be told apart."""
    return f"[secure {key}: decrypted by Pulumi at deploy time]"


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def read_stack_file(path: Path, source: str) -> StackFile:
    """Read `Pulumi.<stack>.yaml`; `secure:` values stay encrypted and become placeholders.

    Raises StackConfigError only when the file cannot be read as a stack file at all; every
    other problem is returned in `issues`, to be reported with the rest.
    """
    try:
        document = read_yaml_file(path, read_by_pulumi=True)
    except YamlSourceError as error:
        issue = ConfigIssue("", error.message, file=source, line=error.line, column=error.column)
        raise StackConfigError(source, [issue]) from None
    top = document.value
    if top is None:
        top = {}
    if not isinstance(top, dict):
        raise StackConfigError(
            source, [ConfigIssue("", "expected a mapping with a `config:` key", line=1, column=1)]
        )
    if "config" not in top:
        stray = [str(k) for k in top if ":" in str(k)]
        hint = (
            f": {', '.join(stray[:3])} {'is' if len(stray) == 1 else 'are'} at the top level; "
            "indent them under `config:`"
            if stray
            else ""
        )
        raise StackConfigError(
            source,
            [
                ConfigIssue(
                    "", f"a stack file holds its settings under `config:`{hint}", line=1, column=1
                )
            ],
        )
    config = top["config"]
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise StackConfigError(
            source,
            [
                ConfigIssue(
                    "config", "`config:` must be a mapping of keys to values", namespace=None
                )
            ],
            document.source_map,
        )
    issues = [_file_problem(problem) for problem in document.problems]
    for key in top:
        if key not in (
            "config",
            "secretsprovider",
            "encryptedkey",
            "encryptionsalt",
            "environment",
        ):
            issues.append(
                ConfigIssue(
                    str(key),
                    f"unknown top-level key {str(key)!r} (a stack file holds `config:` and "
                    "Pulumi's encryption settings)",
                    namespace=None,
                )
            )
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    other: dict[str, Any] = {}
    prefix = f"{CONFIG_NAMESPACE}:"
    for key, value in config.items():
        key = str(key)
        namespace, colon, name = key.partition(":")
        if not colon or not namespace or not name:
            issues.append(
                ConfigIssue(
                    key,
                    f"a config key is `<namespace>:<name>` (ours: `{CONFIG_NAMESPACE}:<name>`)",
                    namespace=None,
                )
            )
            continue
        if namespace != CONFIG_NAMESPACE:
            if namespace not in KNOWN_NAMESPACES:
                close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1)
                hint = f"did you mean {close[0]}:{name}? " if close else ""
                issues.append(
                    ConfigIssue(
                        key,
                        f"unknown config namespace {namespace!r}: Pulumi would hand it to no "
                        f"one and the setting would be ignored; {hint}known: "
                        f"{', '.join(KNOWN_NAMESPACES)}",
                        namespace=None,
                    )
                )
                continue
            if problem := _passed_on_problem(namespace, name, value):
                issues.append(ConfigIssue(key, problem, namespace=None))
                continue
            other[key] = _strip_secure(value)
            continue
        if name in SECRET_KEYS:
            if not _is_secure(value):
                issues.append(
                    ConfigIssue(
                        name,
                        f"a secret stored in plaintext: set it with `pulumi config set --secret "
                        f"{prefix}{name} ...` so the file and Pulumi's state hold it encrypted",
                    )
                )
                continue
            secrets[name] = secure_placeholder(name)
            fingerprints[name] = _fingerprint(value)
        else:
            for where in _secure_paths(value, name):
                issues.append(
                    ConfigIssue(
                        where,
                        "a `secure:` value on a key that is not a secret: the program takes it "
                        "as plain configuration, so the decrypted value would land in manifests "
                        "and in Pulumi's state in clear; write it in plain text (the secret "
                        f"keys are {', '.join(sorted(SECRET_KEYS))})",
                    )
                )
            values[name] = _strip_secure(value)
    issues += _region_issues(values, other)
    imported = top.get("environment") or []
    environments = tuple(str(e) for e in imported) if isinstance(imported, list) else ()
    return StackFile(
        values, secrets, other, fingerprints, document.source_map, tuple(issues), environments
    )


def _passed_on_problem(namespace: str, name: str, value: Any) -> str | None:
    """Why a key of another namespace would not do what it says, or None."""
    known = PASSED_ON_KEYS[namespace]
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {namespace}:{close[0]}? " if close else ""
        where = {
            "aws": "the stack's AWS provider is built from dynamo-trtllm:cluster.region, and "
            "credentials or a profile come from the environment `pulumi up` runs in "
            "(AWS_PROFILE, the CI role)",
            "kubernetes": "the stack's Kubernetes provider is built from the cluster it creates "
            "or from dynamo-trtllm:cluster.kubeconfig and context",
            "pulumi": "Pulumi reads only its own settings here",
        }[namespace]
        allowed = f" (read here: {', '.join(f'{namespace}:{k}' for k in known)})" if known else ""
        secret = (
            " Never keep credentials in a stack file in plaintext."
            if _is_credential(name) and not _is_secure(value)
            else ""
        )
        return f"{hint}not read by this program: {where}{allowed}.{secret}"
    if name == "disable-default-providers":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return "a list of provider packages, e.g. [kubernetes, aws]"
        unknown = [v for v in value if v not in PROVIDER_PACKAGES]
        if unknown:
            return (
                f"unknown provider package(s) {', '.join(map(repr, unknown))}: the default "
                f"providers are {', '.join(PROVIDER_PACKAGES)}"
            )
    return None


def _is_credential(name: str) -> bool:
    return name in ("accessKey", "secretKey", "token", "kubeconfig")


def _region_issues(values: dict[str, Any], other: dict[str, Any]) -> list[ConfigIssue]:
    """cluster.region is the truth; the AWS provider reads aws:region: they must agree.

    Otherwise the VPC, cluster and node groups go to one region and the kubeconfig's
    `aws eks get-token --region` to another.
    """
    cluster = values.get("cluster")
    if not isinstance(cluster, dict) or cluster.get("mode", "eks") != "eks":
        return []
    region = cluster.get("region")
    if not isinstance(region, str):
        return []  # the schema reports it
    provider_region = other.get("aws:region")
    if provider_region == region:
        return []
    if provider_region is None:
        message = (
            f"not set: the AWS provider would take its region from the environment; set "
            f"aws:region: {region} (cluster.region)"
        )
    else:
        message = (
            f"{provider_region!r} differs from {CONFIG_NAMESPACE}:cluster.region {region!r}: "
            "AWS resources would go to one region and the kubeconfig to the other; make them equal"
        )
    return [ConfigIssue("aws:region", message, namespace=None)]


def _file_problem(problem: YamlProblem) -> ConfigIssue:
    """A duplicate key or an ambiguous scalar, at its path under `config:`."""
    parts = problem.path[1:] if problem.path[:1] == ("config",) else problem.path
    first = str(parts[0]) if parts else ""
    namespace, _, name = first.partition(":")
    ours = namespace == CONFIG_NAMESPACE and bool(name)
    path = format_path((name, *parts[1:])) if ours else format_path(problem.path)
    return ConfigIssue(
        path,
        problem.message,
        namespace=CONFIG_NAMESPACE if ours else None,
        line=problem.location.line,
        column=problem.location.column,
    )


def _is_secure(value: Any) -> bool:
    """Pulumi's encrypted form: `{secure: <ciphertext>}`, the ciphertext a non-empty string
    (`secure:` with nothing, true or a list would reach Pulumi as no secret at all)."""
    return (
        isinstance(value, dict)
        and set(value) == {"secure"}
        and isinstance(value["secure"], str)
        and bool(value["secure"])
    )


def _secure_paths(value: Any, path: str) -> list[str]:
    """Where `secure:` values sit inside a value, as YAML paths."""
    if _is_secure(value):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _secure_paths(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _secure_paths(v, f"{path}[{i}]")]
    return []


def _strip_secure(value: Any) -> Any:
    if _is_secure(value):
        return SECURE_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _strip_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_secure(v) for v in value]
    return value
