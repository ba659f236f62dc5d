"""The stack-file reference and JSON Schema, generated from the config models so neither drifts.

`docs/configuration.md` lists every key a stack file may set; `schemas/stack-file.schema.json`
lets an editor running the YAML language server check a stack file while it is written.
`python -m infra.stack.reference --write` regenerates both; `--check` fails when one is stale.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Discriminator
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from infra.stack.config import SECRET_KEYS, EksCluster, StackConfig, TrafficStackConfig
from infra.stack.errors import CONFIG_NAMESPACE
from infra.stack.loading import KNOWN_NAMESPACES, PASSED_ON_KEYS

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_FILE = Path("docs/configuration.md")
SCHEMA_FILE = Path("schemas/stack-file.schema.json")
MODELINE = f"# yaml-language-server: $schema=../{SCHEMA_FILE}"
REGENERATE = "python -m infra.stack.reference --write"

# The key check_values picks the environment or the traffic model by.
ROLE_KEY = "role"
# draft-07: the draft the YAML language server supports best.
DRAFT = "http://json-schema.org/draft-07/schema#"
DEFINITIONS = "#/definitions/{model}"
# Pulumi's own keys beside `config:` that read_stack_file accepts.
PULUMI_FILE_KEYS: dict[str, Any] = {
    "secretsprovider": {"type": "string", "description": "Pulumi's secrets provider."},
    "encryptedkey": {"type": "string", "description": "The data key, encrypted by the provider."},
    "encryptionsalt": {"type": "string", "description": "The passphrase provider's salt."},
    "environment": {"description": "Pulumi ESC environments the stack imports."},
}
SECURE_DESCRIPTION = "A Pulumi secret (`pulumi config set --secret ...`); plaintext is refused."
SECURE_VALUE = {
    "type": "object",
    "properties": {"secure": {"type": "string"}},
    "required": ["secure"],
    "additionalProperties": False,
    "description": SECURE_DESCRIPTION,
}
REGION_DESCRIPTION = "The AWS provider's region; with an eks cluster it must equal cluster.region."
_SIGNS = (("min", "≥"), ("max", "≤"))
_LIMITS = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}
_COUNTED = {"Length": "length", "Items": "items", "Properties": "keys"}  # minLength, maxItems ...
_COUNTS = {f"{end}{what}": (noun, sign) for what, noun in _COUNTED.items() for end, sign in _SIGNS}
# Keywords the reference renders; any other one fails generation instead of going unmentioned.
_RENDERED = {*_LIMITS, *_COUNTS, "pattern", "anyOf", "type", "enum", "const", "default", "title"}
_RENDERED |= {"description", "properties", "required", "additionalProperties", "items"}
_RENDERED |= {"propertyNames"}
PASSED_ON = [namespace for namespace in KNOWN_NAMESPACES if namespace != CONFIG_NAMESPACE]
# The other namespaces' keys the program reads (aws:region has its own row): no other.
PULUMI_SETTINGS = [f"pulumi:{key}" for key in PASSED_ON_KEYS["pulumi"]]
PASSED_ON_PROPERTIES: dict[str, Any] = {
    f"{namespace}:{key}": {}
    for namespace, keys in PASSED_ON_KEYS.items()
    for key in keys
    if f"{namespace}:{key}" != "aws:region"
}
_INTRO = f"""\
# Stack file reference

<!-- Generated from infra/stack/config.py by `{REGENERATE}`; edit the models, not this file. -->

A stack file `stacks/Pulumi.<stack>.yaml` holds its settings under `config:`: ours as \
`{CONFIG_NAMESPACE}:<section>`, one key per section below, and the few keys of \
{", ".join(PASSED_ON)} the program reads (below; its AWS and Kubernetes providers are explicit, so \
any other key of theirs would be ignored, and is refused). Under a section, `a.b` is key `b` inside `a`, `a[].b` key `b` of each item \
of list `a`, and `a.<key>.b` key `b` of each entry of mapping `a`. Unknown keys are errors.

Each stack file starts with `{MODELINE}`, so editors running the YAML language server check it \
against `{SCHEMA_FILE}` as it is written. Rules across keys (a node pool a model names must \
exist, its GPUs must fit, ...) are checked by `dynamo-infra plan` and `validate`."""


def field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The comment lines right above each field in the model's class body, by YAML key."""
    comments: dict[str, str] = {}
    above: list[str] = []
    for line in textwrap.dedent(inspect.getsource(model)).splitlines():
        if line.lstrip().startswith("#"):
            above.append(line.strip().removeprefix("#").strip())
            continue
        declared = re.match(r" {4}(\w+):", line)  # a field of the class body, not of a method
        field = model.model_fields.get(declared[1]) if declared else None
        if declared and field is not None and above:
            comments[field.alias or declared[1]] = " ".join(above)
        above = []
    return comments


class _ConfigJsonSchema(GenerateJsonSchema):
    """Pydantic's, with our field comments as descriptions, without titles like "Nodepools"."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        comments = field_comments(schema["cls"])
        for key, prop in json_schema.get("properties", {}).items():
            prop.pop("title", None)
            if key in comments:
                prop.setdefault("description", comments[key])
        return json_schema


RoleSchemas = dict[type[BaseModel], dict[str, Any]]


def config_schemas() -> tuple[RoleSchemas, dict[str, Any]]:
    """Each role's model and its JSON Schema, and the definitions of the models inside them."""
    roles: RoleSchemas = {}
    definitions: dict[str, Any] = {}
    for model in (StackConfig, TrafficStackConfig):
        schema = model.model_json_schema(
            by_alias=True, ref_template=DEFINITIONS, schema_generator=_ConfigJsonSchema
        )
        for name, definition in schema.pop("$defs", {}).items():
            if definitions.setdefault(name, definition) != definition:
                raise ValueError(f"two different config models are named {name}")
        roles[model] = schema
    return roles, definitions


class TaggedUnion(typing.NamedTuple):
    """A field whose model a function picks by a tag key (cluster: `mode`)."""

    tag_key: str
    fallback: str  # the tag of a value that leaves the key out
    members: dict[str, dict[str, Any]]  # tag -> the member's schema (a $ref)


def tagged_union(model: type[BaseModel], key: str, schema: dict[str, Any]) -> TaggedUnion | None:
    """The union behind `key` when a Discriminator function tells its members apart."""
    field = next(f for name, f in model.model_fields.items() if key in (name, f.alias))
    discriminator = next((m for m in field.metadata if isinstance(m, Discriminator)), None)
    if discriminator is None or not callable(discriminator.discriminator):
        return None
    # Each member is Annotated[Model, Tag(tag)], in the order of pydantic's oneOf.
    tagged = [typing.get_args(member) for member in typing.get_args(field.annotation)]
    models = {tag.tag: member for member, tag in tagged}
    # The tag key: the field each member defaults to its own tag.
    tag_key = next(
        info.alias or name
        for name, info in next(iter(models.values())).model_fields.items()
        if all(getattr(m.model_fields.get(name), "default", None) == t for t, m in models.items())
    )
    members = {tag.tag: ref for (_, tag), ref in zip(tagged, schema["oneOf"], strict=True)}
    return TaggedUnion(tag_key, str(discriminator.discriminator({})), members)


def _by_tag(union: TaggedUnion) -> dict[str, Any]:
    """The union as if/then/else on its tag: oneOf would take `{}` as an existing cluster and
    report a typo against every member; this picks the member the loader picks."""
    chosen: dict[str, Any] = union.members[union.fallback]
    for tag in sorted(set(union.members) - {union.fallback}):
        condition = {"properties": {union.tag_key: {"const": tag}}, "required": [union.tag_key]}
        chosen = {"if": condition, "then": union.members[tag], "else": chosen}
    tag_values = {union.tag_key: {"enum": sorted(union.members)}}
    return {"type": "object", "properties": tag_values, **chosen}


def _config(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    """`config:` of one role, complete: a key of the other role is reported like a typo."""
    sections = {}
    for key, prop in schema["properties"].items():
        union = tagged_union(model, key, prop)
        sections[f"{CONFIG_NAMESPACE}:{key}"] = _by_tag(union) if union else prop
    secrets = {f"{CONFIG_NAMESPACE}:{key}": SECURE_VALUE for key in SECRET_KEYS}
    region = {"aws:region": {"type": "string", "description": REGION_DESCRIPTION}}
    return {
        "properties": sections | secrets | region | PASSED_ON_PROPERTIES,
        "additionalProperties": False,
        "required": [f"{CONFIG_NAMESPACE}:{key}" for key in schema.get("required", [])],
    }


def stack_file_schema() -> dict[str, Any]:
    """A whole stack file: Pulumi's keys, and under `config:` what read_stack_file accepts."""
    roles, definitions = config_schemas()
    environment = _config(StackConfig, roles[StackConfig])
    traffic = _config(TrafficStackConfig, roles[TrafficStackConfig])
    role = f"{CONFIG_NAMESPACE}:{ROLE_KEY}"
    # Any role but traffic lands in the environment branch: name both, as the loader does.
    names = [environment["properties"][role]["const"], traffic["properties"][role]["const"]]
    environment["properties"][role] = {"type": "string", "enum": names, "default": names[0]}
    # The loader's region rule as far as JSON Schema reaches: an eks cluster sets aws:region.
    cluster = f"{CONFIG_NAMESPACE}:cluster"
    union = tagged_union(StackConfig, "cluster", roles[StackConfig]["properties"]["cluster"])
    assert union is not None
    eks_mode = {union.tag_key: {"const": EksCluster.model_fields["mode"].default}}
    is_eks = {"properties": {cluster: {"type": "object", "properties": eks_mode}}}
    config = {
        "type": "object",
        "description": f"Keys are `<namespace>:<name>`; ours are `{CONFIG_NAMESPACE}:<name>`.",
        "if": {"properties": {role: traffic["properties"][role]}, "required": [role]},
        "then": traffic,
        "else": environment
        | {"if": is_eks | {"required": [cluster]}, "then": {"required": ["aws:region"]}},
    }
    return {
        "$schema": DRAFT,
        "title": f"Pulumi.<stack>.yaml of {CONFIG_NAMESPACE}",
        "description": f"Generated from infra/stack/config.py by `{REGENERATE}`.",
        "type": "object",
        "properties": {"config": config, **PULUMI_FILE_KEYS},
        "required": ["config"],
        "additionalProperties": False,
        "definitions": definitions,
    }


# --- the reference -----------------------------------------------------------------------


class Row(typing.NamedTuple):
    path: str
    type: str
    default: str
    constraints: str
    description: str


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """The schema with each $ref replaced by its definition (the field's own keys win)."""
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = definitions[schema["$ref"].rpartition("/")[2]]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return {k: v if k == "default" else _inlined(v, definitions) for k, v in schema.items()}


def _value(schema: dict[str, Any]) -> dict[str, Any]:
    """What a key holds once set: an Optional's value, under the field's own keys."""
    unknown = schema.keys() - _RENDERED
    if unknown:
        raise ValueError(f"the reference does not render {sorted(unknown)} yet: {schema}")
    if "anyOf" in schema:
        (value,) = [s for s in schema["anyOf"] if s != {"type": "null"}]
        return _value({**value, **{k: v for k, v in schema.items() if k != "anyOf"}})
    return schema


def _entries(value: dict[str, Any]) -> dict[str, Any] | None:
    """The schema of a mapping's values, when the mapping takes any key (dict[K, V])."""
    entries = value.get("additionalProperties")
    return _value(entries) if isinstance(entries, dict) else None


def _without_nulls(value: Any) -> Any:
    """A default as a user writes it: keys left unset are left out."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _default(value: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    default = value["default"]  # pydantic gives one for every optional field
    if default is None:
        return "unset"
    if default and default == {k: p.get("default") for k, p in value.get("properties", {}).items()}:
        return "the defaults of its keys"
    return f"`{json.dumps(_without_nulls(default))}`"


def _type(value: dict[str, Any]) -> str:
    if "items" in value:
        return f"list of {_type(_value(value['items']))}"
    if (entries := _entries(value)) is not None:
        return f"mapping to {_type(entries)}"
    kind = value.get("type")
    if not isinstance(kind, str):
        raise ValueError(f"the reference has no type name for {value}")
    return "mapping" if kind == "object" else kind


def _constraints(value: dict[str, Any]) -> list[str]:
    found = [f"`{value['const']}`"] if "const" in value else []
    if "enum" in value:
        found.append("one of " + ", ".join(f"`{v}`" for v in value["enum"]))
    found += [f"{sign} {value[key]}" for key, sign in _LIMITS.items() if key in value]
    found += [f"{noun} {sign} {value[k]}" for k, (noun, sign) in _COUNTS.items() if k in value]
    if "pattern" in value:
        found.append(f"matches `{value['pattern']}`")
    if "items" in value:
        found += [f"each {c}" for c in _constraints(_value(value["items"]))]
    if "propertyNames" in value:
        found += [f"keys {c}" for c in _constraints(value["propertyNames"])]
    if (entries := _entries(value)) is not None and "properties" not in entries:
        found += [f"each value {c}" for c in _constraints(entries)]
    return found


def _rows(path: str, schema: dict[str, Any], required: bool) -> list[Row]:
    """The key at `path` and every key below it."""
    value = _value(schema)
    description = " ".join(value.get("description", "").split())
    constraints = "; ".join(_constraints(value))
    rows = [Row(path, _type(value), _default(value, required), constraints, description)]
    below, below_path = value, path
    if "items" in value:
        below, below_path = _value(value["items"]), f"{path}[]"
    elif (entries := _entries(value)) is not None:
        below, below_path = entries, f"{path}.<key>"
    for key, prop in below.get("properties", {}).items():
        rows += _rows(f"{below_path}.{key}", prop, key in below.get("required", []))
    return rows


def _table(rows: list[Row]) -> str:
    lines = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for row in rows:
        cells = [f"`{row.path}`", *row[1:]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _role_sections(model: type[BaseModel], schema: dict[str, Any]) -> list[str]:
    """A heading and table per section; a tagged union gets one per member, the fallback first."""
    blocks = []
    for key, prop in schema["properties"].items():
        required = key in schema.get("required", [])
        heading = f"### `{CONFIG_NAMESPACE}:{key}`"
        union = tagged_union(model, key, prop)
        if union is None:
            blocks += [heading, _table(_rows(key, prop, required))]
            continue
        for tag in sorted(union.members, key=lambda tag: tag != union.fallback):
            also = f" (also when `{union.tag_key}` is left out)" if tag == union.fallback else ""
            member = {k: v for k, v in prop.items() if k != "oneOf"} | union.members[tag]
            blocks.append(f"{heading} with `{union.tag_key}: {tag}`{also}")
            blocks.append(_table(_rows(key, member, required)))
    return blocks


def reference_markdown() -> str:
    roles, definitions = config_schemas()
    other_rows = [Row("aws:region", "string", "unset", "", REGION_DESCRIPTION)]
    other_rows += [
        Row(key, "any", "—", "", "Pulumi's own setting, passed on.") for key in PULUMI_SETTINGS
    ]
    secure = ("`{secure: string}`", "unset", "", SECURE_DESCRIPTION)
    secrets = [Row(f"{CONFIG_NAMESPACE}:{key}", *secure) for key in SECRET_KEYS]
    blocks = [_INTRO, "## Other namespaces", _table(other_rows), "## Secrets", _table(secrets)]
    for model, schema in roles.items():
        schema = _inlined(schema, definitions)
        role = schema["properties"][ROLE_KEY]
        default = " (the default)" if "default" in role else ""
        blocks += [f"## Stacks with `{ROLE_KEY}: {role['const']}`{default}", schema["description"]]
        blocks += _role_sections(model, schema)
    return "\n\n".join(blocks) + "\n"


def generated_files() -> dict[Path, str]:
    """Each generated file, relative to the project root, and its content."""
    schema = json.dumps(stack_file_schema(), indent=2, sort_keys=True, ensure_ascii=False)
    return {REFERENCE_FILE: reference_markdown(), SCHEMA_FILE: schema + "\n"}


def stale_files(project_root: Path) -> list[Path]:
    """The generated files missing from the project or differing from what the models give."""
    return [
        path
        for path, text in generated_files().items()
        if not (project_root / path).is_file()
        or (project_root / path).read_text(encoding="utf-8") != text
    ]


def main(argv: list[str] | None = None, project_root: Path = PROJECT_ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.stack.reference",
        description=f"Generate {REFERENCE_FILE} and {SCHEMA_FILE} from the config models.",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate both files")
    action.add_argument("--check", action="store_true", help="exit 1 when one of them is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(project_root)
        for path in stale:
            print(f"{path} is stale: regenerate it with `{REGENERATE}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated_files().items():
        (project_root / path).parent.mkdir(parents=True, exist_ok=True)
        (project_root / path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
