"""Every fault the translator can inject pages the on-call engineer, by SMS,
within seconds, from a cold start: the real translator with two weeks of
history, the real sentinel with the default catalogue sampled every second,
and the fake Twilio. For each fault:

- the right signal fires, on the right series, and no unrelated one does;
- the page reaches Twilio within PAGE_BOUND_SECONDS of the fault's start;
- its text names the series (``method=wallet``, ``route=/api/jobs``, the user)
  and its evidence (the value and what was expected).

And the same run without a fault pages nobody.

Each case starts its own pair of processes on copies of one template (see
harness.py), so no case inherits another's alerts."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from sentinel.catalogue import load_catalogue
from tests.fault_matrix.harness import (
    HISTORY_DAYS,
    PROCESS_START_TIMEOUT,
    Stack,
    Template,
    parse_time,
    run_stack,
    steady_seconds,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres_journey]

# From the instant a fault starts to the SMS request at Twilio. A business fault
# must wake someone in minutes, not be found by users (seed 003); with one-second
# sampling and immediate dispatch, half a minute leaves room for a detector that
# needs a few bad samples and for a busy CI machine.
PAGE_BOUND_SECONDS = 30.0
# After the page, how long other alerts get to show up before "no unrelated
# alert fired" is judged.
SETTLE_SECONDS = 3.0
# The control run: this long of ordinary traffic, after the sentinel has
# evaluated every signal, without a single page.
CONTROL_SECONDS = 40.0


@dataclass(frozen=True)
class Series:
    """A signal (its name, or a pattern for a signal named elsewhere) and the
    labels its series must carry."""

    signal: str
    labels: dict[str, str] = field(default_factory=dict)

    def named(self, signal: str) -> bool:
        return re.fullmatch(self.signal, signal) is not None

    def matches(self, alert: dict[str, Any]) -> bool:
        return self.named(alert["signal"]) and all(
            alert["labels"].get(k) == v for k, v in self.labels.items()
        )

    def __str__(self) -> str:
        where = ",".join(f"{k}={v}" for k, v in self.labels.items())
        return f"{self.signal}{{{where}}}" if where else self.signal


def with_users(text: str, template: Template) -> str:
    """``{bob}`` in a case's text is bob@example.com's user id in this template."""
    return text.format(**{email.split("@")[0]: i for email, i in template.user_ids.items()})


@dataclass(frozen=True)
class FaultCase:
    id: str
    faults: dict[str, Any]  # the translator's faults file, switched on mid-run
    injected: str  # the ``kind`` the translator logs for each injected failure
    pages: tuple[Series, ...]  # one of these must fire and be paged
    names: tuple[str, ...]  # what the SMS must say to name the series
    also_fires: tuple[Series, ...] = ()  # these must fire too, within the bound
    allowed: tuple[Series, ...] = ()  # may fire too: the same fault seen from elsewhere

    def for_template(self, template: Template) -> FaultCase:
        """The case with user placeholders (``{bob}``) replaced by the template's ids."""

        def series(items: tuple[Series, ...]) -> tuple[Series, ...]:
            return tuple(
                Series(s.signal, {k: with_users(v, template) for k, v in s.labels.items()})
                for s in items
            )

        return replace(
            self,
            pages=series(self.pages),
            names=tuple(with_users(n, template) for n in self.names),
            also_fires=series(self.also_fires),
            allowed=series(self.allowed),
        )


CASES = [
    FaultCase(
        id="wallet-payments-fail",
        faults={
            "payment_failures": [{"method": "wallet", "rate": 0.9, "reason": "wallet_declined"}]
        },
        injected="payment_failure",
        pages=(
            Series("payments.failed", {"method": "wallet"}),
            Series("payments.failed_ratio", {"method": "wallet"}),
        ),
        names=("method=wallet",),
    ),
    FaultCase(
        id="card-payments-fail",
        faults={"payment_failures": [{"method": "card", "rate": 0.9}]},
        injected="payment_failure",
        pages=(
            Series("payments.failed", {"method": "card"}),
            Series("payments.failed_ratio", {"method": "card"}),
        ),
        names=("method=card",),
    ),
    FaultCase(
        id="one-users-job-list-empty",
        faults={"empty_job_list": {"users": ["bob@example.com"]}},
        injected="empty_job_list",
        pages=(Series("jobs.empty_list_users", {"user_id": "{bob}"}),),
        names=("user_id={bob}",),
        allowed=(Series("jobs.empty_list_share"),),  # bob's lists are a third of all lists
    ),
    FaultCase(
        id="share-of-job-lists-empty",
        faults={"empty_job_list": {"share": 0.5}},
        injected="empty_job_list",
        pages=(Series("jobs.empty_list_share"),),
        names=("jobs.empty_list_share",),
        allowed=(Series("jobs.empty_list_users"),),  # every user meets it: per-user views
    ),
    FaultCase(
        id="route-answers-5xx",
        faults={"http_errors": [{"route": "/api/jobs", "rate": 0.5, "status": 500}]},
        injected="http_error",
        pages=(Series("http.error_ratio_by_route", {"route": "/api/jobs"}),),
        names=("route=/api/jobs",),
        allowed=(Series("http.error_ratio"),),  # the same 500s, counted over all routes
    ),
    FaultCase(
        id="workers-hang",
        faults={"worker_hang": {"rate": 1.0, "seconds": 900}},
        injected="worker_hang",
        pages=(Series("queue.lag_seconds"), Series("queue.depth")),
        names=(),  # the queue is one series; the signal's name is the series
        allowed=(Series(r"jobs\.processing.*"),),  # jobs held in processing
    ),
    FaultCase(
        id="llm-provider-fails",
        faults={"llm_failures": [{"provider": "offline", "rate": 1.0}]},
        injected="llm_failure",
        pages=(Series("llm.breaker_open", {"provider": "offline"}),),
        names=("provider=offline",),
        also_fires=(Series("jobs.failed"),),
        # Jobs wait and fail; every failed attempt logs an ERROR line.
        allowed=(Series(r"queue\..*"), Series(r"jobs\.processing.*"), Series("logs.error_lines")),
    ),
    FaultCase(
        id="route-answers-slowly",
        faults={"slow_responses": [{"route": "/api/jobs", "rate": 1.0, "seconds": 3}]},
        injected="slow_response",
        # The p95 latency per route, whatever the catalogue names it.
        pages=(Series(r"http\..*(latency|duration|slow).*", {"route": "/api/jobs"}),),
        names=("route=/api/jobs",),
    ),
]


def names_signal(text: str, signal: str) -> bool:
    """Does an alert text lead with ``signal`` ("[P1] payments.failed{method=...} ...")?
    A runbook that merely mentions another signal does not count."""
    return re.search(r"\] " + re.escape(signal) + r"[{ ]", text) is not None


def describe(alert: dict[str, Any], since: float) -> str:
    at = parse_time(alert["firing_at"]) or 0
    return f"{alert['signal']}{alert['labels']} fired at {at - since:+.1f}s: {alert['summary']!r}"


def why_silent(stack: Stack, case: FaultCase, fault_at: float) -> str:
    """What the sentinel knew about the expected signals when nothing paged."""
    lines = [
        f"fault injected {stack.injected(case.injected)} times; traffic {stack.traffic.outcomes}"
    ]
    for name in sorted({s["signal"] for s in stack.alerts()} | _signal_names(stack, case)):
        detail = stack.signal(name)
        if detail is None:
            continue
        detector = detail.get("detector") or {}
        for series in detail["series"]:
            lines.append(
                f"  {name}{{{series['series']}}} last value {series['last_value']} at "
                f"{(parse_time(series['last_t']) or 0) - fault_at:+.1f}s, "
                f"alert_state {series['alert_state']}, judged by {series.get('judged_by')} "
                f"({detector.get('kind')} {detector.get('params')}, prior {detector.get('prior')})"
            )
    fired = [describe(a, fault_at) for a in stack.fired()] or ["none"]
    return "\n".join([*lines, "alerts that fired:", *fired])


def _signal_names(stack: Stack, case: FaultCase) -> set[str]:
    """The catalogue's signals that the case expects to fire."""
    wanted = case.pages + case.also_fires
    return {n for n in stack.signal_names() if any(s.named(n) for s in wanted)}


def _catalogue_names(template: Template) -> list[str]:
    return [s.name for s in load_catalogue(template.catalogue).signals]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_fault_pages_the_on_call_by_sms_naming_its_series(
    case: FaultCase, template: Template, tmp_path
) -> None:
    case = case.for_template(template)
    expected = [n for n in _catalogue_names(template) if any(s.named(n) for s in case.pages)]
    with run_stack(template, tmp_path) as stack:
        fault_at = stack.inject(case.faults, steady_seconds(template.catalogue, expected))
        deadline = fault_at + PAGE_BOUND_SECONDS

        # 1. Nothing fired on the healthy traffic before the fault.
        early = [a for a in stack.fired() if (parse_time(a["firing_at"]) or 0) < fault_at]
        assert not early, "fired before the fault started:\n" + "\n".join(
            describe(a, fault_at) for a in early
        )

        # 2. The right signal fires on the right series.
        def expected_firing() -> list[dict[str, Any]]:
            return [a for a in stack.fired() if any(s.matches(a) for s in case.pages)]

        firing = stack.wait_for(expected_firing, deadline)
        assert firing, (
            f"none of {', '.join(map(str, case.pages))} fired within {PAGE_BOUND_SECONDS:g}s "
            f"of the fault:\n{why_silent(stack, case, fault_at)}"
        )
        first = firing[0]
        fired_after = (parse_time(first["firing_at"]) or 0) - fault_at

        # 3. The page reaches Twilio within the bound: an SMS to the on-call
        #    about that signal.
        def page_about_it() -> list[Any]:
            return [p for p in stack.pages(since=fault_at) if names_signal(p.body, first["signal"])]

        pages = stack.wait_for(page_about_it, deadline)
        assert pages, (
            f"{describe(first, fault_at)}, but no SMS about it reached Twilio within "
            f"{PAGE_BOUND_SECONDS:g}s of the fault; SMS received: "
            f"{[p.body for p in stack.pages()]}; groups: {stack.groups()}"
        )
        page = pages[0]
        paged_after = page.at - fault_at
        assert paged_after <= PAGE_BOUND_SECONDS
        assert page.to == "+15550001111"

        # 4. Other signals the fault must show up in, within the bound too.
        for series in case.also_fires:
            also = stack.wait_for(
                lambda s=series: [a for a in stack.fired() if s.matches(a)], deadline
            )
            assert also, (
                f"{series} did not fire within {PAGE_BOUND_SECONDS:g}s of the fault:\n"
                f"{why_silent(stack, case, fault_at)}"
            )

        # 5. No unrelated signal fires.
        stack.wait_for(lambda: None, time.time() + SETTLE_SECONDS)
        related = case.pages + case.also_fires + case.allowed
        unrelated = [a for a in stack.fired() if not any(s.matches(a) for s in related)]
        assert not unrelated, "unrelated alerts fired:\n" + "\n".join(
            describe(a, fault_at) for a in unrelated
        )

    print(
        f"\n{case.id}: fired {fired_after:.2f}s and paged {paged_after:.2f}s after the fault "
        f"({first['signal']}{first['labels']}); SMS: {page.body!r}"
    )
    # 6. The text names the series and its evidence: the value and what was expected.
    for name in case.names:
        assert name in page.body, f"the page does not name {name!r}: {page.body!r}"
    assert re.search(r"\d", page.body) and "expected" in page.body.lower(), (
        f"the page does not give the value and what was expected: {page.body!r}"
    )


def test_without_a_fault_nobody_is_paged(template: Template, tmp_path) -> None:
    with run_stack(template, tmp_path) as stack:
        stack.wait_until_evaluated(deadline=time.time() + PROCESS_START_TIMEOUT)
        quiet_from = time.time()
        stack.wait_for(lambda: stack.pages(), quiet_from + CONTROL_SECONDS, every=1.0)
        fired = stack.fired()
        pages = stack.pages()
        requests = sum(stack.traffic.outcomes.values())
    print(f"\ncontrol: {requests} requests over {CONTROL_SECONDS:g}s of traffic, no fault")
    assert not fired, f"alerts fired without a fault ({HISTORY_DAYS} days of history):\n" + (
        "\n".join(describe(a, quiet_from) for a in fired)
    )
    assert not pages, f"paged without a fault: {[p.body for p in pages]}"
    assert stack.traffic.count("jobs", 200) >= CONTROL_SECONDS  # the traffic really flowed
