"""Which input changes make Pulumi replace a resource instead of updating it in place.

The offline `diff` compares two renders field by field; this module says which of those changed
fields the providers treat as replace-on-change. A replacement is a delete plus a create (in either
order), which for an EKS cluster, a node group or a subnet means downtime, new IDs and everything
that depends on them being replaced too.

AWS. pulumi-aws is a bridge over the Terraform AWS provider: an input forces a replacement when
its Terraform attribute is declared `ForceNew` (or the resource's `CustomizeDiff` calls
`ForceNew` for it). pulumi-aws's own overrides (`provider/resource_overrides.go` in pulumi/pulumi-aws)
rename fields and set `DeleteBeforeReplace` on a few resources but mark no extra field as
replace-on-change for the types we use. Each table entry names the file of
hashicorp/terraform-provider-aws it was read from. Paths are the Pulumi (camelCase) input names
as they appear in the rendered YAML; blocks that Terraform caps at one item are plain objects there
(`vpcConfig.subnetIds`, `scalingConfig.desiredSize`). Fields we could not check against the source
are left out, so a type or field missing here means "in place, as far as we know", not "verified
in place". Replacements that happen only for some old/new value pairs are listed separately in
`AWS_CONDITIONAL_REPLACE` and are not reported by `replacing_fields`.

Kubernetes. pulumi-kubernetes decides in its provider's diff (`forceNewProperties` in
provider/pkg/provider/diff.go of pulumi/pulumi-kubernetes; older releases kept it in
forcenew.go): an object's name and namespace always force a replacement, and a fixed list of
fields per (group, version, kind) does too. `KUBERNETES_REPLACE_ON_CHANGE` holds that list for the
default provider settings; `kubernetes_replacing_fields` applies the version restrictions and the
ConfigMap/Secret mutability options.

Changed paths are the dotted paths `diff` prints: `tags.Name`, `instanceTypes[0]`,
`spec.containers[name=main].image`, `data["engine.yaml"]`. List positions and `[name=...]`
selectors are ignored when matching; a quoted key counts as one path segment.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

# --- AWS (pulumi-aws over hashicorp/terraform-provider-aws) ------------------------------------

AWS_REPLACE_ON_CHANGE: dict[str, tuple[str, ...]] = {
    # hashicorp/terraform-provider-aws internal/service/eks/cluster.go. Read in the 2026 version
    # (with controlPlaneScalingConfig and deletionProtection); older versions also forced a
    # replacement on any remoteNetworkConfig change, this one updates it in place. version,
    # vpcConfig (subnetIds, securityGroupIds, endpoint*Access, publicAccessCidrs),
    # accessConfig.authenticationMode, enabledClusterLogTypes, upgradePolicy, zonalShiftConfig,
    # computeConfig, storageConfig and tags are updated in place.
    "aws:eks/cluster:Cluster": (
        "name",
        "roleArn",
        "bootstrapSelfManagedAddons",
        "accessConfig.bootstrapClusterCreatorAdminPermissions",
        "kubernetesNetworkConfig.ipFamily",
        "kubernetesNetworkConfig.serviceIpv4Cidr",
        "outpostConfig.controlPlaneInstanceType",
        "outpostConfig.controlPlanePlacement.groupName",
    ),
    # hashicorp/terraform-provider-aws internal/service/eks/node_group.go. In place: labels,
    # taints, scalingConfig, updateConfig, nodeRepairConfig, launchTemplate.version,
    # releaseVersion, version, forceUpdateVersion, tags.
    "aws:eks/nodeGroup:NodeGroup": (
        "amiType",
        "capacityType",
        "clusterName",
        "diskSize",
        "instanceTypes",
        "launchTemplate.id",
        "launchTemplate.name",
        "nodeGroupName",
        "nodeGroupNamePrefix",
        "nodeRoleArn",
        "remoteAccess",
        "subnetIds",
    ),
    # hashicorp/terraform-provider-aws internal/service/eks/addon.go. addonVersion,
    # configurationValues, serviceAccountRoleArn, podIdentityAssociations, resolveConflicts*,
    # preserve and tags are updated in place.
    "aws:eks/addon:Addon": ("addonName", "clusterName"),
    # hashicorp/terraform-provider-aws internal/service/eks/access_entry.go. kubernetesGroups,
    # userName and tags are updated in place.
    "aws:eks/accessEntry:AccessEntry": ("clusterName", "principalArn", "type"),
    # hashicorp/terraform-provider-aws internal/service/eks/access_policy_association.go. The
    # resource has no update at all: every input is replace-on-change.
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation": (
        "accessScope",
        "clusterName",
        "policyArn",
        "principalArn",
    ),
    # hashicorp/terraform-provider-aws internal/service/ec2/ec2_launch_template.go. Every other
    # input creates a new template version (an update of the same template).
    "aws:ec2/launchTemplate:LaunchTemplate": ("name", "namePrefix"),
    # hashicorp/terraform-provider-aws internal/service/ec2/ec2_placement_group.go (only tags
    # are updatable).
    "aws:ec2/placementGroup:PlacementGroup": ("name", "partitionCount", "spreadLevel", "strategy"),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_.go. enableDnsHostnames,
    # enableDnsSupport, IPv6 settings and tags are updated in place.
    "aws:ec2/vpc:Vpc": ("cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_subnet.go. mapPublicIpOnLaunch,
    # DNS options and tags are updated in place.
    "aws:ec2/subnet:Subnet": (
        "availabilityZone",
        "availabilityZoneId",
        "cidrBlock",
        "ipv4IpamPoolId",
        "ipv4NetmaskLength",
        "ipv6IpamPoolId",
        "ipv6Native",
        "ipv6NetmaskLength",
        "outpostArn",
        "vpcId",
    ),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_security_group.go. ingress and
    # egress rules are added and revoked in place.
    "aws:ec2/securityGroup:SecurityGroup": ("description", "name", "namePrefix", "vpcId"),
    # hashicorp/terraform-provider-aws internal/service/ec2/ec2_eip.go. The association
    # (instance, networkInterface, associateWithPrivateIp) changes in place.
    "aws:ec2/eip:Eip": ("address", "domain", "ipamPoolId", "networkBorderGroup", "publicIpv4Pool"),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_internet_gateway.go. A new
    # vpcId detaches and re-attaches the same gateway: nothing forces a replacement.
    "aws:ec2/internetGateway:InternetGateway": (),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_nat_gateway.go. Secondary
    # allocations and secondary private addresses change in place.
    "aws:ec2/natGateway:NatGateway": (
        "allocationId",
        "connectivityType",
        "privateIp",
        "secondaryPrivateIpAddressCount",
        "subnetId",
    ),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_route_table.go. Routes and
    # propagatingVgws are edited in place.
    "aws:ec2/routeTable:RouteTable": ("vpcId",),
    # hashicorp/terraform-provider-aws internal/service/ec2/vpc_route_table_association.go. A new
    # routeTableId re-points the association in place.
    "aws:ec2/routeTableAssociation:RouteTableAssociation": ("gatewayId", "subnetId"),
    # hashicorp/terraform-provider-aws internal/service/iam/role.go. assumeRolePolicy,
    # description, maxSessionDuration, permissionsBoundary, inline/managed policies and tags are
    # updated in place.
    "aws:iam/role:Role": ("name", "namePrefix", "path"),
    # hashicorp/terraform-provider-aws internal/service/iam/role_policy.go. A new policy document
    # is put in place.
    "aws:iam/rolePolicy:RolePolicy": ("name", "namePrefix", "role"),
    # hashicorp/terraform-provider-aws internal/service/iam/role_policy_attachment.go (no update:
    # both inputs are replace-on-change).
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": ("policyArn", "role"),
    # hashicorp/terraform-provider-aws internal/service/kms/key.go. Rotation, policy,
    # description and enabling are updated in place.
    "aws:kms/key:Key": (
        "customKeyStoreId",
        "customerMasterKeySpec",
        "keyUsage",
        "multiRegion",
        "xksKeyId",
    ),
    # hashicorp/terraform-provider-aws internal/service/iam/openid_connect_provider.go.
    # clientIdLists, thumbprintLists and tags are updated in place.
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": ("url",),
    # hashicorp/terraform-provider-aws internal/service/route53/record.go. type, ttl, records,
    # setIdentifier, aliases and routing policies (weightedRoutingPolicies...) are changed in
    # place by an UPSERT/DELETE change batch.
    "aws:route53/record:Record": ("name", "zoneId"),
}

_REGION_RULE = (
    "a new per-resource region replaces the resource, except when it only switches between unset "
    "and the provider's own region (hashicorp/terraform-provider-aws "
    "internal/provider/sdkv2/region.go, forceNewIfRegionChanges)"
)

# Replacements decided by a CustomizeDiff from the old and new values, not by the field alone.
# Values say when the change replaces; `replacing_fields` does not report these.
AWS_CONDITIONAL_REPLACE: dict[str, dict[str, str]] = {
    "aws:eks/cluster:Cluster": {
        # hashicorp/terraform-provider-aws internal/service/eks/cluster.go (ForceNewIfChange)
        "encryptionConfig": "removing envelope encryption once it is set replaces the cluster",
        "region": _REGION_RULE,
    },
    "aws:ec2/vpc:Vpc": {
        # hashicorp/terraform-provider-aws internal/service/ec2/vpc_.go (resourceVPCCustomizeDiff)
        "instanceTenancy": "every change except dedicated -> default replaces the VPC",
        "region": _REGION_RULE,
    },
    "aws:ec2/subnet:Subnet": {
        # hashicorp/terraform-provider-aws internal/service/ec2/vpc_subnet.go (ForceNewIf)
        "ipv6CidrBlock": (
            "a new IPv6 block replaces the subnet when it was created with "
            "assignIpv6AddressOnCreation = true"
        ),
        "region": _REGION_RULE,
    },
    **{
        token: {"region": _REGION_RULE}
        for token in (
            "aws:eks/nodeGroup:NodeGroup",
            "aws:eks/addon:Addon",
            "aws:eks/accessEntry:AccessEntry",
            "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
            "aws:ec2/launchTemplate:LaunchTemplate",
            "aws:ec2/placementGroup:PlacementGroup",
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:ec2/eip:Eip",
            "aws:ec2/internetGateway:InternetGateway",
            "aws:ec2/natGateway:NatGateway",
            "aws:ec2/routeTable:RouteTable",
            "aws:ec2/routeTableAssociation:RouteTableAssociation",
        )
    },
}

# Types pulumi-aws replaces delete-first (pulumi/pulumi-aws provider/resource_overrides.go,
# `DeleteBeforeReplace: true`): a second attachment of the same policy to the same role would be
# the same attachment, so it cannot be created before the old one goes. Every other type above
# is created before the old one is deleted, unless the resource sets the deleteBeforeReplace
# option.
AWS_DELETE_BEFORE_REPLACE: frozenset[str] = frozenset(
    {"aws:iam/rolePolicyAttachment:RolePolicyAttachment"}
)


# --- Kubernetes (pulumi/pulumi-kubernetes provider/pkg/provider/diff.go) ---------------------

_METADATA = ("metadata.name", "metadata.namespace")


def _label_selector(prefix: str) -> tuple[str, ...]:
    return (f"{prefix}.matchExpressions", f"{prefix}.matchLabels")


def _container_fields(*prefixes: str) -> tuple[str, ...]:
    names = (
        "args",
        "command",
        "env",
        "image",
        "imagePullPolicy",
        "lifecycle",
        "livenessProbe",
        "ports",
        "readinessProbe",
        "resources",
        "securityContext",
        "stdin",
        "stdinOnce",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "tty",
        "volumeDevices",
        "volumeMounts",
        "workingDir",
    )
    return tuple(f"{prefix}.{name}" for prefix in prefixes for name in names)


_SELECTOR = ("spec.selector", *_label_selector("spec.selector"))

# (API group, "" for core; kind) -> fields, beyond metadata.name and metadata.namespace, whose
# change replaces the object with the provider's default settings. ConfigMap data/binaryData
# and Secret data/stringData are listed because enableConfigMapMutable and enableSecretMutable
# default to false; `kubernetes_replacing_fields` drops them when the option is on (and the
# object is not `immutable: true`). Only some API versions carry these rules, see
# `_KUBERNETES_VERSIONS`.
KUBERNETES_REPLACE_ON_CHANGE: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "ConfigMap"): ("binaryData", "data"),
    ("", "Secret"): ("type", "stringData", "data"),
    ("", "Service"): ("spec.clusterIP",),
    ("", "PersistentVolumeClaim"): (
        "spec.accessModes",
        "spec.storageClassName",
        "spec.volumeName",
        *_SELECTOR,
    ),
    ("", "PersistentVolume"): tuple(
        f"spec.{source}"
        for source in (
            "awsElasticBlockStore",
            "azureDisk",
            "azureFile",
            "cephfs",
            "cinder",
            "csi",
            "fc",
            "flexVolume",
            "flocker",
            "gcePersistentDisk",
            "glusterfs",
            "hostPath",
            "iscsi",
            "local",
            "nfs",
            "photonPersistentDisk",
            "portworxVolume",
            "quobyte",
            "rbd",
            "scaleIO",
            "storageos",
            "vsphereVolume",
        )
    ),
    ("", "Pod"): (
        *(
            f"spec.{field}"
            for field in (
                "affinity",
                "automountServiceAccountToken",
                "dnsConfig",
                "dnsPolicy",
                "enableServiceLinks",
                "hostAliases",
                "hostIPC",
                "hostNetwork",
                "hostPID",
                "hostname",
                "imagePullSecrets",
                "nodeName",
                "nodeSelector",
                "overhead",
                "preemptionPolicy",
                "priority",
                "priorityClassName",
                "readinessGates",
                "restartPolicy",
                "runtimeClassName",
                "schedulerName",
                "securityContext",
                "serviceAccount",
                "serviceAccountName",
                "shareProcessNamespace",
                "subdomain",
                "terminationGracePeriodSeconds",
                "volumes",
            )
        ),
        *_container_fields("spec.containers", "spec.initContainers"),
    ),
    ("", "ResourceQuota"): ("spec.scopes",),
    ("apps", "Deployment"): _SELECTOR,
    ("apps", "DaemonSet"): _SELECTOR,
    ("apps", "StatefulSet"): (
        "spec.podManagementPolicy",
        "spec.revisionHistoryLimit",
        "spec.serviceName",
        "spec.volumeClaimTemplates",
        *_SELECTOR,
    ),
    ("batch", "Job"): ("spec.completions", "spec.parallelism", "spec.template", *_SELECTOR),
    ("policy", "PodDisruptionBudget"): ("spec",),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("roleRef",),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): ("roleRef",),
    ("storage.k8s.io", "StorageClass"): ("parameters", "provisioner"),
}

# The API versions each rule applies to; any other version of the kind is only replaced on a
# new name or namespace (e.g. a policy/v1 PodDisruptionBudget, or apps/v1beta1 Deployments).
_KUBERNETES_VERSIONS: dict[tuple[str, str], frozenset[str]] = {
    **{key: frozenset({"v1"}) for key in KUBERNETES_REPLACE_ON_CHANGE if key[0] == ""},
    ("apps", "Deployment"): frozenset({"v1beta2", "v1"}),
    ("apps", "DaemonSet"): frozenset({"v1beta2", "v1"}),
    ("apps", "StatefulSet"): frozenset({"v1beta1", "v1beta2", "v1"}),
    ("batch", "Job"): frozenset({"v1beta1", "v1", "v2alpha1"}),
    ("policy", "PodDisruptionBudget"): frozenset({"v1beta1"}),
    ("rbac.authorization.k8s.io", "RoleBinding"): frozenset({"v1alpha1", "v1beta1", "v1"}),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): frozenset({"v1alpha1", "v1beta1", "v1"}),
    ("storage.k8s.io", "StorageClass"): frozenset({"v1"}),
}

# kubernetes:helm.sh/v3:Release is not a Kubernetes object: its diff
# (provider/pkg/provider/helm_release.go) replaces the release only on a new top-level name or
# namespace; chart, version, values and settings upgrade it in place.
HELM_RELEASE_REPLACE_ON_CHANGE: tuple[str, ...] = ("name", "namespace")


# --- matching ---------------------------------------------------------------------------------

_SEGMENT = re.compile(r'\[("(?:[^"\\]|\\.)*"|[^\]]*)\]|([^.\[\]]+)')


def path_keys(path: str) -> tuple[str, ...]:
    """The field names along a changed path, without list positions or `[name=...]` selectors.

    `spec.containers[name=main].image` -> ("spec", "containers", "image");
    `tags["kubernetes.io/role/elb"]` -> ("tags", "kubernetes.io/role/elb").
    """
    keys: list[str] = []
    for match in _SEGMENT.finditer(path):
        bracket, plain = match.group(1), match.group(2)
        if plain is not None:
            keys.append(plain)
        elif bracket.startswith('"'):
            keys.append(str(json.loads(bracket)))
        # anything else in brackets (an index, name=...) picks a list item: no field name
    return tuple(keys)


def _under(changed: Sequence[str], listed: Sequence[str]) -> bool:
    return len(changed) >= len(listed) and tuple(changed[: len(listed)]) == tuple(listed)


def _matching(changed_paths: Iterable[str], listed: Iterable[str]) -> list[str]:
    rules = [tuple(rule.split(".")) for rule in listed]
    found: list[str] = []
    for path in changed_paths:
        if path.startswith("(") or path in found:  # "(document)", "(pulumi options)...": no input
            continue
        keys = path_keys(path)
        if any(_under(keys, rule) for rule in rules):
            found.append(path)
    return found


def replacing_fields(resource_type: str, changed_paths: Iterable[str]) -> list[str]:
    """The changed paths of an AWS resource that force Pulumi to replace it, in input order.

    A changed path counts when it equals a replace-on-change property of `resource_type` or lies
    under one (`accessScope.type` under `accessScope`). An unknown type yields [] (updated in
    place as far as this module knows).
    """
    return _matching(changed_paths, AWS_REPLACE_ON_CHANGE.get(resource_type, ()))


def split_api_version(api_version: str) -> tuple[str, str]:
    """(group, version) of an apiVersion; the core group is "" whether written `v1` or `core/v1`."""
    group, _, version = api_version.rpartition("/")
    return ("" if group == "core" else group), version


def kubernetes_replace_on_change(
    api_version: str,
    kind: str,
    *,
    config_map_mutable: bool = False,
    secret_mutable: bool = False,
    immutable: bool = False,
    patch: bool = False,
) -> tuple[str, ...]:
    """The replace-on-change paths of one Kubernetes object under the given provider settings.

    `config_map_mutable` / `secret_mutable` are the provider's enableConfigMapMutable /
    enableSecretMutable options, `immutable` the object's own `immutable: true` (which keeps a
    ConfigMap or Secret replace-on-change whatever the option), `patch` a `...Patch` resource
    (only its name and namespace replace it).
    """
    group, version = split_api_version(api_version)
    if (group, kind) == ("helm.sh", "Release"):
        return HELM_RELEASE_REPLACE_ON_CHANGE
    if patch:
        return _METADATA
    key = (group, kind)
    if version not in _KUBERNETES_VERSIONS.get(key, frozenset()):
        return _METADATA
    fields = KUBERNETES_REPLACE_ON_CHANGE[key]
    if key == ("", "Secret") and secret_mutable and not immutable:
        fields = ("type",)
    if key == ("", "ConfigMap") and config_map_mutable and not immutable:
        fields = ()
    return (*_METADATA, *fields)


def kubernetes_replacing_fields(
    api_version: str,
    kind: str,
    changed_paths: Iterable[str],
    *,
    config_map_mutable: bool = False,
    secret_mutable: bool = False,
    immutable: bool = False,
    patch: bool = False,
) -> list[str]:
    """The changed paths of a Kubernetes object (or Helm release) that make Pulumi replace it.

    Keyword options as in `kubernetes_replace_on_change`; the defaults are the provider's.
    """
    listed = kubernetes_replace_on_change(
        api_version,
        kind,
        config_map_mutable=config_map_mutable,
        secret_mutable=secret_mutable,
        immutable=immutable,
        patch=patch,
    )
    return _matching(changed_paths, listed)


def kubernetes_deletes_before_replace(
    old_name: str | None, new_name: str | None, old_namespace: str | None, new_namespace: str | None
) -> bool:
    """Whether a replaced Kubernetes object is deleted before its successor is created.

    pulumi-kubernetes (provider/pkg/provider/provider.go, Diff) deletes first when the object has
    an explicit name that stays the same in the same namespace, since two objects cannot share
    it; a renamed or moved object is created first. Auto-named objects (no metadata.name in the
    inputs) are created first too: pass None for their names.
    """
    return old_name is not None and old_name == new_name and old_namespace == new_namespace
