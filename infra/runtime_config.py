"""What Pulumi hands the program at `pulumi up`: our namespace's config and its secrets.

`render` hands the program an already checked stack instead; only the real run reads these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
from pulumi.runtime import config as runtime_config

from infra.stack.config import SECRET_KEYS
from infra.stack.errors import CONFIG_NAMESPACE


@dataclass(frozen=True)
class StackSecrets:
    hf_token: pulumi.Output[str] | None = None
    image_pull_secret: pulumi.Output[str] | None = None
    # Static S3 keys for the model cache, when IAM roles are not an option (existing clusters).
    s3_access_key_id: pulumi.Output[str] | None = None
    s3_secret_access_key: pulumi.Output[str] | None = None
    # Grafana's admin password, when the stack installs kube-prometheus-stack.
    grafana_admin_password: pulumi.Output[str] | None = None

    @property
    def s3_keys(self) -> tuple[pulumi.Output[str], pulumi.Output[str]] | None:
        if self.s3_access_key_id is None or self.s3_secret_access_key is None:
            return None
        return self.s3_access_key_id, self.s3_secret_access_key


def read_secrets(pulumi_config: pulumi.Config) -> StackSecrets:
    hf_key, pull_key, s3_id_key, s3_secret_key, grafana_key = SECRET_KEYS
    return StackSecrets(
        hf_token=pulumi_config.get_secret(hf_key),
        image_pull_secret=pulumi_config.get_secret(pull_key),
        s3_access_key_id=pulumi_config.get_secret(s3_id_key),
        s3_secret_access_key=pulumi_config.get_secret(s3_secret_key),
        grafana_admin_password=pulumi_config.get_secret(grafana_key),
    )


def _our_names() -> list[str]:
    """The names under `dynamo-trtllm:` in Pulumi's runtime config, sorted."""
    prefix = f"{CONFIG_NAMESPACE}:"
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    return sorted(k[len(prefix) :] for k in keys if k.startswith(prefix))


def read_raw_config() -> dict[str, object]:
    """Our namespace's keys from Pulumi's runtime config (the stack file, decrypted by Pulumi)."""
    raw: dict[str, object] = {}
    for name in _our_names():
        if name in SECRET_KEYS:
            continue
        value = runtime_config.get_config(f"{CONFIG_NAMESPACE}:{name}")
        try:
            raw[name] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            raw[name] = value
    return raw


def present_secrets() -> frozenset[str]:
    """The secret keys Pulumi's config holds for our namespace (their values stay unread)."""
    return frozenset(name for name in _our_names() if name in SECRET_KEYS)
