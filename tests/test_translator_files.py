"""Upload → job → translated download, for every format, and bad uploads."""

from __future__ import annotations

import io

import docx
import pytest
from sqlalchemy import func, select

from common.identity import Role
from tests.helpers import add_user, docx_bytes
from tests.identity import ADMIN_HEADERS, account, bearer
from translator.files.models import File
from translator.jobs.models import TranslationJob, TranslationQueue


def _upload(api, headers, name, data, **form):
    return api.post(
        "/api/files",
        headers=headers,
        files={"file": (name, data)},
        data={"target_lang": "ru", **form},
    )


def _translate(api, svc, headers, name, data) -> bytes:
    r = _upload(api, headers, name, data)
    assert r.status_code == 201, r.text
    file_id = r.json()["file"]["id"]
    assert svc.workers.drain() == 1
    status = api.get(f"/api/files/{file_id}", headers=headers).json()
    assert status["status"] == "ready", status
    r = api.get(f"/api/files/{file_id}/download", headers=headers)
    assert r.status_code == 200
    assert name.rsplit(".", 1)[0] + ".ru." in r.headers["content-disposition"]
    return r.content


def test_txt_round_trip_keeps_paragraph_layout(api, svc):
    _, h = add_user(svc, "a@example.com")
    source = "Hello world.\n\n\nThe document is ready.\nSecond line of the same paragraph.\n"
    out = _translate(api, svc, h, "notes.txt", source.encode()).decode()
    assert out == (
        "[offline auto→ru] Привет мир.\n\n\n"
        "[offline auto→ru] The документ is ready.\nSecond line of the same paragraph.\n"
    )


def test_markdown_round_trip_keeps_markup_and_code(api, svc):
    _, h = add_user(svc, "a@example.com")
    source = "# Hello\n\n- the document\n1. world\n\n```\nhello = 1\n```\n---\n"
    out = _translate(api, svc, h, "readme.md", source.encode()).decode()
    assert out.splitlines() == [
        "# [offline auto→ru] Привет",
        "",
        "- [offline auto→ru] the документ",
        "1. [offline auto→ru] мир",
        "",
        "```",
        "hello = 1",
        "```",
        "---",
    ]


def test_docx_round_trip_translates_body_and_tables(api, svc):
    _, h = add_user(svc, "a@example.com")
    data = docx_bytes(["Hello world", "", "The document"], table=[["Hello", "world"]])
    out = docx.Document(io.BytesIO(_translate(api, svc, h, "report.docx", data)))
    assert [p.text for p in out.paragraphs] == [
        "[offline auto→ru] Привет мир",
        "",
        "[offline auto→ru] The документ",
    ]
    assert [c.text for c in out.tables[0].rows[0].cells] == [
        "[offline auto→ru] Привет",
        "[offline auto→ru] мир",
    ]


def test_job_list_is_per_user(api, svc):
    _, alice = add_user(svc, "alice@example.com")
    _, bob = add_user(svc, "bob@example.com")
    _upload(api, alice, "a.txt", b"Hello")
    _upload(api, alice, "b.txt", b"world")
    jobs = api.get("/api/jobs", headers=alice).json()
    assert [j["file_name"] for j in jobs] == ["b.txt", "a.txt"]
    assert api.get("/api/jobs", headers=bob).json() == []
    assert api.get(f"/api/jobs/{jobs[0]['id']}", headers=bob).status_code == 404
    assert api.get(f"/api/files/{jobs[0]['file_id']}", headers=bob).status_code == 404


def test_download_before_ready_is_409(api, svc):
    _, h = add_user(svc, "a@example.com")
    file_id = _upload(api, h, "a.txt", b"Hello").json()["file"]["id"]
    r = api.get(f"/api/files/{file_id}/download", headers=h)
    assert r.status_code == 409
    assert "pending" in r.json()["detail"]


def _nothing_left(svc, tmp_path):
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(File)) == 0
        assert s.scalar(select(func.count()).select_from(TranslationJob)) == 0
        assert s.scalar(select(func.count()).select_from(TranslationQueue)) == 0
    stored = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert stored == []


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("empty.txt", b"", 400, "empty.txt is empty"),
        ("blank.txt", b"  \n\n \n", 400, "contains no text"),
        ("image.png", b"\x89PNG....", 415, "unsupported file type .png"),
        ("noext", b"hello", 415, "(no extension)"),
        ("broken.docx", b"PK\x03\x04 this is not a real zip", 400, "corrupt .docx"),
        ("latin1.txt", "Grüße".encode("latin-1"), 400, "not valid UTF-8"),
        ("big.txt", b"a" * (2 * 1024 * 1024 + 1), 413, "allows 2 MB per file"),
    ],
)
def test_bad_uploads_get_clear_4xx_and_leave_nothing(
    api, svc, tmp_path, name, data, status, message
):
    _, h = add_user(svc, "a@example.com")
    r = _upload(api, h, name, data)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    _nothing_left(svc, tmp_path)


def test_docx_that_is_a_zip_but_not_a_document(api, svc, tmp_path):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a document")
    _, h = add_user(svc, "a@example.com")
    r = _upload(api, h, "fake.docx", buf.getvalue())
    assert r.status_code == 400 and "corrupt .docx" in r.json()["detail"]
    _nothing_left(svc, tmp_path)


def test_total_upload_quota_of_the_plan(api, svc, tmp_path):
    _, h = add_user(svc, "a@example.com")
    chunk = b"word " * (400 * 1024 // 5 * 5)  # ~2 MB, under the per-file limit
    chunk = chunk[: 2 * 1024 * 1024 - 10]
    for _ in range(10):
        assert _upload(api, h, "part.txt", chunk).status_code == 201
    r = _upload(api, h, "one-more.txt", chunk)
    assert r.status_code == 413
    assert "allows 20 MB in total" in r.json()["detail"]


def test_bad_parameters(api, svc):
    _, h = add_user(svc, "a@example.com")
    r = _upload(api, h, "a.txt", b"Hello", target_lang="xx")
    assert r.status_code == 422 and "target_lang 'xx'" in r.json()["detail"]
    r = _upload(api, h, "a.txt", b"Hello", provider="nope")
    assert r.status_code == 400 and "nope" in r.json()["detail"]
    r = api.post("/api/files", headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"


def test_auth_is_required_and_checked(api, svc):
    assert api.get("/api/jobs").status_code == 401
    assert api.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.get("/api/jobs", headers={"Authorization": "Basic abc"}).status_code == 401
    _, user = add_user(svc, "u@example.com")
    # Creating users is an operator's action: a customer's token is no platform token.
    r = api.post("/api/users", headers=user, json={"email": "x@example.com"})
    assert r.status_code == 401
    viewer = bearer(account("vic", Role.viewer))
    assert (
        api.post("/api/users", headers=viewer, json={"email": "x@example.com"}).status_code == 403
    )


def test_a_platform_admin_creates_users_whose_token_works(api, svc):
    _, customer_admin = add_user(svc, "root@example.com", admin=True)
    refused = api.post("/api/users", headers=customer_admin, json={"email": "x@example.com"})
    assert refused.status_code == 401
    admin = ADMIN_HEADERS
    r = api.post("/api/users", headers=admin, json={"email": "New@Example.com"})
    assert r.status_code == 201
    token = r.json()["api_token"]
    me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["email"] == "new@example.com" and me["subscription"] is None
    dup = api.post("/api/users", headers=admin, json={"email": "new@example.com"})
    assert dup.status_code == 409
    bad = api.post("/api/users", headers=admin, json={"email": "not-an-email"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "email"
    # Past what the users table holds: refused naming the field, never a database error.
    long_email = "x" * 250 + "@example.com"
    too_long = api.post("/api/users", headers=admin, json={"email": long_email})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "email"
    long_name = api.post(
        "/api/users", headers=admin, json={"email": "n@example.com"} | {"name": "n" * 256}
    )
    assert long_name.status_code == 422 and long_name.json()["errors"][0]["field"] == "name"


def test_anonymous_upload_is_temporary(api, svc):
    r = _upload(api, {}, "a.txt", b"Hello")
    assert r.status_code == 201
    assert r.json()["file"]["is_temporary"] is True


def test_retry_file_creates_priority_job(api, svc):
    _, h = add_user(svc, "a@example.com")
    file_id = _upload(api, h, "a.txt", b"Hello").json()["file"]["id"]
    assert api.post(f"/api/files/{file_id}/retry", headers=h).status_code == 409  # still pending
    svc.workers.drain()
    r = api.post(f"/api/files/{file_id}/retry", headers=h)
    assert r.status_code == 202
    with svc.db.session() as s:
        row = s.scalar(
            select(TranslationQueue).where(TranslationQueue.job_id == r.json()["job_id"])
        )
        assert row.priority == 10
