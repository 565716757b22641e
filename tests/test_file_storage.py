"""Where documents are kept (``TRANSLATOR_FILE_STORAGE``): local disk and the
database behave alike through the API, the consistency check, the temp-file cleanup
and backups; and two real ``translator serve`` processes on one database with
separate, empty storage folders serve and process each other's uploads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from common.clock import FakeClock
from tests.daemons import free_port
from tests.helpers import add_user, client_for, make_services
from translator.cli import main
from translator.files.consistency import check_files
from translator.files.models import File
from translator.files.storage import DatabaseStorage, FileStorage, LocalDiskStorage
from translator.ops.backup import create_backup, restore_backup
from translator.ops.maintenance import cleanup_expired_temp_files
from translator.services import Services

BACKEND = os.environ.get("TEST_DATABASE", "sqlite")
needs_postgres = pytest.mark.skipif(
    BACKEND != "postgres", reason="documents in the database need PostgreSQL")
STORAGES = ("disk", pytest.param("database", marks=needs_postgres))


@pytest.fixture(params=STORAGES)
def node(request: pytest.FixtureRequest, database_url: str, tmp_path: Path,
         clock: FakeClock) -> Iterator[Services]:
    services = make_services(database_url, tmp_path, clock, file_storage=request.param)
    yield services
    services.close()


def _storage(node: Services, chunk_bytes: int) -> FileStorage:
    if isinstance(node.storage, DatabaseStorage):
        return DatabaseStorage(node.db, chunk_bytes=chunk_bytes)
    return LocalDiskStorage(node.settings.storage_dir, chunk_bytes=chunk_bytes)


def _files_on_disk(node: Services) -> list[Path]:
    root = node.settings.storage_dir
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- the interface, on both backends ---------------------------------------------------


def test_documents_round_trip_in_chunks(node: Services, clock: FakeClock) -> None:
    storage = _storage(node, chunk_bytes=1000)
    key = storage.new_path(clock.now(), "txt")
    data = bytes(range(256)) * 17  # 4352 bytes: four full chunks and a short one
    storage.write(key, iter([data[:10], data[10:3000], data[3000:]]))

    assert storage.exists(key)
    assert storage.read(key) == data
    chunks = list(storage.iter_chunks(key))
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 1000, 352]

    storage.write(key, b"replaced")
    assert storage.read(key) == b"replaced"
    translated = storage.translated_path(key, "de", 7)
    assert str(translated).endswith(".job7.de.txt")
    storage.write(translated, b"")
    assert storage.read(translated) == b""

    assert storage.delete(key) is True
    assert storage.delete(key) is False
    assert not storage.exists(key)
    with pytest.raises(FileNotFoundError):
        storage.iter_chunks(key)


def test_a_failed_write_leaves_the_old_document(node: Services, clock: FakeClock) -> None:
    storage = _storage(node, chunk_bytes=4)
    key = storage.new_path(clock.now(), "txt")
    storage.write(key, b"the old text")

    def broken() -> Iterator[bytes]:
        yield b"new text, half"
        raise OSError("the client went away")

    with pytest.raises(OSError, match="went away"):
        storage.write(key, broken())
    assert storage.read(key) == b"the old text"
    assert [o.key for o in storage.inventory()] == [storage.normalise(key)]  # no leftovers


def test_the_database_backend_keeps_nothing_on_disk(node: Services, clock: FakeClock) -> None:
    with client_for(node) as api:
        _, alice = add_user(node, "alice@example.com")
        r = api.post("/api/files", headers=alice, data={"target_lang": "de"},
                     files={"file": ("a.md", b"# Hello world\n\nThe document is ready.\n")})
        assert r.status_code == 201, r.text
        file_id = r.json()["file"]["id"]
        assert node.workers.drain() == 1
        out = api.get(f"/api/files/{file_id}/download", headers=alice)
    assert out.status_code == 200
    assert out.text.startswith("# [offline auto→de] Hallo Welt\n\n[offline auto→de] ")
    on_disk = _files_on_disk(node)
    if node.settings.file_storage == "database":
        assert on_disk == []
        with node.db.session() as s:
            row = s.get(File, file_id)
            assert row is not None
            named = {row.file_path, row.translated_path}
        assert {o.key for o in node.storage.inventory()} == named
    else:
        assert len(on_disk) == 2


# --- consistency check and cleanup ------------------------------------------------------


def test_consistency_check_finds_missing_and_orphaned_documents(
    node: Services, clock: FakeClock
) -> None:
    with client_for(node) as api:
        _, alice = add_user(node, "alice@example.com")
        for name in ("a.txt", "b.txt"):
            r = api.post("/api/files", headers=alice, files={"file": (name, b"Hello world.\n")})
            assert r.status_code == 201
    node.workers.drain()
    with node.db.session() as s:
        first, second = s.execute(
            select(File.file_path, File.translated_path).order_by(File.id)).all()
    node.storage.delete(first[1])  # a translation lost
    orphan = node.storage.new_path(clock.now(), "txt")
    node.storage.write(orphan, b"a crashed upload's leftover")

    # Ages are judged on the OS clock, which stamps the documents (as /metrics does).
    with node.db.session() as s:
        fresh = check_files(s, node.storage, datetime.now(UTC))
        later = check_files(s, node.storage, datetime.now(UTC) + timedelta(minutes=10))
    assert [(m.file_id, m.which) for m in fresh.missing] == [(1, "translated")]
    assert fresh.orphaned == []  # younger than the grace period: maybe still uploading
    assert [str(p) for p in later.orphaned] == [node.storage.normalise(orphan)]
    assert later.rows == 2 and later.files_on_disk == 4

    result = CliRunner().invoke(main, ["check-files"], env=_env(node))
    assert result.exit_code == 0, result.output
    assert "2 rows, 4 files " + node.storage.describe() + ": 1 missing" in result.output
    assert second[1] not in result.output


def _env(node: Services) -> dict[str, str]:
    return {
        "TRANSLATOR_DATABASE_URL": node.settings.database_url,
        "TRANSLATOR_STORAGE_DIR": str(node.settings.storage_dir),
        "TRANSLATOR_FILE_STORAGE": node.settings.file_storage,
    }


def test_expired_temporary_uploads_leave_the_storage(node: Services, clock: FakeClock) -> None:
    with client_for(node) as api:
        r = api.post("/api/files", files={"file": ("anon.txt", b"Hello world.\n")})
        assert r.status_code == 201
        node.workers.drain()
        _, alice = add_user(node, "alice@example.com")
        kept = api.post("/api/files", headers=alice, files={"file": ("a.txt", b"Kept.\n")})
        assert kept.status_code == 201
    assert len(list(node.storage.inventory())) == 3

    clock.advance(hours=25)
    report = cleanup_expired_temp_files(node, clock.now())
    assert (report.deleted, report.errors) == (1, 0)
    assert len(list(node.storage.inventory())) == 1
    with node.db.session() as s:
        assert check_files(s, node.storage, clock.now()).missing == []


# --- backups -----------------------------------------------------------------------------


@needs_postgres
def test_backup_and_restore_bring_back_documents_in_the_database(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    node = make_services(database_url, tmp_path, clock, file_storage="database")
    try:
        with client_for(node) as api:
            _, alice = add_user(node, "alice@example.com")
            r = api.post("/api/files", headers=alice, data={"target_lang": "de"},
                         files={"file": ("a.txt", b"Hello world.\n")})
            file_id = r.json()["file"]["id"]
            node.workers.drain()
            before = api.get(f"/api/files/{file_id}/download", headers=alice).content

            s = node.settings
            result = create_backup(s.database_url, s.storage_dir, s.backup_dir, clock.now(), 30)
            for stored in list(node.storage.inventory()):
                node.storage.delete(stored.key)
            assert api.get(f"/api/files/{file_id}/download", headers=alice).status_code == 404

            restore_backup(result.database, s.database_url, s.storage_dir, result.files)
            after = api.get(f"/api/files/{file_id}/download", headers=alice)
        assert after.status_code == 200 and after.content == before
        assert _files_on_disk(node) == []
    finally:
        node.close()


def test_database_storage_on_sqlite_is_refused_clearly(
    tmp_path: Path, clock: FakeClock
) -> None:
    with pytest.raises(ValueError, match="needs a PostgreSQL TRANSLATOR_DATABASE_URL"):
        make_services(f"sqlite:///{tmp_path / 'one.db'}", tmp_path, clock,
                      file_storage="database")


# --- two nodes, two hosts' worth of storage folders -------------------------------------


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "translator.cli", "serve", "--port", str(port)],
            env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
        )


def _wait(what: str, probe, log: Path, timeout: float = 45.0):  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.postgres_journey
@needs_postgres
def test_two_nodes_share_documents_through_the_database(
    database_url: str, tmp_path: Path
) -> None:
    """Node A has no workers: its upload can only be translated by node B's."""
    common = {"TRANSLATOR_DATABASE_URL": database_url, "TRANSLATOR_FILE_STORAGE": "database",
              "TRANSLATOR_WORKER_POLL_SECONDS": "0.05", "TRANSLATOR_SCHEDULER_ENABLED": "false",
              "TRANSLATOR_FILE_CHUNK_BYTES": "4096"}
    created = CliRunner().invoke(main, ["create-user", "ops@example.com"], env=common)
    assert created.exit_code == 0, created.output
    headers = {"Authorization": f"Bearer {json.loads(created.stdout)['api_token']}"}

    nodes = {}
    for name, workers in (("a", "0"), ("b", "1")):
        folder = tmp_path / f"host-{name}" / "files"
        folder.mkdir(parents=True)
        env = {**common, "TRANSLATOR_STORAGE_DIR": str(folder), "TRANSLATOR_WORKERS": workers,
               "TRANSLATOR_NODE": name}
        port = free_port()
        log = tmp_path / f"node-{name}.log"
        proc = _start(env, port, log)
        nodes[name] = (f"http://127.0.0.1:{port}", proc, folder, log)
        base = nodes[name][0]
        _wait(f"node {name} healthy",
              lambda base=base: httpx.get(f"{base}/api/health", timeout=2).status_code == 200,
              log)
    try:
        a, b = nodes["a"][0], nodes["b"][0]
        document = ("Hello world.\n\n" * 2000).encode()  # 28 KB: seven 4 KB chunks
        r = httpx.post(f"{a}/api/files", headers=headers, data={"target_lang": "de"},
                       files={"file": ("big.txt", document)}, timeout=30)
        assert r.status_code == 201, r.text
        file_id = r.json()["file"]["id"]

        status = _wait(
            "node b's worker to translate node a's upload",
            lambda: (httpx.get(f"{a}/api/files/{file_id}", headers=headers, timeout=5)
                     .json()["status"] in ("ready", "error")) and httpx.get(
                f"{a}/api/files/{file_id}", headers=headers, timeout=5).json(),
            nodes["b"][3],
        )
        assert status["status"] == "ready", status
        downloads = [
            httpx.get(f"{base}/api/files/{file_id}/download", headers=headers, timeout=30)
            for base in (a, b)
        ]
        assert [d.status_code for d in downloads] == [200, 200]
        assert downloads[0].content == downloads[1].content
        text = downloads[0].content.decode()
        assert text.count("[offline auto→de]") == 2000 and "Hello" not in text
        for _, _, folder, _ in nodes.values():
            assert [p for p in folder.rglob("*") if p.is_file()] == []
    finally:
        for _, proc, _, _ in nodes.values():
            proc.send_signal(signal.SIGTERM)
        for _, proc, _, _ in nodes.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
