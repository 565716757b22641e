"""Inhibition with Alertmanager's semantics: a firing cause mutes its symptoms."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from common.yaml_config import ConfigError, parse_yaml_model
from sentinel.alerting.inhibit import InhibitRule, describe_alert, inhibited_by

DB_DOWN = InhibitRule(
    name="database-down-mutes-its-service",
    source_matchers=['signal="database.down"'],
    target_matchers=['signal!="database.down"'],
    equal=["service"],
)
DB_PAYMENTS = {"signal": "database.down", "service": "payments", "severity": "P0"}
FAILED_PAYMENTS = {"signal": "payments.failed", "service": "payments", "severity": "P1"}
FAILED_BILLING = {"signal": "payments.failed", "service": "billing", "severity": "P1"}


def test_database_down_mutes_payments_failing_on_the_same_service_only() -> None:
    assert inhibited_by(FAILED_PAYMENTS, [DB_PAYMENTS], [DB_DOWN]) == (DB_DOWN, DB_PAYMENTS)
    assert inhibited_by(FAILED_BILLING, [DB_PAYMENTS], [DB_DOWN]) is None
    # The cause itself still pages.
    assert inhibited_by(DB_PAYMENTS, [DB_PAYMENTS, FAILED_PAYMENTS], [DB_DOWN]) is None
    # Nothing firing, nothing muted.
    assert inhibited_by(FAILED_PAYMENTS, [], [DB_DOWN]) is None


def test_alertmanager_style_labels_work_the_same() -> None:
    rule = InhibitRule(
        source_matchers=['alertname="database.down"'],
        target_matchers=["alertname=payments.failed"],
        equal=["service"],
    )
    source = {"alertname": "database.down", "service": "payments"}
    muted = inhibited_by({"alertname": "payments.failed", "service": "payments"}, [source], [rule])
    assert muted == (rule, source)
    assert describe_alert(source) == "database.down{service=payments}"


def test_missing_equal_labels_count_as_equal() -> None:
    rule = InhibitRule(
        source_matchers=['severity="P0"'], target_matchers=['severity="P3"'], equal=["cluster"]
    )
    source, target = {"severity": "P0"}, {"severity": "P3"}
    assert inhibited_by(target, [source], [rule]) == (rule, source)
    # ... but present on one side only is a difference.
    assert inhibited_by({**target, "cluster": "eu"}, [source], [rule]) is None
    assert inhibited_by(target, [{**source, "cluster": "eu"}], [rule]) is None


def test_without_equal_any_source_mutes_every_target() -> None:
    rule = InhibitRule(
        source_matchers=["signal=maintenance.mode"], target_matchers=['severity=~"P2|P3"']
    )
    assert inhibited_by(
        {"severity": "P3", "service": "x"}, [{"signal": "maintenance.mode"}], [rule]
    )
    assert not inhibited_by({"severity": "P1"}, [{"signal": "maintenance.mode"}], [rule])


def test_an_alert_matching_both_sides_does_not_mute_itself_or_its_peers() -> None:
    # "critical mutes warning, and also any other critical" - a two-sided rule.
    rule = InhibitRule(
        source_matchers=['severity=~"P0|P1"'],
        target_matchers=['severity=~"P0|P1|P2"'],
        equal=["service"],
    )
    p1 = {"signal": "queue.lag", "service": "translator", "severity": "P1"}
    p0 = {"signal": "http.500", "service": "translator", "severity": "P0"}
    p2 = {"signal": "empty.lists", "service": "translator", "severity": "P2"}
    assert inhibited_by(p1, [p1], [rule]) is None
    assert inhibited_by(p1, [p0, p1], [rule]) is None  # p0 matches both sides too
    assert inhibited_by(p2, [p0, p1], [rule]) == (rule, p0)


def test_first_matching_rule_and_source_are_reported() -> None:
    broad = InhibitRule(
        name="broad", source_matchers=["severity=P0"], target_matchers=["severity=P2"]
    )
    assert inhibited_by({"severity": "P2"}, [DB_PAYMENTS], [DB_DOWN, broad]) == (broad, DB_PAYMENTS)
    sources = iter([{"signal": "x", "severity": "P1"}, DB_PAYMENTS])  # a generator is fine
    rule, source = inhibited_by(FAILED_PAYMENTS, sources, [broad, DB_DOWN])  # type: ignore[misc]
    assert rule is DB_DOWN and source is DB_PAYMENTS


def test_mutes_checks_one_pair() -> None:
    assert DB_DOWN.mutes(FAILED_PAYMENTS, DB_PAYMENTS)
    assert not DB_DOWN.mutes(FAILED_PAYMENTS, FAILED_BILLING)
    assert not DB_DOWN.mutes(DB_PAYMENTS, DB_PAYMENTS)


def test_describe() -> None:
    assert describe_alert(DB_PAYMENTS) == "database.down{service=payments,severity=P0}"
    assert describe_alert(DB_PAYMENTS, shown=["service"]) == "database.down{service=payments}"
    assert describe_alert({"service": "x"}) == "alert{service=x}"
    assert DB_DOWN.describe() == "database-down-mutes-its-service"
    anonymous = DB_DOWN.model_copy(update={"name": None})
    assert anonymous.describe() == (
        '{signal="database.down"} mutes {signal!="database.down"} on equal service'
    )


def test_rules_from_yaml_and_their_errors() -> None:
    text = "source_matchers: ['signal=\"database.down\"']\ntarget_matchers: []\nequal: [service]\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml_model(text, InhibitRule, source="alerting.yaml")
    assert "alerting.yaml:2" in str(caught.value) and "target_matchers" in str(caught.value)
    with pytest.raises(ValidationError) as bad:
        InhibitRule(source_matchers=['signal=~"("'], target_matchers=["a=b"])
    assert bad.value.errors()[0]["loc"] == ("source_matchers", 0)
    rule = parse_yaml_model(text.replace("[]", "['signal!=\"database.down\"']"), InhibitRule)
    assert rule.mutes(FAILED_PAYMENTS, DB_PAYMENTS)
    assert rule.model_dump()["source_matchers"] == ['signal="database.down"']
