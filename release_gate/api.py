"""``release-gate serve``: the gate over HTTP for tools that prefer it to the
CLI. ``POST /api/releases`` admits the release at once (a refusal answers 409
with the receipt naming the lock's holder and until when), then runs the
canary in the background (202, poll ``GET /api/releases/{id}``) or, with
``?wait=true``, answers the final receipt. Every route but the health check
wants a platform token: a viewer's to read, a release manager's to deploy or
freeze. A release's author is the caller's account, never a name in the body."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model, model_validator

from common.api_docs import serve_docs_offline
from common.bounds import MAX_FREEZE, AwareTimestamp, DbId, minutes
from common.http_errors import answer_invalid_requests, declare_errors, errors
from common.identity import (
    IdentityStore,
    ReleaseManager,
    Role,
    acting_as,
    attach,
    require,
)
from common.logs import get_logger
from common.nul_guard import RefuseNulMiddleware
from release_gate.freezes import (
    FreezeError,
    FreezeInfo,
    active_freezes,
    create_freeze,
    lift_freeze,
    list_freezes,
)
from release_gate.health import gate_health
from release_gate.history import (
    ChangeFailureRate,
    ReleaseSummary,
    change_failure_rate,
    recent_releases,
)
from release_gate.locks import LockInfo, list_locks
from release_gate.receipts import EXIT_INFRASTRUCTURE, Receipt
from release_gate.service import DeployRequest, GateError, ReleaseGate

log = get_logger("release_gate.http")


# Some text that is not only blanks: the gate refuses a blank name or reason.
NOT_BLANK = r"\S"


class ReleaseIn(BaseModel):
    service: str = Field(min_length=1)
    version: str = Field(min_length=1, pattern=NOT_BLANK)
    # The caller's account is the author; if given, it must name the caller.
    author: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK)
    override_reason: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK)


def release_in_for(services: list[str]) -> type[ReleaseIn]:
    """``ReleaseIn`` whose ``service`` is one of the configured ones, so the
    schema names what may be released (and an unknown one is a 422 naming it)."""
    return create_model(  # type: ignore[call-overload, no-any-return]
        "ReleaseIn", __base__=ReleaseIn, service=(Literal[tuple(sorted(services))], ...)
    )


def _receipt_answer(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": Receipt, "description": description, **extra}


RELEASE_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "with ?wait=true: the final receipt"},
    202: _receipt_answer(
        "admitted: the canary runs; poll the Location",
        headers={"Location": {"description": "the release", "schema": {"type": "string"}}},
    ),
    409: _receipt_answer("refused: the receipt names the lock's holder or the freeze"),
    503: _receipt_answer("refused: the gate's infrastructure is unavailable"),
}


FreezeMinutes = minutes(MAX_FREEZE.total_seconds() / 60)


class FreezeIn(BaseModel):
    reason: str = Field(min_length=1, pattern=NOT_BLANK)
    created_by: str | None = Field(default=None, min_length=1)  # the caller, if given
    service: str | None = None
    minutes: FreezeMinutes | None = None
    expires_at: AwareTimestamp | None = None

    @model_validator(mode="after")
    def _one_expiry(self) -> FreezeIn:
        if (self.minutes is None) == (self.expires_at is None):
            raise ValueError("give exactly one of minutes and expires_at")
        return self


class LiftIn(BaseModel):
    lifted_by: str | None = Field(default=None, min_length=1)  # the caller, if given


def create_app(gate: ReleaseGate, identity: IdentityStore | None = None) -> FastAPI:
    """``identity``: the platform's store (default: the one ``VIGIL_*`` names)."""
    app = FastAPI(title="Release gate", docs_url=None, redoc_url=None)
    serve_docs_offline(app)
    app.add_middleware(RefuseNulMiddleware)
    app.state.gate = gate
    app.state.runs = []  # background releases, joinable by tests and at shutdown
    attach(app, identity, "release_gate")
    guarded = [Depends(require(Role.viewer))]

    @app.get("/api/health", responses={503: {"description": "degraded, with the reasons"}})
    def health() -> JSONResponse:
        body, status = gate_health(gate)
        return JSONResponse(body, status_code=status)

    def post_release(body: ReleaseIn, caller: ReleaseManager, wait: bool = False) -> Any:
        author = acting_as(caller, body.author, "author")
        request = DeployRequest(body.service, body.version, author, body.override_reason)
        try:
            release_id, admitted = gate.admit(request)
        except GateError as exc:
            raise HTTPException(422, str(exc)) from exc
        if not admitted:
            receipt = gate.receipt(release_id)
            status = 503 if receipt.exit_code == EXIT_INFRASTRUCTURE else 409
            return JSONResponse(receipt.model_dump(mode="json"), status_code=status)
        if wait:
            return gate.run(release_id)
        thread = threading.Thread(target=gate.run, args=(release_id,), name=f"release-{release_id}")
        app.state.runs.append(thread)
        thread.start()
        return JSONResponse(
            gate.receipt(release_id).model_dump(mode="json"),
            status_code=202,
            headers={"Location": f"/api/releases/{release_id}"},
        )

    # The body names a configured service: its model is this gate's (annotations
    # are strings here, so the class goes in by hand before FastAPI reads them).
    post_release.__annotations__["body"] = release_in_for(list(gate.config.services))
    app.post("/api/releases", response_model=Receipt, responses=RELEASE_ANSWERS)(post_release)

    @app.get("/api/releases", dependencies=guarded, response_model=list[ReleaseSummary])
    def get_releases(
        service: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[ReleaseSummary]:
        return recent_releases(gate.db, limit=limit, service=service)

    @app.get(
        "/api/releases/{release_id}",
        dependencies=guarded,
        response_model=Receipt,
        responses=errors(404),
    )
    def get_release(release_id: DbId) -> Receipt:
        try:
            return gate.receipt(release_id)
        except GateError as exc:
            raise HTTPException(404, str(exc)) from exc

    @app.get("/api/locks", dependencies=guarded, response_model=list[LockInfo])
    def get_locks() -> list[LockInfo]:
        with gate.db.sessions() as session:
            return list_locks(session, gate.clock.now(), active_only=True)

    @app.get("/api/freezes", dependencies=guarded, response_model=list[FreezeInfo])
    def get_freezes(active: bool = True) -> list[FreezeInfo]:
        with gate.db.sessions() as session:
            if active:
                return active_freezes(session, None, gate.clock.now())
            return list_freezes(session)

    @app.post("/api/freezes", status_code=201, response_model=FreezeInfo)
    def post_freeze(body: FreezeIn, caller: ReleaseManager) -> FreezeInfo:
        now = gate.clock.now()
        expires = body.expires_at or now + timedelta(minutes=body.minutes or 0)
        if body.expires_at is not None and expires - now > MAX_FREEZE:
            raise RequestValidationError(
                [
                    {
                        "loc": ("body", "expires_at"),
                        "msg": f"a freeze ends within {MAX_FREEZE.days} days of now",
                        "type": "value_error",
                    }
                ]
            )
        try:
            with gate.db.session() as session:
                return create_freeze(
                    session,
                    service=body.service,
                    reason=body.reason,
                    created_by=acting_as(caller, body.created_by, "created_by"),
                    expires_at=expires,
                    now=now,
                )
        except FreezeError as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.post("/api/freezes/{freeze_id}/lift", response_model=FreezeInfo, responses=errors(404))
    def post_lift(
        freeze_id: DbId, caller: ReleaseManager, body: LiftIn | None = None
    ) -> FreezeInfo:
        by = acting_as(caller, body.lifted_by if body else None, "lifted_by")
        try:
            with gate.db.session() as session:
                return lift_freeze(session, freeze_id, by, gate.clock.now())
        except FreezeError as exc:
            raise HTTPException(404, str(exc)) from exc

    @app.get("/api/change-failure-rate", dependencies=guarded, response_model=ChangeFailureRate)
    def get_change_failure_rate(
        days: Annotated[float, Query(gt=0, le=3660)] = 30.0, service: str | None = None
    ) -> ChangeFailureRate:
        end = gate.clock.now() + timedelta(seconds=1)
        return change_failure_rate(gate.db, end - timedelta(days=days), end, service)

    answer_invalid_requests(app)
    declare_errors(app)
    return app
