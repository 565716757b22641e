"""The error bodies every service's API answers, and the OpenAPI document that
says so: each operation lists every status code it may answer, its 4xx (and
503) with the one shared body, so a client (or schemathesis) can trust it.

    {"detail": "invalid request", "errors": [{"field": "limit", "message": "..."}]}

A service declares what a route answers beyond the common cases at the route
(``responses=errors(404, 409)``) and calls ``declare_errors(app)``; its OpenAPI
document then adds to every operation what follows from the operation's shape:

- 422 everywhere (bad parameters, and the NUL guard reads every request);
- 400 where a request body is read (a body that is not JSON at all);
- what its dependencies answer: ``answers(401, 403)`` on a dependency (the
  platform identity's role check carries it) puts those on each route using it;
- ``everywhere``: what the service's own handlers may answer on any route
  (the translator's 503 while its database is unreachable)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

INVALID_REQUEST = "invalid request"

DESCRIPTIONS = {
    400: "the request body could not be read",
    401: "no valid token",
    402: "payment declined",
    403: "the caller may not do this",
    404: "not found",
    409: "the current state refuses the change",
    413: "too large",
    415: "unsupported media or file type",
    422: "invalid request: every failing field named",
    503: "temporarily unavailable; retry",
}

_ANSWERS = "__answers__"
_REF = "#/components/schemas/"
_VALIDATION_ERROR = _REF + "HTTPValidationError"
F = TypeVar("F", bound=Callable[..., Any])


class FieldProblem(BaseModel):
    field: str = Field(description="where: a body field, a parameter, or 'body'")
    message: str


class ErrorBody(BaseModel):
    """Every refusal: what went wrong, and for invalid input each failing field.
    Some services add their own keys (``code``, ``request_id``, ``missing``)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    errors: list[FieldProblem] = Field(default_factory=list)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with :class:`ErrorBody`
    as JSON, whatever the route's own media type (``declare_errors`` adds the
    model to the document)."""
    return {status: _answer(status) for status in statuses}


def answers(*statuses: int) -> Callable[[F], F]:
    """Marks a dependency with the statuses it may answer (401 without a token...)."""

    def mark(dependency: F) -> F:
        setattr(dependency, _ANSWERS, tuple(statuses))
        return dependency

    return mark


def field_problems(exc: RequestValidationError, strip: Iterable[str]) -> list[FieldProblem]:
    """Pydantic's errors as ``{"field", "message"}``; ``strip``: location words
    left out of a field's name ("body", and for some services "query", "path")."""
    left_out = set(strip)
    problems = []
    for error in exc.errors():
        parts = [str(p) for p in error.get("loc", ()) if p not in left_out]
        problems.append(
            FieldProblem(field=".".join(parts) or "body", message=error.get("msg", "invalid"))
        )
    return problems


def invalid_request_handler(strip: Iterable[str] = ("body", "query", "path", "header")):
    """An exception handler for ``RequestValidationError`` answering the shared 422."""
    words = tuple(strip)

    async def handle(_request: Any, exc: RequestValidationError) -> JSONResponse:
        problems = [p.model_dump() for p in field_problems(exc, words)]
        return JSONResponse({"detail": INVALID_REQUEST, "errors": problems}, status_code=422)

    return handle


def answer_invalid_requests(app: FastAPI) -> None:
    """The shared 422 body for requests that fail validation."""
    app.add_exception_handler(RequestValidationError, invalid_request_handler())


def _dependency_answers(dependant: Dependant) -> set[int]:
    found: set[int] = set(getattr(dependant.call, _ANSWERS, ()))
    for sub in dependant.dependencies:
        found |= _dependency_answers(sub)
    return found


def _api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], APIRoute]]:
    """(path, methods, route) of every documented operation, those of included
    routers too (FastAPI keeps them in their router until asked)."""
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            yield context.path_format, set(context.methods or ()), route


def _answer(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "refused"),
        "content": {"application/json": {"schema": {"$ref": f"{_REF}ErrorBody"}}},
    }


def declare_errors(app: FastAPI, everywhere: Iterable[int] = ()) -> None:
    """Adds to each operation of ``app``'s OpenAPI document the error statuses
    that follow from its shape (see the module's docstring), and answers 422
    with :class:`ErrorBody` rather than FastAPI's default; a status a route
    declares itself is kept as it is."""
    common = {422, *everywhere}
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = build()
        components = document.setdefault("components", {}).setdefault("schemas", {})
        body = ErrorBody.model_json_schema(ref_template=_REF + "{model}")
        components.update(body.pop("$defs", {}))
        components["ErrorBody"] = body
        for path, methods, route in _api_routes(app):
            statuses = common | _dependency_answers(route.dependant)
            if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
                statuses.add(400)
            for method in methods:
                responses = document["paths"][path][method.lower()]["responses"]
                for status in sorted(statuses):
                    known = responses.get(str(status))
                    if known is None or _VALIDATION_ERROR in json.dumps(known):
                        responses[str(status)] = _answer(status)
        if _VALIDATION_ERROR not in json.dumps(document["paths"]):
            components.pop("HTTPValidationError", None)
            components.pop("ValidationError", None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
    app.openapi_schema = None
