"""The Prometheus and Grafana the stack installs: series keep the namespace of the monitor that
scraped them (no model can feed another's autoscaler), and Grafana's admin password is the
stack's own secret, never the chart's default."""

from __future__ import annotations

import pytest
import yaml

from components.platform import build_kube_prometheus_stack_values
from infra.deployment.checked import check_stack, check_stack_values
from infra.stack.errors import StackConfigError
from tests.conftest import PROJECT_ROOT, Project, Rendered

from .helpers import values

MONITORED = {"observability": {"enabled": True, "installKubePrometheusStack": True}}


def test_prometheus_enforces_the_monitors_namespace_except_for_its_own_and_dcgm() -> None:
    dumped = build_kube_prometheus_stack_values("monitoring", "gpu-system").dump()
    spec = dumped["prometheus"]["prometheusSpec"]
    assert spec["enforcedNamespaceLabel"] == "namespace"
    excluded = {(r["namespace"], r["resource"]) for r in spec["excludedFromEnforcement"]}
    assert excluded == {
        ("monitoring", "servicemonitors"),
        ("monitoring", "podmonitors"),
        ("monitoring", "prometheusrules"),
        ("gpu-system", "servicemonitors"),
    }
    assert dumped["grafana"]["admin"]["existingSecret"] == "grafana-admin"


def test_installing_grafana_without_an_admin_password_is_refused() -> None:
    raw = values(**MONITORED)
    with pytest.raises(StackConfigError) as caught:
        check_stack_values(raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT)
    (issue,) = [i for i in caught.value.issues if i.path == "grafanaAdminPassword"]
    assert "default admin password" in issue.message
    check_stack_values(
        raw, "stacks/Pulumi.test.yaml", PROJECT_ROOT, secrets=frozenset({"grafanaAdminPassword"})
    )


def test_a_password_from_an_imported_esc_environment_is_a_warning(project: Project) -> None:
    path = project.root / "stacks" / "Pulumi.prod.yaml"
    document = yaml.safe_load(path.read_text())
    del document["config"]["dynamo-trtllm:grafanaAdminPassword"]
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(StackConfigError, match="grafanaAdminPassword"):
        check_stack(project.root, "prod")
    document["environment"] = ["dynamo-trtllm/shared"]
    path.write_text(yaml.safe_dump(document))
    checked = check_stack(project.root, "prod")
    assert any("ESC environment" in w.message for w in checked.warnings)


def test_prods_grafana_reads_its_password_from_the_stacks_secret(
    rendered: dict[str, Rendered],
) -> None:
    prod = rendered["prod"]
    (secret,) = [s for s in prod.objects("Secret") if s["metadata"]["name"] == "grafana-admin"]
    assert secret["metadata"]["namespace"] == "monitoring"
    assert secret["stringData"] == {"admin-user": "[secret]", "admin-password": "[secret]"}
