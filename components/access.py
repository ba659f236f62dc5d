"""Access: who and what may do what in each model namespace.

Workloads: one ServiceAccount per role (frontend and each worker role), bound to the discovery
permissions Dynamo's Kubernetes discovery needs. People and pipelines: namespaced deployer, viewer
and promoter Roles, bound to a Kubernetes group per level; on EKS, IAM principals join those
groups through access entries. Nothing here uses a wildcard; the operator's RBAC stays its chart's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.dgd import FRONTEND_PORT, workload_service_account
from components.security import HF_TOKEN_SECRET, IMAGE_PULL_SECRET, S3_CREDENTIALS_SECRET
from infra.stack.config import AccessLevel

COMPONENT_TYPE = "dynamo-trtllm:access:Access"
ACCESS_LEVELS: tuple[AccessLevel, ...] = ("deployer", "viewer", "promoter")
READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete"]
DISCOVERY_ROLE = "dynamo-discovery"

# What `pulumi up` puts in a model namespace besides the security objects (namespace, RBAC,
# NetworkPolicies), by kind: (API group, resource).
WORKLOAD_RESOURCES: dict[str, tuple[str, str]] = {
    "DynamoGraphDeployment": ("nvidia.com", "dynamographdeployments"),
    "ConfigMap": ("", "configmaps"),
    "Service": ("", "services"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "Dataset": ("data.fluid.io", "datasets"),
    "AlluxioRuntime": ("data.fluid.io", "alluxioruntimes"),
    "DataLoad": ("data.fluid.io", "dataloads"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "PodMonitor": ("monitoring.coreos.com", "podmonitors"),
}
# What only the stack writes: Fluid objects (Fluid builds privileged, host-network pods from them
# and a Dataset can mount host paths) and the HTTPRoute (one with a broader match would take
# other models' requests). The deployer reads them; it patches the model's route by name only.
STACK_OWNED_KINDS = ("Dataset", "AlluxioRuntime", "DataLoad", "HTTPRoute")
# Written only by name, the stack's own objects: a Role cannot limit `create` by name, so that
# verb stays unnamed. Fluid's runtime keeps the environment of its privileged FUSE pods in a
# ConfigMap of the model namespace, and the operator makes the slots' Services: unnamed update
# rights on either would reach root on a node or another slot's traffic. (The admission policy
# refuses any other Secret name and service-account tokens.)
NAMED_ONLY_RESOURCES = [("", "configmaps"), ("", "services")]
OWN_SECRETS = [HF_TOKEN_SECRET, IMAGE_PULL_SECRET, S3_CREDENTIALS_SECRET]
# What the running graph shows: for debugging and for promotion gates.
RUNTIME_RESOURCES: list[tuple[str, str]] = [
    ("", "pods"),
    ("", "pods/log"),
    ("", "events"),
    ("", "endpoints"),
    ("nvidia.com", "dynamographdeployments/status"),
    ("nvidia.com", "dynamocomponentdeployments"),
    ("nvidia.com", "dynamographdeploymentscalingadapters"),
]


def access_group(level: AccessLevel) -> str:
    """The Kubernetes group holding one access level in every model namespace."""
    return f"dynamo-trtllm-{level}s"


def _rules(
    resources: Sequence[tuple[str, str]], verbs: list[str], names: list[str] | None = None
) -> list[dict]:
    """One rule per API group, resources sorted, so the Roles read (and diff) predictably."""
    by_group: dict[str, list[str]] = {}
    for group, resource in resources:
        by_group.setdefault(group, []).append(resource)
    rules = []
    for group in sorted(by_group):
        rule: dict = {
            "apiGroups": [group],
            "resources": sorted(by_group[group]),
            "verbs": list(verbs),
        }
        if names is not None:
            rule["resourceNames"] = list(names)
        rules.append(rule)
    return rules


def deployer_rules(model: str, config_maps: Sequence[str]) -> list[dict]:
    """config_maps: the model's engine-config ConfigMaps, the only ones the deployer changes."""
    workload = [
        r
        for kind, r in WORKLOAD_RESOURCES.items()
        if kind not in STACK_OWNED_KINDS and r not in NAMED_ONLY_RESOURCES
    ]
    owned = [WORKLOAD_RESOURCES[kind] for kind in STACK_OWNED_KINDS]
    named_writes = ["get", "update", "patch", "delete"]
    return [
        *_rules(workload, READ + WRITE),
        *_rules([*owned, *NAMED_ONLY_RESOURCES], READ),
        *_rules(NAMED_ONLY_RESOURCES, ["create"]),
        *_rules([("", "configmaps")], named_writes, sorted(config_maps)),
        *_rules([("", "services")], named_writes, [model]),
        *_rules([("gateway.networking.k8s.io", "httproutes")], ["patch"], [model]),
        *_rules([("", "secrets")], ["create"]),
        *_rules([("", "secrets")], named_writes, OWN_SECRETS),
        *_rules(RUNTIME_RESOURCES, READ),
    ]


def viewer_rules() -> list[dict]:
    return _rules([*WORKLOAD_RESOURCES.values(), *RUNTIME_RESOURCES], READ)


def promoter_rules(model: str, frontend_services: Sequence[str]) -> list[dict]:
    """Move traffic of one model: its stable Service and HTTPRoute (named after it), gated on
    DGD status and smoke requests through the API server's proxy to the stable and slot
    frontend Services. No pod port-forward: the proxy goes over the pod network, where the
    frontends' NetworkPolicy applies."""
    services = [model, *frontend_services]
    return [
        *_rules([("nvidia.com", "dynamographdeployments"), *RUNTIME_RESOURCES], READ),
        *_rules([("", "services")], ["get"], [model]),
        *_rules(
            [("", "services"), ("gateway.networking.k8s.io", "httproutes")], ["patch"], [model]
        ),
        *_rules([("gateway.networking.k8s.io", "httproutes")], ["get"], [model]),
        # GET is get, POST is create. RBAC sees the proxy's name segment as the resource name,
        # port included (apiserver's RequestInfo): `<service>:8000`, the form the gates use.
        *_rules(
            [("", "services/proxy")],
            ["get", "create"],
            [f"{name}:{FRONTEND_PORT}" for name in services],
        ),
    ]


def discovery_rules() -> list[dict]:
    """Dynamo's Kubernetes discovery: workers publish DynamoWorkerMetadata, everyone watches
    endpoints and pods. No pod writes: isolation and the stable Service select on pod labels."""
    return [
        {"apiGroups": [""], "resources": ["endpoints", "pods"], "verbs": READ},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
        {
            "apiGroups": ["nvidia.com"],
            "resources": ["dynamoworkermetadatas"],
            "verbs": READ + WRITE,
        },
    ]


def _role(namespace: str, name: str, rules: list[dict]) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": rules,
    }


def _binding(namespace: str, role: str, subjects: list[dict]) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": subjects,
    }


def build_namespace_access(
    namespace: str,
    model: str,
    frontend_services: Sequence[str],
    workload_roles: Sequence[str],
    extra_groups: Mapping[AccessLevel, Sequence[str]],
    config_maps: Sequence[str] = (),
) -> list[dict]:
    """ServiceAccounts, Roles and RoleBindings of one model namespace."""
    accounts = [workload_service_account(role) for role in workload_roles]
    objects: list[dict] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace},
        }
        for account in accounts
    ]
    objects.append(_role(namespace, DISCOVERY_ROLE, discovery_rules()))
    objects.append(
        _binding(
            namespace,
            DISCOVERY_ROLE,
            [{"kind": "ServiceAccount", "name": a, "namespace": namespace} for a in accounts],
        )
    )
    people = {
        "deployer": deployer_rules(model, config_maps),
        "viewer": viewer_rules(),
        "promoter": promoter_rules(model, frontend_services),
    }
    for level in ACCESS_LEVELS:
        role = f"dynamo-trtllm-{level}"
        groups = [access_group(level), *extra_groups.get(level, ())]
        objects.append(_role(namespace, role, people[level]))
        objects.append(
            _binding(
                namespace,
                role,
                [
                    {"kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io"}
                    for g in groups
                ],
            )
        )
    return objects


def access_entry_groups(principals: Mapping[AccessLevel, Sequence[str]]) -> dict[str, list[str]]:
    """IAM principal -> the access groups it joins (EKS allows one access entry per principal)."""
    groups: dict[str, list[str]] = {}
    for level in ACCESS_LEVELS:
        for arn in principals.get(level, ()):
            groups.setdefault(arn, []).append(access_group(level))
    return groups


@dataclass(frozen=True)
class ServingNamespace:
    namespace: str
    model: str
    workload_roles: tuple[str, ...]  # "frontend" and the topology's worker roles
    frontend_services: tuple[str, ...]  # each slot's frontend Service (promotion gates)
    config_maps: tuple[str, ...] = ()  # the engine-config ConfigMaps the deployer may change


@dataclass(frozen=True)
class AccessArgs:
    namespaces: list[ServingNamespace]
    groups: Mapping[AccessLevel, Sequence[str]] = field(default_factory=dict)
    principals: Mapping[AccessLevel, Sequence[str]] = field(default_factory=dict)
    eks_cluster_name: pulumi.Input[str] | None = None  # access entries only on EKS
    # Each serving namespace's own Namespace resource: its objects wait for it, and only for it.
    namespace_resources: Mapping[str, pulumi.Resource] = field(default_factory=dict)


class Access(pulumi.ComponentResource):
    # Per serving namespace, the workloads' ServiceAccounts (a graph waits for its own only).
    service_accounts: dict[str, list[k8s.core.v1.ServiceAccount]]

    def __init__(self, name: str, args: AccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.service_accounts = {}
        for serving in args.namespaces:
            own = args.namespace_resources.get(serving.namespace)
            child = pulumi.ResourceOptions(parent=self, depends_on=[own] if own else [])
            accounts = self.service_accounts.setdefault(serving.namespace, [])
            for obj in build_namespace_access(
                serving.namespace,
                serving.model,
                serving.frontend_services,
                serving.workload_roles,
                args.groups,
                serving.config_maps,
            ):
                meta = obj["metadata"]
                logical = f"{meta['namespace']}-{obj['kind'].lower()}-{meta['name']}"
                if obj["kind"] == "ServiceAccount":
                    accounts.append(k8s.core.v1.ServiceAccount(logical, metadata=meta, opts=child))
                elif obj["kind"] == "Role":
                    k8s.rbac.v1.Role(logical, metadata=meta, rules=obj["rules"], opts=child)
                else:
                    k8s.rbac.v1.RoleBinding(
                        logical,
                        metadata=meta,
                        role_ref=obj["roleRef"],
                        subjects=obj["subjects"],
                        opts=child,
                    )
        entries = access_entry_groups(args.principals)
        if entries:
            assert args.eks_cluster_name is not None, "access entries need an EKS cluster"
            aws_child = pulumi.ResourceOptions(parent=self)
            for arn, groups in sorted(entries.items()):
                # Named by the ARN's hash: adding or removing one principal leaves the others be.
                digest = hashlib.sha256(arn.encode()).hexdigest()[:10]
                aws.eks.AccessEntry(
                    f"{name}-entry-{digest}",
                    cluster_name=args.eks_cluster_name,
                    principal_arn=arn,
                    kubernetes_groups=groups,
                    type="STANDARD",
                    opts=aws_child,
                )
        self.register_outputs(
            {
                "serviceAccounts": [
                    sa.metadata.name
                    for accounts in self.service_accounts.values()
                    for sa in accounts
                ]
            }
        )
