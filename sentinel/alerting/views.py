"""HTTP routes of the alerting pipeline: alert groups and what people do to
them, silences, who is on call, announcements, and the signed inbound
callbacks of Twilio (keypad, delivery receipts) and Slack (buttons).

Anything forged (a bad Twilio or Slack signature, a stale Slack timestamp) gets
403 and an audit record, and changes nothing. API callers present a platform
token (``common.identity``): viewers read, responders act, as themselves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator
from sqlalchemy import select

from common.bounds import MAX_SILENCE, DbId, Timestamp, minutes, span_error
from common.http_errors import errors
from common.identity import Responder, Role, Viewer, acting_as, calendar_reader, require
from common.identity.feeds import replace_feed_token
from common.identity.http import store_of
from common.logs import get_logger
from sentinel.alerting import actions, replays
from sentinel.alerting.announcements import Announcement, UnknownRecipient, announce
from sentinel.alerting.channels.signatures import (
    SLACK_SIGNATURE_HEADER,
    SLACK_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    verify_slack,
    verify_twilio,
)
from sentinel.alerting.channels.slack import ACTION_ACKNOWLEDGE, ACTION_RESOLVE, ACTION_SILENCE
from sentinel.alerting.channels.twilio_voice import keypress_action
from sentinel.alerting.messages import text_for
from sentinel.alerting.models import AlertGroup, AuditEvent, GroupState
from sentinel.alerting.models import Silence as SilenceRow
from sentinel.alerting.overrides import effective_schedule, remove_override, stored_overrides
from sentinel.alerting.reactions import call_outcome, find_by_provider_id, sms_outcome
from sentinel.alerting.schedules import feed_url, to_ical, who_is_on_call
from sentinel.models import Alert, DeliveryAttempt, Notification

if TYPE_CHECKING:
    from sentinel.service import Sentinel

log = get_logger("sentinel.http")

SLACK_ACTIONS: dict[str, actions.Action] = {
    ACTION_ACKNOWLEDGE: "acknowledge",
    ACTION_RESOLVE: "resolve",
    ACTION_SILENCE: "silence",
}
# The phone menu's choices, and what the caller hears back.
KEYPAD_ACTIONS: dict[str, tuple[actions.Action, str]] = {
    "acknowledge": ("acknowledge", "Acknowledged. Escalation stopped."),
    "resolve": ("resolve", "Resolved."),
    "silence_30m": ("silence", "Silenced for 30 minutes."),
}


class GroupOut(BaseModel):
    id: int
    route: str
    policy: str
    labels: dict[str, str]
    severity: str
    state: str
    opened_at: datetime
    acked_by: str | None
    acked_at: datetime | None
    resolved_at: datetime | None
    step: int
    repeat: int
    next_escalation_at: datetime | None
    reopened: int
    escalation_paused_at: datetime | None  # muted: the escalation clock stands since then
    hand_resolved_at: datetime | None  # resolved by hand (pages again if it still fires)


class NotificationOut(BaseModel):
    id: int
    key: str
    channel: str
    recipient: str
    person: str | None
    step: int | None
    status: str
    attempts: int
    provider_id: str | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None
    text: str
    history: list[dict[str, Any]] = []


class GroupDetail(GroupOut):
    alerts: list[dict[str, Any]]
    notifications: list[NotificationOut]
    audit: list[dict[str, Any]]


SilenceMinutes = minutes(MAX_SILENCE.total_seconds() / 60)


class ActionIn(BaseModel):
    # The caller's identity; if given, it must name the caller.
    by: str | None = Field(default=None, min_length=1, max_length=128)
    minutes: SilenceMinutes = Field(default=30, description="how long a silence lasts")


class SilenceIn(BaseModel):
    matchers: list[str] = Field(min_length=1, max_length=32)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    duration_minutes: SilenceMinutes | None = None
    created_by: str | None = Field(default=None, min_length=1, max_length=128)
    comment: str = Field(max_length=4000)

    @field_validator("ends_at")
    @classmethod
    def _within_a_silence(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("starts_at")
        if value is not None and start is not None:
            problem = span_error(start, value, MAX_SILENCE)
            if problem:
                raise ValueError(problem)
        return value


class FeedOut(BaseModel):
    """A new calendar feed token, shown this once, and a subscribe URL per schedule."""

    token: str
    hint: str
    urls: dict[str, str]


class SilenceOut(BaseModel):
    id: int
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str


class OverrideOut(BaseModel):
    id: int
    schedule: str
    person: str
    starts_at: datetime
    ends_at: datetime
    reason: str | None
    created_by: str
    created_at: datetime


class RemovedOverrideOut(OverrideOut):
    # "ended": it was in force and now ends at the removal; "deleted": it had not begun
    outcome: Literal["ended", "deleted"]


def alerting_router(sentinel: Sentinel) -> APIRouter:
    router = APIRouter()
    viewer = [Depends(require(Role.viewer))]

    def now() -> datetime:
        return sentinel.clock.now()

    def refuse(kind: str, via: str, request: Request, reason: str) -> HTTPException:
        with sentinel.db.session() as s:
            actions.audit(
                s,
                kind,
                via,
                now(),
                path=request.url.path,
                remote=request.client.host if request.client else None,
                reason=reason,
            )
        log.warning("http.forged", via=via, path=request.url.path, reason=reason)
        return HTTPException(403, reason)

    def run_action(action: actions.Action, group_id: int, by: str, via: str, minutes: float = 30):
        try:
            with sentinel.db.session() as s:
                group = actions.act(s, action, group_id, by, via, now(), minutes)
                return _group_out(group)
        except actions.ActionError as exc:
            raise HTTPException(exc.status, str(exc)) from exc

    # --- groups and actions ---------------------------------------------------

    @router.get("/api/groups", response_model=list[GroupOut], dependencies=viewer)
    def groups(
        state: Annotated[list[GroupState] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[GroupOut]:
        query = select(AlertGroup).order_by(AlertGroup.id.desc()).limit(limit)
        if state:
            query = query.where(AlertGroup.state.in_(state))
        with sentinel.db.session() as s:
            return [_group_out(g) for g in s.scalars(query)]

    @router.get(
        "/api/groups/{group_id}",
        response_model=GroupDetail,
        dependencies=viewer,
        responses=errors(404),
    )
    def group(group_id: DbId) -> GroupDetail:
        with sentinel.db.session() as s:
            g = s.get(AlertGroup, group_id)
            if g is None:
                raise HTTPException(404, f"no alert group {group_id}")
            return _group_detail(s, g)

    @router.post(
        "/api/groups/{group_id}/{action}", response_model=GroupOut, responses=errors(404, 409)
    )
    def group_action(
        group_id: DbId,
        action: Literal["acknowledge", "resolve", "silence"],
        body: ActionIn,
        caller: Responder,
    ) -> GroupOut:
        by = acting_as(caller, body.by, "by")
        return run_action(action, group_id, by, "api", body.minutes)

    @router.post(
        "/api/alerts/{alert_id}/{action}", response_model=GroupOut, responses=errors(404, 409)
    )
    def alert_action(
        alert_id: DbId,
        action: Literal["acknowledge", "resolve", "silence"],
        body: ActionIn,
        caller: Responder,
    ) -> GroupOut:
        by = acting_as(caller, body.by, "by")
        with sentinel.db.session() as s:
            try:
                group_id = actions.group_of_alert(s, alert_id)
            except actions.ActionError as exc:
                raise HTTPException(exc.status, str(exc)) from exc
        return run_action(action, group_id, by, "api", body.minutes)

    # --- silences --------------------------------------------------------------

    @router.get("/api/silences", response_model=list[SilenceOut], dependencies=viewer)
    def silences(active: bool = True) -> list[SilenceOut]:
        query = select(SilenceRow).order_by(SilenceRow.id.desc()).limit(500)
        if active:
            query = query.where(SilenceRow.ends_at > now())
        with sentinel.db.session() as s:
            return [SilenceOut.model_validate(r, from_attributes=True) for r in s.scalars(query)]

    @router.post("/api/silences", response_model=SilenceOut, status_code=201)
    def add_silence(body: SilenceIn, caller: Responder) -> SilenceOut:
        by = acting_as(caller, body.created_by, "created_by")
        start = body.starts_at or now()
        end = body.ends_at or (
            start + timedelta(minutes=body.duration_minutes) if body.duration_minutes else None
        )
        if end is None:
            raise HTTPException(422, "give ends_at or duration_minutes")
        problem = span_error(start, end, MAX_SILENCE)
        if problem:
            field = "ends_at" if body.ends_at else "duration_minutes"
            raise RequestValidationError(
                [{"loc": ("body", field), "msg": problem, "type": "value_error"}]
            )
        try:
            with sentinel.db.session() as s:
                row = actions.add_silence(s, body.matchers, start, end, by, body.comment, now())
                return SilenceOut.model_validate(row, from_attributes=True)
        except actions.ActionError as exc:
            raise HTTPException(exc.status, str(exc)) from exc

    @router.delete("/api/silences/{silence_id}", response_model=SilenceOut, responses=errors(404))
    def expire_silence(silence_id: DbId, caller: Responder, by: str | None = None) -> SilenceOut:
        by = acting_as(caller, by, "by")
        try:
            with sentinel.db.session() as s:
                row = actions.expire_silence(s, silence_id, by, "api", now())
                return SilenceOut.model_validate(row, from_attributes=True)
        except actions.ActionError as exc:
            raise HTTPException(exc.status, str(exc)) from exc

    # --- on call ---------------------------------------------------------------

    @router.get("/api/oncall", dependencies=viewer)
    def on_call(at: Timestamp | None = None) -> list[dict[str, Any]]:
        when = at or now()
        out = []
        with sentinel.db.session() as s:
            scheds = {
                n: effective_schedule(sentinel.alerting, s, n, when)
                for n in sentinel.alerting.schedules
            }
        for name, sched in scheds.items():
            found = who_is_on_call(sched, when)
            out.append(
                {
                    "schedule": name,
                    "at": when,
                    "person": found.person if found else None,
                    "layer": found.layer if found else None,
                    "until": found.end if found else None,
                }
            )
        return out

    @router.get(
        "/api/oncall/{name}.ics",
        response_class=Response,
        dependencies=[Depends(calendar_reader)],
        responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar"}}
        | errors(404),
    )
    def on_call_ical(name: str, days: Annotated[int, Query(ge=1, le=366)] = 28) -> Response:
        if name not in sentinel.alerting.schedules:
            raise HTTPException(404, f"no schedule {name!r}")
        start = now()
        with sentinel.db.session() as s:
            sched = effective_schedule(sentinel.alerting, s, name, start)
        text = to_ical(sched, start, start + timedelta(days=days))
        return Response(text, media_type="text/calendar")

    # --- overrides added while running ----------------------------------------

    @router.get("/api/overrides", response_model=list[OverrideOut], dependencies=viewer)
    def overrides(active: bool = True) -> list[OverrideOut]:
        """Stored overrides, oldest added first; by default those not yet ended."""
        with sentinel.db.session() as s:
            rows = stored_overrides(s, ending_after=now() if active else None)
            return [OverrideOut.model_validate(r, from_attributes=True) for r in rows]

    @router.delete(
        "/api/overrides/{override_id}",
        response_model=RemovedOverrideOut,
        responses=errors(404, 409),
    )
    def delete_override(
        override_id: DbId, caller: Responder, by: str | None = None
    ) -> RemovedOverrideOut:
        by = acting_as(caller, by, "by")
        try:
            with sentinel.db.session() as s:
                row, outcome = remove_override(s, override_id, by, "api", now())
                out = OverrideOut.model_validate(row, from_attributes=True)
        except actions.ActionError as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        return RemovedOverrideOut(**out.model_dump(), outcome=outcome)

    @router.post("/api/oncall/feed", status_code=201, response_model=FeedOut)
    def new_calendar_feed(request: Request, response: Response, caller: Viewer) -> FeedOut:
        """The caller's calendar feed token, made anew (the old one stops working),
        and the URLs a calendar app subscribes to. The token is not shown again."""
        response.headers["Cache-Control"] = "no-store"  # a secret: no cache keeps it
        token = replace_feed_token(store_of(request), caller.name)
        base = sentinel.settings.public_url
        urls = {name: feed_url(base, name, token) for name in sentinel.alerting.schedules}
        return FeedOut(token=token, hint=token[:8], urls=urls)

    # --- announcements ---------------------------------------------------------

    @router.post(
        "/api/announcements", status_code=202, dependencies=[Depends(require(Role.responder))]
    )
    def announcements(body: Announcement) -> dict[str, int]:
        try:
            made = announce(sentinel.db, body, now(), sentinel.alerting)
        except UnknownRecipient as exc:
            raise HTTPException(422, str(exc)) from exc
        if made:
            sentinel.dispatcher.wake()
        return {"notifications": made}

    # --- Twilio and Slack callbacks ----------------------------------------------

    def twilio_form(request: Request, form: dict[str, str]) -> str:
        """Checks the signature; returns the digest that identifies this request."""
        token = sentinel.settings.twilio_auth_token
        # Twilio signs the URL it called: ours as the world sees it, query included.
        url = sentinel.settings.public_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get(TWILIO_SIGNATURE_HEADER)
        if not token or not verify_twilio(token, url, form, signature):
            raise refuse("forged_callback", "twilio", request, "invalid Twilio signature")
        return replays.digest("twilio", url, str(signature))

    def once(via: str, request: Request, key: str, keep_until: datetime) -> None:
        if not replays.first_arrival(sentinel.db, via, key, now(), keep_until):
            raise refuse("replayed_callback", via, request, "this callback was already received")

    @router.post(
        "/api/twilio/voice/{key:path}/keypress",
        response_class=Response,
        responses={200: {"content": {"application/xml": {}}, "description": "TwiML"}} | errors(403),
    )
    async def keypress(key: str, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        seen = twilio_form(request, form)
        action = keypress_action(form.get("Digits"))
        with sentinel.db.session() as s:
            row = s.scalar(select(Notification).where(Notification.key == key))
            group_id, person = (row.group_id, row.person) if row else (None, None)
            sent_at = (row.sent_at or row.created_at) if row else None
        if sent_at is not None and now() - sent_at > replays.KEYPRESS_LIFETIME:
            # Long after any call of this page could have been up: a recording.
            raise refuse("replayed_callback", "twilio", request, "this call has ended")
        once("twilio", request, seen, now() + replays.KEYPRESS_LIFETIME)
        if action is None or group_id is None:
            return _twiml("Sorry, that key does nothing. Goodbye.")
        chosen, words = KEYPAD_ACTIONS[action]
        run_action(chosen, group_id, person or "phone", "phone")
        return _twiml(words)

    @router.post("/api/twilio/status", status_code=204, responses=errors(403))
    async def twilio_status(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        once("twilio", request, twilio_form(request, form), now() + replays.RECEIPT_LIFETIME)
        sid = form.get("MessageSid") or form.get("CallSid") or ""
        with sentinel.db.session() as s:
            row = find_by_provider_id(s, sid) if sid else None
            if row is None:
                log.warning("twilio.unknown_callback", sid=sid)
                return Response(status_code=204)
            if "CallStatus" in form:
                outcome = call_outcome(form["CallStatus"], form.get("AnsweredBy"))
            else:
                outcome = sms_outcome(form.get("MessageStatus") or form.get("SmsStatus") or "")
            sentinel.reactions.on_callback(s, row, outcome, now())
        sentinel.dispatcher.wake()  # a failed page may have queued its fallback
        return Response(status_code=204)

    @router.post("/api/slack/interactions", responses=errors(400, 403))
    async def slack_interactions(request: Request) -> dict[str, Any]:
        body = await request.body()
        secret = sentinel.settings.slack_signing_secret
        ok = bool(secret) and verify_slack(
            str(secret), body, dict(request.headers), now().timestamp()
        )
        if not ok:
            raise refuse("forged_callback", "slack", request, "invalid Slack signature")
        # Verified above: the timestamp is an integer within the window.
        stamp = datetime.fromtimestamp(int(request.headers[SLACK_TIMESTAMP_HEADER]), UTC)
        signature = request.headers[SLACK_SIGNATURE_HEADER]
        once(
            "slack",
            request,
            replays.digest("slack", signature),
            max(stamp, now()) + replays.SLACK_WINDOW,
        )
        form = await request.form()
        try:
            payload = json.loads(str(form.get("payload", "")))
            pressed = payload["actions"][0]
            value = json.loads(pressed["value"])
            group_id = int(str(value["fingerprint"]).removeprefix("group:"))
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise HTTPException(400, f"not a Slack button press of ours: {exc}") from exc
        action = SLACK_ACTIONS.get(pressed.get("action_id", ""))
        if action is None:
            return {"ok": True}  # a link button: nothing to do
        user = payload.get("user") or {}
        by = _person_by_slack(sentinel, user.get("id")) or user.get("username") or "slack"
        group = run_action(action, group_id, by, "slack")
        return {"ok": True, "group": group.id, "state": group.state}

    return router


def _group_out(g: AlertGroup) -> GroupOut:
    return GroupOut.model_validate(g, from_attributes=True)


def _group_detail(s: Any, g: AlertGroup) -> GroupDetail:
    alerts = s.scalars(select(Alert).where(Alert.group_id == g.id).order_by(Alert.id)).all()
    notes = s.scalars(
        select(Notification).where(Notification.group_id == g.id).order_by(Notification.id)
    ).all()
    ids = [n.id for n in notes]
    history: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for a in s.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.notification_id.in_(ids))
            .order_by(DeliveryAttempt.id)
        ):
            history.setdefault(a.notification_id, []).append(
                {"at": a.at, "source": a.source, "status": a.status, "ok": a.ok, "error": a.error}
            )
    audit = s.scalars(
        select(AuditEvent).where(AuditEvent.group_id == g.id).order_by(AuditEvent.id)
    ).all()
    return GroupDetail(
        **_group_out(g).model_dump(),
        alerts=[
            {
                "id": a.id,
                "signal": a.signal,
                "labels": a.labels,
                "state": a.state.value,
                "summary": a.summary,
            }
            for a in alerts
        ],
        notifications=[
            NotificationOut(
                **{
                    k: getattr(n, k)
                    for k in NotificationOut.model_fields
                    if k not in ("text", "history", "status")
                },
                status=n.status.value,
                text=text_for(n.channel, n.payload),
                history=history.get(n.id, []),
            )
            for n in notes
        ],
        audit=[
            {"at": e.at, "kind": e.kind, "actor": e.actor, "via": e.via, "detail": e.detail}
            for e in audit
        ],
    )


def _person_by_slack(sentinel: Sentinel, slack_id: str | None) -> str | None:
    if not slack_id:
        return None
    return next((pid for pid, p in sentinel.alerting.people.items() if p.slack == slack_id), None)


def _twiml(words: str) -> Response:
    from twilio.twiml.voice_response import VoiceResponse

    response = VoiceResponse()
    response.say(words)
    response.hangup()
    return Response(str(response), media_type="application/xml")
