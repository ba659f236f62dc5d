"""`dynamo-infra preflight`: read-only AWS checks that a stack can actually come up.

The stack file may be valid and still fail at deploy time, an hour into `pulumi up`: the GPU
instance type is not offered in an availability zone, the account's vCPU quota is too small for
the pools at max size, the capacity block has not started yet (or sits in a placement group
the pool does not name), the model weights are not where the stack says (or are bigger than
the cache sized for them), the identity deploying is no cluster admin, or EKS has no such
add-on version for the cluster's Kubernetes version. Each check asks AWS one such question and
answers with a PreflightCheck naming the YAML path to edit.

Nothing here creates, changes or deletes anything; every call is a Describe/Get/List. An AWS
error (access denied, unknown id, ...) becomes a failed check naming its error code, never an
exception, so one missing permission does not hide the other answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.live.preflight_capacity import check_capacity_reservations
from infra.live.preflight_cluster import (
    check_addon_versions,
    check_caller_identity,
    check_control_plane_subnets,
)
from infra.live.preflight_result import (
    PreflightCheck,
    aws_error,
    eks_cluster,
    error_code,
    pool_path,
)
from infra.stack.config import EksCluster, NodePool, StackConfig
from infra.stack.instances import lookup
from infra.stack.model_config import Color, Model, S3Source

# Service Quotas codes (service code "ec2") of the vCPU quotas GPU pools draw from.
QUOTA_CODES: dict[tuple[str, str], tuple[str, str]] = {
    ("P", "on-demand"): ("L-417A185B", "Running On-Demand P instances"),
    ("G", "on-demand"): ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    ("P", "spot"): ("L-7212CCBC", "All P Spot Instance Requests"),
    ("G", "spot"): ("L-3819A6DF", "All G and VT Spot Instance Requests"),
}

# The model cache is sized from sizeGib; weights this much bigger would overflow it.
S3_SIZE_TOLERANCE = 0.05

GIB = 1024**3


def run_preflight(
    config: StackConfig,
    session: boto3.session.Session,
    clients: Mapping[str, Any] | None = None,
) -> list[PreflightCheck]:
    """Every AWS preflight check of an EKS stack, in a stable order.

    Returns [] for a stack on an existing cluster (`cluster.mode: existing`): it creates no AWS
    resource, so there is nothing to check here and the caller should say so.

    EC2, Service Quotas, STS, IAM and EKS are asked in the cluster's region; S3 in each source's
    region (the cluster's when the source names none). `clients` maps a service name ("ec2",
    "service-quotas", "s3", "sts", "iam", "eks") to a ready client used instead of
    `session.client(...)`, e.g. one wrapped in botocore's Stubber; the "s3" override serves
    every region.
    """
    if not isinstance(config.cluster, EksCluster):
        return []
    region = config.cluster.region
    overrides = dict(clients or {})
    made: dict[tuple[str, str], Any] = {}

    def client(service: str, client_region: str = region) -> Any:
        if service in overrides:
            return overrides[service]
        if (service, client_region) not in made:
            made[service, client_region] = session.client(service, region_name=client_region)
        return made[service, client_region]

    ec2 = client("ec2")
    checks = check_instance_offerings(config, ec2)
    checks += check_vcpu_quotas(config, client("service-quotas"), ec2)
    checks += check_capacity_reservations(config, ec2)
    checks += check_model_sources(config, lambda r: client("s3", r or region))
    checks += check_caller_identity(config, client("sts"), client("iam"))
    checks += check_addon_versions(config, client("eks"))
    checks += check_control_plane_subnets(config, ec2)
    return checks


def format_preflight_table(checks: list[PreflightCheck]) -> str:
    """An aligned text table: STATUS (PASS/FAIL), CHECK, DETAIL; failures name the path to edit."""
    header = ("STATUS", "CHECK", "DETAIL")
    rows = [
        (
            "PASS" if c.ok else "FAIL",
            c.name,
            c.detail if c.ok or not c.path else f"{c.detail} (edit {c.path})",
        )
        for c in checks
    ]
    status_width = max(len(r[0]) for r in [header, *rows])
    name_width = max(len(r[1]) for r in [header, *rows])
    lines = [
        f"{status:<{status_width}}  {name:<{name_width}}  {detail}".rstrip()
        for status, name, detail in [header, *rows]
    ]
    failed = sum(not c.ok for c in checks)
    noun = "check" if len(checks) == 1 else "checks"
    lines.append(f"{len(checks)} {noun}, {failed} failed")
    return "\n".join(lines)


# --- 1. instance type offered in the availability zones --------------------------------------


def check_instance_offerings(config: StackConfig, ec2: Any) -> list[PreflightCheck]:
    """Each pool's instance types (a Karpenter pool's alternatives too) are offered in each AZ
    its nodes may land in.

    The AZs are the pool's availabilityZone, else the VPC's availabilityZones; an existing VPC
    that lists none is checked at region level (offered anywhere in the region).
    """
    cluster = eks_cluster(config)
    checks = []
    for index, pool in enumerate(config.node_pools):
        zones = (
            [pool.availability_zone]
            if pool.availability_zone
            else list(cluster.vpc.availability_zones)
        )
        for key, instance_type in pool.instance_type_keys():
            checks.append(
                _offering_check(ec2, pool, cluster.region, zones, instance_type, index, key)
            )
    return checks


def _offering_check(
    ec2: Any,
    pool: NodePool,
    region: str,
    zones: list[str],
    instance_type: str,
    index: int,
    key: str,
) -> PreflightCheck:
    where = ", ".join(zones) if zones else f"{region} (region)"
    name = f"instance offered: {pool.name} {instance_type} in {where}"
    try:
        offered = _offered_locations(ec2, instance_type, zones)
    except (ClientError, BotoCoreError) as exc:
        return PreflightCheck(name, False, aws_error(exc), pool_path(index, key))
    if not zones:
        ok = bool(offered)
        detail = (
            f"offered in {region}"
            if ok
            else f"{instance_type} is not offered in {region}: pick another type"
        )
        return PreflightCheck(name, ok, detail, pool_path(index, key))
    missing = [z for z in zones if z not in offered]
    if not missing:
        return PreflightCheck(name, True, f"offered in {', '.join(zones)}")
    if pool.availability_zone:
        return PreflightCheck(
            name,
            False,
            f"{instance_type} is not offered in {pool.availability_zone}",
            pool_path(index, "availabilityZone"),
        )
    if len(missing) == len(zones):
        return PreflightCheck(
            name,
            False,
            f"{instance_type} is offered in none of {', '.join(zones)}",
            pool_path(index, key),
        )
    available = [z for z in zones if z not in missing]
    return PreflightCheck(
        name,
        False,
        f"not offered in {', '.join(missing)}; set availabilityZone to one of "
        f"{', '.join(available)} or pick another type",
        pool_path(index, "availabilityZone"),
    )


def _offered_locations(ec2: Any, instance_type: str, zones: list[str]) -> set[str]:
    """Where EC2 offers the type: among `zones`, or anywhere in the region when zones is []."""
    filters = [{"Name": "instance-type", "Values": [instance_type]}]
    if zones:
        filters.append({"Name": "location", "Values": zones})
    pages = ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone" if zones else "region", Filters=filters
    )
    return {
        offering["Location"]
        for page in pages
        for offering in page.get("InstanceTypeOfferings", [])
        if offering.get("InstanceType") == instance_type
    }


# --- 2. vCPU quotas ----------------------------------------------------------------------------


def quota_family(instance_type: str) -> str | None:
    """The vCPU quota family of an instance type: "P", "G" (G and VT) or None (not checked)."""
    letters = re.match(r"[a-z]+", instance_type)
    family = letters.group(0) if letters else ""
    if family.startswith("p"):
        return "P"
    if family.startswith("g") or family == "vt":
        return "G"
    return None


def check_vcpu_quotas(config: StackConfig, quotas: Any, ec2: Any) -> list[PreflightCheck]:
    """Per (P/G family, on-demand/spot): the pools' vCPUs at maxSize fit the account's quota.

    Capacity-block pools are left out: instances in a Capacity Block run on capacity bought for
    them and do not count against the On-Demand vCPU quotas. (On-demand pools that target an
    ordinary On-Demand Capacity Reservation do count, and are included.) Instance types outside
    the P and G families are not checked. vCPUs come from the instance catalog, else from EC2
    DescribeInstanceTypes (pools that state their own `gpu:` facts).
    """
    groups: dict[tuple[str, str], list[tuple[int, NodePool]]] = {}
    for index, pool in enumerate(config.node_pools):
        family = quota_family(pool.instance_type)
        if family is None or pool.capacity_type == "capacity-block":
            continue
        groups.setdefault((family, pool.capacity_type), []).append((index, pool))

    vcpu_cache: dict[str, int] = {}
    checks = []
    for (family, option), members in sorted(groups.items()):
        code, title = QUOTA_CODES[(family, option)]
        name = f"vCPU quota: {title} ({code})"
        paths = ", ".join(pool_path(i, "maxSize") for i, _ in members)
        try:
            # A Karpenter pool may launch its largest type on every node.
            parts = [
                (pool, max(_vcpus(ec2, t, vcpu_cache) for t in pool.instance_types))
                for _, pool in members
            ]
        except (ClientError, BotoCoreError, LookupError) as exc:
            detail = f"vCPUs of an instance type unknown: {aws_error(exc)}"
            checks.append(PreflightCheck(name, False, detail, paths))
            continue
        needed = sum(vcpus * pool.max_size for pool, vcpus in parts)
        breakdown = ", ".join(f"{pool.name} {pool.max_size} x {vcpus}" for pool, vcpus in parts)
        try:
            value, source = _quota_value(quotas, code)
        except (ClientError, BotoCoreError) as exc:
            checks.append(PreflightCheck(name, False, aws_error(exc), paths))
            continue
        if needed <= value:
            detail = f"needs {needed} vCPUs at maxSize ({breakdown}); {source} is {value:g}"
            checks.append(PreflightCheck(name, True, detail))
        else:
            detail = (
                f"needs {needed} vCPUs at maxSize ({breakdown}) but {source} is {value:g}: "
                f"request an increase of {code} or lower maxSize"
            )
            checks.append(PreflightCheck(name, False, detail, paths))
    return checks


def _vcpus(ec2: Any, instance_type: str, cache: dict[str, int]) -> int:
    if instance_type not in cache:
        entry = lookup(instance_type)
        if entry is not None and entry.vcpu > 0:
            cache[instance_type] = entry.vcpu
        else:
            answer = ec2.describe_instance_types(InstanceTypes=[instance_type])
            types = answer.get("InstanceTypes", [])
            if not types:
                raise LookupError(f"EC2 does not describe {instance_type}")
            cache[instance_type] = int(types[0]["VCpuInfo"]["DefaultVCpus"])
    return cache[instance_type]


def _quota_value(quotas: Any, code: str) -> tuple[float, str]:
    """The account's applied value of an EC2 quota, else the AWS default when none is applied."""
    try:
        quota = quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
        return float(quota["Value"]), "the quota"
    except ClientError as exc:
        if error_code(exc) != "NoSuchResourceException":
            raise
    quota = quotas.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
    return float(quota["Value"]), "the default quota"


# --- 4. model weights in S3 ------------------------------------------------------------------


def check_model_sources(
    config: StackConfig, s3_for_region: Callable[[str | None], Any]
) -> list[PreflightCheck]:
    """Each S3 model source (every slot's) holds objects, and no more than sizeGib + 5%.

    `s3_for_region(region)` gives an S3 client for the source's region (None: the cluster's).
    The model cache's quota is derived from sizeGib, so weights bigger than it would overflow
    the cache; the detail then says the measured size and the sizeGib to set.
    """
    checks = []
    for index, model in enumerate(config.models):
        for source, colors, path in _s3_sources(index, model):
            checks.append(_check_s3_source(model, source, colors, path, s3_for_region))
    return checks


def _s3_sources(index: int, model: Model) -> Iterable[tuple[S3Source, list[Color], str]]:
    """Distinct S3 sources of a model's slots: (source, colors using it, YAML path of it)."""
    seen: dict[tuple[str, str | None, float], tuple[S3Source, list[Color], str]] = {}
    for color in model.slots:
        source = model.source_for(color).s3
        if source is None:
            continue
        own = model.slots[color].source is not None
        path = f"models[{index}].slots.{color}.source.s3" if own else f"models[{index}].source.s3"
        key = (source.uri, source.region, source.size_gib)
        if key in seen:
            seen[key][1].append(color)
        else:
            seen[key] = (source, [color], path)
    return seen.values()


def _check_s3_source(
    model: Model,
    source: S3Source,
    colors: list[Color],
    path: str,
    s3_for_region: Callable[[str | None], Any],
) -> PreflightCheck:
    name = f"s3 model: {model.name} ({', '.join(colors)}) {source.uri}"
    # The prefix is a directory: s3://b/gpt must not count objects under gpt-v2/.
    bucket, prefix = source.bucket, f"{source.prefix}/" if source.prefix else ""
    count = 0
    total = 0
    try:
        s3 = s3_for_region(source.region)
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Contents", []):
                count += 1
                total += int(item.get("Size", 0))
    except (ClientError, BotoCoreError) as exc:
        return PreflightCheck(name, False, aws_error(exc), f"{path}.uri")
    if count == 0:
        return PreflightCheck(name, False, f"no object under s3://{bucket}/{prefix}", f"{path}.uri")
    measured = total / GIB
    found = f"{count} objects, {measured:.2f} GiB"
    if measured > source.size_gib * (1 + S3_SIZE_TOLERANCE):
        suggested = max(1, math.ceil(measured))
        detail = (
            f"{found}, more than sizeGib {source.size_gib:g} + 5%: the model cache would "
            f"overflow; set sizeGib: {suggested}"
        )
        return PreflightCheck(name, False, detail, f"{path}.sizeGib")
    return PreflightCheck(name, True, f"{found} (sizeGib {source.size_gib:g})")
