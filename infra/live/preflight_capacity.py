"""Preflight: capacity reservations and Capacity Blocks exist, run now, and fit their pools."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra.live.preflight_result import PreflightCheck, aws_error, eks_cluster, pool_path, when
from infra.stack.config import NodePool, StackConfig


def check_capacity_reservations(config: StackConfig, ec2: Any) -> list[PreflightCheck]:
    """Each pool's capacityReservationId exists, is active, and fits the pool.

    Fits: same instance type, in the pool's availability zone, at least maxSize instances
    (a Capacity Block is fixed-size; a targeted reservation launches no more than it holds;
    a Karpenter on-demand pool launches what does not fit as plain on-demand),
    and capacityType capacity-block exactly when the reservation is a Capacity Block.

    A reservation made in a placement group launches its instances only into that group
    (DescribeCapacityReservations PlacementGroupArn): the pool's reservationPlacementGroup must
    name it, and must not name one the reservation is not in (a capacity block's instances are
    never in a placement group made later).

    A reservation that is only `scheduled` (a Capacity Block bought for a future window) fails
    with its start date: no node can launch into it before then, so a deploy now would leave the
    pool empty. Any other state but `active` fails too.

    One passing check per sound reservation; otherwise one failed check per problem, each with
    the path to edit.
    """
    checks = []
    for index, pool in enumerate(config.node_pools):
        reservation_id = pool.capacity_reservation_id
        if not reservation_id:
            continue
        name = f"capacity reservation: {pool.name} {reservation_id}"
        try:
            answer = ec2.describe_capacity_reservations(CapacityReservationIds=[reservation_id])
            found = answer.get("CapacityReservations", [])
        except (ClientError, BotoCoreError) as exc:
            checks.append(
                PreflightCheck(
                    name, False, aws_error(exc), pool_path(index, "capacityReservationId")
                )
            )
            continue
        if not found:
            checks.append(
                PreflightCheck(
                    name,
                    False,
                    f"{reservation_id} not found in {eks_cluster(config).region}",
                    pool_path(index, "capacityReservationId"),
                )
            )
            continue
        problems = _reservation_problems(index, pool, found[0])
        if problems:
            checks += [PreflightCheck(name, False, detail, path) for detail, path in problems]
        else:
            r = found[0]
            detail = (
                f"active {r.get('ReservationType', 'default')} reservation: "
                f"{r.get('TotalInstanceCount')} x {r.get('InstanceType')} in "
                f"{r.get('AvailabilityZone')}"
            )
            if r.get("EndDate") is not None:
                detail += f", ends {when(r.get('EndDate'))}"
            if pool.reservation_placement_group:
                detail += f", in placement group {pool.reservation_placement_group}"
            checks.append(PreflightCheck(name, True, detail))
    return checks


def _reservation_problems(index: int, pool: NodePool, r: dict[str, Any]) -> list[tuple[str, str]]:
    """(detail, path) per way the reservation does not serve the pool."""
    problems: list[tuple[str, str]] = []
    state = r.get("State", "unknown")
    if state == "scheduled":
        problems.append(
            (
                f"scheduled, starts {when(r.get('StartDate'))}: no node can launch into it "
                "before then",
                pool_path(index, "capacityReservationId"),
            )
        )
    elif state != "active":
        detail = f"state is {state}, not active"
        if state == "expired" and r.get("EndDate") is not None:
            detail += f" (ended {when(r.get('EndDate'))})"
        problems.append((detail, pool_path(index, "capacityReservationId")))
    instance_type = r.get("InstanceType")
    if instance_type != pool.instance_type:
        problems.append(
            (
                f"reserves {instance_type}, the pool asks for {pool.instance_type}",
                pool_path(index, "instanceType"),
            )
        )
    zone = r.get("AvailabilityZone")
    if pool.availability_zone is None:
        problems.append(
            (
                f"the reservation is in {zone} only: set availabilityZone: {zone}",
                pool_path(index, "availabilityZone"),
            )
        )
    elif zone != pool.availability_zone:
        problems.append(
            (
                f"the reservation is in {zone}, the pool in {pool.availability_zone}",
                pool_path(index, "availabilityZone"),
            )
        )
    total = int(r.get("TotalInstanceCount", 0))
    # Karpenter launches an on-demand pool's nodes past the reservation as plain on-demand.
    overflows_to_on_demand = pool.karpenter_managed and not pool.capacity_block
    if pool.max_size > total and not overflows_to_on_demand:
        problems.append(
            (
                f"holds {total} instances, fewer than maxSize {pool.max_size}",
                pool_path(index, "maxSize"),
            )
        )
    problems += _placement_group_problems(index, pool, r)
    is_block = r.get("ReservationType") == "capacity-block"
    if is_block != (pool.capacity_type == "capacity-block"):
        kind = "a Capacity Block" if is_block else "an On-Demand Capacity Reservation"
        problems.append(
            (
                f"it is {kind}, but capacityType is {pool.capacity_type}",
                pool_path(index, "capacityType"),
            )
        )
    return problems


def _placement_group_problems(
    index: int, pool: NodePool, r: dict[str, Any]
) -> list[tuple[str, str]]:
    arn = r.get("PlacementGroupArn")
    reserved_in = str(arn).rsplit("/", 1)[-1] if arn else None
    stated = pool.reservation_placement_group
    if reserved_in == stated:
        return []
    path = pool_path(index, "reservationPlacementGroup")
    if stated is None:
        detail = (
            f"the reservation was made in placement group {reserved_in}, and its instances "
            f"launch only there: set reservationPlacementGroup: {reserved_in}"
        )
    elif reserved_in is None:
        detail = (
            f"the reservation is in no placement group, but the pool would launch into "
            f"{stated}, where it holds no instance: remove reservationPlacementGroup"
        )
    else:
        detail = f"the reservation is in placement group {reserved_in}, the pool names {stated}"
    return [(detail, path)]
