"""From cumulative counter readings to aligned canary/control intervals.

Counters are cumulative since each node started and may reset when a node restarts.
As Prometheus's ``increase()`` does, a reading lower than the previous one means the
counter restarted from zero, so the whole new reading is the increase. A node restart
resets all its counters at once, so a drop in requests or errors resets every counter
of that reading (a restarted node can climb back above its old error count before the
next scrape, and that must not be read as a small increase).

The canary and the control are compared over the same stretches of time: an interval
closes at a sample time when both sides have a reading newer than the last interval's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from release_gate.judge.models import CountSample, JudgeInput, RouteCounts

UNLABELLED_STATUS = "5xx"


@dataclass
class RouteTotals:
    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SideDelta:
    """What one side served during one interval."""

    requests: int
    errors: int
    routes: dict[str, RouteTotals] | None
    latency_p95_ms: float | None  # the latest reading's p95 ...
    latency_requests: int  # ... and how many requests that p95 covers


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    canary: SideDelta
    control: SideDelta


@dataclass(frozen=True)
class Step:
    """One distinct sample time; ``interval`` is None when it did not close one."""

    t: float
    interval: Interval | None


@dataclass
class _Running:
    """Increase since the side's first reading, reading by reading."""

    t: float
    requests: int
    errors: int
    routes: dict[str, RouteTotals] | None
    latency_p95_ms: float | None
    latency_requests: int


def _statuses(route: RouteCounts) -> dict[str, int]:
    if route.statuses:
        return dict(route.statuses)
    return {UNLABELLED_STATUS: route.errors} if route.errors else {}


def _increase(previous: int | None, current: int, reset: bool) -> int:
    if reset or previous is None or current < previous:
        return current
    return current - previous


def _route_increase(
    previous: RouteCounts | None, current: RouteCounts, node_reset: bool
) -> RouteTotals:
    reset = node_reset or previous is None or (
        current.requests < previous.requests or current.errors < previous.errors
    )
    before = _statuses(previous) if previous is not None else {}
    statuses = {
        status: inc
        for status, count in _statuses(current).items()
        if (inc := _increase(None if reset else before.get(status), count, reset)) > 0
    }
    return RouteTotals(
        requests=_increase(None if reset else previous.requests, current.requests, reset),
        errors=_increase(None if reset else previous.errors, current.errors, reset),
        statuses=statuses,
    )


def _add_routes(total: dict[str, RouteTotals], more: dict[str, RouteTotals]) -> None:
    for name, inc in more.items():
        into = total.setdefault(name, RouteTotals())
        into.requests += inc.requests
        into.errors += inc.errors
        for status, count in inc.statuses.items():
            into.statuses[status] = into.statuses.get(status, 0) + count


def running_increase(samples: list[CountSample]) -> list[_Running]:
    """For each reading, the increase of every counter since the first reading."""
    out: list[_Running] = []
    routes: dict[str, RouteTotals] | None = None
    requests = errors = 0
    for i, cur in enumerate(samples):
        if i == 0:
            routes = {} if cur.routes is not None else None
            out.append(_Running(cur.t, 0, 0, _copy(routes), None, 0))
            continue
        prev = samples[i - 1]
        reset = cur.requests < prev.requests or cur.errors < prev.errors
        window_requests = _increase(prev.requests, cur.requests, reset)
        requests += window_requests
        errors += _increase(prev.errors, cur.errors, reset)
        if cur.routes is not None:
            routes = routes if routes is not None else {}
            # After a reading without routes, this one is the routes' new baseline
            # (unless the node restarted: then all of it is new).
            if prev.routes is not None or reset:
                before = prev.routes or {}
                _add_routes(
                    routes,
                    {
                        name: _route_increase(before.get(name), route, reset)
                        for name, route in cur.routes.items()
                    },
                )
        out.append(
            _Running(cur.t, requests, errors, _copy(routes), cur.latency_p95_ms, window_requests)
        )
    return out


def _copy(routes: dict[str, RouteTotals] | None) -> dict[str, RouteTotals] | None:
    if routes is None:
        return None
    return {
        name: RouteTotals(r.requests, r.errors, dict(r.statuses)) for name, r in routes.items()
    }


def _delta(a: _Running, b: _Running) -> SideDelta:
    routes: dict[str, RouteTotals] | None = None
    if b.routes is not None:
        routes = {}
        for name, cur in b.routes.items():
            old = (a.routes or {}).get(name, RouteTotals())
            statuses = {
                s: c - old.statuses.get(s, 0)
                for s, c in cur.statuses.items()
                if c - old.statuses.get(s, 0) > 0
            }
            routes[name] = RouteTotals(
                cur.requests - old.requests, cur.errors - old.errors, statuses
            )
    return SideDelta(
        requests=b.requests - a.requests,
        errors=b.errors - a.errors,
        routes=routes,
        latency_p95_ms=b.latency_p95_ms,
        latency_requests=b.latency_requests,
    )


def align(data: JudgeInput) -> list[Step]:
    """Every distinct sample time in order, with the interval it closes, if any."""
    canary = running_increase(data.canary)
    control = running_increase(data.control)
    times = sorted({s.t for s in data.canary} | {s.t for s in data.control})
    steps: list[Step] = []
    ci = pi = -1  # latest reading at or before t, per side
    used_c = used_p = 0  # readings the last interval ended on (the first is the baseline)
    for t in times:
        while ci + 1 < len(canary) and canary[ci + 1].t <= t:
            ci += 1
        while pi + 1 < len(control) and control[pi + 1].t <= t:
            pi += 1
        interval = None
        if ci > used_c and pi > used_p:
            interval = Interval(
                start=max(canary[used_c].t, control[used_p].t),
                end=t,
                canary=_delta(canary[used_c], canary[ci]),
                control=_delta(control[used_p], control[pi]),
            )
            used_c, used_p = ci, pi
        steps.append(Step(t, interval))
    return steps
