"""The custom-resource schemas that ship with the project, so `validate` works from a plain clone.

For each upstream whose custom resources the program can emit, and each version a stack can pin,
the bundle holds the structural `openAPIV3Schema` of every served API version of those kinds,
with the prose stripped (descriptions and CEL messages are upstream text; field names, types,
enums, defaults, patterns and CEL rules are facts). Bundles are generated, never edited:
`dynamo-infra crds build --reference DIR` from local copies of the upstream CRDs, `dynamo-infra
crds fetch` from the pinned releases on a connected machine. Adding an upstream release is one
entry in `CRD_FAMILIES` (or only a pin, when its tag follows the family's pattern) and a regenerate.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra.stack.yaml_source import load_all_trusted

BUNDLE_DIR = Path(__file__).with_name("crd_schemas")
PROVENANCE_FILE = "PROVENANCE.json"


@dataclass(frozen=True)
class CrdFile:
    upstream: str  # file name in the release
    reference: str = ""  # file name in a local reference copy, when it differs

    @property
    def reference_name(self) -> str:
        return self.reference or self.upstream


@dataclass(frozen=True)
class CrdFamily:
    """One upstream's CRDs, at the versions the stacks' chart pins select."""

    name: str
    chart_pin: str | None  # ChartVersions field whose value is the version; None: fixed versions
    repository: str  # GitHub owner/name
    ref: str  # tag pattern, `{version}` replaced
    path: str  # folder of the CRD files in that tag
    files: tuple[CrdFile, ...]
    # Version -> folder of a local copy of those files, relative to a reference root.
    reference_dirs: Mapping[str, str] = field(default_factory=dict)
    fixed_versions: tuple[str, ...] = ()
    # Version -> how its reference copy differs from the tag (where it came from): recorded in
    # the provenance of a bundle built from the reference; a fetched bundle is the tag itself.
    reference_notes: Mapping[str, str] = field(default_factory=dict)

    def url(self, version: str, file: CrdFile) -> str:
        ref = self.ref.format(version=version)
        return (
            f"https://raw.githubusercontent.com/{self.repository}/{ref}/{self.path}/{file.upstream}"
        )


# Only the kinds the program emits. Versions: those a stack can pin (ChartVersions defaults and
# every stack's pins); `crds fetch` adds the others a stack pins.
CRD_FAMILIES: tuple[CrdFamily, ...] = (
    CrdFamily(
        name="dynamo",
        chart_pin="dynamo_platform",
        repository="ai-dynamo/dynamo",
        ref="v{version}",
        path="deploy/operator/config/crd/bases",
        files=(CrdFile("nvidia.com_dynamographdeployments.yaml"),),
        reference_dirs={"1.1.0": "crds/dynamo/bases", "1.2.0": "dynamo-1.2.0/crds"},
        reference_notes={
            "1.1.0": "Built from main at df888f6 (pyproject and chart 1.1.0), not the v1.1.0 tag; "
            "`crds fetch` takes the tag itself.",
            "1.2.0": "Built from main at a68c04c, just before the v1.2.0 tag (pyproject and "
            "charts already 1.2.0); `crds fetch` takes the tag itself.",
        },
    ),
    CrdFamily(
        name="fluid",
        chart_pin="fluid",
        repository="fluid-cloudnative/fluid",
        ref="v{version}",
        path="charts/fluid/fluid/crds",
        files=tuple(
            CrdFile(f"data.fluid.io_{plural}.yaml")
            for plural in ("alluxioruntimes", "datasets", "dataloads")
        ),
        reference_dirs={"1.0.8": "crds/fluid"},
        reference_notes={
            "1.0.8": "The reference copy is from main after v1.0.8; these three kinds' schemas "
            "are unchanged since the tag."
        },
    ),
    CrdFamily(
        name="gateway-api",
        chart_pin=None,  # the Gateway is installed outside the stack; HTTPRoute v1 is GA
        repository="kubernetes-sigs/gateway-api",
        ref="v{version}",
        path="config/crd/standard",
        files=(CrdFile("gateway.networking.k8s.io_httproutes.yaml"),),
        reference_dirs={"1.6.1": "crds/gateway-api"},
        fixed_versions=("1.6.1",),
    ),
    CrdFamily(
        name="keda",
        chart_pin="keda",
        repository="kedacore/keda",
        ref="v{version}",
        path="config/crd/bases",
        files=(CrdFile("keda.sh_scaledobjects.yaml"),),
        reference_dirs={"2.20.2": "crds/keda"},
        reference_notes={
            "2.20.2": "The base CRD: the release build also bounds the HPA stabilization "
            "windows (0-3600)."
        },
    ),
    CrdFamily(
        name="karpenter",
        chart_pin="karpenter",
        repository="aws/karpenter-provider-aws",
        ref="v{version}",
        path="pkg/apis/crds",
        files=(
            CrdFile("karpenter.sh_nodepools.yaml"),
            CrdFile("karpenter.k8s.aws_ec2nodeclasses.yaml"),
        ),
        reference_dirs={"1.14.1": "crds/karpenter"},
    ),
    CrdFamily(
        name="kube-prometheus-stack",
        chart_pin="kube_prometheus_stack",
        repository="prometheus-community/helm-charts",
        ref="kube-prometheus-stack-{version}",
        path="charts/kube-prometheus-stack/charts/crds/crds",
        files=tuple(
            CrdFile(f"crd-{plural}.yaml", f"monitoring.coreos.com_{plural}.yaml")
            for plural in ("podmonitors", "prometheusrules")
        ),
        reference_dirs={"88.5.3": "crds/prometheus-operator"},
        reference_notes={
            "88.5.3": "The reference copy is prometheus-operator v0.93.0; chart 88.5.3 vendors "
            "v0.93.1, whose schemas are the same."
        },
    ),
)


class BundleError(RuntimeError):
    pass


# --- reading the bundle (validate) -------------------------------------------------------------


@dataclass(frozen=True)
class BundleRequirement:
    family: str
    version: str
    chart_pin: str | None

    @property
    def dir_name(self) -> str:
        return f"{self.family}-{self.version}"


def required_bundles(chart_pins: Mapping[str, str]) -> list[BundleRequirement]:
    """The bundles a stack with these chart pins validates against."""
    needed = []
    for family in CRD_FAMILIES:
        if family.chart_pin is None:
            needed += [BundleRequirement(family.name, v, None) for v in family.fixed_versions]
        elif family.chart_pin in chart_pins:
            pinned = chart_pins[family.chart_pin]
            needed.append(BundleRequirement(family.name, pinned, family.chart_pin))
    return needed


@dataclass(frozen=True)
class ShippedSchemas:
    """Schemas of the bundles a stack selects, read only for the kinds a render holds."""

    files: dict[tuple[str, str], tuple[Path, str]]  # (apiVersion, kind) -> (file, version)
    missing: tuple[BundleRequirement, ...]

    @classmethod
    def for_pins(cls, chart_pins: Mapping[str, str], root: Path = BUNDLE_DIR) -> ShippedSchemas:
        files: dict[tuple[str, str], tuple[Path, str]] = {}
        missing = []
        for need in required_bundles(chart_pins):
            provenance = root / need.dir_name / PROVENANCE_FILE
            try:
                entries = json.loads(provenance.read_text())["schemas"]
            except (OSError, ValueError, KeyError):
                missing.append(need)
                continue
            for entry in entries:
                for version in entry["versions"]:
                    key = (f"{entry['group']}/{version}", entry["kind"])
                    files[key] = (root / need.dir_name / entry["file"], version)
        return cls(files, tuple(missing))

    def get(self, api_version: str, kind: str) -> dict[str, Any] | None:
        found = self.files.get((api_version, kind))
        if found is None:
            return None
        path, version = found
        return _read_schema(path)["versions"][version]

    def missing_hint(self, api_version: str) -> str:
        """Why a kind of this API group has no shipped schema, and what to do."""
        group = api_version.split("/")[0]
        for need in self.missing:
            family = next(f for f in CRD_FAMILIES if f.name == need.family)
            if any(group in file.upstream for file in family.files):
                pin = f"platform.charts.{_camel(need.chart_pin)}" if need.chart_pin else "it"
                return (
                    f"no schemas ship for {need.family} {need.version} ({pin}); run "
                    "`dynamo-infra crds fetch` on a connected machine, or give its CRD with "
                    "--crd-dir"
                )
        return "no shipped schema covers this kind; give its CRD with --crd-dir"


@functools.cache
def _read_schema(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# --- generating the bundle (crds build / crds fetch) --------------------------------------------

# Schema keywords that are prose; everything else in a structural schema is a fact.
_PROSE = {"description"}
_CEL_PROSE = {"message"}


def structural(schema: Any) -> Any:
    """The schema without its prose: descriptions everywhere, messages of CEL rules."""
    if isinstance(schema, list):
        return [structural(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE:
            continue
        if key == "properties" and isinstance(value, dict):
            # Keys of `properties` are field names (a field may be called `description`).
            result[key] = {name: structural(child) for name, child in value.items()}
        elif key == "x-kubernetes-validations":
            result[key] = [{k: v for k, v in rule.items() if k not in _CEL_PROSE} for rule in value]
        elif key in ("enum", "default", "example"):
            result[key] = value  # values, not schemas
        else:
            result[key] = structural(value)
    return result


@dataclass(frozen=True)
class GeneratedSchema:
    file: str
    group: str
    kind: str
    versions: dict[str, Any]
    source: str
    source_sha256: str

    @property
    def text(self) -> str:
        body = {"group": self.group, "kind": self.kind, "versions": self.versions}
        return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"


def schemas_of_crd_file(data: bytes, source: str) -> list[GeneratedSchema]:
    try:
        documents = load_all_trusted(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise BundleError(f"{source}: not a CRD file: {error}") from None
    found = []
    for document in documents:
        if not (isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition"):
            continue
        spec = document["spec"]
        versions = {
            version["name"]: structural(version["schema"]["openAPIV3Schema"])
            for version in spec["versions"]
            if version.get("served", True) and "schema" in version
        }
        found.append(
            GeneratedSchema(
                file=f"{spec['group']}_{spec['names']['plural']}.json",
                group=spec["group"],
                kind=spec["names"]["kind"],
                versions=versions,
                source=source,
                source_sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    if not found:
        raise BundleError(f"{source}: holds no CustomResourceDefinition")
    return found


Reader = Callable[[CrdFamily, str, CrdFile], tuple[bytes, str]]  # -> (content, source label)


def reference_reader(reference_root: Path) -> Reader:
    def read(family: CrdFamily, version: str, file: CrdFile) -> tuple[bytes, str]:
        folder = family.reference_dirs.get(version)
        if folder is None:
            raise BundleError(f"the reference data has no {family.name} {version}")
        path = reference_root / folder / file.reference_name
        try:
            return path.read_bytes(), f"reference:{folder}/{file.reference_name}"
        except OSError as error:
            raise BundleError(f"{path}: {error.strerror}") from None

    return read


def url_reader(opener: Callable[[str], bytes] | None = None) -> Reader:
    def download(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (https only)
            return bytes(response.read())

    get = opener or download

    def read(family: CrdFamily, version: str, file: CrdFile) -> tuple[bytes, str]:
        url = family.url(version, file)
        try:
            return get(url), url
        except OSError as error:
            raise BundleError(f"{url}: {error}") from None

    return read


def family_versions(family: CrdFamily, pinned: Iterable[Mapping[str, str]]) -> list[str]:
    """The versions of a family to build: its fixed ones, or every value its pin takes."""
    if family.chart_pin is None:
        return list(family.fixed_versions)
    return sorted({pins[family.chart_pin] for pins in pinned if family.chart_pin in pins})


def build_bundle(
    read: Reader, targets: Iterable[tuple[CrdFamily, str]], from_reference: bool = False
) -> dict[str, dict[str, str]]:
    """Every bundle's files in memory: {dir name: {file name: text}}; raises before any write."""
    bundles: dict[str, dict[str, str]] = {}
    for family, version in targets:
        schemas = []
        for file in family.files:
            schemas += schemas_of_crd_file(*read(family, version, file))
        provenance = {
            "family": family.name,
            "version": version,
            "chartPin": family.chart_pin,
            "release": f"https://github.com/{family.repository}/tree/"
            f"{family.ref.format(version=version)}/{family.path}",
            "stripped": "descriptions and CEL rule messages (prose); the structure is kept",
            "note": family.reference_notes.get(version, "") if from_reference else "",
            "schemas": [
                {
                    "file": schema.file,
                    "group": schema.group,
                    "kind": schema.kind,
                    "versions": sorted(schema.versions),
                    "source": schema.source,
                    "sourceSha256": schema.source_sha256,
                    "sha256": hashlib.sha256(schema.text.encode()).hexdigest(),
                }
                for schema in schemas
            ],
        }
        files = {schema.file: schema.text for schema in schemas}
        files[PROVENANCE_FILE] = json.dumps(provenance, indent=2, sort_keys=True) + "\n"
        bundles[f"{family.name}-{version}"] = files
    return bundles


def write_bundles(bundles: Mapping[str, Mapping[str, str]], root: Path = BUNDLE_DIR) -> None:
    """Replace each bundle folder whole (beside, then rename), never touching anything else.

    A folder is only replaced when it is one of ours: it holds our provenance file.
    """
    root.mkdir(parents=True, exist_ok=True)
    for name, files in bundles.items():
        target = root / name
        if target.exists() and not (target / PROVENANCE_FILE).is_file():
            raise BundleError(f"{target} exists and is not a schema bundle: not replacing it")
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the bundle from other users
        for file_name, text in files.items():
            (staging / file_name).write_text(text)
        if target.exists():
            retired = root / f".{name}.old.{os.getpid()}"
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired)  # our own bundle, renamed by us above
        else:
            staging.rename(target)


def bundle_targets(pinned: Iterable[Mapping[str, str]]) -> Iterator[tuple[CrdFamily, str]]:
    """Each family at every version a stack pins and every version the reference data holds."""
    pins = list(pinned)
    for family in CRD_FAMILIES:
        for version in sorted(set(family_versions(family, pins)) | set(family.reference_dirs)):
            yield family, version
