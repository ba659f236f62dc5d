"""Which TensorRT-LLM release takes which engine-config key: version differences as data.

Our schema (``infra.trtllm.engine_schema``) transcribes an inventory of a TensorRT-LLM main
newer than the runtimes Dynamo ships (1.1.x: 1.3.0rc11, 1.2.x: 1.3.0rc14;
``infra/stack/dynamo_versions.py``), and it accepts the union of what they take. This table
says, for the differences we could verify, which releases take a key or an enum value, so a
stack is checked against the TensorRT-LLM inside its own runtime image: a key that arrived later
is refused there, a value a later release dropped is still accepted there.

How the bounds were set (no rc11 or rc14 source could be read, so they rest on pull requests):

- Pull requests are numbered in creation order and release candidates are tagged from main, so a
  PR numbered above a "bump version to 1.3.0rcN" PR can be in rcN at the earliest. ``introduced_in``
  is that earliest release: it is refused only where it is certainly absent. The bumps used:
  rc11 #12627, rc15 #13839, rc19 #15188, rc21 #15742, rc24 #17070.
- ``removed_in`` is the first release estimated (from merge dates) to lack the value; the
  citation says so. No Dynamo profile is near those releases yet.
- Only differences verified against pull requests are here; the rest of the inventory is undated,
  so it is accepted for every release (a known gap, not a claim that those keys are old).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)(?:\.?rc(\d+))?(?:\.post\d+)?\s*$")


@total_ordering
@dataclass(frozen=True)
class TrtllmVersion:
    """A TensorRT-LLM release such as 1.3.0rc14 (a release candidate sorts before its final)."""

    major: int
    minor: int
    patch: int
    rc: int | None = None

    @classmethod
    def parse(cls, text: str) -> TrtllmVersion:
        match = _VERSION.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a TensorRT-LLM version such as 1.3.0rc14 or 1.2.0")
        major, minor, patch, rc = match.groups()
        return cls(int(major), int(minor), int(patch), None if rc is None else int(rc))

    def _key(self) -> tuple[int, int, int, float]:
        return (self.major, self.minor, self.patch, float("inf") if self.rc is None else self.rc)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, TrtllmVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return base if self.rc is None else f"{base}rc{self.rc}"


@dataclass(frozen=True)
class FieldVersion:
    """One verified difference: a key (or one value of it) and the releases that take it.

    `path` is dotted from the top of the file; under ``speculative_config`` it holds whatever
    the decoding type. `value` None means the key itself, else one value of that key.
    """

    path: str
    citation: str
    introduced_in: str | None = None  # the earliest release that can have it
    removed_in: str | None = None  # the first release without it
    value: str | None = None

    def taken_by(self, version: TrtllmVersion) -> bool:
        if self.introduced_in is not None and version < TrtllmVersion.parse(self.introduced_in):
            return False
        return self.removed_in is None or version < TrtllmVersion.parse(self.removed_in)


_AFTER_RC14 = "opened after the 1.3.0rc15 bump #13839, so in neither 1.3.0rc11 nor rc14"

FIELD_VERSIONS: tuple[FieldVersion, ...] = (
    # --- keys that arrived after 1.3.0rc14 -------------------------------------------------
    *(
        FieldVersion(
            f"cuda_graph_config.{key}",
            f"PR #14326 (encoder CUDA graphs, a `mode`-tagged union), {_AFTER_RC14}",
            introduced_in="1.3.0rc15",
        )
        for key in ("mode", "num_tokens", "max_num_token", "seq_lens", "max_seq_len")
    ),
    FieldVersion("multimodal_config", f"PR #14829, {_AFTER_RC14}", introduced_in="1.3.0rc15"),
    FieldVersion(
        "kv_cache_config.enable_swa_scratch_reuse",
        f"PR #15046, {_AFTER_RC14}",
        introduced_in="1.3.0rc15",
    ),
    FieldVersion(
        "scheduler_config.enable_prefix_aware_scheduling",
        "PR #15526, opened after the 1.3.0rc19 bump #15188",
        introduced_in="1.3.0rc19",
    ),
    FieldVersion(
        "cache_transceiver_config.kv_cache_bounce_size_mb",
        "PR #15618, opened after the 1.3.0rc19 bump #15188; in the 1.3.0rc27 docs",
        introduced_in="1.3.0rc19",
    ),
    FieldVersion(
        "cache_transceiver_config.enable_pipelined_transfer",
        "PR #15727, opened after the 1.3.0rc19 bump #15188; in the 1.3.0rc27 docs",
        introduced_in="1.3.0rc19",
    ),
    FieldVersion(
        "kv_cache_config.mamba_state_config",
        "PR #16598, opened after the 1.3.0rc21 bump #15742; in the 1.3.0rc27 docs",
        introduced_in="1.3.0rc21",
    ),
    FieldVersion(
        "kv_cache_config.kv_events_config",
        "PR #17023, opened after the 1.3.0rc21 bump #15742; in the 1.3.0rc27 docs",
        introduced_in="1.3.0rc21",
    ),
    FieldVersion(
        "kv_cache_config.block_reuse_config",
        "PR #16883, opened after the 1.3.0rc21 bump #15742 (merged after the rc24 bump)",
        introduced_in="1.3.0rc21",
    ),
    *(
        FieldVersion(
            key,
            "PR #16609 (replaces torch_compile_config.enable_piecewise_cuda_graph and "
            "capture_num_tokens, which older releases take), opened after the 1.3.0rc21 bump "
            "#15742",
            introduced_in="1.3.0rc21",
        )
        for key in ("prefill_cuda_graph_backend", "prefill_capture_num_tokens")
    ),
    FieldVersion(
        "speculative_config.advanced_sampling_mode",
        "PR #16561, opened after the 1.3.0rc21 bump #15742",
        introduced_in="1.3.0rc21",
    ),
    FieldVersion(
        "num_serve_frontends",
        "PR #16523, opened after the 1.3.0rc21 bump #15742",
        introduced_in="1.3.0rc21",
    ),
    FieldVersion(
        "encoder_cuda_graph_config",
        "PR #16706, opened after the 1.3.0rc21 bump #15742",
        introduced_in="1.3.0rc21",
    ),
    # --- enum values that arrived after 1.3.0rc14 --------------------------------------------
    FieldVersion(
        "moe_config.backend",
        f"PR #14608, {_AFTER_RC14}",
        introduced_in="1.3.0rc15",
        value="MEGAMOE_CUTEDSL",
    ),
    FieldVersion(
        "cache_transceiver_config.transceiver_runtime",
        "PR #16164 (made it the default), opened after the 1.3.0rc21 bump #15742",
        introduced_in="1.3.0rc21",
        value="auto",
    ),
    # --- values later releases dropped (still taken by 1.3.0rc11 and rc14) -------------------
    FieldVersion(
        "moe_config.backend",
        "PR #17797, opened after the 1.3.0rc24 bump #17070; first release without it "
        "estimated from its merge date",
        removed_in="1.3.0rc25",
        value="WIDEEP",
    ),
    FieldVersion(
        "sampler_type",
        "PR #18232 (sampler_type removed; other values are dropped with a warning), opened "
        "after the 1.3.0rc24 bump #17070; first release without it estimated from its merge date",
        removed_in="1.3.0rc26",
        value="TRTLLMSampler",
    ),
)


def version_problems(
    raw: dict[str, Any], trtllm_version: str, runtime: str | None = None
) -> list[tuple[str, str]]:
    """(dotted path, message) for each key or value of `raw` (the file as read) that
    `trtllm_version` does not take.

    runtime: what carries that release, for the message (e.g. "Dynamo 1.2.0's runtime").
    """
    version = TrtllmVersion.parse(trtllm_version)
    where = f"the {version} in {runtime}" if runtime else f"TensorRT-LLM {version}"
    problems = []
    for row in FIELD_VERSIONS:
        found, stated = _stated(raw, row.path)
        if not found or (row.value is not None and stated != row.value) or row.taken_by(version):
            continue
        what = f"`{row.path}`" if row.value is None else f"`{row.path}: {row.value}`"
        if row.removed_in is not None and not version < TrtllmVersion.parse(row.removed_in):
            when = f"was dropped in TensorRT-LLM {row.removed_in} ({row.citation})"
        else:
            when = f"arrived in TensorRT-LLM {row.introduced_in} or later ({row.citation})"
        problems.append((row.path, f"{what} {when}; {where} refuses it"))
    return problems


def _stated(raw: Any, path: str) -> tuple[bool, Any]:
    """Whether the file states `path`, and its value."""
    node = raw
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node
