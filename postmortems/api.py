"""The postmortems' HTTP API (the release gate relies on ``/api/incidents``:
keep it stable) and, mounted beside it, the server-rendered web form.

Errors answer ``{"detail": ..., "errors": [{"field", "message"}, ...]}``: 422
for a form or request that fails validation (every failing field named), 409
when the incident's or the action's state refuses the change (closing before
it is complete, replaying an action linked to no signal),
404 for what does not exist, 401 without a valid platform token and 403 with
one whose role is too low (viewers read, responders change)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from common.api_docs import serve_docs_offline
from common.bounds import DbId, Timestamp
from common.http_errors import declare_errors, errors, invalid_request_handler
from common.identity import IdentityStore, Responder, Role, acting_as, attach, require
from common.logs import get_logger
from common.nul_guard import RefuseNulMiddleware
from postmortems import lessons, markdown, reports
from postmortems.forms import FieldError, PostmortemForm
from postmortems.health import postmortems_health
from postmortems.models import IncidentClass, IncidentStatus, Severity
from postmortems.schemas import (
    ActionIn,
    ActionOut,
    ActionPatch,
    IncidentDetail,
    IncidentIn,
    IncidentOut,
    IncidentPatch,
    TimelineIn,
    TimelineOut,
    TransitionIn,
)
from postmortems.service import CloseRefused, Conflict, FormInvalid, Invalid, NotFound, Postmortems

log = get_logger("postmortems.http")


class AlertLinkIn(BaseModel):
    alert_ids: list[DbId] = Field(max_length=1000)


# The incident was open already: the request attached to it (nothing new opened).
ATTACHED: dict[str, Any] = {
    "model": IncidentDetail,
    "description": "attached to the open incident of the same service",
    "headers": {"X-Incident-Attached": {"description": "true", "schema": {"type": "string"}}},
}


def actor(caller: Responder, x_actor: Annotated[str | None, Header()] = None) -> str:
    """Who makes the change, for the audit trail and the timeline: the caller's
    account (a responder's or higher). ``X-Actor``, if sent, must name it."""
    return acting_as(caller, x_actor, "X-Actor")


# Module level: with postponed annotations FastAPI resolves these names here.
Actor = Annotated[str, Depends(actor)]


def create_app(service: Postmortems, identity: IdentityStore | None = None) -> FastAPI:
    """``identity``: the platform's store (default: the one ``VIGIL_*`` names)."""
    app = FastAPI(title="Postmortems", docs_url=None, redoc_url=None)
    serve_docs_offline(app)
    app.add_middleware(RefuseNulMiddleware)
    app.state.service = service
    attach(app, identity, "postmortems")

    app.add_exception_handler(RequestValidationError, invalid_request_handler())

    @app.exception_handler(FormInvalid)
    async def _form_invalid(_request: Request, exc: FormInvalid) -> JSONResponse:
        return _error(422, str(exc), exc.errors)

    @app.exception_handler(CloseRefused)
    async def _close_refused(_request: Request, exc: CloseRefused) -> JSONResponse:
        return _error(409, str(exc), exc.errors, missing=True)

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return _error(409, str(exc), exc.errors)

    @app.exception_handler(Invalid)
    async def _invalid(_request: Request, exc: Invalid) -> JSONResponse:
        return _error(422, str(exc), exc.errors)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return _error(404, str(exc), [])

    app.include_router(api_router(service))
    from postmortems.views import web_router

    app.include_router(web_router(service))
    declare_errors(app)
    return app


def _error(
    status: int, detail: str, errors: list[FieldError], missing: bool = False
) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "errors": [e.model_dump() for e in errors]}
    if missing:
        body["missing"] = body["errors"]
    return JSONResponse(body, status_code=status)


def api_router(service: Postmortems) -> APIRouter:
    write = [Depends(require(Role.responder))]
    read = [Depends(require(Role.viewer))]
    r = APIRouter(prefix="/api")

    @r.get("/health", responses={503: {"description": "degraded, with the reasons"}})
    def health(request: Request) -> JSONResponse:
        background = getattr(request.app.state, "background", None)
        body, status = postmortems_health(service, background)
        return JSONResponse(body, status_code=status)

    @r.get("/incidents", response_model=list[IncidentOut], dependencies=read)
    def list_incidents(
        service_name: Annotated[str | None, Query(alias="service")] = None,
        open: bool = False,  # noqa: A002 - the contract's query name
        status: Annotated[list[IncidentStatus] | None, Query()] = None,
        severity: Annotated[list[Severity] | None, Query()] = None,
        incident_class: Annotated[list[IncidentClass] | None, Query()] = None,
        since: Timestamp | None = None,
        until: Timestamp | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[IncidentOut]:
        return service.list(
            service=service_name,
            open_only=open,
            status=status,
            severity=severity,
            incident_class=incident_class,
            since=since,
            until=until,
            limit=limit,
        )

    @r.post(
        "/incidents",
        dependencies=write,
        response_model=IncidentDetail,
        status_code=201,
        responses={200: ATTACHED},
    )
    def open_incident(data: IncidentIn, response: Response, who: Actor) -> IncidentDetail:
        result = service.open(data, actor=who)
        if not result.created:
            response.status_code = 200
            response.headers["X-Incident-Attached"] = "true"
        return result.incident

    @r.get(
        "/incidents/{incident_id}",
        response_model=IncidentDetail,
        dependencies=read,
        responses=errors(404),
    )
    def get_incident(incident_id: DbId) -> IncidentDetail:
        return service.detail(incident_id)

    @r.patch(
        "/incidents/{incident_id}",
        dependencies=write,
        response_model=IncidentDetail,
        responses=errors(404, 409),
    )
    def patch_incident(incident_id: DbId, patch: IncidentPatch, who: Actor) -> IncidentDetail:
        return service.update(incident_id, patch, who)

    @r.post(
        "/incidents/{incident_id}/transition",
        dependencies=write,
        response_model=IncidentDetail,
        responses=errors(404, 409),
    )
    def transition(incident_id: DbId, change: TransitionIn, who: Actor) -> IncidentDetail:
        return service.transition(incident_id, change, who)

    @r.put(
        "/incidents/{incident_id}/postmortem",
        dependencies=write,
        response_model=IncidentDetail,
        responses=errors(404, 409),
    )
    def put_postmortem(
        incident_id: DbId, form: PostmortemForm, who: Actor, draft: bool = False
    ) -> IncidentDetail:
        return service.save_postmortem(incident_id, form, who, draft=draft)

    @r.post(
        "/incidents/{incident_id}/actions",
        dependencies=write,
        response_model=ActionOut,
        status_code=201,
        responses=errors(404),
    )
    def add_action(incident_id: DbId, data: ActionIn, who: Actor) -> ActionOut:
        return service.add_action(incident_id, data, who)

    @r.get("/actions", response_model=list[ActionOut], dependencies=read)
    def list_actions(overdue: bool = False, owner: str | None = None) -> list[ActionOut]:
        return service.actions(overdue_only=overdue, owner=owner)

    @r.patch(
        "/actions/{action_id}",
        dependencies=write,
        response_model=ActionOut,
        responses=errors(404, 409),
    )
    def patch_action(action_id: DbId, patch: ActionPatch, who: Actor) -> ActionOut:
        return service.update_action(action_id, patch, who)

    @r.post(
        "/actions/{action_id}/replay",
        dependencies=write,
        response_model=ActionOut,
        responses=errors(404, 409),
    )
    def replay_action(action_id: DbId, who: Actor) -> ActionOut:
        return service.replay_action(action_id, who)

    @r.post(
        "/incidents/{incident_id}/timeline",
        dependencies=write,
        response_model=TimelineOut,
        status_code=201,
        responses=errors(404),
    )
    def add_timeline(incident_id: DbId, data: TimelineIn, who: Actor) -> TimelineOut:
        return service.add_timeline_entry(incident_id, data, who)

    @r.post(
        "/incidents/{incident_id}/timeline/draft",
        dependencies=write,
        response_model=IncidentDetail,
        responses=errors(404),
    )
    def draft_timeline(incident_id: DbId, who: Actor) -> IncidentDetail:
        return service.draft_timeline(incident_id, who)

    @r.post(
        "/incidents/{incident_id}/alerts",
        dependencies=write,
        response_model=IncidentDetail,
        responses=errors(404),
    )
    def link_alerts(incident_id: DbId, data: AlertLinkIn, who: Actor) -> IncidentDetail:
        return service.link_alerts(incident_id, data.alert_ids, who)

    @r.post(
        "/incidents/{incident_id}/close",
        dependencies=write,
        response_model=IncidentDetail,
        responses=errors(404, 409),
    )
    def close(incident_id: DbId, who: Actor) -> IncidentDetail:
        return service.close(incident_id, who)

    @r.get(
        "/incidents/{incident_id}/markdown",
        response_class=Response,
        dependencies=read,
        responses={200: {"description": "Markdown", "content": {"text/markdown": {}}}}
        | errors(404),
    )
    def export_markdown(incident_id: DbId) -> PlainTextResponse:
        text = markdown.render(service.detail(incident_id))
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")

    @r.get("/lessons", response_model=list[lessons.LessonOut], dependencies=read)
    def search_lessons(
        q: str | None = None,
        kind: str | None = None,
        service_name: Annotated[str | None, Query(alias="service")] = None,
        incident_class: str | None = None,
    ) -> list[lessons.LessonOut]:
        return lessons.search(
            service.db, q, kind=kind, service=service_name, incident_class=incident_class
        )

    @r.get("/reports", response_model=reports.Report, dependencies=read)
    def report(
        start: Timestamp,
        end: Timestamp,
        service_name: Annotated[str | None, Query(alias="service")] = None,
    ) -> reports.Report:
        return reports.build(service, start, end, service=service_name)

    return r
