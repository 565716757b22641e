"""The console's incident pages and reports: the list of incidents, each incident with
its timeline, the charts of its signals over its window, the pages sent for it, the
suspect release and its postmortem (written here by a responder, audited "via
console"), the lessons registry, and the reports. Postmortems is read and written
through its service's public functions only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import Engine

from common.identity import Principal, Role
from common.logs import get_logger
from dashboards.console import reports as console_reports
from dashboards.console.auth import needs
from dashboards.console.incident_view import build_view
from dashboards.console.readers import SentinelReader
from dashboards.console.releases import ReleaseReader
from postmortems import lessons, markdown
from postmortems.action_list import overdue_count
from postmortems.forms import (
    NARRATIVE_FIELDS,
    FieldError,
    PostmortemForm,
    errors_of,
    parse_local_time,
)
from postmortems.forms import form_from_fields as postmortem_form
from postmortems.models import CLASS_TITLES, IncidentStatus
from postmortems.schemas import IncidentDetail, TimelineIn, TransitionIn
from postmortems.service import Conflict, Invalid, NotFound, Postmortems, form_of

log = get_logger(__name__)
Page = Callable[..., HTMLResponse]
RELEASE_FIELDS = ("bad_release", "bad_release_load", "broken_functionality")
REPORT_WEEKS = 8  # the incident report's default period


def span(seconds: float | None) -> str:
    """A duration to the second: '1 h 02 min 05 s', '4 min 12 s', '2 d 03 h 00 min 09 s'."""
    if seconds is None:
        return "—"
    total = round(seconds)
    sign, total = ("-" if total < 0 else ""), abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours:02d} h {minutes:02d} min {secs:02d} s"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min {secs:02d} s"
    return f"{sign}{minutes} min {secs:02d} s" if minutes else f"{sign}{secs} s"


def register_incidents(
    app: FastAPI,
    templates: Jinja2Templates,
    page: Page,
    *,
    sentinel: SentinelReader,
    gate: ReleaseReader | None,
    postmortems: Postmortems | None,
    translator_db: Engine | None,
    clock: Callable[[], datetime],
    postmortems_url: str | None = None,
) -> None:
    """Add the incident and report pages to the console. Without postmortems' service
    the pages say what to configure; the reports show what is configured."""
    templates.env.filters["span"] = span
    templates.env.globals["console_incidents"] = postmortems is not None
    viewer = Depends(needs(Role.viewer))
    responder = Depends(needs(Role.responder))

    def service() -> Postmortems:
        if postmortems is None:
            raise HTTPException(404, "postmortems' database is not configured")
        return postmortems

    def incident_page(
        request: Request,
        incident: IncidentDetail,
        status: int = 200,
        form: PostmortemForm | None = None,
        errors: list[FieldError] | None = None,
        notice: str | None = None,
        problems: list[FieldError] | None = None,
    ) -> HTMLResponse:
        form = form or form_of(incident)
        return page(
            request,
            "incident.html",
            status,
            i=incident,
            view=build_view(incident, sentinel, gate, clock()),
            form=form,
            dos="\n".join(x.text for x in form.lessons if x.kind == "do"),
            donts="\n".join(x.text for x in form.lessons if x.kind == "dont"),
            errors={e.field: e.message for e in errors or []},
            narrative=NARRATIVE_FIELDS,
            release_fields=RELEASE_FIELDS,
            class_title=CLASS_TITLES,
            notice=notice or request.query_params.get("notice"),
            postmortems_url=postmortems_url,
            can_edit=_may_edit(request),
            problems=problems,
            overdue=overdue_count(incident.actions, clock().date()),
        )

    @app.get("/incidents", response_class=HTMLResponse, dependencies=[viewer])
    def incident_list(request: Request, open: bool = False) -> HTMLResponse:  # noqa: A002
        found = postmortems.list(open_only=open) if postmortems is not None else None
        return page(
            request, "incidents.html", incidents=found, open_only=open, class_title=CLASS_TITLES
        )

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse, dependencies=[viewer])
    def incident(
        request: Request, incident_id: int = PathParam(ge=1, le=2**63 - 1)
    ) -> HTMLResponse:
        try:
            found = service().detail(incident_id)
        except NotFound:
            raise HTTPException(404, f"no incident {incident_id}") from None
        return incident_page(request, found)

    @app.get("/incidents/{incident_id}/export.md", dependencies=[viewer])
    def export(incident_id: int = PathParam(ge=1, le=2**63 - 1)) -> Response:
        try:
            text = markdown.render(service().detail(incident_id))
        except NotFound:
            raise HTTPException(404, f"no incident {incident_id}") from None
        return PlainTextResponse(
            text,
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.md"'},
        )

    @app.post("/incidents/{incident_id}/postmortem")
    async def save_postmortem(
        request: Request,
        incident_id: int = PathParam(ge=1, le=2**63 - 1),
        caller: Principal = responder,
    ) -> Response:
        """The postmortem written by the signed-in responder, recorded and audited under
        their account "via console". A form with a field missing is kept as a draft and
        shown again with each problem beside its field (422)."""
        pm = service()
        fields = {k: str(v) for k, v in (await request.form()).items()}
        draft = fields.get("action") == "draft"
        try:
            current = pm.detail(incident_id)
        except NotFound:
            raise HTTPException(404, f"no incident {incident_id}") from None
        try:
            form = postmortem_form(fields)
        except ValidationError as exc:
            return incident_page(request, current, 422, errors=errors_of(exc))
        try:
            pm.save_postmortem(incident_id, form, caller.name, draft=draft, via="console")
        except Conflict as exc:
            return incident_page(request, current, 409, form=form, notice=str(exc))
        except Invalid as exc:
            with contextlib.suppress(Invalid):  # refused is not lost: kept as a draft
                pm.save_postmortem(incident_id, form, caller.name, draft=True, via="console")
            return incident_page(request, pm.detail(incident_id), 422, form=form, errors=exc.errors)
        log.info("console.postmortem_saved", incident_id=incident_id, by=caller.name, draft=draft)
        notice = "Draft saved" if draft else "Postmortem saved"
        return RedirectResponse(
            f"/incidents/{incident_id}?notice={quote(notice)}#postmortem", status_code=303
        )

    @app.post("/incidents/{incident_id}/status")
    def change_status(
        request: Request,
        change: Annotated[Literal["acknowledge", "mitigated", "resolved", "open"], Form()],
        incident_id: int = PathParam(ge=1, le=2**63 - 1),
        caller: Principal = responder,
    ) -> Response:
        """Acknowledge, mitigate, resolve or reopen as the signed-in responder (audited
        "via console"); the timeline says who did it."""
        transition = (
            TransitionIn(acknowledge=True)
            if change == "acknowledge"
            else TransitionIn(status=IncidentStatus(change))
        )
        return _act(
            request,
            incident_id,
            lambda pm: pm.transition(incident_id, transition, caller.name, via="console"),
            f"{change} by {caller.name}",
        )

    @app.post("/incidents/{incident_id}/timeline")
    def add_note(
        request: Request,
        text: Annotated[str, Form(min_length=1, max_length=10000)],
        incident_id: int = PathParam(ge=1, le=2**63 - 1),
        at: Annotated[str, Form(max_length=40)] = "",
        caller: Principal = responder,
    ) -> Response:
        """A timeline entry written by the signed-in responder: at a given moment (UTC,
        to the second), or now."""
        try:
            entry = TimelineIn(at=parse_local_time(at) or clock(), text=text.strip())
        except ValueError as exc:  # pydantic's ValidationError is one too
            raise HTTPException(422, f"timeline entry refused: {exc}") from None
        return _act(
            request,
            incident_id,
            lambda pm: pm.add_timeline_entry(incident_id, entry, caller.name, via="console"),
            "Timeline entry added",
            anchor="timeline",
        )

    @app.post("/incidents/{incident_id}/close")
    def close(
        request: Request,
        incident_id: int = PathParam(ge=1, le=2**63 - 1),
        caller: Principal = responder,
    ) -> Response:
        """Close: only when the postmortem is complete and the actions it owes exist;
        otherwise 409 with what still stands in the way."""
        return _act(
            request,
            incident_id,
            lambda pm: pm.close(incident_id, caller.name, via="console"),
            "Incident closed",
        )

    def _act(
        request: Request,
        incident_id: int,
        do: Callable[[Postmortems], Any],
        notice: str,
        anchor: str = "summary",
    ) -> Response:
        """Run one change through postmortems' service and come back to the incident:
        404 for no such incident, 409 with the reason when the service refuses."""
        pm = service()
        try:
            do(pm)
        except NotFound:
            raise HTTPException(404, f"no incident {incident_id}") from None
        except Invalid as exc:
            found = pm.detail(incident_id)
            return incident_page(request, found, 409, notice=str(exc), problems=exc.errors)
        log.info("console.incident_changed", incident_id=incident_id, change=notice)
        return RedirectResponse(
            f"/incidents/{incident_id}?notice={quote(notice)}#{anchor}", status_code=303
        )

    @app.get("/lessons", response_class=HTMLResponse, dependencies=[viewer])
    def lesson_registry(
        request: Request,
        q: str = Query("", max_length=200),
        kind: str = Query("", pattern="^(do|dont|)$"),
    ) -> HTMLResponse:
        found = lessons.search(service().db, q or None, kind=kind or None)
        return page(request, "lessons.html", lessons=found, q=q, kind=kind)

    @app.get("/reports", response_class=HTMLResponse, dependencies=[viewer])
    def report_page(
        request: Request,
        start: date | None = None,
        end: date | None = None,
        day: date | None = None,
        service_name: str | None = Query(None, max_length=128),
    ) -> HTMLResponse:
        """Postmortems' incident report over [start, end) by week, and the translator's
        figures of one day and of the week ending on it (seed 000 §9)."""
        today = clock().date()
        end = end or today + timedelta(days=1)
        start = start or end - timedelta(weeks=REPORT_WEEKS)
        if not start < end or (end - start).days > console_reports.MAX_DAYS:
            raise HTTPException(
                422,
                f"the period must end after it starts and span at most "
                f"{console_reports.MAX_DAYS} days: {start} to {end}",
            )
        day = day or today
        report = chart = None
        if postmortems is not None:
            report = console_reports.incident_report(postmortems, start, end, service_name or None)
            chart = console_reports.weekly_chart(report, start, end)
        figures = files = None
        if translator_db is not None:
            figures = console_reports.translator_figures(translator_db, day)
            if figures.weekly is not None:
                files = console_reports.files_chart(figures.weekly)
        return page(
            request,
            "reports.html",
            report=report,
            chart=chart,
            figures=figures,
            files=files,
            start=start,
            end=end,
            day=day,
            service_name=service_name or "",
            class_title={c.value: t for c, t in CLASS_TITLES.items()},
        )


def _may_edit(request: Request) -> bool:
    """Whether to offer the form: a viewer sees the postmortem, a responder writes it."""
    user: Principal | None = getattr(request.state, "identity_principal", None)
    return user is not None and user.may(Role.responder)
