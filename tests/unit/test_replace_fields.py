"""Replace-on-change fields: which changed paths make Pulumi replace a resource."""

from __future__ import annotations

import importlib

import pytest

from infra.offline.diff import diff_documents
from infra.offline.replace_fields import (
    AWS_CONDITIONAL_REPLACE,
    AWS_DELETE_BEFORE_REPLACE,
    AWS_REPLACE_ON_CHANGE,
    KUBERNETES_REPLACE_ON_CHANGE,
    kubernetes_deletes_before_replace,
    kubernetes_replace_on_change,
    kubernetes_replacing_fields,
    path_keys,
    replacing_fields,
    split_api_version,
)

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
CLUSTER = "aws:eks/cluster:Cluster"


# --- AWS ------------------------------------------------------------------------------------


def test_node_group_instance_types_change_replaces() -> None:
    assert replacing_fields(NODE_GROUP, ["instanceTypes[0]"]) == ["instanceTypes[0]"]


def test_node_group_scaling_and_labels_update_in_place() -> None:
    paths = ["scalingConfig.desiredSize", "scalingConfig.maxSize", "labels.pool", "version"]
    assert replacing_fields(NODE_GROUP, paths) == []


def test_node_group_launch_template_id_replaces_but_version_does_not() -> None:
    paths = ["launchTemplate.version", "launchTemplate.id"]
    assert replacing_fields(NODE_GROUP, paths) == ["launchTemplate.id"]


def test_cluster_version_and_subnets_update_in_place() -> None:
    paths = ["version", "vpcConfig.subnetIds[2]", "vpcConfig.endpointPublicAccess"]
    assert replacing_fields(CLUSTER, paths) == []


def test_cluster_role_and_bootstrap_admin_replace() -> None:
    paths = ["roleArn", "accessConfig.authenticationMode"]
    assert replacing_fields(CLUSTER, paths) == ["roleArn"]
    nested = ["accessConfig.bootstrapClusterCreatorAdminPermissions"]
    assert replacing_fields(CLUSTER, nested) == nested


def test_paths_nested_under_a_listed_block_replace() -> None:
    token = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
    paths = ["accessScope.type", "accessScope.namespaces[0]"]
    assert replacing_fields(token, paths) == paths


def test_a_sibling_with_a_common_prefix_is_not_under_a_listed_path() -> None:
    # "name" is replace-on-change for a launch template; "nameTag" (or "names") is not under it
    token = "aws:ec2/launchTemplate:LaunchTemplate"
    assert replacing_fields(token, ["nameTag", "names[0]", "userData"]) == []
    assert replacing_fields(token, ["name"]) == ["name"]


def test_tags_never_replace() -> None:
    for token in AWS_REPLACE_ON_CHANGE:
        assert replacing_fields(token, ["tags.Name", 'tags["kubernetes.io/role/elb"]']) == []


def test_subnet_az_replaces_and_public_ip_mapping_does_not() -> None:
    token = "aws:ec2/subnet:Subnet"
    paths = ["mapPublicIpOnLaunch", "availabilityZone", "cidrBlock"]
    assert replacing_fields(token, paths) == ["availabilityZone", "cidrBlock"]


def test_internet_gateway_has_no_replace_on_change_input() -> None:
    assert replacing_fields("aws:ec2/internetGateway:InternetGateway", ["vpcId"]) == []


def test_unknown_type_returns_nothing() -> None:
    assert replacing_fields("aws:s3/bucket:Bucket", ["bucket", "name"]) == []


def test_order_is_kept_and_duplicates_dropped() -> None:
    paths = ["subnetIds[1]", "amiType", "subnetIds[1]", "scalingConfig.minSize"]
    assert replacing_fields(NODE_GROUP, paths) == ["subnetIds[1]", "amiType"]


def test_document_and_pulumi_option_paths_are_not_inputs() -> None:
    assert replacing_fields(NODE_GROUP, ["(document)", "(pulumi options).ignoreChanges[0]"]) == []


def test_paths_from_diff_documents_feed_straight_in() -> None:
    before = {"instanceTypes": ["m6i.xlarge"], "scalingConfig": {"desiredSize": 3}}
    after = {"instanceTypes": ["m6i.2xlarge"], "scalingConfig": {"desiredSize": 4}}
    paths = [change.path for change in diff_documents(before, after)]
    assert replacing_fields(NODE_GROUP, paths) == ["instanceTypes[0]"]


def test_role_policy_attachment_is_replaced_delete_first() -> None:
    token = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    assert token in AWS_DELETE_BEFORE_REPLACE
    assert replacing_fields(token, ["policyArn"]) == ["policyArn"]


def test_conditional_replacements_are_not_reported_as_replacing() -> None:
    assert "instanceTenancy" in AWS_CONDITIONAL_REPLACE["aws:ec2/vpc:Vpc"]
    assert replacing_fields("aws:ec2/vpc:Vpc", ["instanceTenancy", "region"]) == []


def _sdk_input_names(token: str) -> set[str]:
    """The Pulumi input names of a pulumi-aws resource type, read from the installed SDK."""
    module_name, class_name = token.split(":")[1].split("/")[0], token.split(":")[2]
    module = importlib.import_module(f"pulumi_aws.{module_name}")
    args = getattr(module, f"{class_name}Args")
    return {
        value.fget._pulumi_name
        for value in vars(args).values()
        if isinstance(value, property) and hasattr(value.fget, "_pulumi_name")
    }


@pytest.mark.parametrize("token", sorted(AWS_REPLACE_ON_CHANGE))
def test_listed_aws_paths_are_inputs_of_the_installed_sdk(token: str) -> None:
    names = _sdk_input_names(token)
    listed = [*AWS_REPLACE_ON_CHANGE[token], *AWS_CONDITIONAL_REPLACE.get(token, {})]
    assert {path.split(".")[0] for path in listed} <= names


# --- path parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "keys"),
    [
        ("scalingConfig.desiredSize", ("scalingConfig", "desiredSize")),
        ("instanceTypes[0]", ("instanceTypes",)),
        ("spec.containers[name=main].image", ("spec", "containers", "image")),
        ('tags["kubernetes.io/role/elb"]', ("tags", "kubernetes.io/role/elb")),
        ('data["engine.yaml"]', ("data", "engine.yaml")),
        ("networkInterfaces[3].securityGroups[1]", ("networkInterfaces", "securityGroups")),
    ],
)
def test_path_keys(path: str, keys: tuple[str, ...]) -> None:
    assert path_keys(path) == keys


@pytest.mark.parametrize(
    ("api_version", "expected"),
    [("v1", ("", "v1")), ("core/v1", ("", "v1")), ("apps/v1", ("apps", "v1"))],
)
def test_split_api_version(api_version: str, expected: tuple[str, str]) -> None:
    assert split_api_version(api_version) == expected


# --- Kubernetes -----------------------------------------------------------------------------


def test_config_map_data_change_replaces_by_default() -> None:
    paths = ['data["engine.yaml"]', "metadata.labels.app"]
    assert kubernetes_replacing_fields("v1", "ConfigMap", paths) == ['data["engine.yaml"]']


def test_config_map_data_updates_in_place_when_the_provider_allows_it() -> None:
    paths = ['data["engine.yaml"]', "binaryData.blob"]
    assert kubernetes_replacing_fields("v1", "ConfigMap", paths, config_map_mutable=True) == []


def test_immutable_config_map_is_replaced_even_when_mutable_is_enabled() -> None:
    found = kubernetes_replacing_fields(
        "v1", "ConfigMap", ["data.key"], config_map_mutable=True, immutable=True
    )
    assert found == ["data.key"]


def test_secret_data_replaces_unless_secrets_are_mutable() -> None:
    assert kubernetes_replacing_fields("v1", "Secret", ["stringData.token"]) == ["stringData.token"]
    mutable = kubernetes_replacing_fields(
        "v1", "Secret", ["stringData.token", "type"], secret_mutable=True
    )
    assert mutable == ["type"]


def test_deployment_replicas_change_updates_in_place() -> None:
    paths = ["spec.replicas", "spec.template.spec.containers[name=main].image"]
    assert kubernetes_replacing_fields("apps/v1", "Deployment", paths) == []


def test_deployment_selector_change_replaces() -> None:
    paths = ["spec.selector.matchLabels.app"]
    assert kubernetes_replacing_fields("apps/v1", "Deployment", paths) == paths


def test_name_and_namespace_replace_every_kind() -> None:
    paths = ["metadata.name", "metadata.namespace", "spec.foo"]
    expected = ["metadata.name", "metadata.namespace"]
    for api_version, kind in [
        ("nvidia.com/v1alpha1", "DynamoGraphDeployment"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("v1", "Namespace"),
    ]:
        assert kubernetes_replacing_fields(api_version, kind, paths) == expected


def test_service_cluster_ip_replaces_but_type_does_not() -> None:
    paths = ["spec.type", "spec.clusterIP", "spec.ports[0].port"]
    assert kubernetes_replacing_fields("v1", "Service", paths) == ["spec.clusterIP"]


def test_storage_class_parameters_and_provisioner_replace() -> None:
    paths = ["parameters.type", "provisioner", "allowVolumeExpansion"]
    found = kubernetes_replacing_fields("storage.k8s.io/v1", "StorageClass", paths)
    assert found == ["parameters.type", "provisioner"]


def test_role_binding_role_ref_replaces_but_subjects_do_not() -> None:
    paths = ["subjects[0].name", "roleRef.name"]
    found = kubernetes_replacing_fields("rbac.authorization.k8s.io/v1", "RoleBinding", paths)
    assert found == ["roleRef.name"]


def test_pod_container_fields_replace_through_list_selectors() -> None:
    paths = ["spec.containers[name=main].image", "spec.containers[0].env[name=A].value"]
    assert kubernetes_replacing_fields("v1", "Pod", paths) == paths
    assert kubernetes_replacing_fields("v1", "Pod", ["metadata.labels.a"]) == []


def test_pvc_storage_class_replaces() -> None:
    paths = ["spec.storageClassName", "spec.resources.requests.storage"]
    found = kubernetes_replacing_fields("v1", "PersistentVolumeClaim", paths)
    assert found == ["spec.storageClassName"]


def test_resource_quota_scopes_replace() -> None:
    found = kubernetes_replacing_fields("v1", "ResourceQuota", ["spec.scopes[0]", "spec.hard.cpu"])
    assert found == ["spec.scopes[0]"]


def test_rules_apply_only_to_their_api_versions() -> None:
    # the PodDisruptionBudget rule is written for policy/v1beta1 only
    assert kubernetes_replacing_fields("policy/v1beta1", "PodDisruptionBudget", ["spec.x"]) == [
        "spec.x"
    ]
    assert kubernetes_replacing_fields("policy/v1", "PodDisruptionBudget", ["spec.x"]) == []
    assert kubernetes_replace_on_change("apps/v1beta1", "Deployment") == (
        "metadata.name",
        "metadata.namespace",
    )


def test_patch_resources_replace_only_on_name_or_namespace() -> None:
    paths = ["metadata.annotations.role", "metadata.name"]
    assert kubernetes_replacing_fields("v1", "ServiceAccount", paths, patch=True) == [
        "metadata.name"
    ]
    assert kubernetes_replacing_fields("v1", "Secret", ["data.a"], patch=True) == []


def test_helm_release_replaces_on_name_or_namespace_only() -> None:
    paths = ["values.replicas", "version", "namespace"]
    assert kubernetes_replacing_fields("helm.sh/v3", "Release", paths) == ["namespace"]


def test_every_kubernetes_rule_has_versions() -> None:
    for api_group, kind in KUBERNETES_REPLACE_ON_CHANGE:
        api_version = f"{api_group}/v1" if api_group else "v1"
        if (api_group, kind) == ("policy", "PodDisruptionBudget"):
            api_version = "policy/v1beta1"
        assert len(kubernetes_replace_on_change(api_version, kind)) > 2, (api_group, kind)


def test_kubernetes_delete_before_replace() -> None:
    assert kubernetes_deletes_before_replace("cfg", "cfg", "ns", "ns")
    assert not kubernetes_deletes_before_replace("cfg", "cfg-2", "ns", "ns")
    assert not kubernetes_deletes_before_replace("cfg", "cfg", "ns", "other")
    assert not kubernetes_deletes_before_replace(None, None, "ns", "ns")
