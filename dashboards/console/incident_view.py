"""What an incident's console page shows beyond postmortems' own record: the charts of
its linked signals over the incident's window with its phases marked, the pages the
sentinel sent for its alerts, and the release the gate had in flight just before it
(the suspect). Read through each component's public functions; nothing is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from common.clock import ensure_utc
from dashboards.console.charts import uplot_columns
from dashboards.console.readers import Delivery, SentinelReader
from dashboards.console.releases import ReleaseReader
from postmortems.schemas import IncidentDetail
from postmortems.timeline import RELEASE_LOOKBACK, SUSPECT_WINDOW, suspect_releases
from release_gate.history import ReleaseSummary, releases_between
from release_gate.models import Release
from sentinel.history import parse_series_key
from sentinel.models import Alert

CHART_SLOTS = 360  # each signal's chart shows its series as the means of this many slots
MIN_PAD = timedelta(minutes=15)  # context shown before the start and after the end
# The phases marked on every chart, in the order they happen.
PHASES = (
    ("detected_at", "detected"),
    ("acknowledged_at", "acknowledged"),
    ("mitigated_at", "mitigated"),
    ("resolved_at", "resolved"),
)


@dataclass
class Window:
    since: datetime
    until: datetime


@dataclass
class LinkedAlert:
    """A linked alert as postmortems recorded it, with the sentinel's live record (its
    state, when it resolved, its page) when the sentinel still has it."""

    alert_id: int
    signal: str
    series: str
    severity: str
    summary: str
    started_at: datetime
    live: Alert | None


@dataclass
class Suspect:
    release: ReleaseSummary
    most: bool  # the one that finished last before the incident started


@dataclass
class IncidentView:
    window: Window
    alerts: list[LinkedAlert]
    charts: list[dict[str, Any]]  # one per linked signal, in uPlot's column layout
    pages: list[Delivery]  # every page of the alerts' groups, oldest first
    suspects: list[Suspect] | None  # None: the gate's records are not configured
    named_release: ReleaseSummary | None = None  # the release the incident names
    phases: list[tuple[str, datetime]] = field(default_factory=list)


def window_of(incident: IncidentDetail, now: datetime) -> Window:
    """From a little before the incident started to a little after it resolved (or now,
    while it runs): a quarter of its length each side, at least MIN_PAD."""
    start = ensure_utc(incident.started_at)
    end = ensure_utc(incident.resolved_at or incident.closed_at or now)
    end = max(end, start)
    pad = max(MIN_PAD, (end - start) / 4)
    return Window(start - pad, min(end + pad, max(now, end)))


def build_view(
    incident: IncidentDetail,
    sentinel: SentinelReader,
    gate: ReleaseReader | None,
    now: datetime,
) -> IncidentView:
    window = window_of(incident, now)
    alerts = [
        LinkedAlert(
            a.alert_id,
            a.signal,
            a.series or "",
            a.severity,
            a.summary,
            ensure_utc(a.started_at),
            sentinel.alert(a.alert_id),
        )
        for a in incident.alerts
    ]
    phases = [
        (label, ensure_utc(getattr(incident, name)))
        for name, label in PHASES
        if getattr(incident, name) is not None
    ]
    suspects, named = _releases(incident, gate, window)
    marks = [[at.timestamp(), label] for label, at in phases]
    marks += [
        [ensure_utc(s.release.started_at).timestamp(), f"release {s.release.version}"]
        for s in suspects or []
        if window.since <= ensure_utc(s.release.started_at) <= window.until
    ]
    return IncidentView(
        window=window,
        alerts=alerts,
        charts=[_chart(name, sentinel, window, alerts, marks) for name in _signals(alerts)],
        pages=_pages(alerts, sentinel),
        suspects=suspects,
        named_release=named,
        phases=phases,
    )


def _signals(alerts: list[LinkedAlert]) -> list[str]:
    """The linked signals, most severe first, each once."""
    ranked = sorted(alerts, key=lambda a: (a.severity, a.started_at))
    return list(dict.fromkeys(a.signal for a in ranked))


def _chart(
    signal: str,
    sentinel: SentinelReader,
    window: Window,
    alerts: list[LinkedAlert],
    marks: list[list[Any]],
) -> dict[str, Any]:
    points = sentinel.averages(window.since, window.until, CHART_SLOTS, signal=signal)
    names, columns = uplot_columns({series: pts for (_, series), pts in points.items()})
    try:
        unit = sentinel.signal(signal).unit
    except KeyError:  # a signal since removed from the catalogue still has its history
        unit = ""
    shade = []
    for a in alerts:
        if a.signal != signal or a.live is None or a.live.firing_at is None:
            continue
        fired = max(ensure_utc(a.live.firing_at), window.since)
        ended = ensure_utc(a.live.resolved_at) if a.live.resolved_at else window.until
        shade.append([fired.timestamp(), min(ended, window.until).timestamp()])
    return {
        "signal": signal,
        "unit": unit,
        "names": names,
        "labels": [_series_text(n) or signal for n in names],
        "columns": columns,
        "shade": shade,
        "marks": marks,
        "linked": sorted({_series_text(a.series) or signal for a in alerts if a.signal == signal}),
    }


def _series_text(key: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in parse_series_key(key).items()) if key else ""


def _pages(alerts: list[LinkedAlert], sentinel: SentinelReader) -> list[Delivery]:
    """The pages of every group (the sentinel's unit of paging) the alerts belong to."""
    groups = dict.fromkeys(
        a.live.group_id for a in alerts if a.live is not None and a.live.group_id is not None
    )
    pages = [d for group_id in groups for d in sentinel.deliveries(group_id)]
    return sorted(pages, key=lambda d: (ensure_utc(d.notification.created_at), d.notification.id))


def _releases(
    incident: IncidentDetail, gate: ReleaseReader | None, window: Window
) -> tuple[list[Suspect] | None, ReleaseSummary | None]:
    """The suspects by postmortems' own rule (a release of the service that started
    before the incident and was rolling out, or had finished at most two hours before
    it) and the release the incident names, when the gate's records are there."""
    if gate is None:
        return None, None
    started = ensure_utc(incident.started_at)
    since = min(window.since, started - SUSPECT_WINDOW) - RELEASE_LOOKBACK
    found = [r for r in releases_between(gate.db, since, window.until) if r.status != "refused"]
    ranked = suspect_releases(found, started, incident.service)
    suspects = [Suspect(r, i == 0) for i, r in enumerate(ranked)]  # type: ignore[arg-type]
    named = None
    if incident.release_id and incident.release_id.isdigit():
        with gate.db.sessions() as s:
            release = s.get(Release, int(incident.release_id))
            named = ReleaseSummary.of(release) if release is not None else None
    return suspects, named
