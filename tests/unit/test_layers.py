"""Imports point down (README "Layout"): no module imports from a layer above its own, so the
stack schema never depends on the TensorRT-LLM knowledge, the resolved deployment never on the
components that render it, and nothing below the CLI on the commands."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import PROJECT_ROOT

# Lowest first; a module may import its own layer and those before it.
LAYERS = [
    ("infra.stack",),
    ("infra.trtllm",),
    ("infra.deployment",),
    ("components",),
    (
        "infra.specs",
        "infra.program",
        "infra.runtime_config",
        "infra.traffic_program",
        "infra.starter",
    ),
    ("infra.offline", "infra.live"),
    ("infra.commands",),
    ("infra.cli", "infra.__main__"),
]


def layer(module: str) -> int | None:
    for index, names in enumerate(LAYERS):
        if any(module == name or module.startswith(f"{name}.") for name in names):
            return index
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> list[str]:
    """Every absolute import, at module level or inside a function."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def test_every_module_imports_only_its_layer_and_those_below() -> None:
    sources = [
        *(PROJECT_ROOT / "infra").rglob("*.py"),
        *(PROJECT_ROOT / "components").rglob("*.py"),
    ]
    upward = []
    for path in sources:
        module = module_name(path)
        if module in ("infra", "components"):
            continue  # the packages' own (empty) __init__
        own = layer(module)
        assert own is not None, f"{module}: give it a layer"
        for target in imported(ast.parse(path.read_text())):
            above = layer(target)
            if above is not None and above > own:
                upward.append(f"{module} imports {target}")
    assert upward == []


def test_the_rule_catches_an_upward_import() -> None:
    tree = ast.parse("def f():\n    from components.dgd import GraphInputs\n")
    assert [layer(name) for name in imported(tree)] == [3]
    assert layer("infra.deployment.placement") == 2 < 3
