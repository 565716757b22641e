"""The on-call page: who is on call now and next, each schedule's layers and a calendar
of the coming weeks in its own zone (overrides marked), the overrides added here, the
silences and maintenance windows; a responder's form to add an override, the
sentinel's own `add_override` (stored, audited "via console", and paging from then on),
and a button to remove one, its `remove_override` (one in force ends now); and
anyone's calendar feed: a token in the URL a calendar app subscribes to."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from common.bounds import EARLIEST, LATEST
from common.identity import IdentityStore, Principal, Role
from common.identity.feeds import replace_feed_token
from dashboards.console.auth import needs
from dashboards.console.readers import SentinelReader
from sentinel.alerting.actions import ActionError
from sentinel.alerting.overrides import OverrideError, add_override, remove_override
from sentinel.alerting.schedules import Shift, feed_url, local_to_utc, zone_info

VIA = "console"
Page = Callable[..., HTMLResponse]


@dataclass
class Entry:
    """One stretch of a day in the calendar: who, from when to when (local HH:MM)."""

    person: str
    start: str
    end: str
    layer: str
    override: bool


@dataclass
class Day:
    day: date
    past: bool
    today: bool
    entries: list[Entry] = field(default_factory=list)


@dataclass
class Calendar:
    schedule: str
    time_zone: str
    layers: list[Any]  # the schedule's Layer models, bottom first
    weeks: list[list[Day]]


def calendar(
    schedule: str, zone: str, layers: list[Any], found: list[Shift], now: datetime, weeks: int
) -> Calendar:
    """The shifts of `found` cut into local days, Monday first, from the Monday of the
    week holding `now` (in the schedule's zone)."""
    tz = zone_info(zone)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=today.weekday())
    rows: list[list[Day]] = []
    for w in range(weeks):
        week = []
        for d in range(7):
            day = first + timedelta(days=7 * w + d)
            lo = local_to_utc(datetime(day.year, day.month, day.day), tz)
            nxt = day + timedelta(days=1)
            hi = local_to_utc(datetime(nxt.year, nxt.month, nxt.day), tz)
            cell = Day(day, day < today, day == today)
            for s in found:
                a, b = max(s.start, lo), min(s.end, hi)
                if a < b:
                    cell.entries.append(
                        Entry(
                            s.person,
                            a.astimezone(tz).strftime("%H:%M"),
                            "24:00" if b == hi else b.astimezone(tz).strftime("%H:%M"),
                            s.layer,
                            s.override,
                        )
                    )
            week.append(cell)
        rows.append(week)
    return Calendar(schedule, zone, layers, rows)


def parse_local(text: str, zone: str, what: str) -> datetime:
    """A `datetime-local` field (YYYY-MM-DDTHH:MM) read in the schedule's zone."""
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OverrideError(
            f"{what}: give a date and time like 2026-03-07T09:00, not {text!r}"
        ) from None
    if not EARLIEST.replace(tzinfo=None) < naive.replace(tzinfo=None) < LATEST.replace(tzinfo=None):
        raise OverrideError(f"{what}: give a time between {EARLIEST:%Y} and {LATEST:%Y}")
    if naive.tzinfo is not None:
        return naive
    return local_to_utc(naive, zone_info(zone))


def register_oncall(
    app: FastAPI,
    reader: SentinelReader,
    page: Page,
    clock: Callable[[], datetime],
    identity: IdentityStore,
    sentinel_url: str,
) -> None:
    viewer = Depends(needs(Role.viewer))
    responder = Depends(needs(Role.responder))

    def show(request: Request, days: int, status: int = 200, **extra: Any) -> HTMLResponse:
        now = clock()
        weeks = max(1, math.ceil(days / 7))
        calendars = []
        for rota in reader.rotas(now - timedelta(days=7), 7 * (weeks + 1)):
            sched = reader.schedule(rota.schedule)
            calendars.append(
                calendar(rota.schedule, rota.time_zone, sched.layers, rota.shifts, now, weeks)
            )
        alerting = reader.alerting
        return page(
            request,
            "oncall.html",
            status,
            days=days,
            on_call=reader.on_call(now),
            calendars=calendars,
            rotas=reader.rotas(now, days),
            overrides=reader.stored_overrides(now),
            silences=reader.silences(now),
            windows=reader.maintenance_windows(),
            schedules=list(alerting.schedules) if alerting else [],
            people=sorted(alerting.people) if alerting else [],
            added=request.query_params.get("added"),
            removed=request.query_params.get("removed"),
            outcome=request.query_params.get("outcome"),
            **extra,
        )

    @app.get("/oncall", response_class=HTMLResponse, dependencies=[viewer])
    def oncall(request: Request, days: int = Query(14, ge=1, le=92)) -> HTMLResponse:
        return show(request, days)

    @app.post("/oncall/feed", response_class=HTMLResponse)
    def calendar_feed(request: Request, caller: Principal = viewer) -> HTMLResponse:
        """The caller's calendar feed, made anew (an old one stops working): its URLs
        are on this answer only, never in a link or a redirect."""
        token = replace_feed_token(identity, caller.name)
        schedules = list(reader.alerting.schedules) if reader.alerting else []
        urls = {name: feed_url(sentinel_url, name, token) for name in schedules}
        response = show(request, 14, feed_urls=urls)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.post("/oncall/overrides", response_model=None)
    def add(
        request: Request,
        schedule: str = Form(""),
        person: str = Form(""),
        start: str = Form(""),
        end: str = Form(""),
        reason: str = Form(""),
        caller: Principal = responder,
    ) -> Response:
        """Put someone on call for a while, above the schedule's layers."""
        typed = dict(schedule=schedule, person=person, start=start, end=end, reason=reason)
        try:
            if reader.alerting is None:
                raise OverrideError("no on-call schedules are configured (CONSOLE_ALERTING)")
            if schedule not in reader.alerting.schedules:
                raise OverrideError(f"choose a schedule (got {schedule!r})")
            zone = reader.schedule(schedule).time_zone
            starts_at = parse_local(start, zone, "Start")
            ends_at = parse_local(end, zone, "End")
            if len(reason) > 500:
                raise OverrideError("the reason is longer than 500 characters")
            with reader.db.session() as s:
                row = add_override(
                    s,
                    reader.alerting,
                    schedule,
                    person.strip(),
                    starts_at,
                    ends_at,
                    by=caller.name,
                    via=VIA,
                    now=clock(),
                    reason=reason,
                )
                added = row.id
        except OverrideError as exc:
            return show(request, 14, 400, error=str(exc), typed=typed)
        return RedirectResponse(f"/oncall?added={added}#overrides", status_code=303)

    @app.post("/oncall/overrides/{override_id}/remove", response_model=None)
    def remove(
        request: Request,
        override_id: int = PathParam(ge=1, le=2**63 - 1),
        caller: Principal = responder,
    ) -> Response:
        """Take an override off: one in force ends now, one to come is deleted."""
        try:
            with reader.db.session() as s:
                _, outcome = remove_override(s, override_id, caller.name, VIA, clock())
        except ActionError as exc:
            return show(request, 14, exc.status, remove_error=str(exc))
        return RedirectResponse(
            f"/oncall?removed={override_id}&outcome={outcome}#overrides", status_code=303
        )
