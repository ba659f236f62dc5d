"""Read the YAML we are given (stack files, engine configs) strictly, remembering where each value is.

PyYAML alone keeps the last of two equal keys, expands aliases without bound and reads `yes`
as true where Pulumi's YAML 1.2 parser reads the string "yes". This loader refuses duplicate
keys (naming both lines), flags plain scalars the two YAML versions read differently, bounds
file size, nesting and alias expansion, and returns a source map: the line and column of
every value, keyed by its path, so each error can point at the line to edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# libyaml's parser and emitter where installed (several times faster); pure Python otherwise.
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# No line folding: libyaml and PyYAML fold long scalars differently, unfolded they agree byte
# for byte, so a render is the same whichever is installed.
_NO_FOLDING = 2**31 - 1

MAX_FILE_BYTES = 1 << 20  # 1 MiB: far above any real stack file or engine config
MAX_NODES = 100_000  # values built, aliases counted at each use: bounds "billion laughs"
MAX_DEPTH = 64

Path_ = tuple[str | int, ...]

_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# YAML 1.2's core schema: the only spellings of booleans and numbers both versions agree on.
_YAML12_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_YAML12_INT = re.compile(r"^([-+]?(0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$")
_YAML12_FLOAT = re.compile(
    r"^([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN))$"
)


class YamlSourceError(Exception):
    """The file cannot be read as YAML at all: one message, with the line when there is one."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(message)


@dataclass(frozen=True)
class Location:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(frozen=True)
class YamlProblem:
    """A problem in an otherwise readable file (duplicate key, ambiguous scalar)."""

    path: Path_
    message: str
    location: Location


@dataclass
class SourceMap:
    """Where each value of one file is: the key's position for mapping entries."""

    locations: dict[Path_, Location] = field(default_factory=dict)
    # The text of plain (unquoted) scalars, so an error can say how the file spelled a value.
    plain_text: dict[Path_, str] = field(default_factory=dict)

    def locate(self, path: Path_) -> Location | None:
        """The location of `path`, or of its nearest ancestor present in the file (not the root:
        a key missing at the top is in no particular line)."""
        for end in range(len(path), 0, -1):
            found = self.locations.get(path[:end])
            if found is not None:
                return found
        return None

    def spelled(self, path: Path_) -> str | None:
        return self.plain_text.get(path)

    def under(self, prefix: Path_) -> SourceMap:
        """The part of the map below `prefix`, with paths made relative to it."""
        n = len(prefix)
        return SourceMap(
            {p[n:]: loc for p, loc in self.locations.items() if p[:n] == prefix},
            {p[n:]: text for p, text in self.plain_text.items() if p[:n] == prefix},
        )


@dataclass(frozen=True)
class YamlDocument:
    value: Any
    source_map: SourceMap
    problems: list[YamlProblem]
    text: str = ""  # the document as read


def read_yaml_file(path: Path, read_by_pulumi: bool = False) -> YamlDocument:
    """Read and load one file; every failure to read is a YamlSourceError with a clear reason.

    read_by_pulumi: the file is a stack file, which Pulumi reads as YAML 1.2, so plain scalars
    PyYAML (YAML 1.1) reads differently are problems. Engine configs are read by TensorRT-LLM
    with PyYAML, so for them YAML 1.1 is the truth.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise YamlSourceError("file not found") from None
    except IsADirectoryError:
        raise YamlSourceError("is a directory, not a file") from None
    except OSError as error:
        raise YamlSourceError(f"cannot read: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise YamlSourceError(f"larger than {MAX_FILE_BYTES // 1024} KiB: not a config file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise YamlSourceError(
            f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})", line
        ) from None
    return load_yaml_text(text, read_by_pulumi)


def load_yaml_text(text: str, read_by_pulumi: bool = False) -> YamlDocument:
    """Load one YAML document from text (no file system access)."""
    if len(text.encode("utf-8", errors="replace")) > MAX_FILE_BYTES:
        raise YamlSourceError(f"larger than {MAX_FILE_BYTES // 1024} KiB: not a config file")
    loader = _BaseLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = ", ".join(filter(None, (error.context, error.problem))) or "not valid YAML"
        if mark is None:
            raise YamlSourceError(f"not valid YAML: {problem}") from None
        raise YamlSourceError(
            f"not valid YAML: {problem}", mark.line + 1, mark.column + 1
        ) from None
    except yaml.YAMLError as error:
        raise YamlSourceError(f"not valid YAML: {error}") from None
    except RecursionError:
        raise YamlSourceError(f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    if node is None:
        return YamlDocument(None, SourceMap(), [], text)
    builder = _Builder(loader, read_by_pulumi)
    value = builder.build(node, (), 0)
    return YamlDocument(value, builder.source_map, builder.problems, text)


def _location(node: yaml.Node) -> Location:
    return Location(node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns composed nodes into plain values, checking what PyYAML's constructor lets through."""

    def __init__(self, loader: Any, read_by_pulumi: bool) -> None:
        self.loader = loader
        self.read_by_pulumi = read_by_pulumi
        self.source_map = SourceMap()
        self.problems: list[YamlProblem] = []
        self.nodes = 0
        self.active: set[int] = set()  # nodes on the current path: an alias back to one is a cycle

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlSourceError(
                f"expands to more than {MAX_NODES} values (aliases repeated?): not a config file",
                *_mark(node),
            )
        if depth > MAX_DEPTH:
            raise YamlSourceError(f"nested deeper than {MAX_DEPTH} levels", *_mark(node))
        self.source_map.locations.setdefault(path, _location(node))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if id(node) in self.active:
            raise YamlSourceError("an alias refers to a value that contains it", *_mark(node))
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)
                ]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path, depth)
        finally:
            self.active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # YAML 1.2 (Pulumi) has no timestamps: `2025-01-01` is text
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as error:
            raise YamlSourceError(f"not valid YAML: {error.problem}", *_mark(node)) from None
        except ValueError as error:  # e.g. a timestamp with an impossible date
            raise YamlSourceError(f"not valid YAML: {error}", *_mark(node)) from None
        if not node.style:  # plain: None from PyYAML, "" from libyaml
            self.source_map.plain_text[path] = node.value
            if self.read_by_pulumi and (hint := _version_ambiguity(node)):
                self.problems.append(YamlProblem(path, hint, _location(node)))
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Location] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged |= self._merge_sources(value_node, path, depth)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlSourceError("a mapping key must be a plain value", *_mark(key_node))
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                key = str(key)
            child = (*path, key if isinstance(key, str | int) else str(key))
            here = _location(key_node)
            if key in first_seen:
                before = first_seen[key]
                self.problems.append(
                    YamlProblem(
                        child,
                        f"key {key!r} is given twice (lines {before.line} and {here.line}); "
                        "YAML would keep only the second: merge them into one",
                        here,
                    )
                )
                continue
            first_seen[key] = here
            self.source_map.locations[child] = here
            result[key] = self.build(value_node, child, depth + 1)
        return {**{k: v for k, v in merged.items() if k not in result}, **result}

    def _merge_sources(self, node: yaml.Node, path: Path_, depth: int) -> dict[Any, Any]:
        """`<<: *base` (or a list of them): the merged mappings, earlier ones winning."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[Any, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                raise YamlSourceError("`<<` merges mappings only", *_mark(source))
            merged |= self._mapping(source, path, depth + 1)
        return merged


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _version_ambiguity(node: yaml.ScalarNode) -> str | None:
    """How YAML 1.1 (PyYAML) and YAML 1.2 (Pulumi) would read a plain scalar differently."""
    text = node.value
    if node.tag == _BOOL_TAG and not _YAML12_BOOL.match(text):
        return (
            f"`{text}` is a boolean in YAML 1.1 but the string {text!r} in YAML 1.2, which "
            f'Pulumi reads: write true or false, or quote it ("{text}")'
        )
    if node.tag == _INT_TAG and not _YAML12_INT.match(text):
        return (
            f"`{text}` is read as a different number (or as text) by YAML 1.1 and YAML 1.2: "
            f'write it in plain decimal, or quote it ("{text}")'
        )
    if node.tag == _FLOAT_TAG and not _YAML12_FLOAT.match(text):
        return (
            f"`{text}` is a number in YAML 1.1 but not in YAML 1.2: write it in plain decimal, "
            f'or quote it ("{text}")'
        )
    if node.tag == _STR_TAG and (_YAML12_INT.match(text) or _YAML12_FLOAT.match(text)):
        return (
            f"`{text}` is text in YAML 1.1 but a number in YAML 1.2, which Pulumi reads: "
            f'quote it ("{text}") if it is text, or write the number in plain decimal'
        )
    return None


def dump_yaml(document: Any) -> str:
    """Deterministic YAML: sorted keys, block style, never folded (same text from both emitters)."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=_NO_FOLDING
    )


def load_trusted(text: str) -> Any:
    """YAML we wrote or that ships with a tool (renders, CRDs), parsed without the user checks."""
    return yaml.load(text, Loader=_BaseLoader)  # noqa: S506 - a safe loader


def load_all_trusted(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=_BaseLoader))  # noqa: S506 - a safe loader


def kind_of(value: Any) -> str:
    """How a message names what YAML gave: "null", "a mapping", "a number" ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {list: "a list", dict: "a mapping", str: "a string"}
    return names.get(type(value), type(value).__name__)
