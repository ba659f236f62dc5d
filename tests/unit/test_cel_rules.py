"""CRD rules as the API server runs them on create: defaults first, transition rules skipped,
a rule that cannot be evaluated (an unguarded missing key) refuses the object."""

from __future__ import annotations

from infra.offline.cel_rules import evaluate, object_rule_failures

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "mode": {"type": "string", "default": "auto"},
                "size": {"type": "string"},
                "name": {"type": "string"},
            },
            "x-kubernetes-validations": [
                {"rule": "self.mode in ['auto', 'manual']", "message": "mode is auto or manual"},
                {"rule": "self.name == oldSelf.name", "message": "name is immutable"},
                {"rule": "quantity(self.size).isGreaterThan(quantity('1Gi'))"},
            ],
        }
    },
}


def test_defaults_apply_before_the_rules_and_transition_rules_wait_for_updates() -> None:
    assert object_rule_failures(SCHEMA, {"spec": {"size": "2Gi", "name": "a"}}) == []


def test_a_false_rule_and_an_unguarded_missing_key_both_refuse() -> None:
    (wrong,) = object_rule_failures(SCHEMA, {"spec": {"mode": "x", "size": "2Gi"}})
    assert wrong.path == ".spec" and wrong.message == "mode is auto or manual"
    (missing,) = object_rule_failures(SCHEMA, {"spec": {"mode": "auto"}})
    assert "evaluation failed" in missing.message
    (small,) = object_rule_failures(SCHEMA, {"spec": {"size": "512Mi"}})
    assert small.message.startswith("failed rule: quantity(self.size)")


def test_the_kubernetes_libraries_the_shipped_rules_use() -> None:
    assert evaluate("'a.b'.split('.') == ['a', 'b']", {})
    assert evaluate("'ABC'.lowerAscii() == 'abc'", {})
    assert evaluate("'x-12'.find('[0-9]+') == '12'", {})
    assert evaluate("quantity('500m').isLessThan(quantity('1'))", {})
