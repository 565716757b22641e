"""NUL characters are refused at the edge (PostgreSQL cannot store them), in
query strings, JSON and form bodies; uploads and ordinary text pass."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from common.nul_guard import RefuseNulMiddleware


def _client() -> TestClient:
    app = FastAPI()
    app.add_middleware(RefuseNulMiddleware)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/search")
    def search(q: str = "") -> dict[str, str]:
        return {"q": q}

    return TestClient(app)


def test_nul_in_a_query_json_or_form_is_refused_naming_where():
    client = _client()
    query = client.get("/search", params={"q": "a\x00b"})
    assert query.status_code == 422 and query.json()["errors"][0]["field"] == "query"
    body = client.post("/echo", json={"title": "a\x00b", "nested": ["ok"]})
    assert body.status_code == 422 and body.json()["errors"][0]["field"] == "body"
    assert client.post("/echo", json={"list": [{"k": "\x00"}]}).status_code == 422
    assert client.post("/echo", data={"text": "a\x00b"}).status_code == 422


def test_ordinary_text_and_binary_uploads_pass_whole():
    client = _client()
    assert client.get("/search", params={"q": "100% done"}).json() == {"q": "100% done"}
    escaped = client.post(
        "/echo",
        content=b'{"t": "\\\\u0000 is how NUL is written"}',
        headers={"Content-Type": "application/json"},
    )
    assert escaped.status_code == 200
    upload = client.post("/echo", files={"file": ("a.bin", b"\x00\x01" * 1000)})
    assert upload.status_code == 200 and upload.json()["bytes"] > 2000
    big = client.post("/echo", json={"t": "x" * 100_000})
    assert big.status_code == 200 and big.json()["bytes"] > 100_000


def test_nul_in_any_json_type_or_past_four_mebibytes_is_refused():
    client = _client()
    patch = client.post(
        "/echo",
        content=b'{"t": "a\\u0000b"}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patch.status_code == 422 and patch.json()["errors"][0]["field"] == "body"
    late = client.post("/echo", json={"pad": "x" * (5 * 1024 * 1024), "t": "a\x00b"})
    assert late.status_code == 422
    whole = client.post("/echo", json={"pad": "x" * (5 * 1024 * 1024)})
    assert whole.status_code == 200 and whole.json()["bytes"] > 5 * 1024 * 1024
