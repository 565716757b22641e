"""The shared error body and the OpenAPI document that declares it: what an
operation may answer follows from its shape (a body, a role check), a route adds
its own, and the fuzz harness holds an app to it."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from pydantic import BaseModel

from common.bounds import Timestamp
from common.http_errors import (
    INVALID_REQUEST,
    answer_invalid_requests,
    declare_errors,
    errors,
)
from common.identity import Role, attach, open_store, require
from tests.api_fuzz import fuzz_app
from tests.identity import ADMIN_HEADERS

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}


class Note(BaseModel):
    text: str
    at: Timestamp | None = None


def _app(*, declare_404: bool = True) -> FastAPI:
    app = FastAPI()
    attach(app, open_store(), "test", whoami=False)
    router = APIRouter()

    @router.post("/notes", dependencies=[Depends(require(Role.responder))], status_code=201)
    def add(note: Note) -> dict[str, str]:
        return {"text": note.text}

    @router.get(
        "/pages/{name}",
        response_class=HTMLResponse,
        responses=errors(404) if declare_404 else None,
    )
    def page(name: str) -> HTMLResponse:
        if name != "home":
            raise HTTPException(404, f"no page {name!r}")
        return HTMLResponse("<p>home</p>")

    app.include_router(router)
    answer_invalid_requests(app)
    declare_errors(app)
    return app


def _answers(document: dict, path: str, method: str) -> dict:
    return document["paths"][path][method]["responses"]


def test_an_operation_declares_what_its_shape_answers():
    document = _app().openapi()
    notes = _answers(document, "/notes", "post")
    assert set(notes) == {"201", "400", "401", "403", "422"}
    for status in ("400", "401", "403", "422"):
        assert notes[status]["content"]["application/json"]["schema"] == ERROR_BODY
    page = _answers(document, "/pages/{name}", "get")
    assert set(page) == {"200", "404", "422"}  # no body, no role check: no 400, 401, 403
    # An HTML page's refusal is still JSON, and says so.
    assert page["404"]["content"] == {"application/json": {"schema": ERROR_BODY}}
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ErrorBody" in schemas
    assert schemas["ErrorBody"]["required"] == ["detail"]


def test_an_invalid_request_names_each_field_in_the_declared_body():
    with TestClient(_app()) as client:
        refused = client.post("/notes", json={"at": "2150-01-01T00:00:00Z"}, headers=ADMIN_HEADERS)
    assert refused.status_code == 422
    body = refused.json()
    assert body["detail"] == INVALID_REQUEST
    assert {e["field"] for e in body["errors"]} == {"text", "at"}


def test_instants_are_bounded_by_the_year_as_written():
    """The schemas say 1970 to 2099 by the year's digits; validation agrees, an
    offset notwithstanding."""
    with TestClient(_app()) as client:

        def status(at: str) -> int:
            return client.post(
                "/notes", json={"text": "x", "at": at}, headers=ADMIN_HEADERS
            ).status_code

        assert status("1970-01-01T00:00:00+05:00") == 201  # 1969 in UTC, 1970 as written
        assert status("2099-12-31T23:00:00-05:00") == 201
        assert status("1969-12-31T23:00:00-05:00") == 422
        assert status("2100-01-01T00:00:00Z") == 422
        # A number is no ISO 8601 time, whatever Unix time it could be read as.
        assert status(0) == 422
        assert client.get("/pages/home").status_code == 200
        pattern = client.get("/openapi.json").json()["components"]["schemas"]["Note"]
    at = next(o for o in pattern["properties"]["at"]["anyOf"] if o.get("type") == "string")
    assert at["format"] == "date-time" and at["pattern"].startswith("^(19[7-9]")


@pytest.mark.slow
def test_the_fuzz_harness_catches_an_undeclared_answer():
    """Schemathesis' checks are live: a 404 the schema does not declare is a
    failure, and declaring it is the fix."""
    undeclared = fuzz_app(_app(declare_404=False), ADMIN_HEADERS, max_examples=5)
    assert any("Undocumented" in f and "/pages/{name}" in f for f in undeclared.failures)
    declared = fuzz_app(_app(), ADMIN_HEADERS, max_examples=5)
    assert declared.server_errors == [] and declared.failures == []
