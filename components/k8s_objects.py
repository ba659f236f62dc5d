"""Wrapping builder output (plain manifests) into Pulumi Kubernetes resources."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s


def custom_resource(
    name: str, manifest: dict, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """A custom resource (DGD, Fluid, Prometheus Operator kinds) from a built manifest."""
    return k8s.apiextensions.CustomResource(
        name,
        api_version=manifest["apiVersion"],
        kind=manifest["kind"],
        metadata=manifest["metadata"],
        spec=manifest["spec"],
        opts=opts,
    )
