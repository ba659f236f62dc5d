"""AWS preflight checks against moto (EC2 offerings, S3, STS, IAM) and botocore's Stubber.

moto 5 implements DescribeInstanceTypeOfferings, DescribeInstanceTypes, S3 listing, STS
GetCallerIdentity and IAM GetRole; it does not implement EC2 DescribeCapacityReservations,
Service Quotas for the ec2 service code, nor EKS DescribeAddonVersions and
DescribeAddonConfiguration, so those answers come from a Stubber on the session's own client.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from infra.live.preflight import (
    check_instance_offerings,
    check_model_sources,
    check_vcpu_quotas,
    format_preflight_table,
    run_preflight,
)
from infra.live.preflight_capacity import check_capacity_reservations
from infra.live.preflight_cluster import (
    caller_principal,
    check_addon_versions,
    check_caller_identity,
    check_control_plane_subnets,
)
from infra.live.preflight_result import PreflightCheck
from infra.stack.config import StackConfig
from infra.stack.eks_versions import ADDONS, DEFAULT_ADDON_VERSIONS
from infra.stack.model_config import S3Source
from tests.unit.eks_stack import BASE, EKS_ACCESS, values
from tests.unit.helpers import parse

REGION = "us-west-2"
KIB = 1024
MIB = 1024**2


@pytest.fixture(scope="module")
def shared_session() -> Any:
    # One boto3 session for the module: each new one parses botocore's EC2 model again.
    # moto is imported first, so its handler intercepts every client made from it.
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


@pytest.fixture
def session(shared_session: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The shared session, inside a fresh moto account."""
    # The checks need no AMI; loading moto's default AMIs costs most of a test's time.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield shared_session


def stack(
    pools: list[dict[str, Any]] | None = None,
    zones: list[str] | None = None,
    **changes: Any,
) -> StackConfig:
    raw = values(**changes)
    if zones is not None:
        raw["cluster"]["vpc"] = {"availabilityZones": zones}
    if pools is not None:
        raw["nodePools"] = copy.deepcopy(BASE["nodePools"]) + pools
    return parse(raw)


def s3_stack(source: dict[str, Any], green: dict[str, Any] | None = None) -> StackConfig:
    raw = values()
    raw["models"][1]["source"] = {"s3": source}
    if green is not None:
        raw["models"][1]["slots"] = {"blue": {}, "green": {"source": {"s3": green}}}
    return parse(raw)


def by_name(checks: list[PreflightCheck], fragment: str) -> list[PreflightCheck]:
    return [c for c in checks if fragment in c.name]


# --- 1. instance type offerings (moto) -------------------------------------------------------


def test_offerings_pass_in_every_cluster_zone(session: Any) -> None:
    checks = check_instance_offerings(stack(), session.client("ec2"))
    assert [c.name for c in checks] == [
        "instance offered: l4 g6.xlarge in us-west-2a, us-west-2b",
        "instance offered: h100 p5.48xlarge in us-west-2a, us-west-2b",
    ]
    assert all(c.ok for c in checks)


def test_offerings_fail_in_the_pools_zone(session: Any) -> None:
    # moto's offerings data has no p6-b200.48xlarge in us-west-2c.
    config = stack(
        pools=[
            {"name": "b200", "instanceType": "p6-b200.48xlarge", "availabilityZone": "us-west-2c"}
        ],
        zones=["us-west-2a", "us-west-2c"],
    )
    (check,) = by_name(check_instance_offerings(config, session.client("ec2")), "b200")
    assert not check.ok
    assert check.name == "instance offered: b200 p6-b200.48xlarge in us-west-2c"
    assert "not offered in us-west-2c" in check.detail
    assert check.path == "nodePools[2].availabilityZone"


def test_offerings_name_the_missing_cluster_zones(session: Any) -> None:
    config = stack(
        pools=[{"name": "b200", "instanceType": "p6-b200.48xlarge"}],
        zones=["us-west-2a", "us-west-2c", "us-west-2z"],  # us-west-2z does not exist
    )
    checks = check_instance_offerings(config, session.client("ec2"))
    (b200,) = by_name(checks, "b200")
    assert not b200.ok
    assert b200.detail.startswith("not offered in us-west-2c, us-west-2z;")
    assert "us-west-2a" in b200.detail
    assert b200.path == "nodePools[2].availabilityZone"
    (l4,) = by_name(checks, "l4")
    assert not l4.ok and "us-west-2z" in l4.detail


def test_offerings_fail_when_offered_in_no_zone(session: Any) -> None:
    config = stack(zones=["us-west-2y", "us-west-2z"])
    checks = check_instance_offerings(config, session.client("ec2"))
    assert all(not c.ok for c in checks)
    assert checks[1].detail == "p5.48xlarge is offered in none of us-west-2y, us-west-2z"
    assert checks[1].path == "nodePools[1].instanceType"


EXISTING_VPC = {
    "mode": "eks",
    "name": "test",
    "region": REGION,
    "vpc": {
        "id": "vpc-0abc",
        "privateSubnetIds": ["subnet-a", "subnet-b"],
        "controlPlaneSubnets": [
            {"id": "subnet-c1", "cidr": "10.1.250.0/28"},
            {"id": "subnet-c2", "cidr": "10.1.250.16/28"},
        ],
    },
    **EKS_ACCESS,
}
T4_POOL = {
    "name": "t4",
    "instanceType": "g4dn.xlarge",
    "gpu": {"gpuProduct": "T4", "gpusPerNode": 1, "gpuMemoryGib": 16},
    "maxSize": 3,
}
UNKNOWN_POOL = {
    "name": "future",
    "instanceType": "p9.96xlarge",
    "gpu": {"gpuProduct": "X1", "gpusPerNode": 8, "gpuMemoryGib": 300},
}


def test_offerings_at_region_level_for_an_existing_vpc(session: Any) -> None:
    config = stack(cluster=EXISTING_VPC, pools=[UNKNOWN_POOL])
    checks = check_instance_offerings(config, session.client("ec2"))
    assert [c.ok for c in checks] == [True, True, False]
    assert checks[0].name == "instance offered: l4 g6.xlarge in us-west-2 (region)"
    assert checks[2].detail == "p9.96xlarge is not offered in us-west-2: pick another type"
    assert checks[2].path == "nodePools[2].instanceType"


def test_offerings_aws_error_is_a_failed_check(session: Any) -> None:
    ec2 = session.client("ec2")
    with Stubber(ec2) as stub:
        for _ in range(2):
            stub.add_client_error(
                "describe_instance_type_offerings", "UnauthorizedOperation", "not allowed"
            )
        checks = check_instance_offerings(stack(), ec2)
    assert [(c.ok, c.detail) for c in checks] == [
        (False, "UnauthorizedOperation: not allowed"),
        (False, "UnauthorizedOperation: not allowed"),
    ]


# --- 2. vCPU quotas (Stubber: moto's Service Quotas knows only the vpc service) ---------------


def quota_stub(sq: Any, *quotas: tuple[str, float]) -> Stubber:
    stub = Stubber(sq)
    for code, value in quotas:
        stub.add_response(
            "get_service_quota",
            {"Quota": {"ServiceCode": "ec2", "QuotaCode": code, "Value": value}},
            {"ServiceCode": "ec2", "QuotaCode": code},
        )
    return stub


def test_quotas_pass(session: Any) -> None:
    # l4: 2 x g6.xlarge (4 vCPUs) = 8 G; h100: 4 x p5.48xlarge (192 vCPUs) = 768 P.
    sq = session.client("service-quotas")
    with quota_stub(sq, ("L-DB2E81BA", 64), ("L-417A185B", 768)) as stub:
        checks = check_vcpu_quotas(stack(), sq, session.client("ec2"))
        stub.assert_no_pending_responses()
    assert [c.name for c in checks] == [
        "vCPU quota: Running On-Demand G and VT instances (L-DB2E81BA)",
        "vCPU quota: Running On-Demand P instances (L-417A185B)",
    ]
    assert all(c.ok for c in checks)
    assert checks[1].detail == "needs 768 vCPUs at maxSize (h100 4 x 192); the quota is 768"


def test_quotas_fail_when_max_size_exceeds_the_quota(session: Any) -> None:
    sq = session.client("service-quotas")
    with quota_stub(sq, ("L-DB2E81BA", 64), ("L-417A185B", 384)):
        checks = check_vcpu_quotas(stack(), sq, session.client("ec2"))
    assert [c.ok for c in checks] == [True, False]
    assert "needs 768 vCPUs" in checks[1].detail
    assert "the quota is 384" in checks[1].detail
    assert checks[1].path == "nodePools[1].maxSize"


def test_quotas_spot_and_capacity_blocks(session: Any) -> None:
    # The spot pool's vCPUs come from moto's DescribeInstanceTypes (g4dn.xlarge is not in the
    # catalog); the capacity-block pool counts against no quota.
    config = stack(
        pools=[
            {**T4_POOL, "capacityType": "spot"},
            {
                "name": "block",
                "instanceType": "p5.48xlarge",
                "capacityType": "capacity-block",
                "capacityReservationId": "cr-0123456789abcdef0",
                "availabilityZone": "us-west-2a",
                "maxSize": 16,
            },
        ]
    )
    sq = session.client("service-quotas")
    stub = quota_stub(sq, ("L-DB2E81BA", 8), ("L-3819A6DF", 8), ("L-417A185B", 768))
    with stub:
        checks = check_vcpu_quotas(config, sq, session.client("ec2"))
        stub.assert_no_pending_responses()
    spot = by_name(checks, "L-3819A6DF")[0]
    assert not spot.ok
    assert spot.name == "vCPU quota: All G and VT Spot Instance Requests (L-3819A6DF)"
    assert "needs 12 vCPUs at maxSize (t4 3 x 4)" in spot.detail
    assert spot.path == "nodePools[2].maxSize"
    on_demand_p = by_name(checks, "L-417A185B")[0]
    assert on_demand_p.ok and "768 vCPUs" in on_demand_p.detail


def test_quotas_fall_back_to_the_default_value(session: Any) -> None:
    sq = session.client("service-quotas")
    with Stubber(sq) as stub:
        stub.add_response("get_service_quota", {"Quota": {"Value": 64.0}})
        stub.add_client_error("get_service_quota", "NoSuchResourceException", "no applied value")
        stub.add_response("get_aws_default_service_quota", {"Quota": {"Value": 0.0}})
        checks = check_vcpu_quotas(stack(), sq, session.client("ec2"))
    assert not checks[1].ok
    assert "but the default quota is 0" in checks[1].detail


def test_quota_errors_are_failed_checks(session: Any) -> None:
    config = stack(pools=[{**UNKNOWN_POOL, "name": "future"}])
    sq = session.client("service-quotas")
    with Stubber(sq) as stub:
        stub.add_client_error("get_service_quota", "AccessDeniedException", "no servicequotas")
        checks = check_vcpu_quotas(config, sq, session.client("ec2"))
    g, p = checks
    assert not g.ok and g.detail == "AccessDeniedException: no servicequotas"
    # p9.96xlarge: moto's DescribeInstanceTypes rejects it before any quota is read.
    assert not p.ok and p.detail.startswith("vCPUs of an instance type unknown: ")
    assert p.path == "nodePools[1].maxSize, nodePools[2].maxSize"


# --- 3. capacity reservations (Stubber: moto lacks DescribeCapacityReservations) --------------

BLOCK_POOL = {
    "name": "block",
    "instanceType": "p5.48xlarge",
    "capacityType": "capacity-block",
    "capacityReservationId": "cr-0123456789abcdef0",
    "availabilityZone": "us-west-2a",
    "minSize": 0,
    "desiredSize": 0,
    "maxSize": 4,
}


def reservation(**changes: Any) -> dict[str, Any]:
    return {
        "CapacityReservationId": "cr-0123456789abcdef0",
        "InstanceType": "p5.48xlarge",
        "AvailabilityZone": "us-west-2a",
        "TotalInstanceCount": 4,
        "State": "active",
        "ReservationType": "capacity-block",
        "StartDate": datetime(2026, 3, 1, 11, 30, tzinfo=UTC),
        "EndDate": datetime(2026, 3, 15, 11, 30, tzinfo=UTC),
        **changes,
    }


def reservation_checks(session: Any, pool: dict[str, Any], answer: Any) -> list[PreflightCheck]:
    ec2 = session.client("ec2")
    with Stubber(ec2) as stub:
        params = {"CapacityReservationIds": [pool["capacityReservationId"]]}
        if isinstance(answer, tuple):
            stub.add_client_error("describe_capacity_reservations", *answer)
        else:
            stub.add_response(
                "describe_capacity_reservations", {"CapacityReservations": answer}, params
            )
        checks = check_capacity_reservations(stack(pools=[pool]), ec2)
        stub.assert_no_pending_responses()
    return checks


def test_capacity_block_active_and_fitting(session: Any) -> None:
    (check,) = reservation_checks(session, BLOCK_POOL, [reservation()])
    assert check.ok
    assert check.name == "capacity reservation: block cr-0123456789abcdef0"
    assert check.detail == (
        "active capacity-block reservation: 4 x p5.48xlarge in us-west-2a, "
        "ends 2026-03-15 11:30 UTC"
    )


def test_scheduled_capacity_block_fails_with_its_start(session: Any) -> None:
    (check,) = reservation_checks(session, BLOCK_POOL, [reservation(State="scheduled")])
    assert not check.ok
    assert check.detail.startswith("scheduled, starts 2026-03-01 11:30 UTC:")
    assert check.path == "nodePools[2].capacityReservationId"


def test_reservation_that_does_not_fit_the_pool(session: Any) -> None:
    pool = {**BLOCK_POOL, "maxSize": 8}
    answer = [
        reservation(
            InstanceType="p5en.48xlarge",
            AvailabilityZone="us-west-2b",
            TotalInstanceCount=2,
            ReservationType="default",
            State="expired",
        )
    ]
    checks = reservation_checks(session, pool, answer)
    assert all(not c.ok for c in checks)
    assert [c.path for c in checks] == [
        "nodePools[2].capacityReservationId",
        "nodePools[2].instanceType",
        "nodePools[2].availabilityZone",
        "nodePools[2].maxSize",
        "nodePools[2].capacityType",
    ]
    assert checks[0].detail == "state is expired, not active (ended 2026-03-15 11:30 UTC)"
    assert checks[1].detail == "reserves p5en.48xlarge, the pool asks for p5.48xlarge"
    assert checks[3].detail == "holds 2 instances, fewer than maxSize 8"


def test_a_karpenter_on_demand_pool_may_outgrow_its_reservation(session: Any) -> None:
    """Karpenter launches into the reservation first, then plain on-demand; a capacity block
    on Karpenter has nothing to overflow into."""
    on_demand = {
        "name": "block",
        "instanceType": "p5.48xlarge",
        "capacityReservationId": "cr-0123456789abcdef0",
        "availabilityZone": "us-west-2a",
        "provisioner": "karpenter",
        "maxSize": 8,
    }
    answer = [reservation(ReservationType="default")]
    (check,) = reservation_checks(session, on_demand, answer)
    assert check.ok, check.detail
    block = on_demand | {"capacityType": "capacity-block"}
    checks = reservation_checks(session, block, [reservation()])
    assert [c.detail for c in checks if not c.ok] == ["holds 4 instances, fewer than maxSize 8"]


def test_reservation_without_pool_zone_asks_to_pin_it(session: Any) -> None:
    pool = {**BLOCK_POOL, "capacityType": "on-demand", "availabilityZone": None}
    pool = {k: v for k, v in pool.items() if v is not None}
    (check,) = reservation_checks(session, pool, [reservation(ReservationType="default")])
    assert not check.ok
    assert check.detail == "the reservation is in us-west-2a only: set availabilityZone: us-west-2a"


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        (
            ("InvalidCapacityReservationId.NotFound", "The reservation ID does not exist"),
            "InvalidCapacityReservationId.NotFound: The reservation ID does not exist",
        ),
        ([], "cr-0123456789abcdef0 not found in us-west-2"),
    ],
)
def test_missing_reservation_is_a_failed_check(session: Any, answer: Any, detail: str) -> None:
    (check,) = reservation_checks(session, BLOCK_POOL, answer)
    assert (check.ok, check.detail, check.path) == (
        False,
        detail,
        "nodePools[2].capacityReservationId",
    )


# --- 4. model weights in S3 (moto) ------------------------------------------------------------


def put(s3: Any, bucket: str, keys: dict[str, int]) -> None:
    for key, size in keys.items():
        s3.put_object(Bucket=bucket, Key=key, Body=b"\0" * size)


def make_bucket(session: Any, bucket: str, region: str = REGION) -> Any:
    s3 = session.client("s3", region_name=region)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    return s3


def test_s3_prefix_with_weights_passes(session: Any) -> None:
    s3 = make_bucket(session, "models")
    put(s3, "models", {"gpt/config.json": KIB, "gpt/model.safetensors": 3 * KIB})
    put(s3, "models", {"gpt-v2/model.safetensors": 5 * KIB})  # a sibling, not under gpt/
    config = s3_stack({"uri": "s3://models/gpt", "sizeGib": 1})
    (check,) = check_model_sources(config, lambda region: s3)
    assert check.ok
    assert check.name == "s3 model: gpt-oss-120b (blue) s3://models/gpt"
    assert check.detail == "2 objects, 0.00 GiB (sizeGib 1)"


def test_s3_empty_prefix_fails(session: Any) -> None:
    s3 = make_bucket(session, "models")
    put(s3, "models", {"other/model.safetensors": MIB})
    (check,) = check_model_sources(
        s3_stack({"uri": "s3://models/gpt/", "sizeGib": 1}), lambda r: s3
    )
    assert not check.ok
    assert check.detail == "no object under s3://models/gpt/"
    assert check.path == "models[1].source.s3.uri"


def test_s3_weights_bigger_than_size_gib_fail(session: Any) -> None:
    s3 = make_bucket(session, "models")
    put(s3, "models", {"gpt/model.safetensors": 2 * MIB})
    # sizeGib 0.0015 GiB is about 1.5 MiB: 2 MiB is more than 5% over.
    (check,) = check_model_sources(
        s3_stack({"uri": "s3://models/gpt", "sizeGib": 0.0015}), lambda r: s3
    )
    assert not check.ok
    assert "more than sizeGib 0.0015 + 5%" in check.detail
    assert check.detail.endswith("set sizeGib: 1")
    assert check.path == "models[1].source.s3.sizeGib"


def test_s3_within_five_percent_passes(session: Any) -> None:
    s3 = make_bucket(session, "models")
    put(s3, "models", {"gpt/model.safetensors": 104 * KIB})  # 4% over 100 KiB
    (check,) = check_model_sources(
        s3_stack({"uri": "s3://models/gpt", "sizeGib": 100 / 1024**2}), lambda r: s3
    )
    assert check.ok


def test_s3_missing_bucket_and_access_denied(session: Any) -> None:
    s3 = session.client("s3")
    (check,) = check_model_sources(
        s3_stack({"uri": "s3://no-such-bucket/gpt", "sizeGib": 1}), lambda r: s3
    )
    assert not check.ok
    assert check.detail.startswith("NoSuchBucket: ")
    denied = session.client("s3")
    with Stubber(denied) as stub:
        stub.add_client_error("list_objects_v2", "AccessDenied", "Access Denied", 403)
        (check,) = check_model_sources(
            s3_stack({"uri": "s3://models/gpt", "sizeGib": 1}), lambda r: denied
        )
    assert (check.ok, check.detail) == (False, "AccessDenied: Access Denied")


def test_s3_each_slots_source_in_its_region(session: Any) -> None:
    home = make_bucket(session, "models")
    put(home, "models", {"gpt/model.safetensors": MIB})
    eu = make_bucket(session, "models-eu", "eu-west-1")
    put(eu, "models-eu", {"gpt/model.safetensors": MIB})
    config = s3_stack(
        {"uri": "s3://models/gpt", "sizeGib": 1},
        green={"uri": "s3://models-eu/gpt", "region": "eu-west-1", "sizeGib": 1},
    )
    asked: list[str | None] = []

    def s3_for(region: str | None) -> Any:
        asked.append(region)
        return eu if region == "eu-west-1" else home

    checks = check_model_sources(config, s3_for)
    assert asked == [None, "eu-west-1"]
    assert [c.name for c in checks] == [
        "s3 model: gpt-oss-120b (blue) s3://models/gpt",
        "s3 model: gpt-oss-120b (green) s3://models-eu/gpt",
    ]
    assert all(c.ok for c in checks)


def test_s3_source_bucket_and_prefix() -> None:
    def parts(uri: str) -> tuple[str, str]:
        source = S3Source(uri=uri, size_gib=1)
        return source.bucket, source.prefix

    assert parts("s3://bkt/a/b/") == ("bkt", "a/b")
    assert parts("s3://bkt/a") == ("bkt", "a")
    assert parts("s3://bucket") == ("bucket", "")


# --- 3b. a reservation's placement group (Stubber) -------------------------------------------

BLOCK_GROUP_ARN = "arn:aws:ec2:us-west-2:123456789012:placement-group/h100-block"


def test_a_reservation_in_a_placement_group_needs_the_pool_to_name_it(session: Any) -> None:
    (check,) = reservation_checks(
        session, BLOCK_POOL, [reservation(PlacementGroupArn=BLOCK_GROUP_ARN)]
    )
    assert not check.ok
    assert check.path == "nodePools[2].reservationPlacementGroup"
    assert check.detail.endswith("set reservationPlacementGroup: h100-block")


def test_a_pool_naming_its_reservations_placement_group_passes(session: Any) -> None:
    pool = {**BLOCK_POOL, "reservationPlacementGroup": "h100-block"}
    (check,) = reservation_checks(session, pool, [reservation(PlacementGroupArn=BLOCK_GROUP_ARN)])
    assert check.ok
    assert check.detail.endswith(", in placement group h100-block")


@pytest.mark.parametrize(
    ("reserved_in", "detail"),
    [
        (None, "the reservation is in no placement group, but the pool would launch into "),
        (
            "arn:aws:ec2:us-west-2:123456789012:placement-group/other",
            "the reservation is in placement group other, the pool names h100-block",
        ),
    ],
)
def test_a_pool_naming_another_placement_group_fails(
    session: Any, reserved_in: str | None, detail: str
) -> None:
    pool = {**BLOCK_POOL, "reservationPlacementGroup": "h100-block"}
    answer = reservation() | ({"PlacementGroupArn": reserved_in} if reserved_in else {})
    (check,) = reservation_checks(session, pool, [answer])
    assert not check.ok and check.detail.startswith(detail)
    assert check.path == "nodePools[2].reservationPlacementGroup"


# --- 5. the caller is a cluster admin (moto STS and IAM, Stubber) ------------------------------

ACCOUNT = "123456789012"  # moto's


def caller_checks(session: Any, caller_arn: str, admins: list[str], iam: Any = None) -> Any:
    sts = session.client("sts")
    with Stubber(sts) as stub:
        stub.add_response(
            "get_caller_identity", {"Arn": caller_arn, "Account": ACCOUNT, "UserId": "AROAEXAMPLE"}
        )
        raw = values()
        raw["cluster"]["adminPrincipalArns"] = admins
        return check_caller_identity(parse(raw), sts, iam or session.client("iam"))


def test_a_role_session_acts_as_its_role_with_its_path(session: Any) -> None:
    session.client("iam").create_role(
        RoleName="ops", Path="/platform/", AssumeRolePolicyDocument="{}"
    )
    admin = f"arn:aws:iam::{ACCOUNT}:role/platform/ops"
    (check,) = caller_checks(session, f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/ci-run-42", [admin])
    assert check.ok
    assert check.detail == (
        f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/ci-run-42 (role {admin}) is in "
        "cluster.adminPrincipalArns"
    )


def test_without_iam_get_role_the_role_is_matched_by_name(session: Any) -> None:
    iam = session.client("iam")
    with Stubber(iam) as stub:
        stub.add_client_error("get_role", "AccessDenied", "no iam:GetRole")
        principal, exact = caller_principal(
            f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/ci-run-42", iam
        )
    assert (principal, exact) == (f"arn:aws:iam::{ACCOUNT}:role/ops", False)
    with Stubber(iam) as stub:
        stub.add_client_error("get_role", "AccessDenied", "no iam:GetRole")
        (check,) = caller_checks(
            session,
            f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/ci-run-42",
            [f"arn:aws:iam::{ACCOUNT}:role/platform/ops"],
            iam,
        )
    assert check.ok


def test_a_caller_outside_the_admins_is_told_it_will_have_no_access(session: Any) -> None:
    # moto answers GetCallerIdentity as the IAM user "moto".
    checks = check_caller_identity(stack(), session.client("sts"), session.client("iam"))
    (check,) = checks
    assert not check.ok
    assert check.path == "cluster.adminPrincipalArns"
    assert check.detail.startswith(
        f"arn:aws:sts::{ACCOUNT}:user/moto is not in cluster.adminPrincipalArns: the cluster "
        "gives its creator no access of its own, so this identity will have none"
    )


def test_the_callers_identity_unknown_is_a_failed_check(session: Any) -> None:
    sts = session.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error("get_caller_identity", "ExpiredToken", "The security token expired")
        (check,) = check_caller_identity(stack(), sts, session.client("iam"))
    assert (check.ok, check.detail) == (False, "ExpiredToken: The security token expired")


# --- 6. add-on versions for the cluster's Kubernetes version (Stubber) -------------------------

VPC_CNI_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enableNetworkPolicy": {"type": "string", "enum": ["true", "false"]},
        "env": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "NETWORK_POLICY_ENFORCING_MODE": {"type": "string", "enum": ["standard", "strict"]}
            },
        },
    },
}


def addon_stub(
    eks: Any, offered: dict[str, list[str]] | None = None, schema: dict | None = None
) -> Stubber:
    """DescribeAddonVersions answering the pinned default of every add-on (or `offered`), and
    DescribeAddonConfiguration answering `schema` for the VPC CNI."""
    pinned = DEFAULT_ADDON_VERSIONS["1.35"]
    stub = Stubber(eks)
    for addon in ADDONS:
        versions = (offered or {}).get(addon, [pinned[addon]])
        listed = [
            {
                "addonVersion": v,
                "compatibilities": [{"clusterVersion": "1.35", "defaultVersion": i == 0}],
            }
            for i, v in enumerate(versions)
        ]
        stub.add_response(
            "describe_addon_versions",
            {"addons": [{"addonName": addon, "addonVersions": listed}]},
            {"kubernetesVersion": "1.35", "addonName": addon},
        )
        if addon == "vpc-cni" and pinned[addon] in versions:
            stub.add_response(
                "describe_addon_configuration",
                {
                    "addonName": addon,
                    "addonVersion": pinned[addon],
                    "configurationSchema": json.dumps(schema or VPC_CNI_SCHEMA),
                },
                {"addonName": addon, "addonVersion": pinned[addon]},
            )
    return stub


def test_pinned_addon_versions_are_offered_and_take_our_configuration(session: Any) -> None:
    eks = session.client("eks")
    with addon_stub(eks) as stub:
        checks = check_addon_versions(stack(), eks)
        stub.assert_no_pending_responses()
    assert [c.name for c in checks] == [
        f"add-on: {addon} {DEFAULT_ADDON_VERSIONS['1.35'][addon]} on Kubernetes 1.35"
        for addon in ADDONS
    ]
    assert all(c.ok for c in checks)
    assert checks[0].detail == "offered (default v1.21.1-eksbuild.3)"


def test_an_addon_version_eks_does_not_offer_fails_with_its_default(session: Any) -> None:
    eks = session.client("eks")
    with addon_stub(eks, offered={"kube-proxy": ["v1.35.3-eksbuild.2"]}):
        checks = check_addon_versions(stack(), eks)
    (failed,) = [c for c in checks if not c.ok]
    assert failed.path == "cluster.addons.kubeProxy"
    assert failed.detail == (
        "EKS offers no kube-proxy v1.35.0-eksbuild.2 for Kubernetes 1.35; its default is "
        "v1.35.3-eksbuild.2"
    )


def test_configuration_the_addons_schema_refuses_fails(session: Any) -> None:
    strict_less = copy.deepcopy(VPC_CNI_SCHEMA)
    strict_less["properties"]["env"]["properties"] = {}
    eks = session.client("eks")
    with addon_stub(eks, schema=strict_less):
        checks = check_addon_versions(stack(), eks)
    (failed,) = [c for c in checks if not c.ok]
    assert failed.path == "cluster.addons.vpcCni"
    assert "NETWORK_POLICY_ENFORCING_MODE" in failed.detail


# --- run_preflight and the table -------------------------------------------------------------


class Ec2WithReservations:
    """moto's EC2 client, with DescribeCapacityReservations answered by a stubbed client."""

    def __init__(self, moto_ec2: Any, stubbed: Any) -> None:
        self._moto = moto_ec2
        self.describe_capacity_reservations = stubbed.describe_capacity_reservations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._moto, name)


def test_run_preflight_end_to_end(session: Any) -> None:
    s3 = make_bucket(session, "models")
    put(s3, "models", {"gpt/model.safetensors": 2 * MIB})
    raw = values()
    raw["nodePools"] = [*copy.deepcopy(BASE["nodePools"]), BLOCK_POOL]
    raw["models"][1]["source"] = {"s3": {"uri": "s3://models/gpt", "sizeGib": 1}}
    config = parse(raw)
    sq = session.client("service-quotas")
    reservations = session.client("ec2")
    with (
        quota_stub(sq, ("L-DB2E81BA", 64), ("L-417A185B", 384)),
        Stubber(reservations) as stub,
    ):
        stub.add_response(
            "describe_capacity_reservations", {"CapacityReservations": [reservation()]}
        )
        ec2 = Ec2WithReservations(session.client("ec2"), reservations)
        session.client("iam").create_role(RoleName="deploy", AssumeRolePolicyDocument="{}")
        sts = session.client("sts")
        eks = session.client("eks")
        with Stubber(sts) as caller, addon_stub(eks):
            caller.add_response(
                "get_caller_identity",
                {"Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/ci", "Account": ACCOUNT},
            )
            clients = {"service-quotas": sq, "ec2": ec2, "sts": sts, "eks": eks}
            checks = run_preflight(config, session, clients=clients)
    assert [(c.name.split(":")[0], c.ok) for c in checks] == [
        ("instance offered", True),
        ("instance offered", True),
        ("instance offered", True),
        ("vCPU quota", True),
        ("vCPU quota", False),
        ("capacity reservation", True),
        ("s3 model", True),
        ("cluster access", True),
        *[("add-on", True)] * len(ADDONS),
    ]
    table = format_preflight_table(checks)
    lines = table.splitlines()
    assert lines[0].split() == ["STATUS", "CHECK", "DETAIL"]
    assert lines[-1] == "13 checks, 1 failed"
    # Every detail starts in one column.
    column = lines[0].index("DETAIL")
    assert all(line[column - 2 : column] == "  " for line in lines[1:-1])
    failed = next(line for line in lines if line.startswith("FAIL"))
    assert "L-417A185B" in failed
    assert failed.endswith("(edit nodePools[1].maxSize)")


def test_run_preflight_makes_its_own_clients(session: Any) -> None:
    # No pool, so no offering, quota or reservation call; S3, STS and EKS are asked (moto
    # answers STS as the user "moto", and has no DescribeAddonVersions).
    s3 = make_bucket(session, "models")
    put(s3, "models", {"gpt/model.safetensors": MIB})
    raw = values(nodePools=[])
    raw["models"] = [
        {
            "name": "gpt",
            "engine": "mocker",
            "image": "nvcr.io/nvidia/ai-dynamo/tensorrtllm-runtime:1.1.0",
            "source": {"s3": {"uri": "s3://models/gpt", "sizeGib": 1}},
        }
    ]
    checks = run_preflight(parse(raw), session)
    assert [(c.name.split(":")[0], c.ok) for c in checks] == [
        ("s3 model", True),
        ("cluster access", False),
        *[("add-on", False)] * len(ADDONS),
    ]
    assert checks[-1].detail == "404: Not yet implemented"


def test_run_preflight_skips_existing_clusters(session: Any) -> None:
    config = parse(values(cluster={"mode": "existing"}))
    assert run_preflight(config, session) == []


def test_table_of_no_checks() -> None:
    assert format_preflight_table([]) == "STATUS  CHECK  DETAIL\n0 checks, 0 failed"


# --- control-plane subnets of an existing VPC (moto) -------------------------------------------


def existing_vpc_stack(session: Any, **subnet_changes: Any) -> tuple[StackConfig, Any]:
    """A stack on a moto VPC with two control-plane subnets; `subnet_changes` bend what the
    stack says about the second one."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    made = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]
        for cidr, zone in (("10.1.250.0/28", "us-west-2a"), ("10.1.250.16/28", "us-west-2b"))
    ]
    subnets = [{"id": s["SubnetId"], "cidr": s["CidrBlock"]} for s in made]
    subnets[1] |= subnet_changes
    raw = values()
    raw["cluster"]["vpc"] = {
        "id": vpc,
        "privateSubnetIds": ["subnet-a", "subnet-b"],
        "controlPlaneSubnets": subnets,
    }
    return parse(raw), ec2


def test_control_plane_subnets_holding_only_eks_interfaces_pass(session: Any) -> None:
    config, ec2 = existing_vpc_stack(session)
    subnet = config.cluster.vpc.control_plane_subnets[0].id
    ec2.create_network_interface(SubnetId=subnet, Description="Amazon EKS test")
    (check,) = check_control_plane_subnets(config, ec2)
    assert check.ok, check.detail
    assert check.detail.endswith("2 zones, EKS's interfaces only")


def test_control_plane_subnets_that_differ_from_the_stack_fail(session: Any) -> None:
    config, ec2 = existing_vpc_stack(session, cidr="10.1.250.32/28")
    subnet = config.cluster.vpc.control_plane_subnets[0].id
    other = ec2.create_network_interface(SubnetId=subnet, Description="a load balancer")
    (check,) = check_control_plane_subnets(config, ec2)
    assert not check.ok
    assert check.path == "cluster.vpc.controlPlaneSubnets"
    second = config.cluster.vpc.control_plane_subnets[1].id
    assert f"{second} is 10.1.250.16/28, the stack says 10.1.250.32/28" in check.detail
    interface = other["NetworkInterface"]["NetworkInterfaceId"]
    assert check.detail.endswith(
        f"other network interfaces, which NetworkPolicies would take for the API server: "
        f"{interface} (a load balancer)"
    )


def test_control_plane_subnets_are_checked_only_on_an_existing_vpc(session: Any) -> None:
    assert check_control_plane_subnets(stack(), session.client("ec2")) == []


def test_offerings_check_every_type_a_karpenter_pool_may_launch(session: Any) -> None:
    # moto's offerings data has p5en.48xlarge in us-west-2a and p5e.48xlarge only in us-west-2c.
    config = stack(
        pools=[
            {
                "name": "h200",
                "instanceType": "p5en.48xlarge",
                "provisioner": "karpenter",
                "maxSize": 2,
                "alternativeInstanceTypes": ["p5e.48xlarge"],
                "availabilityZone": "us-west-2a",
            }
        ],
    )
    checks = by_name(check_instance_offerings(config, session.client("ec2")), "h200")
    assert [c.name for c in checks] == [
        "instance offered: h200 p5en.48xlarge in us-west-2a",
        "instance offered: h200 p5e.48xlarge in us-west-2a",
    ]
    assert checks[0].ok and not checks[1].ok
    assert "p5e.48xlarge is not offered in us-west-2a" in checks[1].detail
