"""The AWS side of an EKS stack as rendered: node groups, EFA, IAM, add-ons, storage."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from infra.offline.render import mock_id, render_stack
from infra.stack.instances import CATALOG
from tests.conftest import PROJECT_ROOT


class Render:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.index = json.loads((out / "index.json").read_text())["resources"]

    def of_type(self, token: str) -> dict[str, dict]:
        return {
            r["name"]: yaml.safe_load((self.out / r["file"]).read_text())
            for r in self.index
            if r["type"] == token
        }


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Render:
    out = tmp_path_factory.mktemp("prod") / "prod"
    render_stack("prod", out, PROJECT_ROOT)
    return Render(out)


def test_gpu_node_groups_are_tainted_labelled_and_pinned(prod: Render) -> None:
    groups = prod.of_type("aws:eks/nodeGroup:NodeGroup")
    h100 = groups["pool-h100"]
    assert h100["taints"] == [{"effect": "NO_SCHEDULE", "key": "nvidia.com/gpu", "value": "true"}]
    assert h100["labels"] == {
        "dynamo-trtllm.io/node-pool": "h100",
        "dynamo-trtllm.io/gpu-product": "H100-80GB",
        "dynamo-trtllm.io/instance-type": "p5.48xlarge",
        # the NVIDIA device plugin runs only on nodes labelled so (its NFD never labels ours)
        "nvidia.com/gpu.present": "true",
    }
    assert h100["amiType"] == "AL2023_x86_64_NVIDIA"
    assert h100["releaseVersion"] == "1.35.6-20260714"  # no surprise AMI upgrades
    assert h100["capacityType"] == "CAPACITY_BLOCK"
    # a full block has no spare instance: nodes go before their successors start
    assert h100["updateConfig"] == {"maxUnavailable": 1, "updateStrategy": "MINIMAL"}
    assert h100["nodeRepairConfig"] == {"enabled": True}
    # EFA and the capacity block need one zone: the pool uses that zone's private subnet only
    assert h100["subnetIds"] == [mock_id("aws:ec2/subnet:Subnet", "cluster-private-us-east-1a")]
    assert "pool-l40s" not in groups  # Karpenter's: a NodePool, no node group
    assert groups["cluster-system"]["capacityType"] == "ON_DEMAND"


def test_efa_pool_has_an_interface_per_card_and_a_self_rule_but_no_placement_group(
    prod: Render,
) -> None:
    template = prod.of_type("aws:ec2/launchTemplate:LaunchTemplate")["pool-h100-template"]
    nics = template["networkInterfaces"]
    assert len(nics) == CATALOG["p5.48xlarge"].efa_interfaces == 32
    # card 0 keeps the one EFA interface with an IP address; the other cards are EFA-only
    assert [n["interfaceType"] for n in nics] == ["efa"] + ["efa-only"] * 31
    assert [n["networkCardIndex"] for n in nics] == list(range(32))
    assert {n["deviceIndex"] for n in nics} == {0}
    group = prod.of_type("aws:ec2/securityGroup:SecurityGroup")["pool-h100-efa"]
    everything_to_itself = [{"fromPort": 0, "protocol": "-1", "self": True, "toPort": 0}]
    assert group["ingress"] == group["egress"] == everything_to_itself
    efa_group = mock_id("aws:ec2/securityGroup:SecurityGroup", "pool-h100-efa")
    assert nics[0]["securityGroups"] == ["sg-dynamo-prod-cluster", efa_group]
    assert {tuple(n["securityGroups"]) for n in nics[1:]} == {(efa_group,)}
    # a capacity block was not bought inside a placement group made now: EC2 would launch none
    assert "placement" not in template
    assert prod.of_type("aws:ec2/placementGroup:PlacementGroup") == {}


def test_launch_templates_pin_the_capacity_block_disk_and_imdsv2(prod: Render) -> None:
    templates = prod.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    h100 = templates["pool-h100-template"]
    assert h100["instanceMarketOptions"] == {"marketType": "capacity-block"}
    assert h100["capacityReservationSpecification"] == {
        "capacityReservationTarget": {"capacityReservationId": "cr-0123456789abcdef0"}
    }
    assert h100["blockDeviceMappings"][0]["ebs"]["volumeSize"] == 500
    assert set(templates) == {"cluster-system-template", "pool-h100-template"}
    for name, template in templates.items():
        # IMDSv2 only, one hop: pods on the pod network cannot reach the node role
        assert template["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpPutResponseHopLimit": 1,
            "httpTokens": "required",
        }, name
        (volume,) = template["blockDeviceMappings"]
        assert volume["ebs"]["encrypted"] == "true" and volume["ebs"]["volumeType"] == "gp3"
    assert "RAID0" in base64.b64decode(h100["userData"]).decode()


def test_iam_has_only_scoped_policies(prod: Render) -> None:
    attachments = prod.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    node = sorted(
        a["policyArn"].rsplit("/", 1)[-1]
        for n, a in attachments.items()
        if n.startswith("cluster-node-")
    )
    # the VPC CNI's policy is on its own role, not on every node's
    assert node == ["AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy"]
    assert attachments["cluster-vpc-cni"]["policyArn"].endswith("/AmazonEKS_CNI_Policy")
    assert all("AdministratorAccess" not in a["policyArn"] for a in attachments.values())
    roles = prod.of_type("aws:iam/role:Role")
    for role in roles.values():
        for statement in json.loads(role["assumeRolePolicy"])["Statement"]:
            assert statement["Action"] != "*"
    for role, account in (
        ("cluster-ebs-csi", "kube-system:ebs-csi-controller-sa"),
        ("cluster-vpc-cni", "kube-system:aws-node"),
    ):
        trust = json.loads(roles[role]["assumeRolePolicy"])
        condition = trust["Statement"][0]["Condition"]["StringEquals"]
        assert f"system:serviceaccount:{account}" in condition.values()


def test_addons_enforce_network_policy_and_provide_gp3_storage(prod: Render) -> None:
    addons = {a["addonName"]: a for a in prod.of_type("aws:eks/addon:Addon").values()}
    assert set(addons) == {
        "vpc-cni",
        "coredns",
        "kube-proxy",
        "eks-pod-identity-agent",
        "aws-ebs-csi-driver",
    }
    assert json.loads(addons["vpc-cni"]["configurationValues"]) == {
        "enableNetworkPolicy": "true",
        "env": {"NETWORK_POLICY_ENFORCING_MODE": "strict"},
    }
    assert addons["vpc-cni"]["serviceAccountRoleArn"].endswith("role/cluster-vpc-cni")
    assert addons["aws-ebs-csi-driver"]["serviceAccountRoleArn"].endswith("role/cluster-ebs-csi")
    (storage,) = prod.of_type("kubernetes:storage.k8s.io/v1:StorageClass").values()
    assert storage["metadata"]["annotations"] == {
        "storageclass.kubernetes.io/is-default-class": "true"
    }
    assert storage["provisioner"] == "ebs.csi.aws.com"
    assert storage["parameters"]["encrypted"] == "true" and storage["parameters"]["type"] == "gp3"
    # The driver's volumes (outside Pulumi) carry the stack's cost tags; prod keeps them.
    tags = {v for k, v in storage["parameters"].items() if k.startswith("tagSpecification_")}
    assert {"stack=prod", "environment=prod", "project=dynamo-trtllm"} <= tags
    assert storage["reclaimPolicy"] == "Retain"  # prod is protected


def test_existing_cluster_mode_creates_no_aws_resource(tmp_path: Path) -> None:
    render_stack("local", tmp_path / "local", PROJECT_ROOT)
    index = json.loads((tmp_path / "local" / "index.json").read_text())["resources"]
    assert [r for r in index if r["type"].startswith("aws:")] == []
    assert not [r for r in index if r.get("kind") == "StorageClass"]


def test_model_cache_reads_only_its_own_s3_prefix_through_its_service_account(
    prod: Render,
) -> None:
    policies = prod.of_type("aws:iam/rolePolicy:RolePolicy")
    statements = json.loads(policies["gpt-oss-120b-cache-access-read"]["policy"])["Statement"]
    assert {s["Action"] for s in statements} == {"s3:ListBucket", "s3:GetObject"}
    read = next(s for s in statements if s["Action"] == "s3:GetObject")
    assert read["Resource"] == "arn:aws:s3:::example-prod-models/openai/gpt-oss-120b/*"
    role = prod.of_type("aws:iam/role:Role")["gpt-oss-120b-cache-access-role"]
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:gpt-oss-120b:default" in trust.values()
    accounts = prod.of_type("kubernetes:core/v1:ServiceAccountPatch")
    annotations = accounts["gpt-oss-120b-cache-access-account"]["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].endswith("role/gpt-oss-120b-cache-access-role")


def test_nothing_we_write_grants_every_action_on_every_resource(prod: Render) -> None:
    documents = [
        json.loads(p["policy"]) for p in prod.of_type("aws:iam/rolePolicy:RolePolicy").values()
    ]
    documents += [
        json.loads(r["assumeRolePolicy"]) for r in prod.of_type("aws:iam/role:Role").values()
    ]
    for document in documents:
        for statement in document["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "*" not in actions and not any(a.endswith(":*") for a in actions)
            if statement.get("Resource") == "*":
                # Only reads that name no resource they could be scoped to (Karpenter's
                # Describe*, pricing and zonal-shift status).
                verbs = [a.split(":", 1)[1] for a in actions]
                assert all(v.startswith(("Describe", "List", "Get")) for v in verbs), statement
