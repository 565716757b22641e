"""The rule that decides whether an alert belongs to an open incident, and the
routes a rolled-back release broke as read from the gate's record. Pure: a table
of the cases an incident lead would argue about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postmortems.belonging import (
    AlertFacts,
    IncidentFacts,
    LinkedFacts,
    ReleaseFacts,
    belongs,
    route_path,
)
from postmortems.releases import broken_routes

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
CANARY = ReleaseFacts(
    release_id="7",
    version="1.4.2",
    canary_started_at=T0,
    rolled_back_at=T0 + timedelta(minutes=6),
    routes=frozenset({"GET /api/jobs"}),
)


def alert(
    signal: str = "http.error_ratio",
    *,
    minutes: float = 3,
    started_minutes: float | None = None,
    route: str | None = None,
    group_id: int | None = None,
    series: str = "",
    family: frozenset[str] = frozenset(),
) -> AlertFacts:
    labels = {"service": "translator"}
    if route:
        labels["route"] = route
    fired = T0 + timedelta(minutes=minutes)
    started = T0 + timedelta(minutes=minutes if started_minutes is None else started_minutes)
    return AlertFacts(
        alert_id=1,
        signal=signal,
        labels=labels,
        started_at=started,
        fired_at=fired,
        series=series,
        group_id=group_id,
        family=family,
    )


def release_incident(release: ReleaseFacts = CANARY) -> IncidentFacts:
    return IncidentFacts(incident_id=1, service="translator", release=release)


def alert_incident(*linked: LinkedFacts) -> IncidentFacts:
    return IncidentFacts(incident_id=2, service="translator", alerts=linked)


@pytest.mark.parametrize(
    ("facts", "joins", "words"),
    [
        # The demo: an unrelated business fault an hour after the rollback.
        (alert(minutes=70, started_minutes=68), False, "after release 1.4.2 was rolled back"),
        (alert(minutes=3, route="/api/jobs"), True, "during release 1.4.2's canary on route"),
        (alert(minutes=3, route="/api/files"), False, "route /api/files is not one"),
        (alert(minutes=3), True, "service-wide alert during"),  # no route label
        (alert(minutes=15, started_minutes=5), True, "9 min after release 1.4.2's rollback"),
        (alert(minutes=22, started_minutes=5), False, "16 min after"),
        # Anomalous before the canary took traffic: not the release's doing.
        (alert(minutes=3, started_minutes=-10), False, "began 10 min before"),
        (
            alert("payments.failed", minutes=70, group_id=5, started_minutes=69),
            False,
            "rolled back",
        ),
    ],
)
def test_an_alert_joins_a_bad_release_only_in_its_window_and_on_its_routes(
    facts: AlertFacts, joins: bool, words: str
) -> None:
    verdict = belongs(facts, release_incident(), "translator")
    assert verdict.joins is joins
    assert words in verdict.reason


def test_unknown_routes_let_any_alert_of_the_window_join() -> None:
    release = ReleaseFacts(
        release_id="7",
        canary_started_at=T0,
        rolled_back_at=T0 + timedelta(minutes=6),
        routes=None,
    )
    verdict = belongs(alert(route="/api/files"), release_incident(release), "translator")
    assert verdict.joins and "did not say which routes" in verdict.reason
    assert "release 7" in verdict.reason  # no version known: its id


def test_the_same_page_series_or_signal_joins_an_alert_incident() -> None:
    held = LinkedFacts(signal="http.error_ratio", series='route="/api/jobs"', group_id=5)
    incident = alert_incident(held)
    page = belongs(alert("queue.lag", group_id=5), incident, "translator")
    assert page.joins and page.strength == 3 and "alert group 5" in page.reason
    again = belongs(alert(series='route="/api/jobs"', route="/api/jobs"), incident, "translator")
    assert again.joins and again.strength == 2 and "firing again" in again.reason
    spread = belongs(alert(series='route="/api/files"'), incident, "translator")
    assert spread.joins and spread.strength == 1
    # The route's latency alert beside its error alert: one fault, one incident.
    related = belongs(alert("http.latency_p95", series='route="/api/jobs"'), incident, "translator")
    assert related.joins and related.strength == 2
    assert 'same series route="/api/jobs" as http.error_ratio' in related.reason
    other = belongs(alert("payments.failed", group_id=6), incident, "translator")
    assert not other.joins
    assert "holds http.error_ratio, not payments.failed" in other.reason


def test_a_signal_of_the_same_family_joins_whatever_its_series() -> None:
    held = LinkedFacts(signal="http.error_ratio_by_route", series='route="/api/jobs"')
    family = frozenset({"http.error_ratio", "http.error_ratio_by_route"})
    whole = belongs(alert(family=family), alert_incident(held), "translator")
    assert whole.joins and whole.strength == 2
    assert "http.error_ratio measures what http.error_ratio_by_route does" in whole.reason
    # Without the catalogue's word the two are separate causes.
    assert not belongs(alert(), alert_incident(held), "translator").joins


def test_another_service_or_an_empty_incident_never_takes_an_alert() -> None:
    held = LinkedFacts(signal="http.error_ratio")
    assert not belongs(alert(), alert_incident(held), "payments").joins
    empty = belongs(alert(), alert_incident(), "translator")
    assert not empty.joins and "no alert and no release" in empty.reason


def test_judge_routes_match_sentinel_route_labels() -> None:
    assert route_path("GET /api/jobs") == "/api/jobs"
    assert route_path("/api/jobs") == "/api/jobs"


def test_the_routes_a_release_broke_come_from_signatures_and_canary_errors() -> None:
    verdict = {
        "evidence": {"signatures": {"findings": [{"route": "POST /api/files", "status": "500"}]}}
    }
    samples = {
        "canary": [
            {"t": 0, "routes": {"GET /api/jobs": {"requests": 10, "errors": 1}}},
            {
                "t": 30,
                "routes": {
                    "GET /api/jobs": {"requests": 40, "errors": 9},
                    "GET /api/health": {"requests": 30, "errors": 0},
                },
            },
        ],
        "control": [],
    }
    assert broken_routes(verdict, samples) == {"POST /api/files", "GET /api/jobs"}
    assert broken_routes(None, {"canary": [{"t": 0}]}) is None  # no per-route counts
    assert broken_routes({}, None) is None


def test_the_routes_come_out_of_a_real_judge_verdict_as_the_gate_stores_it() -> None:
    from release_gate.judge import CountSample, JudgeConfig, JudgeInput, RouteCounts, judge

    def sample(t: float, jobs_errors: int, n: int) -> CountSample:
        routes = {
            "GET /api/jobs": RouteCounts(
                requests=n, errors=jobs_errors, statuses={"500": jobs_errors}
            ),
            "GET /api/health": RouteCounts(requests=n, errors=0),
        }
        return CountSample(t=t, requests=2 * n, errors=jobs_errors, routes=routes)

    canary = [sample(10.0 * i, 4 * i, 50 * i) for i in range(13)]
    control = [sample(10.0 * i, 0, 200 * i) for i in range(13)]
    verdict = judge(JudgeInput(canary=canary, control=control), JudgeConfig(), final=True)
    assert verdict.decision == "rollback"
    stored_verdict = verdict.model_dump(mode="json")
    stored_samples = {
        "canary": [s.model_dump(mode="json") for s in canary],
        "control": [s.model_dump(mode="json") for s in control],
    }
    assert broken_routes(stored_verdict, stored_samples) == {"GET /api/jobs"}
    assert broken_routes(stored_verdict, None) == {"GET /api/jobs"}  # the signatures alone
