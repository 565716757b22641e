"""Hostile uploads and out-of-range ids: refused at the edge with a clear 4xx,
before they cost memory, disk or a server error."""

from __future__ import annotations

import asyncio
import io
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.helpers import add_user, docx_bytes
from translator.app import create_app
from translator.files.formats import FORMATS
from translator.files.models import File

MB = 1024 * 1024


def _zip_bomb(inflated_mb: int) -> bytes:
    """A valid .docx whose body XML inflates to ``inflated_mb`` MB of one repeated paragraph."""
    template = zipfile.ZipFile(io.BytesIO(docx_bytes(["seed"])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
        for entry in template.infolist():
            if entry.filename != "word/document.xml":
                bomb.writestr(entry, template.read(entry))
        paragraph = b"<w:p><w:r><w:t>Hello world, this document is ready.</w:t></w:r></w:p>"
        with bomb.open("word/document.xml", "w", force_zip64=True) as body:
            body.write(
                b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                b'<w:document xmlns:w="http://schemas.openxmlformats.org/'
                b'wordprocessingml/2006/main"><w:body>'
            )
            chunk = paragraph * (MB // len(paragraph))
            for _ in range(inflated_mb):
                body.write(chunk)
            body.write(b"</w:body></w:document>")
    return out.getvalue()


def _files_on_disk(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _file_rows(svc) -> int:  # type: ignore[no-untyped-def]
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(File)) or 0


def test_docx_zip_bomb_is_refused_before_parsing_with_memory_bounded(api, svc):
    _, h = add_user(svc, "a@example.com")
    bomb = _zip_bomb(inflated_mb=64)
    assert len(bomb) < MB  # small on the wire, 64 MB of XML inside

    tracemalloc.start()
    try:
        r = api.post(
            "/api/files", headers=h, files={"file": ("bomb.docx", bomb)}, data={"target_lang": "ru"}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_upload"
    assert "inflates to 65 MB; at most 32 MB" in r.json()["detail"]
    assert peak < 16 * MB  # the upload itself and the client, never the inflated XML
    assert _file_rows(svc) == 0 and _files_on_disk(svc.storage.root) == []


def test_a_highly_compressed_part_is_refused_even_under_the_total_limit():
    bomb = _zip_bomb(inflated_mb=8)
    try:
        FORMATS["docx"].extract(bomb)
    except Exception as exc:  # noqa: BLE001 - the type and message are the point
        assert type(exc).__name__ == "InvalidUpload"
        assert "compressed" in str(exc) and "zip bomb" in str(exc)
    else:
        raise AssertionError("an 8 MB part compressed >100:1 was accepted")


def test_an_ordinary_docx_still_translates(api, svc):
    _, h = add_user(svc, "a@example.com")
    data = docx_bytes([f"Paragraph {i} of the document." for i in range(300)])
    r = api.post("/api/files", headers=h, files={"file": ("ok.docx", data)}, data={})
    assert r.status_code == 201, r.text


async def _call_streaming(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: int, chunk: bytes, first: bytes = b""
) -> tuple[int, int, bytes]:
    """Drive the ASGI app with a body of ``chunks`` × ``chunk`` bytes; returns the
    status, how many chunks the app pulled before answering, and the body."""
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= chunks:
            return {"type": "http.disconnect"}
        pulled += 1
        body = first + chunk if pulled == 1 else chunk
        return {"type": "http.request", "body": body, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/files",
        "raw_path": b"/api/files",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    if start["status"] == 413:  # the server closes instead of reading the rest
        assert (b"connection", b"close") in start["headers"]
    return start["status"], pulled, body


def _multipart_head(boundary: bytes) -> bytes:
    return (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
        b'filename="huge.txt"\r\nContent-Type: text/plain\r\n\r\n'
    )


def test_a_huge_streamed_upload_is_refused_as_soon_as_it_passes_the_limit(svc):
    """3 GB announced by nobody (chunked): the app stops pulling right past the
    limit, answers 413, and nothing is left on disk or in temp files."""
    app = create_app(svc, run_background=False)
    boundary = b"xyzBOUNDARY"
    chunk = b"a" * MB
    head = _multipart_head(boundary)
    total_chunks = 3 * 1024  # 3 GB if it were all read

    status, pulled, body = asyncio.run(
        _call_streaming(
            app,
            [(b"content-type", b"multipart/form-data; boundary=" + boundary)],
            total_chunks,
            chunk,
            first=head,
        )
    )
    assert status == 413, body
    assert b"file_too_large" in body
    # Anonymous uploads are on the free plan (2 MB per file): refused within a
    # few chunks of that, not after 3 GB.
    assert pulled <= 4, pulled
    assert _files_on_disk(svc.storage.root) == []
    assert _file_rows(svc) == 0


def test_a_declared_length_over_the_limit_is_refused_before_reading(svc):
    app = create_app(svc, run_background=False)
    boundary = b"xyzBOUNDARY"
    status, pulled, body = asyncio.run(
        _call_streaming(
            app,
            [
                (b"content-type", b"multipart/form-data; boundary=" + boundary),
                (b"content-length", str(3 * 1024 * MB).encode()),
            ],
            1,
            b"",
            first=_multipart_head(boundary),
        )
    )
    assert status == 413 and b"2 MB per file" in body
    assert pulled == 0


def test_ids_beyond_the_id_column_answer_422_naming_the_field(api, svc):
    _, h = add_user(svc, "a@example.com")
    for path in (
        "/api/files/9223372036854775808",
        "/api/files/9223372036854775808/download",
        "/api/jobs/9223372036854775808",
        "/api/files/2147483648",
        "/api/files/0",
    ):
        r = api.get(path, headers=h)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["errors"][0]["field"] in ("path.file_id", "path.job_id")
    r = api.post("/api/files/9223372036854775808/retry", headers=h)
    assert r.status_code == 422
    assert api.get("/api/files/2147483647", headers=h).status_code == 404  # the largest id
