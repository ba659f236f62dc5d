"""Pulumi program entry (Pulumi.yaml `main: infra`)."""

from infra.program import run

run()
