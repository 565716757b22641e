"""Sources as things that fail: one alert per source that cannot be read, and the
start-up grace.

A database that cannot be opened (or a scrape target or Prometheus that does not
answer) silences every signal that reads it. Paging each signal's no-data would
wake someone four times for one cause without naming it; instead the readings
carry a ``SourceFault`` naming the source, and ``SourceHealth`` raises ONE alert
for it (signal ``source.down``, label ``source``), whose text is the reason. The
alerting pipeline mutes the no-data of every signal that depends on a source
with an active source alert (built in, like an Alertmanager inhibition, see
``sentinel.alerting.pipeline.Inhibit``); a signal whose own data stopped while
its source answers keeps its own no-data alert.

Start order does not matter either: a source that has not answered since this
sentinel started gets ``startup_grace`` to appear before its failure counts, and
once it first answers its signals are judged after ``warmup`` (the watched
service's first minute: empty queues, counters without a rate yet). A source
that answered at the sentinel's first read needs no warm-up: it was up already.

Time comes in as data (``now``); the only I/O is writing the source alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from common.logs import get_logger
from sentinel.alerting.groups import higher_severity
from sentinel.alerts import fingerprint, recently_closed, reopen
from sentinel.catalogue.models import NoDataPolicy, SignalSpec
from sentinel.db import Database
from sentinel.history import parse_series_key, series_key
from sentinel.models import ACTIVE_STATES, Alert, AlertState, AlertTransition
from sentinel.sources.base import Reading

log = get_logger(__name__)

SOURCE_SIGNAL = "source.down"  # the ``signal`` label of every source alert
SOURCE_RUNBOOK = (
    "The sentinel cannot read this source, so every signal listed is blind (their own "
    "no-data pages are muted by this one). Check that the service or database is up and "
    "reachable from the sentinel with the URL shown; the reason is the driver's own words."
)


@dataclass
class _Source:
    name: str
    signals: list[str]
    severity: str | None  # None: no signal of it alerts on no data, so neither does it
    labels: dict[str, str]  # labels every dependent signal shares (service, team)
    first_seen_at: datetime | None = None
    first_ok_at: datetime | None = None  # the first answer since this sentinel started
    failing_since: datetime | None = None
    reason: str = ""


@dataclass(frozen=True)
class Grace:
    """Why a signal is not judged yet, and until when (None: judged as usual)."""

    reason: str
    until: datetime


@dataclass
class SourceHealth:
    signals: Mapping[str, SignalSpec]
    dependencies: Mapping[str, tuple[str, ...]]  # signal -> the sources it reads
    db: Database | None = None
    startup_grace: timedelta = timedelta(seconds=120)
    warmup: timedelta = timedelta(seconds=60)
    down_after: timedelta = timedelta(seconds=30)
    started_at: datetime | None = None
    sources: dict[str, _Source] = field(default_factory=dict)
    _active: dict[str, tuple[int, AlertState]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_source: dict[str, list[SignalSpec]] = {}
        for name, deps in self.dependencies.items():
            for dep in deps:
                by_source.setdefault(dep, []).append(self.signals[name])
        for dep, specs in by_source.items():
            # It pages as loud as the loudest no-data it stands for; a source none of
            # whose signals alert on no data (a laptop without a node exporter) never pages.
            loud = [s.severity.value for s in specs if s.no_data is NoDataPolicy.alert]
            severity = loud[0] if loud else None
            for other in loud[1:]:
                severity = higher_severity(str(severity), other)
            self.sources[dep] = _Source(
                name=dep,
                signals=sorted(s.name for s in specs),
                severity=severity,
                labels=_shared_labels(s.labels for s in specs),
            )
        self.reload()

    # --- what the evaluator tells it, and asks ---------------------------------

    def start(self, now: datetime) -> None:
        if self.started_at is None:
            self.started_at = now

    def observe(self, signal: str, reading: Reading, now: datetime) -> None:
        """One signal's reading: each source it depends on answered or failed."""
        self.start(now)
        failed = {f.source: f.reason for f in reading.faults}
        for dep in self.dependencies.get(signal, ()):
            source = self.sources[dep]
            if source.first_seen_at is None:
                source.first_seen_at = now
            if dep in failed:
                source.reason = failed[dep]
                if source.failing_since is None:
                    source.failing_since = now
            else:
                source.failing_since = None
                if source.first_ok_at is None:
                    source.first_ok_at = now

    def grace(self, signal: str, now: datetime) -> Grace | None:
        """Whether ``signal`` is in its start-up grace: its source has not answered yet
        (for at most ``startup_grace`` after the start), or answered less than
        ``warmup`` ago for the first time."""
        deps = self.dependencies.get(signal, ())
        if self.started_at is None:  # asked before the first evaluation
            until = now + self.startup_grace
            return Grace("start-up grace: not evaluated yet", until) if deps else None
        for dep in deps:
            source = self.sources[dep]
            if source.first_ok_at is None:
                until = self.started_at + self.startup_grace
                if now < until:
                    return Grace(f"start-up grace: waiting for {dep} to answer", until)
            elif source.first_seen_at is not None and source.first_ok_at > source.first_seen_at:
                until = source.first_ok_at + self.warmup
                if now < until:
                    return Grace(f"start-up grace: {dep} answered first at "
                                 f"{source.first_ok_at:%H:%M:%S} UTC", until)  # fmt: skip
        return None

    def describe_grace(self, signal: str, now: datetime) -> dict[str, Any]:
        """What ``GET /api/signals/{name}`` says about the grace."""
        current = self.grace(signal, now)
        return {
            "startup_grace_seconds": self.startup_grace.total_seconds(),
            "warmup_seconds": self.warmup.total_seconds(),
            "sources": list(self.dependencies.get(signal, ())),
            "in_grace": current is not None,
            "reason": current.reason if current else None,
            "until": current.until if current else None,
        }

    # --- the source alerts -------------------------------------------------------

    def reload(self) -> None:
        """The active source alerts (start-up, a new leader)."""
        if self.db is None:
            return
        with self.db.session() as s:
            rows = s.execute(
                select(Alert.series, Alert.id, Alert.state).where(
                    Alert.signal == SOURCE_SIGNAL, Alert.state.in_(ACTIVE_STATES)
                )
            ).all()
        self._active = {}
        for series, alert_id, state in rows:
            name = parse_series_key(series).get("source", "")
            self._active[name] = (alert_id, AlertState(state))

    def settle(self, now: datetime) -> list[tuple[str, AlertState]]:
        """Move each source's alert to where its health says; returns the transitions."""
        moved = []
        for source in self.sources.values():
            target = self._target(source, now)
            if target is not None:
                self._record(source, target, now)
                moved.append((source.name, target))
        return moved

    def _target(self, source: _Source, now: datetime) -> AlertState | None:
        active = self._active.get(source.name)
        current = active[1] if active else None
        assert self.started_at is not None
        if source.failing_since is not None and source.severity is not None:
            waiting = source.first_ok_at is None and now < self.started_at + self.startup_grace
            if waiting:
                return None
            wanted = (
                AlertState.firing
                if now - source.failing_since >= self.down_after
                else AlertState.pending
            )
            if current is AlertState.firing or current is wanted:
                return None
            return wanted
        if current is AlertState.pending:
            return AlertState.cancelled
        if current is AlertState.firing:
            return AlertState.resolved
        return None

    def _record(self, source: _Source, target: AlertState, now: datetime) -> None:
        if self.db is None:
            self._remember(source.name, 0, target)
            return
        series = series_key({"source": source.name})
        fp = fingerprint(SOURCE_SIGNAL, series)
        calm = target not in ACTIVE_STATES
        evidence: dict[str, Any] = {
            "value": None,
            "source": source.name,
            "signals": source.signals,
            # "cause", not "reason": a page's "reason" line names a detector's judgement.
            "cause": source.reason if not calm else "the source answers again",
            "note": _note(source) if not calm else f"{source.name} answers again",
        }
        if calm:
            # Its signals get the warm-up to find their data again before their own
            # no-data may page (a rate needs two scrapes after the target is back).
            evidence["settles_until"] = (now + self.warmup).isoformat()
        with self.db.session() as s:
            active = self._active.get(source.name)
            alert = s.get(Alert, active[0]) if active else None
            previous = active[1].value if active else None
            if alert is None and not calm:
                alert = recently_closed(s, fp, now - timedelta(minutes=15))
                if alert is not None:
                    previous = reopen(alert, target)
            if alert is None:
                if calm:
                    return
                alert = Alert(
                    fingerprint=fp,
                    signal=SOURCE_SIGNAL,
                    series=series,
                    labels={
                        **source.labels,
                        "signal": SOURCE_SIGNAL,
                        "source": source.name,
                        "severity": str(source.severity),
                    },
                    severity=str(source.severity),
                    source="sentinel",
                    state=target,
                    summary="",
                    runbook=None,
                    value=None,
                    evidence=evidence,
                    started_at=source.failing_since or now,
                    updated_at=now,
                )
                s.add(alert)
                s.flush()
            alert.state = target
            alert.evidence = evidence
            alert.updated_at = now
            if target is AlertState.firing and alert.firing_at is None:
                alert.firing_at = now
            if calm:
                alert.resolved_at = now
            alert.summary = _summary(source, target, alert.started_at)
            s.add(
                AlertTransition(
                    alert_id=alert.id,
                    from_state=previous,
                    to_state=target.value,
                    at=now,
                    value=None,
                    evidence=evidence,
                )
            )
            alert_id = alert.id
        self._remember(source.name, alert_id, target)
        log.warning(
            "source.alert",
            source=source.name,
            state=target.value,
            previous=previous,
            reason=evidence["cause"],
            signals=",".join(source.signals),
        )

    def _remember(self, name: str, alert_id: int, state: AlertState) -> None:
        if state in ACTIVE_STATES:
            self._active[name] = (alert_id, state)
        else:
            self._active.pop(name, None)


def _note(source: _Source) -> str:
    shown = ", ".join(source.signals[:4])
    more = f" and {len(source.signals) - 4} more" if len(source.signals) > 4 else ""
    return f"{source.reason}. Cannot judge {shown}{more}"


def _summary(source: _Source, state: AlertState, started_at: datetime) -> str:
    head = f"[{source.severity}] {SOURCE_SIGNAL}{{source={source.name}}} {state.value.upper()}"
    if state not in ACTIVE_STATES:
        return f"{head}: {source.name} answers again."
    return f"{head}: {_note(source)} (since {started_at:%H:%M} UTC). {SOURCE_RUNBOOK}"


def _shared_labels(label_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    sets = list(label_sets)
    if not sets:
        return {}
    shared = dict(sets[0])
    for labels in sets[1:]:
        shared = {k: v for k, v in shared.items() if labels.get(k) == v}
    return shared
