"""The web form: server-rendered HTML (Jinja2), usable without JavaScript.
Every change is a plain HTML form POST answered by a redirect (303) on success
or by the same page with each error next to its field (422/409) on refusal, so
what a person typed is never lost.

Pages ask for a platform token once (``/login``) and keep it in a cookie: a
viewer's reads the pages, a responder's (or higher) changes incidents; changes
are recorded under the token's account."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError

from common.bounds import MAX_DB_ID, DbId
from common.identity import Principal, Role, identify, parse_bearer
from common.logs import get_logger
from postmortems import lessons, markdown, reports
from postmortems.forms import (
    NARRATIVE_FIELDS,
    FieldError,
    PostmortemForm,
    form_from_fields,
)
from postmortems.forms import errors_of as _errors_of
from postmortems.forms import parse_local_time as _parse_time
from postmortems.models import (
    CLASS_TITLES,
    ActionCategory,
    ActionKind,
    ActionStatus,
    IncidentClass,
    IncidentStatus,
    Severity,
)
from postmortems.schemas import (
    ActionIn,
    ActionPatch,
    IncidentDetail,
    IncidentIn,
    IncidentPatch,
    TimelineIn,
    TransitionIn,
)
from postmortems.service import Invalid, NotFound, Postmortems, form_of

log = get_logger(__name__)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["duration"] = markdown.duration
TEMPLATES.env.filters["at"] = lambda v: v.strftime("%Y-%m-%d %H:%M UTC") if v else "—"
TEMPLATES.env.filters["local_input"] = lambda v: v.strftime("%Y-%m-%dT%H:%M") if v else ""
COOKIE = "postmortem_token"


def web_router(service: Postmortems) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def caller(request: Request) -> Principal | None:
        """The signed-in cookie's account, or a bearer token's (scripts, tests)."""
        header = request.headers.get("authorization")
        token = request.cookies.get(COOKIE) or (parse_bearer(header) if header else None)
        return identify(request, token)

    def authorized(request: Request) -> bool:
        """A page needs a viewer's token; a form post, a responder's."""
        found = caller(request)
        needed = Role.viewer if request.method == "GET" else Role.responder
        return found is not None and found.may(needed)

    def login_redirect(request: Request) -> Response:
        found = request.state.identity_principal
        if found is not None:  # signed in, but the role does not allow it
            return PlainTextResponse(
                f"{found.name} is a {found.role.value}: changing incidents needs a responder",
                status_code=403,
            )
        return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)

    def actor(request: Request) -> str:
        found = request.state.identity_principal
        return found.name if found is not None else "web"

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("errors", {})
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {
                "severities": [s.value for s in Severity],
                "classes": [(c.value, CLASS_TITLES[c]) for c in IncidentClass],
                "action_kinds": [k.value for k in ActionKind],
                "action_categories": [c.value for c in ActionCategory],
                "action_statuses": [s.value for s in ActionStatus],
                "narrative": NARRATIVE_FIELDS,
                "class_titles": {c.value: t for c, t in CLASS_TITLES.items()},
                "now": service.clock.now(),
                **context,
            },
            status_code=status,
        )

    def incident_page(
        request: Request,
        incident: IncidentDetail,
        status: int = 200,
        form: PostmortemForm | None = None,
        form_errors: list[FieldError] | None = None,
        action_errors: list[FieldError] | None = None,
        action_values: dict[str, str] | None = None,
        close_errors: list[FieldError] | None = None,
        notice: str | None = None,
        edit_errors: list[FieldError] | None = None,
        edit_values: dict[str, str] | None = None,
    ) -> HTMLResponse:
        form = form or form_of(incident)
        errors = {e.field: e.message for e in form_errors or []}
        return page(
            request,
            "incident.html",
            status,
            incident=incident,
            form=form,
            dos="\n".join(lesson.text for lesson in form.lessons if lesson.kind == "do"),
            donts="\n".join(lesson.text for lesson in form.lessons if lesson.kind == "dont"),
            errors=errors,
            action_errors={e.field: e.message for e in action_errors or []},
            action_values=action_values or {},
            close_errors=close_errors or [],
            edit_errors={e.field: e.message for e in edit_errors or []},
            edit_values=edit_values or {},
            notice=notice or request.query_params.get("notice"),
            detector_rule=Postmortems.detector_rule_applies(incident),
        )

    @r.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/incidents", status_code=303)

    @r.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/incidents") -> HTMLResponse:  # noqa: A002
        return page(request, "login.html", next=next)

    @r.post("/login")
    async def login(request: Request) -> Response:
        data = await request.form()
        target = str(data.get("next") or "/incidents")
        if not target.startswith("/") or target.startswith("//"):  # no open redirect
            target = "/incidents"
        token = str(data.get("token") or "").strip()
        if identify(request, token) is None:
            return page(request, "login.html", 403, next=target, errors={"token": "wrong token"})
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    @r.get("/incidents", response_class=HTMLResponse)
    def incident_list(request: Request, open: bool = False) -> Response:  # noqa: A002
        if not authorized(request):
            return login_redirect(request)
        items = service.list(open_only=open)
        return page(request, "incidents.html", incidents=items, open_only=open)

    @r.get("/incidents/new", response_class=HTMLResponse)
    def new_form(request: Request) -> Response:
        if not authorized(request):
            return login_redirect(request)
        return page(request, "new.html", values={"severity": "P2"})

    @r.post("/incidents/new")
    async def create(request: Request) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = {k: str(v) for k, v in (await request.form()).items()}
        try:
            incoming = IncidentIn(
                title=data.get("title", ""),
                severity=data.get("severity", ""),
                service=data.get("service", ""),
                incident_class=data.get("incident_class") or "unclassified",
                class_reason=data.get("class_reason") or None,
                on_call=data.get("on_call") or None,
                lead=data.get("lead") or actor(request),
                started_at=_parse_time(data.get("started_at")),
                detected_at=_parse_time(data.get("detected_at")),
                release_id=data.get("release_id") or None,
                source="web",
                attach=False,  # a person opening one means a new incident
            )
        except (ValidationError, ValueError) as exc:
            errors = (
                _errors_of(exc)
                if isinstance(exc, ValidationError)
                else [FieldError(field="form", message=str(exc))]
            )
            return page(
                request,
                "new.html",
                422,
                values=data,
                errors={e.field: e.message for e in errors},
            )
        result = service.open(incoming, actor=actor(request))
        return RedirectResponse(f"/incidents/{result.incident.id}", status_code=303)

    @r.get("/incidents/{incident_id}", response_class=HTMLResponse)
    def show(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        try:
            incident = service.detail(incident_id)
        except NotFound:
            return page(request, "missing.html", 404, what=f"incident {incident_id}")
        return incident_page(request, incident)

    @r.get("/incidents/{incident_id}/export.md")
    def export(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        text = markdown.render(service.detail(incident_id))
        return PlainTextResponse(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.md"'},
        )

    @r.post("/incidents/{incident_id}/status")
    async def change_status(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = await request.form()
        change = str(data.get("change") or "")
        try:
            if change == "acknowledge":
                service.transition(incident_id, TransitionIn(acknowledge=True), actor(request))
            else:
                service.transition(
                    incident_id, TransitionIn(status=IncidentStatus(change)), actor(request)
                )
        except (Invalid, ValueError) as exc:
            errors = exc.errors if isinstance(exc, Invalid) else []
            return incident_page(
                request, service.detail(incident_id), 409, close_errors=errors, notice=str(exc)
            )
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    @r.post("/incidents/{incident_id}/edit")
    async def edit(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = {k: str(v) for k, v in (await request.form()).items()}
        title = data.get("title", "").strip()
        try:
            # The form always sends the title: only a changed one is an edit.
            current = service.detail(incident_id).title
            given = {
                "title": title if title and title != current else None,
                "incident_class": data.get("incident_class") or None,
                "class_reason": data.get("class_reason") or None,
                "severity": data.get("severity") or None,
                "lead": data.get("lead") or None,
                "on_call": data.get("on_call") or None,
            }
            # An empty form field leaves the value as it is (a null would clear it).
            patch = IncidentPatch(**{k: v for k, v in given.items() if v is not None})
            service.update(incident_id, patch, actor(request))
        except (ValidationError, Invalid) as exc:
            errors = _errors_of(exc) if isinstance(exc, ValidationError) else exc.errors
            return incident_page(
                request, service.detail(incident_id), 422, edit_errors=errors, edit_values=data
            )
        return RedirectResponse(f"/incidents/{incident_id}", status_code=303)

    @r.post("/incidents/{incident_id}/postmortem")
    async def save_postmortem(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = {k: str(v) for k, v in (await request.form()).items()}
        draft = data.get("action") == "draft"
        try:
            form = form_from_fields(data)
        except ValidationError as exc:
            return incident_page(
                request, service.detail(incident_id), 422, form_errors=_errors_of(exc)
            )
        try:
            service.save_postmortem(incident_id, form, actor(request), draft=draft)
        except Invalid as exc:
            # Keep what was typed as a draft: refused is not lost.
            with contextlib.suppress(Invalid):
                service.save_postmortem(incident_id, form, actor(request), draft=True)
            return incident_page(
                request, service.detail(incident_id), 422, form=form, form_errors=exc.errors
            )
        notice = "Draft saved" if draft else "Postmortem saved"
        return RedirectResponse(
            f"/incidents/{incident_id}?notice={quote(notice)}#postmortem", status_code=303
        )

    @r.post("/incidents/{incident_id}/actions")
    async def add_action(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = {k: str(v) for k, v in (await request.form()).items()}
        try:
            action = ActionIn(
                title=data.get("title", ""),
                kind=data.get("kind", ""),
                owner=data.get("owner", ""),
                due_date=data.get("due_date") or "",
                category=data.get("category") or None,
                signal=data.get("signal") or None,
                series=data.get("series") or None,
            )
            service.add_action(incident_id, action, actor(request))
        except (ValidationError, Invalid) as exc:
            errors = _errors_of(exc) if isinstance(exc, ValidationError) else exc.errors
            return incident_page(
                request,
                service.detail(incident_id),
                422,
                action_errors=errors,
                action_values=data,
            )
        return RedirectResponse(f"/incidents/{incident_id}#actions", status_code=303)

    @r.post("/actions/{action_id}/status")
    async def action_status(request: Request, action_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = await request.form()
        try:
            status = ActionStatus(str(data.get("status")))
        except ValueError:
            choices = ", ".join(s.value for s in ActionStatus)
            return PlainTextResponse(f"status: one of {choices}", status_code=422)
        updated = service.update_action(action_id, ActionPatch(status=status), actor(request))
        return RedirectResponse(f"/incidents/{updated.incident_id}#actions", status_code=303)

    @r.post("/incidents/{incident_id}/timeline")
    async def add_timeline(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = {k: str(v) for k, v in (await request.form()).items()}
        if data.get("action") == "draft":
            try:
                service.draft_timeline(incident_id, actor(request))
            except Exception as exc:  # noqa: BLE001 - shown on the page
                # The page names the failure; its text (SQL, URLs) goes to the log only.
                log.exception("timeline.draft_failed", incident_id=incident_id)
                return incident_page(
                    request,
                    service.detail(incident_id),
                    502,
                    notice=f"Drafting the timeline failed ({type(exc).__name__}); see the log",
                )
            return RedirectResponse(f"/incidents/{incident_id}#timeline", status_code=303)
        try:
            at = _parse_time(data.get("at")) or service.clock.now()
            service.add_timeline_entry(
                incident_id, TimelineIn(at=at, text=data.get("text", "")), actor(request)
            )
        except (ValidationError, ValueError) as exc:
            return incident_page(
                request,
                service.detail(incident_id),
                422,
                notice=f"Timeline entry refused: {exc}",
            )
        return RedirectResponse(f"/incidents/{incident_id}#timeline", status_code=303)

    @r.post("/incidents/{incident_id}/alerts")
    async def link_alerts(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        data = await request.form()
        raw = str(data.get("alert_ids") or "").replace(",", " ").split()
        try:
            ids = [int(v) for v in raw]
            if any(not 1 <= i <= MAX_DB_ID for i in ids):
                raise ValueError("out of range")
            service.link_alerts(incident_id, ids, actor(request))
        except (ValueError, Invalid) as exc:
            message = (
                "; ".join(e.message for e in exc.errors)
                if isinstance(exc, Invalid)
                else (f"alert ids are numbers: {' '.join(raw)}")
            )
            return incident_page(
                request, service.detail(incident_id), 422, notice=f"Alerts not linked: {message}"
            )
        return RedirectResponse(f"/incidents/{incident_id}#timeline", status_code=303)

    @r.post("/incidents/{incident_id}/close")
    def close(request: Request, incident_id: DbId) -> Response:
        if not authorized(request):
            return login_redirect(request)
        try:
            service.close(incident_id, actor(request))
        except Invalid as exc:
            incident = service.detail(incident_id)
            form_fields = set(NARRATIVE_FIELDS) | {"release_id", "rolled_back_at", "dependency"}
            return incident_page(
                request,
                incident,
                409,
                form_errors=[e for e in exc.errors if e.field in form_fields],
                close_errors=exc.errors,
            )
        return RedirectResponse(
            f"/incidents/{incident_id}?notice={quote('Incident closed')}", status_code=303
        )

    @r.get("/lessons", response_class=HTMLResponse)
    def lesson_registry(
        request: Request, q: str | None = None, kind: str | None = None
    ) -> Response:
        if not authorized(request):
            return login_redirect(request)
        found = lessons.search(service.db, q, kind=kind or None)
        return page(request, "lessons.html", lessons=found, q=q or "", kind=kind or "")

    @r.get("/reports", response_class=HTMLResponse)
    def report_page(
        request: Request,
        start: date | None = None,
        end: date | None = None,
        service_name: str | None = None,
    ) -> Response:
        if not authorized(request):
            return login_redirect(request)
        today = service.clock.now().date()
        end = end or today + timedelta(days=1)
        start = start or end - timedelta(days=30)
        report = reports.build(
            service,
            datetime.combine(start, datetime.min.time(), UTC),
            datetime.combine(end, datetime.min.time(), UTC),
            service=service_name or None,
        )
        return page(request, "report.html", report=report, start=start, end=end)

    return r
