"""`plan --fetch`: a model's architecture facts read from its Hugging Face repository.

For models the built-in catalog lacks: config.json gives the shape the memory plan needs, the
safetensors headers the published parameter count. Both go through huggingface_hub's cache, so
a second run (or an offline one after a first) reads no network; gated repositories use the
token of `HF_TOKEN` or of `huggingface-cli login`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from infra.trtllm.model_catalog import ModelFacts, facts_from_hf_config


class FetchFailed(Exception):
    """The facts could not be fetched; the message says why (offline, gated, not found ...)."""


def fetch_model_facts(hf_id: str) -> ModelFacts:
    """ModelFacts of a Hugging Face model repository (config.json + safetensors metadata)."""
    try:
        import huggingface_hub
        from huggingface_hub import errors as hf_errors
    except ImportError:  # pragma: no cover - a dependency of the project
        raise FetchFailed("huggingface_hub is not installed") from None
    token = os.environ.get("HF_TOKEN") or None
    try:
        config = huggingface_hub.hf_hub_download(hf_id, "config.json", token=token)
    except hf_errors.GatedRepoError:
        raise FetchFailed(
            f"{hf_id} is gated: accept its licence on huggingface.co and set HF_TOKEN"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise FetchFailed(f"{hf_id} does not exist on Hugging Face (or is private)") from None
    except hf_errors.LocalEntryNotFoundError:  # before its base class, EntryNotFoundError
        raise FetchFailed(
            f"cannot fetch {hf_id}: no network (or HF_HUB_OFFLINE) and not in the local "
            "Hugging Face cache"
        ) from None
    except hf_errors.EntryNotFoundError:
        raise FetchFailed(f"{hf_id} has no config.json") from None
    except (OSError, ValueError) as error:  # connection errors, invalid repo ids
        raise FetchFailed(f"cannot fetch {hf_id}: {error}") from None
    try:
        facts = facts_from_hf_config(Path(config), hf_id=hf_id)
    except ValueError as error:
        raise FetchFailed(str(error)) from None
    return dataclasses.replace(facts, published_params=_safetensors_params(hf_id, token))


def _safetensors_params(hf_id: str, token: str | None) -> int | None:
    """The repository's parameter count from its safetensors headers, when it has them."""
    import huggingface_hub

    try:
        metadata = huggingface_hub.get_safetensors_metadata(hf_id, token=token)
    except Exception:  # not a safetensors repo, offline: the count is only informative
        return None
    return sum(metadata.parameter_count.values()) or None
