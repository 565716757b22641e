"""A signal's page charts its detector's band (or fixed threshold) and the alerts its
tuning would raise; a responder re-tunes it there, and accepts or rejects the proposal
(the sentinel's own tuning functions, audited "via console"); a viewer cannot."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from common.identity import Role, open_store
from dashboards.console import create_console
from sentinel import tunings
from sentinel.alerting.models import AuditEvent
from sentinel.history import HistoryStore, Row, series_key
from sentinel.models import Tuning, TuningStatus
from tests.console.conftest import NOW
from tests.identity import account, bearer

CPU = "host.cpu_busy_ratio"  # static: above 0.80 for 10 minutes
BUSY_NODE = series_key({"instance": "node-2:9100"})


def _chart(client: TestClient, path: str) -> dict:
    html = client.get(path).text
    return json.loads(re.search(r'<script id="chart-data"[^>]*>(.*?)</script>', html, re.S)[1])


def _band(chart: dict, label: str) -> list[float]:
    """The values of one band edge, by its label."""
    column = chart["band"]["columns"][chart["band"]["labels"].index(label)]
    return [v for v in column if v is not None]


@pytest.fixture
def busy_node(console_reader):
    """Two days of node-2 idling at 30% with a 20-minute build at 86% every four hours:
    the static 80% limit would page twelve times for nothing."""
    reader, _ = console_reader
    rows = []
    start = NOW - timedelta(days=2)
    for minute in range(2 * 24 * 60):
        build = minute % 240 < 20
        rows.append(Row(CPU, BUSY_NODE, start + timedelta(minutes=minute), 0.86 if build else 0.3))
    HistoryStore(reader.db).append(rows)
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW)) as client:
        yield client, reader


def test_the_chart_carries_the_band_or_threshold_and_the_would_be_alerts(seeded) -> None:
    client, _ = seeded
    chart = _chart(client, "/signals/payments.failed_ratio?hours=6")
    # until the detector has learnt a day of history its prior's 20% limit judges
    assert set(_band(chart, "method=wallet: upper")) == {0.2}
    assert len(_band(chart, "method=wallet: upper")) >= 100  # drawn along the data
    assert chart["band"]["pairs"] == [[0, None, 0], [1, None, 1]]  # card, then wallet
    # the wallet's broken twenty minutes: the one alert its detector raises, as it did
    ((start, end, series),) = chart["would_be"]
    assert series == "method=wallet"
    assert NOW - timedelta(minutes=21) <= _at(start) <= NOW - timedelta(minutes=18)
    assert _at(end) >= NOW - timedelta(minutes=1)
    assert chart["shade"]  # the real alert, beside it
    assert chart["proposed"] == [] and not chart["has_proposal"]  # nothing waits


def _at(epoch: float):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


def test_a_viewer_cannot_retune_or_decide(busy_node) -> None:
    client, reader = busy_node
    viewer = bearer(account("carol", Role.viewer))
    page = client.get(f"/signals/{CPU}", headers=viewer).text
    assert 'id="retune"' not in page
    refused = client.post(f"/signals/{CPU}/retune", data={"days": "2"}, headers=viewer)
    assert refused.status_code == 403 and "needs a responder" in refused.text
    proposal = tunings.record(reader.db, CPU, {"kind": "static", "params": {"threshold": 0.9}},
                              {}, NOW, apply=False, by="retune", series=BUSY_NODE)  # fmt: skip
    for decision in ("accept", "reject"):
        r = client.post(f"/signals/{CPU}/tunings/{proposal}/{decision}", headers=viewer)
        assert r.status_code == 403
    with reader.db.session() as s:
        assert s.get(Tuning, proposal).status == TuningStatus.proposed
        assert s.scalars(select(AuditEvent)).all() == []


def test_a_responder_retunes_and_accepting_moves_the_threshold(busy_node) -> None:
    client, reader = busy_node
    path = f"/signals/{CPU}?hours=48"
    before = _chart(client, path)
    assert set(_band(before, "instance=node-2:9100: upper")) == {0.8}
    assert len([w for w in before["would_be"] if w[2] == "instance=node-2:9100"]) == 12

    responder = bearer(account("sysadmin-1", Role.responder))
    assert 'id="retune"' in client.get(path, headers=responder).text
    done = client.post(
        f"/signals/{CPU}/retune", data={"days": "2", "budget": "1"}, headers=responder
    )
    assert done.status_code == 200 and "Done: proposed" in done.text
    with reader.db.session() as s:
        (proposal,) = s.scalars(
            select(Tuning).where(Tuning.signal == CPU, Tuning.series == BUSY_NODE)
        ).all()
        assert proposal.status == TuningStatus.proposed
        threshold = proposal.spec["params"]["threshold"]
        assert threshold > 0.86  # above the builds: within one false alert a week
    # nothing changed yet: the proposal's would-be alerts are drawn beside the current ones
    waiting = _chart(client, path)
    assert set(_band(waiting, "instance=node-2:9100: upper")) == {0.8}
    assert waiting["has_proposal"] and waiting["proposed"] == []  # it would raise none
    assert len(waiting["would_be"]) == 12
    page = client.get(path, headers=responder).text
    assert f'id="accept-{proposal.id}"' in page
    assert 'the proposal waiting below <strong id="proposed-count">0</strong>' in page

    accepted = client.post(f"/signals/{CPU}/tunings/{proposal.id}/accept", headers=responder)
    assert accepted.status_code == 200 and f"tuning {proposal.id} applied" in accepted.text
    after = _chart(client, path)
    assert set(_band(after, "instance=node-2:9100: upper")) == {threshold}
    assert after["would_be"] == []  # the builds no longer page
    applied = tunings.applied(reader.db)[(CPU, BUSY_NODE)]
    assert applied.id == proposal.id and applied.decided_by == "sysadmin-1"
    with reader.db.session() as s:
        audit = s.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(a.kind, a.actor, a.via) for a in audit] == [
        ("retune", "sysadmin-1", "console"),
        ("tuning_accept", "sysadmin-1", "console"),
    ]
    assert audit[1].detail["tuning_id"] == proposal.id
    # an accepted tuning is no longer a proposal
    again = client.post(f"/signals/{CPU}/tunings/{proposal.id}/accept", headers=responder)
    assert again.status_code == 409 and "applied, not a proposal" in again.text


def test_rejecting_a_proposal_keeps_the_applied_tuning(console_reader) -> None:
    reader, _ = console_reader
    wallet = series_key({"method": "wallet"})
    current = tunings.applied(reader.db)[("payments.failed_ratio", wallet)]
    with TestClient(create_console(reader, open_store(), clock=lambda: NOW)) as client:
        responder = bearer(account("sysadmin-2", Role.responder))
        r = client.post(
            "/signals/payments.failed_ratio/retune", data={"days": "1"}, headers=responder
        )
        assert r.status_code == 200
        with reader.db.session() as s:
            proposal = s.scalars(
                select(Tuning).where(
                    Tuning.series == wallet, Tuning.status == TuningStatus.proposed
                )
            ).one()
        # the page draws what the proposal would raise until a person decides
        assert _chart(client, "/signals/payments.failed_ratio")["proposed"]
        url = f"/signals/payments.failed_ratio/tunings/{proposal.id}/reject"
        rejected = client.post(url, headers=responder)
        assert rejected.status_code == 200 and "rejected" in rejected.text
    assert tunings.applied(reader.db)[("payments.failed_ratio", wallet)].id == current.id
    with reader.db.session() as s:
        assert s.get(Tuning, proposal.id).status == TuningStatus.rejected
        kinds = s.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)).all()
    assert kinds == ["retune", "tuning_reject"]


def test_bad_retune_input_is_refused_with_a_clear_message(busy_node) -> None:
    client, reader = busy_node
    responder = bearer(account("sysadmin-1", Role.responder))
    for form, words in (
        ({"days": "a month"}, "Days of history must be a number"),
        ({"days": "0"}, "more than 0"),
        ({"days": "400"}, "at most 35"),
        ({"days": "2", "budget": "-1"}, "False alerts per week must be a number, at least 0"),
        ({"days": "nan"}, "Days of history must be a number"),
    ):
        r = client.post(f"/signals/{CPU}/retune", data=form, headers=responder)
        assert r.status_code == 400, form
        assert words in r.text and 'href="/signals/host.cpu_busy_ratio#tuning"' in r.text
    # a signal with no history says what to do
    empty = client.post("/signals/jobs.failed/retune", data={"days": "1"}, headers=responder)
    assert empty.status_code == 409 and "sentinel backfill jobs.failed" in empty.text
    assert client.post("/signals/no.such/retune", headers=responder).status_code == 404
    other = client.post("/signals/jobs.failed/tunings/1/accept", headers=responder)
    assert other.status_code == 404
    assert client.post(f"/signals/{CPU}/tunings/1/approve", headers=responder).status_code == 422
    with reader.db.session() as s:
        assert s.scalars(select(Tuning).where(Tuning.signal == CPU)).all() == []


def test_the_band_lands_on_the_slots_of_the_values_across_a_gap() -> None:
    from dashboards.console.overlay import SeriesOverlay
    from dashboards.console.tuning import chart_overlay

    since, width = NOW - timedelta(hours=1), 5.0
    start = since.timestamp()
    mid = [start + (i + 0.5) * width for i in (0, 5, 6)]  # no data in slots 1 to 4
    chart = {"names": ["a"], "columns": [mid, [1.0, 2.0, 3.0]]}
    upper = [(start + (i + 0.5) * width, 10.0 + i) for i in (0, 3, 5, 6)]
    found = {"a": SeriesOverlay(lower=[], upper=upper, would_be=[(mid[1], mid[2])])}
    out = chart_overlay(chart, found, {"a": "a"}, since, width)
    # slot 3 has no value to stand beside; the others keep their own slot
    assert out["band"] == {"labels": ["a: upper"], "columns": [[10.0, 15.0, 16.0]],
                           "pairs": [[0, None, 0]]}  # fmt: skip
    assert out["would_be"] == [[mid[1], mid[2], "a"]]


def test_retuning_twice_leaves_one_proposal_to_decide(busy_node) -> None:
    client, reader = busy_node
    responder = bearer(account("sysadmin-1", Role.responder))
    for days in ("2", "1.5"):
        done = client.post(f"/signals/{CPU}/retune", data={"days": days}, headers=responder)
        assert done.status_code == 200 and "Done: proposed" in done.text
    with reader.db.session() as s:
        older, newer = s.scalars(
            select(Tuning).where(Tuning.signal == CPU, Tuning.series == BUSY_NODE)
            .order_by(Tuning.id)
        ).all()  # fmt: skip
        waiting = s.scalars(
            select(Tuning.series).where(Tuning.status == TuningStatus.proposed)
        ).all()
    assert (older.status, newer.status) == (TuningStatus.superseded, TuningStatus.proposed)
    assert len(waiting) == len(set(waiting))  # one a series
    page = client.get(f"/signals/{CPU}", headers=responder).text
    tuning = page[page.index('<section id="tuning">') : page.index("</section>", page.index(
        '<section id="tuning">'))]  # fmt: skip
    assert f'id="accept-{newer.id}"' in tuning and f'id="reject-{newer.id}"' in tuning
    assert f'id="accept-{older.id}"' not in tuning and f'id="reject-{older.id}"' not in tuning
    assert len(re.findall(r'id="accept-\d+"', tuning)) == len(waiting)
    assert "tuning-superseded" in tuning  # the older one is kept, marked
    # the waiting one is listed before what came before
    assert tuning.index(f'id="accept-{newer.id}"') < tuning.index("tuning-superseded")
