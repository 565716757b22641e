"""The story the demo plays, told as it happens. Every line is printed when the
demo sees its step in the records (the gate's releases, the postmortems'
incidents, the sentinel's alerts and pages, the translator's log, the outbox
file), never because the demo meant it to happen; what people do, they do
through the platform's APIs (demo/people.py).

1. Releases: a bad build goes through the gate, its canary is judged and rolled
   back while users see no error, an incident opens, and its lead closes it with
   a postmortem and a detective action (the detector rule).
2. Faults (demo/faults.py), once the releases are over (the gate refuses a
   release while a critical alert fires): each one raises its alert, the alert
   pages the person on call (a call, and Slack: what the outbox holds), who
   acknowledges it.

When both are told ``told`` is set; the story then keeps acknowledging whatever
else pages, as the on-call person would, until the demo stops."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from common.logs import get_logger
from demo.faults import FAULTS, Fault, start_faults
from demo.narrator import Narrator
from demo.people import DETECTIVE_SIGNAL, ActionRefused, IncidentLead, OnCall
from demo.releases import BAD_ROUTE, FleetNews
from demo.summary import FAULT_LINE
from postmortems.service import Postmortems
from release_gate.db import Database as GateDatabase
from release_gate.models import Release, ReleaseStatus
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.db import Database as SentinelDatabase
from sentinel.models import Alert, Notification, NotificationStatus

log = get_logger(__name__)

POLL_SECONDS = 1.0
# A rollback's incident is opened by the gate right after it; past this, say it is missing.
INCIDENT_WAIT_SECONDS = 60
CHANNEL_WORDS = {"voice": "call", "sms": "SMS", "slack": "Slack", "webhook": "webhook"}
SENT = (NotificationStatus.sent, NotificationStatus.bundled)


@dataclass
class Records:
    """Where the story reads what happened."""

    sentinel_db: SentinelDatabase
    gate_db: GateDatabase
    postmortems: Postmortems
    log_file: Path
    outbox_file: Path


@dataclass
class FaultTale:
    fault: Fault
    seen_at: str | None = None  # the first injected failure's time, from the log
    alert_id: int | None = None
    alert_name: str = ""
    group_id: int | None = None
    paged: bool = False
    acked: bool = False


@dataclass
class Story:
    narrator: Narrator
    records: Records
    on_call: OnCall
    lead: IncidentLead
    urls: dict[str, str]  # console, postmortems
    faults_file: Path
    fault_after: float  # seconds from the start, at the earliest; negative: no faults
    fleet: FleetNews | None  # None: no releases
    ends_when_told: bool = False  # --short
    told: threading.Event = field(default_factory=threading.Event)
    _releases_told: dict[int, set[str]] = field(default_factory=dict)
    _outbox: Tail | None = None
    _outbox_keys: set[str] = field(default_factory=set)
    _acked_groups: set[int] = field(default_factory=set)

    def run(self, stop: threading.Event) -> None:
        started = time.monotonic()
        try:
            if self.fleet is not None:
                self._tell_releases(stop)
            if self.fault_after >= 0:
                if stop.wait(max(0.0, started + self.fault_after - time.monotonic())):
                    return
                self._tell_faults(stop)
            if stop.is_set():
                return
            self.narrator.say(
                "TOLD",
                "that is the story"
                + (
                    "; the summary follows"
                    if self.ends_when_told
                    else f"; the platform keeps running: look around the console "
                    f"{self.urls['console']}, Ctrl-C for the summary"
                ),
            )
            self.told.set()
            while not stop.wait(2 * POLL_SECONDS):
                self._acknowledge_other_pages()
        except Exception as exc:  # noqa: BLE001 - the platform runs on; say why the story stops
            log.exception("demo.story_failed")
            self.narrator.say("STORY", f"stopped telling: {type(exc).__name__}: {exc}")

    # --- chapter 1: a bad release ------------------------------------------------

    def _tell_releases(self, stop: threading.Event) -> None:
        assert self.fleet is not None
        while not stop.wait(POLL_SECONDS):
            with self.records.gate_db.session() as s:
                releases = list(s.scalars(select(Release).order_by(Release.id)))
            unfinished = False
            for release in releases:
                unfinished |= not self._tell_release(release, stop)
            if self.fleet.done.is_set() and not unfinished:
                return

    def _tell_release(self, r: Release, stop: threading.Event) -> bool:
        """Say what is new about ``r``; True once its story is over."""
        told = self._releases_told.setdefault(r.id, set())

        def once(stage: str, tag: str, text: str) -> None:
            if stage not in told:
                told.add(stage)
                self.narrator.say(tag, text)

        if r.status == ReleaseStatus.refused:
            reasons = "; ".join((r.refusal or {}).get("reasons", [])) or "refused"
            once("final", "REFUSED", f"translator {r.version}: {reasons}")
            return True
        if r.canary_started_at is not None:
            once(
                "canary",
                "RELEASE",
                f"translator {r.version} by {r.author} goes through the gate: on the preprod "
                f"(canary) node, production stays on {r.previous_version}",
            )
        if r.decided_at is not None and r.verdict:
            once("judged", "JUDGE", _judgement(r))
        if r.status == ReleaseStatus.promoted:
            once("final", "PROMOTED", f"translator {r.version} is on production")
            return True
        if r.status != ReleaseStatus.rolled_back:
            if r.status in (ReleaseStatus.started, ReleaseStatus.canary, ReleaseStatus.promoting):
                return False
            once("final", r.status.value.upper(), f"translator {r.version}: {r.error or ''}")
            return True
        assert self.fleet is not None
        once(
            "final",
            "ROLLBACK",
            f"translator back on {r.previous_version}; users saw {_errors_in_words(self.fleet)}",
        )
        return self._close_its_incident(r, told, stop)

    def _close_its_incident(self, r: Release, told: set[str], stop: threading.Event) -> bool:
        if "incident" in told:
            return True
        incident = next(
            (
                i
                for i in self.records.postmortems.list(limit=50)
                if i.source_ref == f"release:{r.id}"
            ),
            None,
        )
        if incident is None:
            assert r.finished_at is not None or r.rolled_back_at is not None
            since = r.finished_at or r.rolled_back_at
            assert since is not None
            if (datetime.now(UTC) - since).total_seconds() > INCIDENT_WAIT_SECONDS:
                told.add("incident")
                self.narrator.say("INCIDENT", f"none opened for release {r.id}: {r.incident}")
                return True
            return False
        told.add("incident")
        url = f"{self.urls['console']}/incidents/{incident.id}"
        self.narrator.say("INCIDENT", f"#{incident.id} opened: {incident.title}  {url}")
        if stop.is_set():
            return True
        try:
            self.lead.close_bad_release(
                incident.id, r.version, r.previous_version, BAD_ROUTE, self.fleet_users()
            )
        except (ActionRefused, OSError) as exc:
            self.narrator.say("POSTMORTEM", f"{self.lead.name} could not close it: {exc}")
            return True
        detail = self.records.postmortems.detail(incident.id)
        pm = detail.postmortem
        detective = next((a for a in detail.actions if a.signal == DETECTIVE_SIGNAL), None)
        if pm is not None and pm.complete:
            self.narrator.say(
                "POSTMORTEM",
                f"{pm.submitted_by} filled it: root cause, how it was eliminated, business "
                "impact, conclusions",
            )
        if detective is not None:
            self.narrator.say(
                "DETECTOR",
                f"action item '{detective.title}', on {detective.signal}"
                + (f"{{{detective.series}}}" if detective.series else "")
                + f": {_replay_in_words(detective.replay)}",
            )
        if detail.status == "closed":
            self.narrator.say("CLOSED", f"incident #{detail.id} by {self.lead.name}  {url}")
        return True

    def fleet_users(self) -> str:
        assert self.fleet is not None
        return self.fleet.users_saw()

    # --- chapter 2: faults, alerts, pages, acknowledgements -----------------------

    def _tell_faults(self, stop: threading.Event) -> None:
        log_tail = Tail(self.records.log_file, from_end=True)  # this run's faults only
        start_faults(self.faults_file)
        tales = [FaultTale(fault) for fault in FAULTS]
        while not stop.wait(POLL_SECONDS):
            self._read_log(log_tail, tales)
            self._read_outbox()
            with self.records.sentinel_db.session() as s:
                for tale in tales:
                    self._follow(s, tale)
            for tale in tales:
                if tale.paged and not tale.acked:
                    self._acknowledge(tale)
            self._acknowledge_other_pages(skip={t.group_id for t in tales})
            if all(t.acked for t in tales):
                return

    def _read_log(self, log_tail: Tail, tales: list[FaultTale]) -> None:
        for line in log_tail.lines():
            match = FAULT_LINE.search(line)
            if not match:
                continue
            kind, key, value = match.groups()
            for tale in tales:
                if tale.seen_at is None and (kind, f"{key}={value}") == (
                    tale.fault.kind,
                    tale.fault.target,
                ):
                    tale.seen_at = line[11:19]
                    self.narrator.say(
                        "FAULT", f"{tale.fault.what}: the first at {tale.seen_at} UTC"
                    )

    def _read_outbox(self) -> None:
        if self._outbox is None:
            self._outbox = Tail(self.records.outbox_file)
        for line in self._outbox.lines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self._outbox_keys.add(json.loads(line)["notification_id"])

    def _follow(self, s: Any, tale: FaultTale) -> None:
        if tale.alert_id is None:
            alert = s.scalars(
                select(Alert)
                .where(
                    Alert.signal == tale.fault.signal,
                    Alert.series == tale.fault.series,
                    Alert.firing_at.is_not(None),
                )
                .order_by(Alert.id)
            ).first()
            if alert is None:
                return
            tale.alert_id, tale.alert_name = alert.id, _name(alert)
            self.narrator.say(
                "ALERT",
                f"[{alert.severity}] {_name(alert)} fires: {_gist(alert.summary)}  "
                f"{self.urls['console']}/alerts/{alert.id}",
            )
        if not tale.paged:
            alert = s.get(Alert, tale.alert_id)
            if alert is None or alert.group_id is None:
                return
            pages = self._pages_in_outbox(s, alert.group_id)
            if not any(n.person for n in pages):
                return
            tale.group_id, tale.paged = alert.group_id, True
            self.narrator.say(
                "PAGE",
                f"{tale.alert_name}: {_pages_in_words(pages)} (in {self.records.outbox_file})",
            )

    def _pages_in_outbox(self, s: Any, group_id: int) -> list[Notification]:
        """The group's notifications that were sent and that the outbox file holds."""
        rows = s.scalars(
            select(Notification)
            .where(Notification.group_id == group_id, Notification.status.in_(SENT))
            .order_by(Notification.id)
        ).all()
        return [n for n in rows if n.key in self._outbox_keys]

    def _acknowledge(self, tale: FaultTale) -> None:
        assert tale.group_id is not None
        said = self._ack(tale.group_id)
        if said is not None:
            tale.acked = True
            self.narrator.say("ACK", f"{tale.alert_name}: {said}")

    def _acknowledge_other_pages(self, skip: set[int | None] | None = None) -> None:
        """Pages the story did not bring: the person they reach acknowledges them too."""
        self._read_outbox()
        with self.records.sentinel_db.session() as s:
            groups = s.scalars(
                select(AlertGroup).where(AlertGroup.state == GroupState.open, AlertGroup.step >= 0)
            ).all()
            waiting = []
            for group in groups:
                if group.id in (skip or set()) or group.id in self._acked_groups:
                    continue
                pages = self._pages_in_outbox(s, group.id)
                alert = s.scalars(select(Alert).where(Alert.group_id == group.id)).first()
                if alert is not None and any(n.person for n in pages):
                    waiting.append((group.id, f"[{alert.severity}] {_name(alert)}"))
        for group_id, name in waiting:
            said = self._ack(group_id)
            if said is not None:
                self.narrator.say("ALSO", f"{name} paged too: {said}")

    def _ack(self, group_id: int) -> str | None:
        """The paged person acknowledges; what the sentinel then records, in words."""
        with self.records.sentinel_db.session() as s:
            person = s.scalars(
                select(Notification.person)
                .where(Notification.group_id == group_id, Notification.person.is_not(None))
                .order_by(Notification.id)
            ).first()
        if person is None:
            return None
        try:
            self.on_call.acknowledge(group_id, person)
        except (ActionRefused, OSError) as exc:
            self.narrator.say("ACK", f"{person} could not acknowledge group {group_id}: {exc}")
            self._acked_groups.add(group_id)  # said once; not retried every second
            return None
        self._acked_groups.add(group_id)
        with self.records.sentinel_db.session() as s:
            group = s.get(AlertGroup, group_id)
            if group is None or group.acked_by is None or group.acked_at is None:
                return None
            return f"{group.acked_by} acknowledged it (sentinel API), escalation stopped"


def _judgement(r: Release) -> str:
    """'Roll back at t=2.33s: canary 5xx rate 37.50% (6/16) is credibly above
    production's 0% (0/52): evidence ...' -> 'after 2.3 s of canary: canary 5xx rate
    37.50% (6/16) is credibly above production's 0% (0/52): roll back'."""
    assert r.verdict is not None
    reason = str(r.verdict.get("reason", ""))
    match = re.match(r"^[^:]*? at t=([\d.]+)s: (.*?)(?:: .*)?$", reason)
    if match is None:
        return f"{reason} ({r.decision})"
    seconds, finding = match.groups()
    decision = (r.decision or "").replace("rollback", "roll back")
    return f"after {float(seconds):.1f} s of canary: {finding}: {decision}"


def _replay_in_words(replay: dict[str, Any] | None) -> str:
    if not replay:
        return "not replayed"
    if replay.get("error"):
        return f"its replay failed: {replay['error']}"
    if not replay.get("would_have_fired"):
        return "replayed over the incident, it would not have fired (production stayed quiet)"
    lead = replay.get("lead_seconds") or 0
    return f"replayed over the incident, it would have fired {abs(lead):.0f} s " + (
        "before it was detected" if lead >= 0 else "after it was detected"
    )


def _errors_in_words(fleet: FleetNews) -> str:
    text = fleet.users_saw()
    return ("no error: " if text.endswith(" 0 errors") else "") + text


def _name(alert: Alert) -> str:
    series = alert.series.replace('"', "")
    return f"{alert.signal}{{{series}}}" if series else alert.signal


def _gist(summary: str) -> str:
    """'payments.failed{...} FIRING: 6 payments, expected 0–5.5 since 05:11 UTC. ...'
    -> '6 payments, expected 0–5.5'."""
    text = summary.split(" FIRING: ", 1)[-1]
    text = text.split(". ", 1)[0]
    return re.sub(r" since \d\d:\d\d UTC$", "", text)


def _pages_in_words(pages: list[Notification]) -> str:
    words = []
    for n in pages:
        channel = CHANNEL_WORDS.get(n.channel, n.channel)
        words.append(
            f"{channel} to {n.person} ({n.recipient})" if n.person else f"{channel} {n.recipient}"
        )
    return ", ".join(dict.fromkeys(words))


class Tail:
    """The whole lines appended to a file since the last look (a line still being
    written waits for the next look)."""

    def __init__(self, path: Path, from_end: bool = False) -> None:
        self.path = path
        self.offset = _size(path) if from_end else 0

    def lines(self) -> list[str]:
        if _size(self.path) <= self.offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        return complete.decode("utf-8", errors="replace").splitlines()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
