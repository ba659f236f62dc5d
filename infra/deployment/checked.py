"""One pass over a stack: read, check, resolve, check the resolved deployment — every problem once.

The stack layer checks what the file says on its own; the deployment layer resolves what stands
(reading each engine config once) and checks what needs those files. Every problem of both is
reported together, located in the file it is in.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.deployment.checks import (
    deployment_issues,
    deployment_warnings,
    standalone_engine_issues,
)
from infra.deployment.resolved import Deployment, ProjectFiles, resolve
from infra.stack.config import StackConfig, TrafficStackConfig
from infra.stack.errors import ConfigIssue, StackConfigError
from infra.stack.loading import read_stack_file, source_label, stack_file
from infra.stack.platform_config import PlatformSpec
from infra.stack.schema_check import check_values
from infra.stack.yaml_source import SourceMap
from infra.trtllm.model_catalog import ModelFacts


class CheckedStack(typing.NamedTuple):
    config: StackConfig | TrafficStackConfig
    deployment: Deployment | None  # None for a traffic stack
    warnings: list[ConfigIssue]  # located in the stack file


def check_stack(
    project_root: Path,
    stack: str,
    fit_check: bool = True,
    files: ProjectFiles | None = None,
    fetched: Mapping[str, ModelFacts] | None = None,
) -> CheckedStack:
    """Read and check stacks/Pulumi.<stack>.yaml (secrets are not decrypted, only noted)."""
    source = source_label(stack)
    stack_values = read_stack_file(stack_file(project_root, stack), source)
    return check_stack_values(
        stack_values.values,
        source,
        project_root,
        fit_check,
        source_map=stack_values.source_map,
        file_issues=stack_values.issues,
        files=files,
        fetched=fetched,
        secrets=frozenset(stack_values.secrets),
        environments=stack_values.environments,
    )


def check_stack_values(
    values: dict[str, Any],
    source: str,
    project_root: Path,
    fit_check: bool = True,
    source_map: SourceMap | None = None,
    file_issues: Sequence[ConfigIssue] = (),
    files: ProjectFiles | None = None,
    fetched: Mapping[str, ModelFacts] | None = None,
    secrets: frozenset[str] = frozenset(),
    environments: tuple[str, ...] = (),
) -> CheckedStack:
    """Every check of a stack's values; raises StackConfigError listing all errors at once.

    secrets: the secret keys the stack sets (a gated model needs hfToken); environments: the
    Pulumi ESC environments it imports, which may set others.
    """
    files = files or ProjectFiles(project_root)
    schema = check_values(values, source_map, file_issues)
    issues = list(schema.issues)
    partial = None
    if schema.partial is not None:
        partial = resolve(
            schema.partial, files, schema.model_indexes, fetched, secrets, environments
        )
        issues += deployment_issues(partial, fit_check)
    elif schema.standalone_models:
        platform = schema.platform or PlatformSpec()
        issues += standalone_engine_issues(schema.standalone_models, platform, files)
    if schema.config is None or any(i.severity == "error" for i in issues):
        raise StackConfigError(source, issues, source_map)
    if not isinstance(schema.config, StackConfig):
        return CheckedStack(schema.config, None, [])
    # With no error the subset that was resolved is the whole stack.
    assert partial is not None
    deployment = Deployment(schema.config, partial.models, secrets, environments)
    notes = [i for i in issues if i.severity != "error"]
    found = [*notes, *deployment_warnings(deployment)]
    warnings = list(dict.fromkeys(w.located(source, source_map) for w in found))
    return CheckedStack(schema.config, deployment, warnings)


def load_stack_config(
    project_root: Path, stack: str, fit_check: bool = True
) -> StackConfig | TrafficStackConfig:
    """The checked config of stacks/Pulumi.<stack>.yaml."""
    return check_stack(project_root, stack, fit_check).config


def parse_stack_config(
    values: dict[str, Any],
    source: str,
    project_root: Path,
    fit_check: bool = True,
    source_map: SourceMap | None = None,
    file_issues: Sequence[ConfigIssue] = (),
) -> StackConfig | TrafficStackConfig:
    """The checked config of raw values (what Pulumi hands the program, or a test builds)."""
    return check_stack_values(
        values, source, project_root, fit_check, source_map, file_issues
    ).config
