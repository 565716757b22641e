"""The identity layer of every service's HTTP API: strict bearer tokens, one
role check per route, and an audit row for each state change and refusal.

A service wires it once (``attach(app, store, "sentinel")``) and guards a route
with ``Depends(require(Role.responder))``; the dependency's value is the caller
(a :class:`Principal`), so a route that records who acted takes it as a
parameter. Health, ``/metrics`` and signed callbacks do not use it."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.http_errors import answers
from common.identity.feeds import feed_reader
from common.identity.models import Role
from common.identity.store import IdentityStore, Principal, open_store
from common.logs import get_logger

log = get_logger("identity.http")

STATE_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_JUDGED = "identity_judged"  # request state: the identity layer looked at this request
_PRINCIPAL = "identity_principal"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def parse_bearer(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when the header is
    absent. Anything else (another scheme, no token, a token with spaces) is a 401:
    a token sent the wrong way is refused, never guessed at."""
    if authorization is None:
        return None
    scheme, sep, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not sep or not token or any(c.isspace() for c in token):
        raise HTTPException(401, "use 'Authorization: Bearer <token>'", headers=CHALLENGE)
    return token


def store_of(request: Request) -> IdentityStore:
    store = getattr(request.app.state, "identity", None)
    if store is None:  # a wiring mistake, never an open door
        raise RuntimeError("this app has no identity store: call common.identity.attach")
    return store


def identify(request: Request, token: str | None) -> Principal | None:
    """The caller of a request that carries its token elsewhere than the header
    (a web page's cookie), judged and audited like a header's."""
    request.state.identity_judged = True
    principal = store_of(request).authenticate(token) if token else None
    request.state.identity_principal = principal
    return principal


def authenticate(request: Request, authorization: str | None) -> Principal:
    request.state.identity_judged = True
    token = parse_bearer(authorization)
    if token is None:
        raise HTTPException(
            401, "an API token is required: 'Authorization: Bearer <token>'", headers=CHALLENGE
        )
    principal = store_of(request).authenticate(token)
    if principal is None:
        raise HTTPException(401, "invalid or revoked API token", headers=CHALLENGE)
    request.state.identity_principal = principal
    return principal


@functools.cache
def require(role: Role) -> Callable[..., Principal]:
    """A dependency: the caller, who must hold ``role`` or a higher one (401
    without a valid token, 403 with a token whose role is too low). One callable
    per role, so FastAPI checks a request's token once however many ask."""

    def dependency(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        principal = authenticate(request, authorization)
        if not principal.may(role):
            raise HTTPException(
                403, f"{principal.name} is a {principal.role.value}; this needs {role.value}"
            )
        return principal

    dependency.__name__ = f"require_{role.value}"
    return answers(401, 403)(dependency)


@answers(401, 403)
def calendar_reader(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    feed: Annotated[
        str | None,
        Query(
            max_length=128,
            description="a calendar feed token (POST /api/oncall/feed), for calendar apps "
            "that cannot send a header",
        ),
    ] = None,
) -> Principal:
    """The dependency of calendar routes only: a viewer's bearer token, or without
    a header a feed token in the URL. No other route reads ``feed``, so a feed
    token opens nothing else (and as a bearer token it opens nothing at all)."""
    if authorization or feed is None:
        return require(Role.viewer)(request, authorization)
    request.state.identity_judged = True
    principal = feed_reader(store_of(request), feed)
    if principal is None:
        raise HTTPException(401, "invalid or replaced calendar feed token")
    request.state.identity_principal = principal
    return principal


Viewer = Annotated[Principal, Depends(require(Role.viewer))]
Responder = Annotated[Principal, Depends(require(Role.responder))]
ReleaseManager = Annotated[Principal, Depends(require(Role.release_manager))]
Admin = Annotated[Principal, Depends(require(Role.admin))]


def acting_as(principal: Principal, claimed: str | None, field: str) -> str:
    """The actor of a change is the caller. A body that still names one (``by``,
    ``created_by``, ``author``) must name the caller: nobody acts as someone else."""
    if claimed is not None and claimed.strip() and claimed.strip() != principal.name:
        raise HTTPException(
            403, f"{field} is the caller's identity ({principal.name}), not {claimed.strip()!r}"
        )
    return principal.name


class AuditMiddleware:
    """Records, after the response, each state change the identity layer judged
    (with its caller) and every refusal (401/403) of a judged request."""

    def __init__(self, app: ASGIApp, store: IdentityStore, service: str) -> None:
        self.app, self.store, self.service = app, store, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, remember)
        finally:
            state: dict[str, Any] = scope.get("state") or {}
            judged = bool(state.get(_JUDGED))
            refused = status in (401, 403)
            if judged and (scope["method"] in STATE_CHANGES or refused):
                await run_in_threadpool(self._record, scope, state.get(_PRINCIPAL), status)

    def _record(self, scope: Scope, principal: Principal | None, status: int) -> None:
        client = scope.get("client")
        try:
            self.store.audit(
                service=self.service,
                actor=principal,
                method=scope["method"],
                path=scope["path"],
                status=status,
                detail={"remote": client[0]} if client else {},
            )
        except Exception as exc:  # noqa: BLE001 - the change is made; say the audit failed
            log.error("identity.audit_failed", error=str(exc), path=scope["path"])
        if status in (401, 403):
            log.warning("http.refused", status=status, path=scope["path"], service=self.service)


def _close_on_shutdown(app: FastAPI, store: IdentityStore) -> None:
    """Dispose ``store``'s connections after the app's own lifespan has ended,
    so that every app built and stopped in one process leaves no pool behind."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Any) -> AsyncIterator[Any]:
        async with inner(started) as state:
            yield state
        store.dispose()

    app.router.lifespan_context = lifespan


def attach(app: FastAPI, store: IdentityStore | None, service: str, *, whoami: bool = True) -> None:
    """Give ``app`` the platform's identities: the store its routes' ``require``
    reads, the audit of its state changes, and ``GET /api/whoami``. Without a
    ``store`` the app opens the one ``VIGIL_*`` names and closes it when it stops."""
    if store is None:
        store = open_store()
        _close_on_shutdown(app, store)
    app.state.identity = store
    app.add_middleware(AuditMiddleware, store=store, service=service)  # type: ignore[arg-type]
    if not whoami:
        return

    @app.get("/api/whoami", tags=["identity"])
    def whoami(caller: Viewer) -> dict[str, str]:
        return {"name": caller.name, "role": caller.role.value, "kind": caller.kind.value}
