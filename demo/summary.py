"""What a demo run did, printed when it ends (its duration, or Ctrl-C): the faults
injected, the alerts that fired, the pages sent, the releases and their outcome, the
incidents, and where to look. Read from what each component recorded, so the summary
tells what happened, not what the demo meant to happen."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from postmortems.service import Postmortems
from release_gate.db import Database as GateDatabase
from release_gate.history import recent_releases
from sentinel.alerting.models import AlertGroup
from sentinel.db import Database as SentinelDatabase
from sentinel.models import Alert, Notification, NotificationStatus

FAULT_LINE = re.compile(r"event=fault\.injected kind=(\S+)(?: (route|method|user)=(\S+))?")
SENT = (NotificationStatus.sent, NotificationStatus.bundled)
WAITING = (NotificationStatus.pending, NotificationStatus.sending, NotificationStatus.held)


@dataclass
class RunSummary:
    ended_by: str  # "Ctrl-C" or "its duration"
    seconds: float
    faults: Counter[str] = field(default_factory=Counter)
    alerts: list[str] = field(default_factory=list)
    pages_sent: Counter[str] = field(default_factory=Counter)
    pages_waiting: int = 0
    pages_failed: int = 0
    pages_groups: int = 0  # alert groups that paged someone
    pages_acked: Counter[str] = field(default_factory=Counter)  # by who acknowledged
    pages_gone: int = 0  # groups resolved before anyone acknowledged them
    announcements: int = 0
    releases: list[str] = field(default_factory=list)
    incidents: list[str] = field(default_factory=list)
    look: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [
            "",
            f"=== Demo summary: ended by {self.ended_by} after {_duration(self.seconds)} ===",
            f"Faults injected: {sum(self.faults.values())}",
            *(f"  {what}: {n}" for what, n in sorted(self.faults.items())),
            f"Alerts fired: {len(self.alerts)}",
            *(f"  {line}" for line in self.alerts),
            f"Pages sent: {sum(self.pages_sent.values())}"
            + _by_channel(self.pages_sent)
            + (f"; {self.pages_waiting} still queued" if self.pages_waiting else "")
            + (f"; {self.pages_failed} failed" if self.pages_failed else "")
            + (f" (and {self.announcements} release announcements)" if self.announcements else ""),
            f"Pages acknowledged: {sum(self.pages_acked.values())} of {self.pages_groups}"
            + "".join(f", {n} by {who}" for who, n in sorted(self.pages_acked.items()))
            + (f"; {self.pages_gone} resolved before anyone did" if self.pages_gone else ""),
            f"Releases: {len(self.releases)}" + ("" if self.releases else " (none started)"),
            *(f"  {line}" for line in self.releases),
            f"Incidents: {len(self.incidents)}",
            *(f"  {line}" for line in self.incidents),
            "Where to look:",
            *(f"  {line}" for line in self.look),
            "",
        ]
        return "\n".join(lines)


def faults_in_log(log_file: Path) -> Counter[str]:
    """``event=fault.injected`` lines of the translator's log, by kind and target."""
    counts: Counter[str] = Counter()
    if not log_file.exists():
        return counts
    with log_file.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = FAULT_LINE.search(line)
            if match:
                kind, key, value = match.groups()
                counts[f"{kind} {key}={value}" if key else kind] += 1
    return counts


def summarize(
    *,
    ended_by: str,
    seconds: float,
    log_file: Path,
    sentinel_db: SentinelDatabase,
    gate_database_url: str,
    postmortems: Postmortems,
    urls: dict[str, str],
) -> RunSummary:
    summary = RunSummary(ended_by=ended_by, seconds=seconds, faults=faults_in_log(log_file))
    with sentinel_db.session() as s:
        for alert in s.scalars(
            select(Alert).where(Alert.firing_at.is_not(None)).order_by(Alert.firing_at)
        ):
            series = alert.series.replace('"', "")
            name = f"{alert.signal}{{{series}}}" if series else alert.signal
            assert alert.firing_at is not None
            summary.alerts.append(
                f"[{alert.severity}] {name} fired {alert.firing_at:%H:%M:%S} UTC, now {alert.state}"
                f"  {urls['console']}/alerts/{alert.id}"
            )
        for group in s.scalars(select(AlertGroup).where(AlertGroup.step >= 0)):
            summary.pages_groups += 1
            if group.acked_by:
                summary.pages_acked[group.acked_by] += 1
            elif group.resolved_at is not None:
                summary.pages_gone += 1
        for note in s.scalars(select(Notification)):
            if note.group_id is None:
                summary.announcements += 1
            elif note.status in SENT:
                summary.pages_sent[note.channel] += 1
            elif note.status in WAITING:
                summary.pages_waiting += 1
            else:
                summary.pages_failed += 1
    gate_db = GateDatabase(gate_database_url)
    try:
        gate_db.migrate()  # stopped before the first release: the tables are not there yet
        for release in reversed(recent_releases(gate_db, limit=50)):
            summary.releases.append(
                f"#{release.id} {release.service} {release.version}: {release.status}"
                + (f" (judge: {release.decision})" if release.decision else "")
                + f"  {urls['console']}/releases/{release.id}"
            )
    except Exception as exc:  # noqa: BLE001 - the summary still tells the rest
        first_line = str(exc).splitlines()[0]
        summary.releases.append(f"(the release gate's records could not be read: {first_line})")
    finally:
        gate_db.dispose()
    console = urls["console"]
    for incident in reversed(postmortems.list(limit=50)):
        written = ", postmortem complete" if incident.postmortem_complete else ""
        summary.incidents.append(
            f"#{incident.id} [{incident.severity}] {incident.title} ({incident.status}{written}) "
            f"{console}/incidents/{incident.id}"
        )
    summary.look = [
        f"while it ran: the console {console} (incidents at {console}/incidents), "
        f"translator {urls['translator']}/docs, "
        f"sentinel {urls['sentinel']}/api/alerts and /api/groups",
        f"logs: {log_file}; pages as sent: var/outbox.jsonl",
        "this run stays in var/ until the next one moves it to var/last-run/",
        f"its releases: GATE_DATABASE_URL={gate_database_url} .venv/bin/release-gate history",
        "all of it in the console again: CONSOLE_GATE_DATABASE_URL=sqlite:///var/release_gate.db "
        "CONSOLE_POSTMORTEMS_DATABASE_URL=sqlite:///var/postmortems.db .venv/bin/dashboards serve",
    ]
    return summary


def _by_channel(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{channel} {n}" for channel, n in sorted(counts.items())) + ")"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
