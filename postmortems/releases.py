"""What the release gate recorded about a release, as the facts an alert is
compared with (``belonging.ReleaseFacts``): when its canary took traffic, when it
was rolled back, and the routes it broke.

Reads the gate's ``gate_releases`` table (the release row with the judge's
verdict and the counts it read); never calls the gate."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from common.clock import ensure_utc
from common.logs import get_logger
from postmortems.belonging import ReleaseFacts

log = get_logger("postmortems.releases")

# release_id -> the release's facts, or None when the gate has no such release
ReleaseReader = Callable[[str], ReleaseFacts | None]


def broken_routes(
    verdict: Mapping[str, Any] | None, samples: Mapping[str, Any] | None
) -> frozenset[str] | None:
    """The routes a release broke: the judge's canary-only error signatures, and the
    routes whose 5xx count grew on the canary while it ran. None when the gate
    read no per-route counts (nothing to say which routes)."""
    routes: set[str] = set()
    findings = (((verdict or {}).get("evidence") or {}).get("signatures") or {}).get("findings")
    for finding in findings or []:
        if finding.get("route"):
            routes.add(str(finding["route"]))
    canary: Sequence[Mapping[str, Any]] = (samples or {}).get("canary") or []
    with_routes = [s for s in canary if s.get("routes") is not None]
    if with_routes:
        first, last = with_routes[0]["routes"], with_routes[-1]["routes"]
        single = len(with_routes) == 1
        for route, counts in last.items():
            before = 0 if single else (first.get(route) or {}).get("errors", 0)
            if counts.get("errors", 0) > before:
                routes.add(route)
    return frozenset(routes) if routes else None


def gate_release_reader(gate_db: Any) -> ReleaseReader:
    """Reads one release from the gate's database; a finished release never
    changes, so it is read once."""
    cache: dict[str, ReleaseFacts] = {}

    def read(release_id: str) -> ReleaseFacts | None:
        if release_id in cache:
            return cache[release_id]
        if not release_id.isdigit():
            return None
        from release_gate.models import Release

        with gate_db.session() as s:
            row = s.scalars(select(Release).where(Release.id == int(release_id))).first()
            if row is None:
                return None
            facts = facts_of(
                release_id=release_id,
                version=row.version,
                started_at=row.canary_started_at or row.started_at,
                rolled_back_at=row.rolled_back_at,
                verdict=row.verdict,
                samples=row.samples,
            )
            finished = row.finished_at is not None
        if facts is not None and finished:
            cache[release_id] = facts
        return facts

    return read


def facts_of(
    *,
    release_id: str,
    version: str | None,
    started_at: datetime,
    rolled_back_at: datetime | None,
    verdict: Mapping[str, Any] | None,
    samples: Mapping[str, Any] | None,
) -> ReleaseFacts | None:
    if rolled_back_at is None:
        return None  # not a rolled-back release: nothing bounds its cause
    return ReleaseFacts(
        release_id=release_id,
        canary_started_at=ensure_utc(started_at),
        rolled_back_at=ensure_utc(rolled_back_at),
        routes=broken_routes(verdict, samples),
        version=version,
    )
