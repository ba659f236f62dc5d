"""Dependencies per model: each model's objects wait for what they use, not the whole stack."""

from __future__ import annotations

from .registrations import Registrations


def test_a_models_monitors_and_nats_credentials_wait_for_its_own_namespace_alone(
    prod: Registrations,
) -> None:
    """Per-model dependencies: a model's objects never wait on (or get replaced with) another
    model's namespace, and the dependency walk grows linearly with the models."""
    namespaces = {r.name for r in prod.of_type("kubernetes:core/v1:Namespace")}
    for registration in [
        *prod.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor"),
        *[s for s in prod.of_type("kubernetes:core/v1:Secret") if s.name.startswith("nats-")],
    ]:
        waited = {
            name
            for name in namespaces
            if any(d.endswith(f"::{name}") for d in registration.dependencies)
        }
        assert len(waited) == 1, (registration.name, waited)
