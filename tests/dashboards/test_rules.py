"""The generated Prometheus rules pass ``promtool check rules`` and their generated
``promtool test rules`` cases, and those cases would catch a wrong threshold or a
lost volume guard."""

from __future__ import annotations

from pathlib import Path

import yaml

from dashboards.export import RULE_TESTS_FILE, RULES_FILE, export
from dashboards.promql import query_for
from dashboards.rules import alert_name, not_expressible, rules_for
from sentinel.catalogue import Catalogue
from tests.dashboards.conftest import SENTINEL, promtool


def _rules(out: Path) -> dict:
    return yaml.safe_load((out / "prometheus" / RULES_FILE).read_text())


def test_rules_pass_promtool_check_and_their_own_unit_tests(exported: Path) -> None:
    rules_dir = exported / "prometheus"
    checked = promtool("check", "rules", rules_dir / RULES_FILE)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", RULE_TESTS_FILE, cwd=rules_dir)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_signal_prometheus_sees_has_a_rule_that_fires_and_one_that_stays_quiet(
    catalogue: Catalogue, exported: Path
) -> None:
    alerts = {r["alert"]: r for g in _rules(exported)["groups"] for r in g["rules"]}
    tests = yaml.safe_load((exported / "prometheus" / RULE_TESTS_FILE).read_text())["tests"]
    for signal in catalogue.signals:
        name = alert_name(signal.name)
        if query_for(signal) is None:
            assert name not in alerts, signal.name
            continue
        rule = alerts[name]
        assert rule["labels"]["signal"] == signal.name
        assert rule["labels"]["severity"] == signal.severity.value
        assert rule["labels"]["service"] == signal.labels["service"]
        assert rule["annotations"]["runbook_url"] == f"{SENTINEL}/runbooks/{signal.name}"
        cases = [t for t in tests if t["alert_rule_test"][0]["alertname"] == name]
        assert any(c["alert_rule_test"][0]["exp_alerts"] for c in cases), name
        assert any(not c["alert_rule_test"][0]["exp_alerts"] for c in cases), name
    # The SQL and log signals are named, with why, rather than silently left out.
    missing = not_expressible(catalogue)
    assert "payments.failed" in missing and "sql source" in missing["payments.failed"]
    assert "logs.critical_lines" in missing


def test_rules_carry_the_catalogue_thresholds_priors_and_persistence(exported: Path) -> None:
    alerts = {r["alert"]: r for g in _rules(exported)["groups"] for r in g["rules"]}
    # A static threshold with for_samples: 2 of a 15 s signal, kept 15 minutes.
    users = alerts["JobsEmptyListUsers"]
    assert users["expr"].rstrip().endswith(">= 0.01")
    assert users["for"] == "15s" and users["keep_firing_for"] == "15m"
    # A learned band cannot be PromQL: its prior (5% on at least 20 requests a minute) is.
    by_route = alerts["HttpErrorRatioByRoute"]["expr"]
    assert ">= 0.05" in by_route
    assert 'sum by (route) (increase(translator_http_requests_total{route!="/metrics"}[1m]))' in (
        by_route
    )
    assert ">= 20" in by_route
    # The burn rate's two window pairs against the 99.9% SLO.
    burn = alerts["HttpErrorRatio"]["expr"]
    for window in ("[1h]", "[5m]", "[6h]", "[30m]"):
        assert window in burn
    assert ">= 0.0144" in burn and ">= 0.006" in burn and "\nor\n" in burn
    assert alerts["HostCpuBusyRatio"]["for"] == "10m"


def _shifted(catalogue: Catalogue, **changes: dict) -> Catalogue:
    signals = []
    for signal in catalogue.signals:
        change = changes.get(signal.name.replace(".", "_"))
        if change:
            signal = signal.model_copy(update=change)
        signals.append(signal)
    return Catalogue(signals=signals)


def test_the_unit_tests_catch_a_wrong_threshold_and_a_lost_volume_guard(
    catalogue: Catalogue, tmp_path: Path
) -> None:
    """Rules from a catalogue whose thresholds moved fail the tests made for the real
    one: the tests pin what each rule does, not only that it parses."""
    from sentinel.detectors.spec import DetectorSpec

    good = tmp_path / "good"
    export(catalogue, good, ("rules",), sentinel_url=SENTINEL)
    by_route = catalogue.get("http.error_ratio_by_route")
    assert by_route.prior is not None
    wrong = _shifted(
        catalogue,
        llm_breaker_open={"detector": DetectorSpec(kind="static", params={"threshold": 5})},
        http_error_ratio_by_route={
            "prior": by_route.prior.model_copy(
                update={"params": {**by_route.prior.params, "min_volume": 0}}
            )
        },
    )
    bad = tmp_path / "bad"
    export(wrong, bad, ("rules",), sentinel_url=SENTINEL)
    (bad / "prometheus" / RULE_TESTS_FILE).write_text(
        (good / "prometheus" / RULE_TESTS_FILE).read_text()
    )
    tested = promtool("test", "rules", RULE_TESTS_FILE, cwd=bad / "prometheus")
    report = tested.stdout + tested.stderr
    assert tested.returncode != 0
    # The breaker at 3 no longer fires; the 5xx ratio fires on 10 requests a minute.
    assert "name: LlmBreakerOpen fires at 3" in report
    assert "name: HttpErrorRatioByRoute stays quiet at 0.525 on too little volume" in report
    assert "HttpLatencyP95ByRoute" not in report  # the unchanged rules still pass


def test_an_applied_tuning_moves_the_rule_threshold(catalogue: Catalogue) -> None:
    from types import SimpleNamespace

    tuned = {
        ("llm.breaker_open", ""): SimpleNamespace(
            id=7, spec={"kind": "static", "params": {"threshold": 0.5}}
        )
    }
    (rule,) = [
        r
        for r in rules_for(catalogue, sentinel_url=SENTINEL, tunings=tuned)
        if r.signal.name == "llm.breaker_open"
    ]
    assert rule.expr.rstrip().endswith(">= 0.5")
    assert "tuning #7" in rule.annotations["description"]
    assert "tuned threshold" in rule.annotations["summary"]
