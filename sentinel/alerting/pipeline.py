"""The notification pipeline: the path of one alert group from its alerts to a
phone ringing, as a list of small stages (after Alertmanager's
``notify.PipelineBuilder``). ``build_pipeline`` is the one place to read it.

A pass runs per due group in one transaction: the group's row, the
notifications it decides and its new escalation position commit together,
and each notification is written to the outbox before anything is sent."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from common.logs import get_logger
from sentinel.alerting import messages
from sentinel.alerting.config import AlertingConfig, Policy, Route
from sentinel.alerting.groups import LIVE_STATES, group_wait_seconds
from sentinel.alerting.inhibit import describe_alert, inhibited_by
from sentinel.alerting.models import AlertGroup, GroupState
from sentinel.alerting.outbox import enqueue
from sentinel.alerting.overrides import effective_schedule
from sentinel.alerting.schedules import who_is_on_call
from sentinel.alerting.silences import MaintenanceWindow, silenced_by
from sentinel.alerting.silences import Silence as SilenceRule
from sentinel.models import Alert, AlertState, Notification, NotificationStatus
from sentinel.source_health import SOURCE_SIGNAL

log = get_logger(__name__)

MUTED_BY_LABELS = ("method", "service")  # what "inhibited by ..." names of the source


@dataclass
class Planned:
    """A notification a stage decided on, before it reaches the outbox."""

    key: str
    channel: str
    recipient: str
    payload: dict[str, Any]
    person: str | None = None
    step: int | None = None
    held: bool = False  # over the rate limit: waits for a bundle
    folded: list[int] = field(default_factory=list)  # held pages this one carries


@dataclass
class Tick:
    """What every group's pass in one run shares."""

    now: datetime
    firing_labels: list[dict[str, str]]  # for inhibition: every firing alert
    silences: list[SilenceRule]
    windows: list[MaintenanceWindow]
    public_url: str | None = None
    sent_recently: dict[tuple[str, str], int] = field(default_factory=dict)
    # Sources that cannot be read (their source alert is active, or resolved moments
    # ago): the no-data of every signal reading one is explained by it.
    sources_down: frozenset[str] = frozenset()


@dataclass
class GroupPass:
    session: Session
    tick: Tick
    config: AlertingConfig
    group: AlertGroup
    route: Route
    policy: Policy
    alerts: list[Alert]  # every member
    live: list[Alert] = field(default_factory=list)  # firing and not muted
    muted: dict[int, str] = field(default_factory=dict)  # alert id -> why
    resolved: bool = False
    outgoing: list[Planned] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.tick.now


class Stage(Protocol):
    def exec(self, p: GroupPass) -> bool:
        """Act on the pass; False ends it (nothing more to do for this group now)."""
        ...


def build_pipeline(config: AlertingConfig) -> list[Stage]:
    """The stages every alert group passes, in order."""
    return [
        Resolve(),  # nothing firing any more: close the group, tell who was paged
        Settle(),  # group_wait: let a new group's alerts arrive before the first page
        Inhibit(config),  # mute alerts explained by another firing alert
        Silence(),  # mute silenced alerts and those inside a maintenance window
        Escalate(config),  # page the current step's people; next step when unacknowledged
        Broadcast(),  # the group's shared message (Slack), updated in place
        RateLimit(config),  # past a recipient's limit: hold for one bundle
        Enqueue(),  # into the transactional outbox; the dispatcher sends
    ]


def run_pipeline(stages: Sequence[Stage], p: GroupPass) -> None:
    for stage in stages:
        if not stage.exec(p):
            break


# ---------------------------------------------------------------- the stages


class Resolve:
    def exec(self, p: GroupPass) -> bool:
        group = p.group
        by_hand = group.state is GroupState.resolved
        if not by_hand and any(a.state in LIVE_STATES for a in p.alerts):
            return True
        group.state, group.next_escalation_at = GroupState.resolved, None
        group.resolved_at = group.resolved_at or p.now
        group.escalation_paused_at = None
        if not by_hand:
            group.hand_resolved_at = None  # it stopped by itself: nothing to re-page
        p.resolved = True
        log.info("alert_group.resolved", group_id=group.id, by_hand=by_hand)
        if group.last_notified_at is None:
            return False  # resolved before anyone was told: nothing to say
        resolved = messages.resolved_words(group, p.alerts, p.tick.public_url)
        for person in _paged_people(p.session, group.id):
            contact = p.config.people.get(person)
            if contact is not None and contact.phone:
                p.outgoing.append(
                    Planned(
                        key=f"g{group.id}:resolved{group.reopened}:{person}",
                        channel="sms",
                        recipient=contact.phone,
                        payload=_payload(p, resolved, state="resolved"),
                        person=person,
                    )
                )
        return True


class Settle:
    def exec(self, p: GroupPass) -> bool:
        wait_over = p.group.opened_at + timedelta(seconds=group_wait_seconds(p.route, p.alerts))
        if p.group.step < 0 and p.group.last_notified_at is None and p.now < wait_over:
            p.group.notify_at = wait_over
            return False
        return True


class Inhibit:
    """The configured ``inhibit_rules``, and one built in: a source that cannot be
    read mutes the no-data of every signal that reads it (its own alert pages once,
    naming the cause)."""

    def __init__(self, config: AlertingConfig) -> None:
        self.rules = config.inhibit_rules

    def exec(self, p: GroupPass) -> bool:
        if p.resolved:
            return True
        p.live = [a for a in p.alerts if a.state in LIVE_STATES]
        for alert in p.live:
            down = source_down_for(alert, p.tick.sources_down)
            if down is not None:
                p.muted[alert.id] = f"inhibited by {SOURCE_SIGNAL}{{source={down}}}"
                continue
            if not self.rules:
                continue
            found = inhibited_by(alert.labels, p.tick.firing_labels, self.rules)
            if found is not None:
                _rule, source = found
                p.muted[alert.id] = "inhibited by " + describe_alert(source, MUTED_BY_LABELS)
        p.live = [a for a in p.live if a.id not in p.muted]
        return True


def source_down_for(alert: Alert, sources_down: frozenset[str]) -> str | None:
    """The unreadable source that explains ``alert``'s no-data, if any."""
    if alert.state is not AlertState.no_data or not sources_down:
        return None
    reads = (alert.evidence or {}).get("sources") or []
    return next((name for name in reads if name in sources_down), None)


class Silence:
    def exec(self, p: GroupPass) -> bool:
        if p.resolved:
            return True
        for alert in p.live:
            rule = silenced_by(alert.labels, p.now, p.tick.silences, p.tick.windows)
            if rule is not None:
                name = rule.name if isinstance(rule, MaintenanceWindow) else f"silence {rule.id}"
                p.muted[alert.id] = f"silenced by {name}"
                if isinstance(rule, SilenceRule) and p.group.notify_at is not None:
                    # Looked at again the moment it ends: the paused escalation resumes then.
                    p.group.notify_at = min(p.group.notify_at, rule.ends_at)
        p.live = [a for a in p.live if a.id not in p.muted]
        return True


class Escalate:
    def __init__(self, config: AlertingConfig) -> None:
        self.config = config

    def exec(self, p: GroupPass) -> bool:
        group = p.group
        if p.resolved or group.state is not GroupState.open:
            return True  # acknowledged or resolved: nobody is paged
        if not p.live:
            if p.muted:
                self._pause(p)  # everything muted: nobody is paged, the clock stands
            return True
        self._resume(p)
        if group.step < 0:
            self._page(p, 0)
        elif group.next_escalation_at is not None and p.now >= group.next_escalation_at:
            self._advance(p)
        return True

    @staticmethod
    def _pause(p: GroupPass) -> None:
        group = p.group
        if group.escalation_paused_at is None and group.next_escalation_at is not None:
            group.escalation_paused_at = p.now
            log.info("escalation.paused", group_id=group.id, step=group.step + 1)

    @staticmethod
    def _resume(p: GroupPass) -> None:
        """Unmuted: the next step is as far away as it was when the mute began."""
        group = p.group
        if group.escalation_paused_at is None:
            return
        paused = p.now - group.escalation_paused_at
        group.escalation_paused_at = None
        if group.next_escalation_at is not None:
            group.next_escalation_at += paused
        log.info("escalation.resumed", group_id=group.id, paused_seconds=paused.total_seconds())

    def _advance(self, p: GroupPass) -> None:
        group = p.group
        if group.step + 1 < len(p.policy.steps):
            self._page(p, group.step + 1)
        elif group.repeat < p.policy.repeat:
            group.repeat += 1
            self._page(p, 0)
        else:
            group.next_escalation_at = None
            log.warning("escalation.exhausted", group_id=group.id, repeats=group.repeat)

    def _page(self, p: GroupPass, index: int) -> None:
        group, step = p.group, p.policy.steps[index]
        group.step = index
        people = self._targets(p.session, step.notify.schedules, step.notify.people, p.now)
        words = _words(p)
        for person in people:
            contact = self.config.people[person]
            chain = [c for c in step.channels if contact.address(c, person) is not None]
            if not chain:
                log.warning("escalation.unreachable", group_id=group.id, person=person)
                continue
            first = chain[0]
            beside = [
                c
                for c in dict.fromkeys(step.also)
                if c != first and contact.address(c, person) is not None
            ]
            for channel in [first, *beside]:
                payload = _payload(p, words, state="firing")
                # what went beside the first channel is not tried again as its fallback,
                # and its failure is not the person's: the first channel's chain decides
                payload["fallback"] = (
                    [c for c in chain[1:] if c not in beside] if channel == first else []
                )
                if channel != first:
                    payload["beside"] = True
                p.outgoing.append(
                    Planned(
                        key=f"g{group.id}:r{group.repeat}:s{index}:{person}:{channel}"
                        f"{_episode(group)}",
                        channel=channel,
                        recipient=str(contact.address(channel, person)),
                        payload=payload,
                        person=person,
                        step=index,
                    )
                )
        if people:
            group.next_escalation_at = p.now + timedelta(minutes=step.wait_minutes)
        else:
            # A gap in the schedule must not swallow the page: go straight on.
            log.warning("escalation.nobody_on_call", group_id=group.id, step=index + 1)
            group.next_escalation_at = p.now
        log.warning(
            "escalation.step",
            group_id=group.id,
            step=index + 1,
            repeat=group.repeat,
            people=",".join(people),
        )

    def _targets(
        self, s: Session, schedules: list[str], people: list[str], now: datetime
    ) -> list[str]:
        found: list[str] = []
        for name in schedules:
            # the overrides added while running (the console's) page like configured ones
            on_call = who_is_on_call(effective_schedule(self.config, s, name, now), now)
            if on_call is not None:
                found.append(on_call.person)
        found.extend(people)
        return list(dict.fromkeys(found))


class Broadcast:
    def exec(self, p: GroupPass) -> bool:
        group = p.group
        if group.last_notified_at is None and not p.live:
            return True  # never announced and nothing to announce yet
        state = group.state.value
        digest = state + ":" + _digest(p)
        if digest == group.notified_digest:
            return True
        changed_state = not group.notified_digest.startswith(state + ":")
        interval = timedelta(seconds=p.route.group_interval_seconds)
        due = group.last_notified_at is None or changed_state
        if not due and p.now < group.last_notified_at + interval:
            group.notify_at = group.last_notified_at + interval
            return True
        words = _words(p)
        shown = "firing" if group.state is GroupState.open else state
        for target in p.policy.broadcast:
            p.outgoing.append(
                Planned(
                    key=f"g{group.id}:b{group.broadcasts}:{target.channel}:{target.to}",
                    channel=target.channel,
                    recipient=target.to,
                    payload=_payload(
                        p, words, state=shown, ref=f"group:{group.id}:{target.channel}:{target.to}"
                    ),
                )
            )
        group.broadcasts += 1
        group.notified_digest = digest
        group.last_notified_at = p.now
        return True


class RateLimit:
    """Past a channel's limit a recipient's pages wait for the next bundle, except a
    P0/P1 page: a limit that delays a critical page defeats the page, so it goes out at
    once (and still counts, so the quieter pages after it wait). A critical page that
    goes out past the limit carries the pages held for that person, so their phone
    rings once with everything instead of once now and once more for the bundle."""

    CRITICAL = frozenset({"P0", "P1"})

    def __init__(self, config: AlertingConfig) -> None:
        self.limits = config.rate_limits

    def exec(self, p: GroupPass) -> bool:
        critical = str(p.group.severity) in self.CRITICAL
        for planned in p.outgoing:
            limit = self.limits.get(planned.channel)  # type: ignore[call-overload]
            if limit is None:
                continue
            slot = (planned.channel, planned.recipient)
            counts = p.tick.sent_recently
            if slot not in counts:
                counts[slot] = recent_count(
                    p.session, *slot, since=p.now - timedelta(minutes=limit.per_minutes)
                )
            if counts[slot] < limit.max:
                counts[slot] += 1
            elif not critical:
                planned.held = True
            else:
                counts[slot] += 1
                self._fold_held(p, planned)
        return True

    @staticmethod
    def _fold_held(p: GroupPass, planned: Planned) -> None:
        if planned.person is None:
            return
        held = p.session.scalars(
            select(Notification)
            .where(
                Notification.status == NotificationStatus.held,
                Notification.person == planned.person,
            )
            .order_by(Notification.id)
        ).all()
        if not held:
            return
        subjects = [r.payload.get("subject") or str(r.payload.get("text", ""))[:80] for r in held]
        planned.payload = messages.with_held(planned.payload, subjects)
        planned.folded = [r.id for r in held]
        log.warning(
            "notification.folded",
            channel=planned.channel,
            person=planned.person,
            held=len(held),
        )


class Enqueue:
    def exec(self, p: GroupPass) -> bool:
        for planned in p.outgoing:
            added = enqueue(
                p.session,
                planned.key,
                planned.channel,
                planned.recipient,
                planned.payload,
                p.now,
                alert_id=p.live[0].id if p.live else None,
                group_id=p.group.id,
                person=planned.person,
                step=planned.step,
                held=planned.held,
            )
            if planned.folded and added:
                carrier = p.session.scalar(
                    select(Notification.id).where(Notification.key == planned.key)
                )
                p.session.execute(
                    update(Notification)
                    .where(
                        Notification.id.in_(planned.folded),
                        Notification.status == NotificationStatus.held,
                    )
                    .values(status=NotificationStatus.bundled, bundled_into=carrier)
                    .execution_options(synchronize_session=False)
                )
        return True


# ------------------------------------------------------------------- helpers


def _episode(group: AlertGroup) -> str:
    """Page keys of a reopened group differ from its first episode's, so a re-page
    from the first step is a new page, not a duplicate of the old one."""
    return f":o{group.reopened}" if group.reopened else ""


def recent_count(session: Session, channel: str, recipient: str, since: datetime) -> int:
    """Messages to one recipient on one channel since ``since`` (bundles count once)."""
    return int(
        session.scalar(
            select(func.count(Notification.id)).where(
                Notification.channel == channel,
                Notification.recipient == recipient,
                Notification.created_at >= since,
                Notification.status.not_in((NotificationStatus.held, NotificationStatus.bundled)),
            )
        )
        or 0
    )


def _paged_people(session: Session, group_id: int) -> list[str]:
    rows = session.scalars(
        select(Notification.person)
        .where(Notification.group_id == group_id, Notification.person.is_not(None))
        .distinct()
    ).all()
    return sorted(p for p in rows if p)


def _words(p: GroupPass) -> messages.Words:
    words = messages.group_words(p.group, p.alerts, p.live, p.muted, p.tick.public_url)
    if p.group.hand_resolved_at is not None and p.group.state is not GroupState.resolved:
        return messages.still_firing(words, p.group.hand_resolved_at)
    return words


def _payload(
    p: GroupPass, words: messages.Words, state: str, ref: str | None = None
) -> dict[str, Any]:
    """Every medium's words travel together: a fallback to another channel
    (SMS → call) reads its own from the same payload."""
    group = p.group
    payload: dict[str, Any] = {
        "subject": messages.group_subject(group, p.live),
        **words.payload(),
        "fingerprint": f"group:{group.id}",
        "severity": group.severity,
        "state": state,
    }
    if ref:
        payload["ref"] = ref
    links: dict[str, str] = {}
    if p.tick.public_url:
        links["Open"] = f"{p.tick.public_url.rstrip('/')}/api/groups/{group.id}"
    shown = p.live or p.alerts
    runbook = messages.facts(shown[0], p.tick.public_url).runbook_url if shown else None
    if runbook:
        links["Runbook"] = runbook
    if links:
        payload["links"] = links
    return payload


def _digest(p: GroupPass) -> str:
    parts = [",".join(str(a.id) for a in p.live), ",".join(map(str, sorted(p.muted)))]
    parts.append(p.group.acked_by or "")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
