"""The FastAPI application: routes, error handling, middleware, and the
background workers and scheduler tied to its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.api_docs import serve_docs_offline
from common.http_errors import declare_errors, invalid_request_handler
from common.identity import IdentityStore, attach
from common.logs import current_context, get_logger
from common.nul_guard import RefuseNulMiddleware
from translator import __version__
from translator.accounts.views import router as accounts_router
from translator.errors import TranslatorError
from translator.files.views import router as files_router
from translator.health import router as health_router
from translator.jobs.views import router as jobs_router
from translator.llm import LLMError
from translator.metrics import CONTENT_TYPE
from translator.middleware import RequestMiddleware
from translator.payments.views import router as payments_router
from translator.services import Services

log = get_logger("translator.http")


def _request_id() -> str | None:
    return current_context().get("request_id")


def create_app(
    services: Services,
    run_background: bool = True,
    instrument: bool = True,
    identity: IdentityStore | None = None,
) -> FastAPI:
    """``run_background`` starts the worker pool and the scheduler with the app;
    ``instrument=False`` builds the app without the request middleware (metrics, logging,
    request ids)
    (the baseline of the middleware benchmark); ``identity``: the platform's store for
    operator routes (default: the one ``VIGIL_*`` names)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        scheduler = None
        if run_background:
            services.workers.start()
            if services.settings.scheduler_enabled:
                from translator.ops.scheduler import start_scheduler

                scheduler = start_scheduler(services)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if run_background:
                services.workers.stop()

    app = FastAPI(
        title="Translator",
        version=__version__,
        lifespan=lifespan,
        dependencies=_fault_dependencies(services),
        docs_url=None,
        redoc_url=None,
    )
    serve_docs_offline(app)
    app.state.services = services
    attach(app, identity, "translator", whoami=False)
    for router in (health_router, accounts_router, files_router, jobs_router, payments_router):
        app.include_router(router)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(services.metrics.render(), media_type=CONTENT_TYPE)

    _install_error_handlers(app)
    # Any route may find the database gone: 503 (see database_unavailable).
    declare_errors(app, everywhere=(503,))
    app.add_middleware(RefuseNulMiddleware)
    if instrument:
        app.add_middleware(RequestMiddleware, metrics=services.metrics)  # type: ignore[arg-type]
    return app


class InjectedHttpFault(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _fault_dependencies(services: Services) -> list[params.Depends]:
    """Route faults run as app-wide dependencies, only where they may apply (no cost
    otherwise)."""
    faults = services.faults
    dependencies: list[params.Depends] = []
    # A watched faults file may switch route faults on later: the checks must be in place.
    if faults.config.slow_responses or faults.watching:
        dependencies.append(Depends(inject_slow_response))
    if faults.config.http_errors or faults.watching:
        dependencies.append(Depends(inject_http_fault))
    return dependencies


async def inject_slow_response(request: Request) -> None:
    """Holds the request back without blocking the event loop or a worker thread; it
    runs inside the request middleware, so the latency histogram sees the delay."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    delay = request.app.state.services.faults.slow_response(request.method, route)
    if delay is not None:
        await asyncio.sleep(delay)


def inject_http_fault(request: Request) -> None:
    """Runs after routing, so faults match route templates ("/api/jobs/{job_id}")."""
    route = getattr(request.scope.get("route"), "path", request.url.path)
    status = request.app.state.services.faults.http_error(request.method, route)
    if status is not None:
        raise InjectedHttpFault(status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(InjectedHttpFault)
    async def injected(_: Request, exc: InjectedHttpFault) -> JSONResponse:
        return JSONResponse(
            {"detail": "Internal server error", "request_id": _request_id()}, status_code=exc.status
        )

    @app.exception_handler(TranslatorError)
    async def domain_error(_: Request, exc: TranslatorError) -> JSONResponse:
        log.warning("http.domain_error", code=exc.code, status=exc.status_code, detail=exc.detail)
        # A refused upload may still be streaming in: close rather than read the rest.
        headers = {"Connection": "close"} if exc.status_code == 413 else None
        return JSONResponse(
            {"detail": exc.detail, "code": exc.code}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(LLMError)
    async def llm_error(_: Request, exc: LLMError) -> JSONResponse:
        # Only reached when an API call names a provider; workers handle their own.
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("http.error", status=exc.status_code, detail=exc.detail)
        return JSONResponse(
            {"detail": exc.detail},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    # Field names keep their place ("query.limit"), as the translator always wrote them.
    app.add_exception_handler(RequestValidationError, invalid_request_handler(strip=("body",)))

    @app.exception_handler(OperationalError)
    async def database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("http.database_unavailable", error=str(exc.orig).splitlines()[0][:200])
        return JSONResponse(
            {
                "detail": "Service temporarily unavailable, try again later",
                "request_id": _request_id(),
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )
