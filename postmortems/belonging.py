"""Does an alert belong to an open incident? One pure rule, with the reason said
in words, so the timeline can tell the incident lead why an alert joined an
incident or opened its own.

The watcher only asks this about incidents of the alert's own service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from postmortems.titles import series_text

# After a rollback the release's errors stop; an alert can still fire this long
# after it (the alert's ``for:`` and evaluation delays) and be the release's.
DEFAULT_RELEASE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class AlertFacts:
    """What the rule reads of a sentinel alert."""

    alert_id: int
    signal: str
    labels: Mapping[str, str]
    started_at: datetime  # its first anomalous sample
    fired_at: datetime
    series: str = ""  # the sentinel's series key ('' for a signal without labels)
    group_id: int | None = None  # the sentinel's notification group (the page)
    # The signals measuring what this one does, whole or per label (the catalogue's
    # ``part_of``): the 5xx ratio and the 5xx ratio per route.
    family: frozenset[str] = frozenset()

    @property
    def route(self) -> str | None:
        return self.labels.get("route") or None

    @property
    def name(self) -> str:
        return series_text(self.signal, dict(self.labels))


@dataclass(frozen=True)
class ReleaseFacts:
    """A release behind a bad-release incident: when its canary took traffic, when it
    was rolled back, and the routes it broke (None: the gate did not say)."""

    release_id: str
    canary_started_at: datetime
    rolled_back_at: datetime
    routes: frozenset[str] | None = None
    version: str | None = None


@dataclass(frozen=True)
class LinkedFacts:
    """An alert already in the incident."""

    signal: str
    series: str = ""
    group_id: int | None = None


@dataclass(frozen=True)
class IncidentFacts:
    incident_id: int
    service: str
    alerts: Sequence[LinkedFacts] = field(default_factory=tuple)
    release: ReleaseFacts | None = None


@dataclass(frozen=True)
class Belonging:
    joins: bool
    reason: str
    # How strong the link is when several open incidents would take the alert:
    # 3 same page, 2 same series, 1 same signal or the release's window, 0 none.
    strength: int = 0


def route_path(route: str) -> str:
    """The judge names routes "GET /api/jobs", the sentinel's labels "/api/jobs"."""
    method, sep, path = route.strip().partition(" ")
    return path.strip() if sep and path.strip().startswith("/") else route.strip()


def belongs(
    alert: AlertFacts,
    incident: IncidentFacts,
    alert_service: str,
    release_window: timedelta = DEFAULT_RELEASE_WINDOW,
) -> Belonging:
    """Whether ``alert`` (of ``alert_service``) plausibly has the cause of ``incident``.

    * Another service: never.
    * A bad-release incident (it names a release): the alert joins only when its
      anomaly began during that release's canary (not before it) and it fired no
      later than ``release_window`` after the rollback, AND it concerns the
      release: its ``route`` label is one of the routes the release broke, or it
      has no route label (a service-wide signal), or the gate did not say which
      routes. A rollback removes the release's cause, so nothing later joins, not
      even the same series firing again.
    * Any other incident: the alert joins when it came in the same page (the
      sentinel's alert group) as an alert of the incident, or is the same series
      firing again, or the same series on another signal (one fault, two views of
      it), or a signal of the same family (the service's 5xx ratio beside the
      route's), or the same signal on another series (one symptom spreading).
    * Otherwise it has a cause of its own: it opens its own incident."""
    if alert_service != incident.service:
        return Belonging(False, f"another service ({incident.service})")
    release = incident.release
    if release is not None:
        return _joins_release(alert, release, release_window)
    if alert.group_id is not None and any(a.group_id == alert.group_id for a in incident.alerts):
        return Belonging(True, f"same page (alert group {alert.group_id})", 3)
    if any(a.signal == alert.signal and a.series == alert.series for a in incident.alerts):
        return Belonging(True, f"same series {alert.name} firing again", 2)
    # One fault seen by two signals of the same series (wallet's failures and its
    # failure ratio; a route's errors and its latency) is one incident, not two.
    related = [a.signal for a in incident.alerts if alert.series and a.series == alert.series]
    if related:
        return Belonging(True, f"same series {alert.series} as {related[0]}", 2)
    kin = [a.signal for a in incident.alerts if a.signal in alert.family - {alert.signal}]
    if kin:
        return Belonging(True, f"{alert.signal} measures what {kin[0]} does, whole or by part", 2)
    if any(a.signal == alert.signal for a in incident.alerts):
        return Belonging(True, f"same signal {alert.signal} on another series", 1)
    if not incident.alerts:
        return Belonging(False, "the incident holds no alert and no release to compare with")
    held = ", ".join(dict.fromkeys(a.signal for a in incident.alerts))
    return Belonging(False, f"another cause: the incident holds {held}, not {alert.signal}")


def _joins_release(alert: AlertFacts, release: ReleaseFacts, window: timedelta) -> Belonging:
    name = f"release {release.version or release.release_id}"
    if alert.started_at < release.canary_started_at:
        return Belonging(
            False,
            f"its anomaly began {_ago(release.canary_started_at - alert.started_at)} before "
            f"{name}'s canary started",
        )
    late = alert.fired_at - release.rolled_back_at
    if late > window:
        return Belonging(
            False,
            f"it fired {_ago(late)} after {name} was rolled back "
            f"(only alerts within {_ago(window)} of a rollback can be the release's)",
        )
    when = (
        f"during {name}'s canary"
        if alert.fired_at <= release.rolled_back_at
        else f"{_ago(late)} after {name}'s rollback"
    )
    route = alert.route
    if route is None:
        return Belonging(True, f"service-wide alert {when}", 1)
    if release.routes is None:
        return Belonging(True, f"fired {when} (the gate did not say which routes it broke)", 1)
    broken = {route_path(r) for r in release.routes}
    if route_path(route) in broken:
        return Belonging(True, f"fired {when} on route {route}, which the release broke", 2)
    listed = ", ".join(sorted(broken)) or "none"
    return Belonging(
        False, f"route {route} is not one {name} broke ({listed}), though it fired {when}"
    )


def _ago(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
