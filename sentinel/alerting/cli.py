"""``sentinel`` commands for people on call: groups, acknowledge, resolve,
silences, who is on call, announcements, and a check of the alerting file.
They act on the sentinel's database directly, as the API does."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from common.bounds import EARLIEST, LATEST, MAX_SILENCE
from common.identity import Role
from common.identity.actor import cli_actor
from common.yaml_config import ConfigError
from sentinel.settings import SentinelSettings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: expected a duration like 30m, 2h or 1d")
    try:
        duration = timedelta(**{_UNITS[match[2]]: float(match[1])})
    except OverflowError:
        duration = timedelta.max
    if duration > MAX_SILENCE:
        raise click.BadParameter(f"{text!r}: a silence lasts at most {MAX_SILENCE.days // 7} weeks")
    return duration


def _when(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r}: expected an ISO time like 2026-03-29T02:30+02:00"
        ) from exc
    if value.tzinfo is None:
        raise click.BadParameter(f"{text!r}: give the offset (e.g. +00:00)")
    if not EARLIEST <= value < LATEST:
        raise click.BadParameter(f"{text!r}: give a time between 1970 and 2100")
    return value.astimezone(UTC)


def _db():  # type: ignore[no-untyped-def]
    from sentinel.db import Database

    db = Database(SentinelSettings().database_url)
    db.migrate()
    return db


def _config():  # type: ignore[no-untyped-def]
    from sentinel.alerting.config import load_alerting_config

    try:
        return load_alerting_config(SentinelSettings().alerting)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _act(
    action: str, group_id: int | None, alert_id: int | None, by: str | None, minutes: float
) -> None:
    from sentinel.alerting import actions

    if (group_id is None) == (alert_id is None):
        raise click.UsageError("give a GROUP_ID or --alert ID")
    by = cli_actor(by, Role.responder)
    db = _db()
    try:
        with db.session() as s:
            if alert_id is not None:
                group_id = actions.group_of_alert(s, alert_id)
            assert group_id is not None
            group = actions.act(s, action, group_id, by, "cli", datetime.now(UTC), minutes)  # type: ignore[arg-type]
            click.echo(f"group {group.id}: {group.state.value} (by {by})")
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()


def register(main: click.Group) -> None:
    for command in (groups, acknowledge, resolve, silence, oncall, announce, alerting, deliver):
        main.add_command(command)


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
def deliver(once: bool) -> None:
    """Send what the outbox holds, beside `serve`: more dispatcher processes,
    more notifications per second (claims are leased, so they never collide).
    SIGTERM or Ctrl-C stops it within seconds, handing its claims back."""
    import signal

    from common.clock import SystemClock
    from sentinel.alerting.delivery import build_dispatcher

    settings = SentinelSettings()
    db = _db()
    dispatcher, _reactions, _kinds = build_dispatcher(settings, db, _config(), SystemClock())
    signal.signal(signal.SIGTERM, lambda *_: dispatcher.stop())
    signal.signal(signal.SIGINT, lambda *_: dispatcher.stop())
    try:
        if once:
            click.echo(f"{dispatcher.drain()} notifications attempted")
        else:
            from common.logs import configure_logging

            configure_logging(settings.log_level)
            dispatcher.serve(settings.tick_seconds)
            click.echo("dispatcher stopped; claims handed back")
    finally:
        dispatcher.close()
        db.dispose()


@click.command()
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved"]), default=None)
def groups(state: str | None) -> None:
    """Alert groups: what pages, who owns it, where the escalation stands."""
    from sqlalchemy import select

    from sentinel.alerting.models import AlertGroup

    db = _db()
    with db.session() as s:
        query = select(AlertGroup).order_by(AlertGroup.id.desc()).limit(100)
        if state:
            query = query.where(AlertGroup.state == state)
        for g in s.scalars(query):
            labels = ",".join(f"{k}={v}" for k, v in g.labels.items() if v)
            owner = f" by {g.acked_by}" if g.acked_by else ""
            click.echo(
                f"{g.id:>5} {g.severity} {g.state.value:<12}{owner:<12} step {g.step + 1} "
                f"{g.route}{{{labels}}}"
            )
    db.dispose()


def _target_options(command):  # type: ignore[no-untyped-def]
    command = click.option(
        "--by",
        default=None,
        help="Who acts; default: the account of VIGIL_TOKEN (which it must name).",
    )(command)
    command = click.option("--alert", "alert_id", type=int, help="Act on this alert's group.")(
        command
    )
    return click.argument("group_id", type=int, required=False)(command)


@click.command("ack")
@_target_options
def acknowledge(group_id: int | None, alert_id: int | None, by: str | None) -> None:
    """Acknowledge a group: escalation stops."""
    _act("acknowledge", group_id, alert_id, by, 0)


@click.command()
@_target_options
def resolve(group_id: int | None, alert_id: int | None, by: str | None) -> None:
    """Resolve a group: whoever was paged is told."""
    _act("resolve", group_id, alert_id, by, 0)


@click.group()
def silence() -> None:
    """Silences: mute alerts whose labels match, for a while."""


@silence.command("add")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--for", "duration", default=None, help="How long: 30m, 2h, 1d.")
@click.option("--until", default=None, help="Or until this ISO time.")
@click.option("--start", default=None, help="ISO time it starts (default: now).")
@click.option(
    "--by", default=None, help="Who acts; default: the account of VIGIL_TOKEN (which it must name)."
)
@click.option("--comment", required=True, help="Why: shown with every muted alert.")
def silence_add(
    matchers: tuple[str, ...],
    duration: str | None,
    until: str | None,
    start: str | None,
    by: str | None,
    comment: str,
) -> None:
    from sentinel.alerting import actions

    begins = _when(start)
    if (duration is None) == (until is None):
        raise click.UsageError("give --for or --until")
    ends = begins + _duration(duration) if duration else _when(until)
    by = cli_actor(by, Role.responder)
    db = _db()
    try:
        with db.session() as s:
            row = actions.add_silence(
                s, list(matchers), begins, ends, by, comment, datetime.now(UTC), via="cli"
            )
            click.echo(
                f"silence {row.id}: {' '.join(row.matchers)} until {row.ends_at:%Y-%m-%d %H:%M} UTC"
            )
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()


@silence.command("list")
def silence_list() -> None:
    from sqlalchemy import select

    from sentinel.alerting.models import Silence

    db = _db()
    with db.session() as s:
        now = datetime.now(UTC)
        for row in s.scalars(select(Silence).where(Silence.ends_at > now).order_by(Silence.id)):
            click.echo(
                f"{row.id:>5} until {row.ends_at:%Y-%m-%d %H:%M} UTC  {' '.join(row.matchers)}  "
                f"by {row.created_by}: {row.comment}"
            )
    db.dispose()


@silence.command("expire")
@click.argument("silence_id", type=int)
@click.option(
    "--by", default=None, help="Who acts; default: the account of VIGIL_TOKEN (which it must name)."
)
def silence_expire(silence_id: int, by: str | None) -> None:
    from sentinel.alerting import actions

    by = cli_actor(by, Role.responder)
    db = _db()
    try:
        with db.session() as s:
            actions.expire_silence(s, silence_id, by, "cli", datetime.now(UTC))
        click.echo(f"silence {silence_id}: expired")
    except actions.ActionError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()


@click.command()
@click.argument("schedule_name", required=False)
@click.option("--at", default=None, help="ISO time (default: now).")
@click.option("--ical", is_flag=True, help="Print the schedule as iCalendar.")
@click.option("--days", default=28, show_default=True, help="How far the iCal export reaches.")
def oncall(schedule_name: str | None, at: str | None, ical: bool, days: int) -> None:
    """Who is on call (every schedule, or one), and the gaps ahead; with the overrides
    added while running (the console's), as the escalation pages."""
    from sentinel.alerting.overrides import effective_schedule
    from sentinel.alerting.schedules import gaps, to_ical, who_is_on_call

    config = _config()
    names = [schedule_name] if schedule_name else list(config.schedules)
    for name in names:
        if name not in config.schedules:
            raise click.ClickException(
                f"no schedule {name!r} (have: {', '.join(config.schedules)})"
            )
    when = _when(at)
    db = _db()
    try:
        with db.session() as s:
            schedules = {name: effective_schedule(config, s, name, when) for name in names}
    finally:
        db.dispose()
    if ical:
        if len(names) != 1:
            raise click.UsageError("--ical needs one SCHEDULE")
        click.echo(to_ical(schedules[names[0]], when, when + timedelta(days=days)), nl=False)
        return
    for name in names:
        found = who_is_on_call(schedules[name], when)
        who = (
            f"{found.person} ({found.layer}) until {found.end:%Y-%m-%d %H:%M} UTC"
            if found
            else "NOBODY"
        )
        click.echo(f"{name}: {who}")
        for start, end in gaps(schedules[name], when, when + timedelta(days=days))[:5]:
            click.echo(f"  gap {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC")


@click.command()
@click.option("--key", required=True, help="One key, one message: later states edit it.")
@click.option("--title", required=True)
@click.option("--text", required=True)
@click.option("--state", required=True)
@click.option("--severity", type=click.Choice(["info", "warning", "critical"]), default="info")
@click.option("--to", "to", multiple=True, help="A person to tell (default: the channels).")
def announce(
    key: str, title: str, text: str, state: str, severity: str, to: tuple[str, ...]
) -> None:
    """Announce through the alert channels (releases, reminders)."""
    from pydantic import ValidationError

    from sentinel.alerting.announcements import Announcement, UnknownRecipient
    from sentinel.alerting.announcements import announce as send

    try:
        item = Announcement(
            key=key,
            title=title,
            text=text,
            state=state,
            severity=severity,
            to=list(to) or None,  # type: ignore[arg-type]
        )
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from exc
    db = _db()
    try:
        made = send(db, item, datetime.now(UTC), _config())
    except UnknownRecipient as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.dispose()
    click.echo(f"{made} notifications queued")


@click.group()
def alerting() -> None:
    """The alerting configuration."""


@alerting.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def alerting_check(path: str | None) -> None:
    """Validate an alerting file (default: SENTINEL_ALERTING or the built-in one)."""
    from sentinel.alerting.config import DEFAULT_CONFIG, load_alerting_config

    target = path or SentinelSettings().alerting or DEFAULT_CONFIG
    try:
        config = load_alerting_config(target)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    for route in config.routes:
        matchers = " ".join(str(m) for m in route.matchers) or "(everything else)"
        click.echo(f"route {route.name:<12} {matchers:<32} → {route.policy}")
    click.echo(
        f"{target}: {len(config.people)} people, {len(config.schedules)} schedules, "
        f"{len(config.policies)} policies, {len(config.routes)} routes, valid"
    )
