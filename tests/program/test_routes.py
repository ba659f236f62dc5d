"""HTTPRoutes on a shared Gateway: each model answers its own hostname only, so no route can take
another model's requests (a route without hostnames matches every request)."""

from __future__ import annotations

import pytest

from infra.stack.errors import StackConfigError
from tests.conftest import Rendered
from tests.unit.helpers import parse, values


def test_every_route_answers_one_hostname_and_no_two_overlap(
    rendered: dict[str, Rendered],
) -> None:
    checked = 0
    for stack, render in rendered.items():
        seen: dict[str, str] = {}
        for route in render.objects("HTTPRoute"):
            hostnames = route["spec"].get("hostnames", [])
            assert len(hostnames) == 1 and "*" not in hostnames[0], (stack, route["metadata"])
            model = route["metadata"]["name"]
            assert hostnames[0].startswith(f"{model}."), hostnames
            assert hostnames[0] not in seen, (stack, hostnames[0], seen.get(hostnames[0]))
            seen[hostnames[0]] = model
            checked += 1
    assert checked >= 4


def test_a_gateway_without_a_domain_is_refused() -> None:
    raw = values()
    raw["traffic"] = {"gateway": {"name": "inference", "namespace": "gateway"}}
    with pytest.raises(StackConfigError) as caught:
        parse(raw)
    assert any(i.path == "traffic.gateway.domain" for i in caught.value.issues)
