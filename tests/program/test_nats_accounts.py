"""Per-model NATS accounts: every graph pod logs in as its own namespace, and the NATS the stack
runs reads those accounts from a mounted Secret (components/nats_accounts.py)."""

from __future__ import annotations

import re

import pytest

from components.nats_accounts import (
    ACCOUNTS_FILE,
    ACCOUNTS_MOUNT,
    ACCOUNTS_SECRET,
    CREDENTIALS_SECRET,
    accounts_conf,
)
from components.platform import build_dynamo_platform_values
from infra.specs import nats_account_namespaces
from infra.stack.platform_config import NatsSpec, PlatformSpec
from tests.conftest import ENVIRONMENT_STACKS, Rendered
from tests.dgd_layouts import services
from tests.unit.eks_stack import values
from tests.unit.helpers import parse


def _credentials(rendered: Rendered) -> set[str]:
    return {
        s["metadata"]["namespace"]
        for s in rendered.objects("Secret")
        if s["metadata"]["name"] == CREDENTIALS_SECRET
    }


@pytest.mark.parametrize("stack", ENVIRONMENT_STACKS)
def test_every_graph_pod_logs_in_as_its_namespace(
    rendered: dict[str, Rendered], stack: str
) -> None:
    out = rendered[stack]
    dgds = out.objects("DynamoGraphDeployment")
    with_credentials = _credentials(out)
    assert with_credentials == {d["metadata"]["namespace"] for d in dgds}
    for dgd in dgds:
        for name, view in services(dgd).items():
            logins = {
                e["name"]: e["valueFrom"]["secretKeyRef"]
                for e in view.container.env
                if e["name"].startswith("NATS_AUTH_")
            }
            assert logins == {
                "NATS_AUTH_USERNAME": {"name": CREDENTIALS_SECRET, "key": "username"},
                "NATS_AUTH_PASSWORD": {"name": CREDENTIALS_SECRET, "key": "password"},
            }, (dgd["metadata"]["name"], name)
    (server,) = [s for s in out.objects("Secret") if s["metadata"]["name"] == ACCOUNTS_SECRET]
    assert list(server["stringData"]) == [ACCOUNTS_FILE]
    (platform,) = [
        out.load(r)
        for r in out.of_type("kubernetes:helm.sh/v3:Release")
        if r["name"] == "dynamo-platform"
    ]
    nats = platform["values"]["nats"]
    assert nats["config"]["merge"]["accounts$include"] == f"../nats-accounts/{ACCOUNTS_FILE}"
    (mount,) = [p["value"] for p in nats["container"]["patch"]]
    assert mount["mountPath"] == ACCOUNTS_MOUNT and "subPath" not in mount
    (volume,) = [p["value"] for p in nats["podTemplate"]["patch"]]
    assert volume == {"name": mount["name"], "secret": {"secretName": ACCOUNTS_SECRET}}


def test_the_accounts_file_gives_each_namespace_its_account_user_and_jetstream() -> None:
    conf = accounts_conf({"qwen3-0-6b": "$2a$11$abc", "deepseek-r1": "$2a$11$def"})
    accounts = re.findall(
        r'"([\w-]+)": \{\n    jetstream: enabled\n    users: \[\{user: "([\w-]+)", '
        r'password: "(\$2a\$11\$\w+)"\}\]\n  \}',
        conf,
    )
    assert accounts == [
        ("deepseek-r1", "deepseek-r1", "$2a$11$def"),
        ("qwen3-0-6b", "qwen3-0-6b", "$2a$11$abc"),
    ]
    assert conf.startswith("accounts {\n") and conf.endswith("}\n")


def test_a_nats_the_stack_does_not_run_gets_no_accounts() -> None:
    raw = values()
    raw["platform"] = {"nats": {"externalUrl": "nats://nats.example:4222"}}
    assert nats_account_namespaces(parse(raw)) == ()
    off = values()
    off["platform"] = {"nats": {"perModelAccounts": False}}
    assert nats_account_namespaces(parse(off)) == ()
    assert nats_account_namespaces(parse(values()))  # on by default
    with pytest.raises(ValueError, match="perModelAccounts configures the NATS the stack runs"):
        NatsSpec.model_validate(
            {"externalUrl": "nats://nats.example:4222", "perModelAccounts": True}
        )
    dumped = build_dynamo_platform_values(PlatformSpec()).dump()["nats"]
    assert "accounts$include" not in dumped["config"]["merge"]
    assert "container" not in dumped and "podTemplate" not in dumped
