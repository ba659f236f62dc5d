"""Per-model NATS accounts: each model namespace logs in to the platform's NATS as an account of
its own, so its pods cannot publish or subscribe on another model's subjects (NATS keeps accounts
apart; JetStream too, enabled per account).

The server side is one Secret in the platform namespace holding an `accounts { }` block with
bcrypt hashes, mounted into the NATS pods and included by their config: the chart's config
reloader re-reads it when the Secret changes, so adding a model reloads NATS without a restart.
Each model namespace gets a Secret with its user name and password, read by every container of
its graphs as NATS_AUTH_USERNAME / NATS_AUTH_PASSWORD, the credentials Dynamo's runtime logs in
with (ai-dynamo/dynamo lib/runtime/src/transports/nats.rs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

ACCOUNTS_SECRET = "nats-accounts"
ACCOUNTS_FILE = "accounts.conf"
ACCOUNTS_VOLUME = "nats-accounts"
# Under /etc/, the only mounts the chart's reloader sees; the include path is relative to the
# chart's config directory, /etc/nats-config.
ACCOUNTS_MOUNT = "/etc/nats-accounts"
ACCOUNTS_INCLUDE = f"../nats-accounts/{ACCOUNTS_FILE}"
CREDENTIALS_SECRET = "nats-credentials"
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
PASSWORD_LENGTH = 40


def accounts_conf(password_hashes: Mapping[str, str]) -> str:
    """The accounts block: per namespace an account of that name with JetStream, and one user of
    that name. Names are quoted (namespaces have hyphens), and so are the bcrypt hashes, which
    NATS would otherwise read as variables."""
    lines = ["accounts {"]
    for account in sorted(password_hashes):
        lines += [
            f'  "{account}": {{',
            "    jetstream: enabled",
            f'    users: [{{user: "{account}", password: "{password_hashes[account]}"}}]',
            "  }",
        ]
    return "\n".join([*lines, "}"]) + "\n"


def credential_envs(secret: str) -> list[dict]:
    """The graph's env that logs its pods in with the namespace's credentials."""
    return [
        {"name": env, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for env, key in (("NATS_AUTH_USERNAME", USERNAME_KEY), ("NATS_AUTH_PASSWORD", PASSWORD_KEY))
    ]


def accounts_volume() -> dict:
    """The NATS pod's volume of the accounts Secret."""
    return {"name": ACCOUNTS_VOLUME, "secret": {"secretName": ACCOUNTS_SECRET}}


def accounts_volume_mount() -> dict:
    """The NATS container's mount of it. No subPath: a subPath mount never sees it change."""
    return {"name": ACCOUNTS_VOLUME, "mountPath": ACCOUNTS_MOUNT, "readOnly": True}


@dataclass
class NatsAccountsArgs:
    platform_namespace: str
    model_namespaces: Sequence[str]
    # Each namespace's Namespace object: a Secret waits for its own namespace alone.
    namespaces: Mapping[str, pulumi.Resource] = field(default_factory=dict)


class NatsAccounts(pulumi.ComponentResource):
    """A password per model namespace, its credentials there, and the server's accounts file."""

    def __init__(
        self, name: str, args: NatsAccountsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dynamo-trtllm:platform:NatsAccounts", name, None, opts)

        def inside(namespace: str) -> pulumi.ResourceOptions:
            created = args.namespaces.get(namespace)
            return pulumi.ResourceOptions(parent=self, depends_on=[created] if created else [])

        hashes: dict[str, pulumi.Output[str]] = {}
        self.credentials: dict[str, k8s.core.v1.Secret] = {}
        for namespace in sorted(args.model_namespaces):
            password = random.RandomPassword(
                f"{name}-{namespace}",
                length=PASSWORD_LENGTH,
                special=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            hashes[namespace] = password.bcrypt_hash
            self.credentials[namespace] = k8s.core.v1.Secret(
                f"{name}-{namespace}",
                metadata={"name": CREDENTIALS_SECRET, "namespace": namespace},
                type="Opaque",
                string_data={USERNAME_KEY: namespace, PASSWORD_KEY: password.result},
                opts=inside(namespace),
            )
        # pulumi-kubernetes keeps a Secret's stringData secret in the state and in diffs.
        self.accounts_secret = k8s.core.v1.Secret(
            f"{name}-server",
            metadata={"name": ACCOUNTS_SECRET, "namespace": args.platform_namespace},
            type="Opaque",
            string_data={ACCOUNTS_FILE: pulumi.Output.all(**hashes).apply(accounts_conf)},
            opts=inside(args.platform_namespace),
        )
        self.register_outputs({})
