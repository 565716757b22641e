"""``GET /api/health`` of ``postmortem serve`` tells the truth: 503
``degraded`` with the reason when its database does not answer, or when its
watcher loop has not got through a pass for three intervals."""

from __future__ import annotations

from fastapi.testclient import TestClient

from postmortems.api import create_app
from postmortems.app import Background
from postmortems.db import Database
from postmortems.service import Postmortems
from sentinel.db import Database as SentinelDatabase
from tests.sources.conftest import closed_port


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _served(pm: Postmortems, background: Background | None) -> TestClient:
    app = create_app(pm)
    app.state.background = background
    return TestClient(app)


def test_healthy_without_a_watcher(pm: Postmortems) -> None:
    answer = _served(pm, None).get("/api/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "healthy" and body["reason"] is None
    assert body["open_incidents"] == 0
    assert body["checks"] == {"database": {"status": "ok"}, "watcher": {"status": "off"}}


def test_a_watcher_that_cannot_read_the_sentinel_degrades_after_three_passes(
    pm: Postmortems, sentinel_url: str
) -> None:
    pm.settings.sentinel_database_url = sentinel_url
    ticker = Ticker()
    background = Background(pm, interval=30, reminders=False, monotonic=ticker)
    client = _served(pm, background)
    background.run_once()
    body = client.get("/api/health").json()
    assert body["status"] == "healthy"
    assert body["checks"]["watcher"]["last_success_at"] is not None

    # The sentinel's database goes away: passes fail, health stays up for three intervals.
    background.sentinel_db.dispose()
    background.watcher.sentinel_db = SentinelDatabase(
        f"postgresql://vigil@127.0.0.1:{closed_port()}/sentinel"
    )
    ticker.t += 60
    background.run_once()
    assert client.get("/api/health").status_code == 200
    ticker.t += 31
    answer = client.get("/api/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["reason"] == (
        "watcher: the last successful pass was 91 s ago (limit 90 s); "
        "last error: alerts: OperationalError"
    )
    assert body["checks"]["watcher"]["status"] == "error"

    # The sentinel is back: the next pass clears it.
    background.watcher.sentinel_db = SentinelDatabase(sentinel_url)
    background.run_once()
    assert client.get("/api/health").json()["status"] == "healthy"
    background.stop()
    background.watcher.sentinel_db.dispose()


def test_a_watcher_that_never_succeeded_degrades_from_its_start(pm: Postmortems) -> None:
    pm.settings.sentinel_database_url = f"postgresql://vigil@127.0.0.1:{closed_port()}/sentinel"
    ticker = Ticker()
    background = Background(pm, interval=10, reminders=False, monotonic=ticker)
    client = _served(pm, background)
    background.run_once()
    assert client.get("/api/health").status_code == 200  # just started
    ticker.t += 31
    body = client.get("/api/health").json()
    assert body["reason"] == (
        "watcher: no pass has succeeded in the 31 s since start (limit 30 s); "
        "last error: alerts: OperationalError"
    )
    background.stop()


def test_a_database_that_does_not_answer_degrades(pm: Postmortems) -> None:
    pm.db = Database(f"postgresql://vigil@127.0.0.1:{closed_port()}/postmortems")
    answer = _served(pm, None).get("/api/health")
    assert answer.status_code == 503
    body = answer.json()
    assert body["reason"] == "the postmortems database does not answer (OperationalError)"
    assert body["checks"]["database"] == {"status": "error", "error": "OperationalError"}
