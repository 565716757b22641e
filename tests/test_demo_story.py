"""The pieces the demo's story is told with: the faults file it writes is what the
translator's injector reads (healthy until the story starts the faults), files
are read a whole line at a time, and the gate's verdict reads as one short line."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from demo.faults import FAULTS, no_faults, start_faults
from demo.story import Tail, _gist, _judgement
from translator.faults import FaultInjector


def test_the_translator_is_healthy_until_the_story_starts_the_faults(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    no_faults(path)
    injector = FaultInjector.from_settings(path, None)
    assert injector.payment_failure("wallet") is None
    assert not injector.empty_job_list("bob@example.com")

    start_faults(path)
    assert injector.empty_job_list("bob@example.com")
    assert any(injector.http_error("GET", "/api/jobs") == 500 for _ in range(50))
    assert any(injector.payment_failure("wallet") for _ in range(20))
    assert injector.payment_failure("card") is None
    assert not injector.empty_job_list("alice@example.com")
    assert {f.kind for f in FAULTS} == {"payment_failure", "http_error", "empty_job_list"}


def test_a_line_being_written_waits_for_the_next_look(tmp_path: Path) -> None:
    path = tmp_path / "demo.log"
    tail = Tail(path)
    assert tail.lines() == []  # no file yet
    path.write_text("first\nsec")
    assert tail.lines() == ["first"]
    with path.open("a") as f:
        f.write("ond\nthird\n")
    assert tail.lines() == ["second", "third"]
    assert tail.lines() == []
    assert Tail(path, from_end=True).lines() == []


def test_the_verdict_and_the_alert_read_as_one_short_line() -> None:
    release = SimpleNamespace(
        verdict={
            "reason": "Roll back at t=2.32705s: canary 5xx rate 37.50% (6/16) is credibly above "
            "production's 0% (0/52): evidence 1.12e+03 >= 143, at least 1.85x production's rate."
        },
        decision="rollback",
    )
    assert _judgement(release) == (  # type: ignore[arg-type]
        "after 2.3 s of canary: canary 5xx rate 37.50% (6/16) is credibly above "
        "production's 0% (0/52): roll back"
    )
    summary = (
        "payments.failed{method=wallet} FIRING: 6 payments, expected 0–5.5 since 05:11 UTC. "
        "6 above 5.5 (median 0 of the last 24 hours) Runbook: ..."
    )
    assert _gist(summary) == "6 payments, expected 0–5.5"
