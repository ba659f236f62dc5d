"""Platform: Dynamo operator with NATS (and optional etcd), GPU and EFA device plugins, Fluid.

Every piece comes from its official Helm chart at the version pinned in the stack. We set only the
values we mean; everything else stays the chart's default.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ChartVersions, PlatformSpec

COMPONENT_TYPE = "dynamo-trtllm:platform:Platform"
# Dynamo's KV events can carry prompt embeddings; NATS must accept 15 MiB messages.
NATS_MAX_PAYLOAD = 15 * 1024 * 1024


@dataclass(frozen=True)
class ChartSource:
    chart: str
    repo: str


CHARTS = {
    "dynamo_platform": ChartSource(
        "dynamo-platform", "https://helm.ngc.nvidia.com/nvidia/ai-dynamo"
    ),
    "nvidia_device_plugin": ChartSource(
        "nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin"
    ),
    "gpu_operator": ChartSource("gpu-operator", "https://helm.ngc.nvidia.com/nvidia"),
    "dcgm_exporter": ChartSource(
        "dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts"
    ),
    "aws_efa_device_plugin": ChartSource(
        "aws-efa-k8s-device-plugin", "https://aws.github.io/eks-charts"
    ),
    "fluid": ChartSource("fluid", "https://fluid-cloudnative.github.io/charts"),
    "kube_prometheus_stack": ChartSource(
        "kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts"
    ),
}


def build_dynamo_platform_values(spec: PlatformSpec, multinode: bool = False) -> dict:
    """multinode: some worker spans nodes, which the operator runs as a Grove PodCliqueSet."""
    replicas = 3 if spec.high_availability else 1
    operator: dict = {"discoveryBackend": "kubernetes"}
    values: dict = {
        "global": {"etcd": {"install": spec.etcd.enabled and spec.etcd.external_endpoint is None}},
        "dynamo-operator": operator,
    }
    if multinode:
        values["global"]["grove"] = {"install": True, "enabled": True}
    if spec.nats.external_url:
        operator["natsAddr"] = spec.nats.external_url
        values["nats"] = {"enabled": False}
    else:
        nats: dict = {
            "enabled": True,
            "config": {
                "merge": {"max_payload": NATS_MAX_PAYLOAD},
                "jetstream": {
                    "enabled": True,
                    "fileStore": {
                        "enabled": True,
                        "pvc": {"enabled": True, "size": spec.nats.jetstream_storage},
                    },
                },
                "cluster": {"enabled": spec.high_availability, "replicas": replicas},
            },
            "podDisruptionBudget": {"enabled": spec.high_availability},
        }
        if spec.high_availability:
            nats["podTemplate"] = {
                "topologySpreadConstraints": {
                    "kubernetes.io/hostname": {"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}
                }
            }
        values["nats"] = nats
    if spec.etcd.external_endpoint:
        operator["etcdAddr"] = spec.etcd.external_endpoint
    elif spec.etcd.enabled:
        values["etcd"] = {
            "replicaCount": replicas,
            "persistence": {"enabled": True},
            "pdb": {"create": spec.high_availability},
        }
    return values


@dataclass(frozen=True)
class HelmRelease:
    """One chart install as the composition root wants it; `key` picks the pinned version."""

    key: str
    name: str
    namespace: str
    values: dict


def platform_releases(
    spec: PlatformSpec,
    gpu_namespace: str,
    fluid_namespace: str,
    monitoring_namespace: str,
    gpus: bool,
    efa: bool,
    kube_prometheus_stack: bool,
    multinode: bool = False,
) -> list[HelmRelease]:
    """Which charts this stack installs, in dependency order."""
    releases = [
        HelmRelease(
            "dynamo_platform",
            "dynamo-platform",
            spec.namespace,
            build_dynamo_platform_values(spec, multinode),
        )
    ]
    if gpus and spec.gpu_stack == "device-plugin":
        releases.append(
            HelmRelease(
                "nvidia_device_plugin",
                "nvidia-device-plugin",
                gpu_namespace,
                {"gfd": {"enabled": True}, "nfd": {"enabled": True}},
            )
        )
        releases.append(HelmRelease("dcgm_exporter", "dcgm-exporter", gpu_namespace, {}))
    if gpus and spec.gpu_stack == "gpu-operator":
        # EKS accelerated AMIs already carry the driver and container toolkit.
        releases.append(
            HelmRelease(
                "gpu_operator",
                "gpu-operator",
                gpu_namespace,
                {
                    "driver": {"enabled": False},
                    "toolkit": {"enabled": False},
                    "dcgmExporter": {"enabled": True},
                },
            )
        )
    if efa:
        releases.append(
            HelmRelease("aws_efa_device_plugin", "aws-efa-k8s-device-plugin", gpu_namespace, {})
        )
    if spec.fluid:
        releases.append(
            HelmRelease(
                "fluid",
                "fluid",
                fluid_namespace,
                # On EKS the kubelet kubeconfig is not where Fluid's CSI plugin expects it.
                {"runtime": {"alluxio": {"enabled": True}}, "csi": {"useNodeAuthorization": False}},
            )
        )
    if kube_prometheus_stack:
        releases.append(
            HelmRelease("kube_prometheus_stack", "kube-prometheus-stack", monitoring_namespace, {})
        )
    return releases


@dataclass(frozen=True)
class PlatformArgs:
    releases: list[HelmRelease]
    charts: ChartVersions
    depends_on: list[pulumi.Resource]


class Platform(pulumi.ComponentResource):
    releases: dict[str, k8s.helm.v3.Release]
    operator: k8s.helm.v3.Release

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.releases = {}
        for release in args.releases:
            source = CHARTS[release.key]
            self.releases[release.key] = k8s.helm.v3.Release(
                release.name,
                name=release.name,
                chart=source.chart,
                version=getattr(args.charts, release.key),
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=source.repo),
                namespace=release.namespace,
                values=release.values,
                # Wait until pods are ready: DGDs are rejected until the operator's webhook answers.
                atomic=True,
                wait_for_jobs=True,
                timeout=900,
                opts=pulumi.ResourceOptions(parent=self, depends_on=args.depends_on),
            )
        self.operator = self.releases["dynamo_platform"]
        self.register_outputs({"releases": sorted(self.releases)})
