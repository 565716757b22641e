"""Backups and restores (seed 000 §4) on the backend under test: data made
through the API comes back exactly, bad archives are refused without touching
the database, retention removes only our old archives, and the CLI."""

from __future__ import annotations

import gzip
import logging
import os
import sqlite3
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text

from common.clock import FakeClock
from common.db import make_engine
from tests.helpers import add_user
from tests.test_migrations import fresh_database
from translator.accounts.models import User
from translator.cli import main
from translator.db import MIGRATIONS_DIR, Base, import_all_models, upgrade
from translator.ops import backup as backup_module
from translator.ops.backup import BackupError, create_backup, prune_backups, restore_backup
from translator.services import Services

BACKEND = os.environ.get("TEST_DATABASE", "sqlite")
postgres_only = pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL backend only")
sqlite_only = pytest.mark.skipif(BACKEND == "postgres", reason="SQLite backend only")

import_all_models()
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()  # the latest migration


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    # The CLI installs its log handler on the (CliRunner-captured) stderr.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _upload(api: TestClient, headers: dict[str, str], name: str, data: bytes) -> int:
    r = api.post(
        "/api/files", headers=headers, files={"file": (name, data)}, data={"target_lang": "de"}
    )
    assert r.status_code == 201, r.text
    return int(r.json()["file"]["id"])


def _seed(api: TestClient, svc: Services) -> tuple[int, dict[str, str]]:
    """A user with two translated files, one waiting, and two payments."""
    user_id, headers = add_user(svc, "alice@example.com")
    _upload(api, headers, "one.txt", b"Hello world.\n\nThe document is ready.\n")
    _upload(api, headers, "two.md", b"# Title\n\nSecond document.\n")
    assert svc.workers.drain() == 2
    _upload(api, headers, "three.txt", b"Waiting in the queue.\n")
    for token in ("tok_visa", "tok_declined"):
        api.post(
            "/api/payments/checkout",
            headers=headers,
            json={"plan": "basic", "method": "card", "token": token},
        )
    return user_id, headers


def _db_snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: [
                    dict(row._mapping)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                ]
                for name, table in sorted(Base.metadata.tables.items())
            }
    finally:
        engine.dispose()


def _files_snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _change_everything(api: TestClient, svc: Services, clock: FakeClock) -> None:
    clock.advance(hours=1)
    _, bob = add_user(svc, "bob@example.com")
    _upload(api, bob, "new.txt", b"Uploaded after the backup.\n")
    svc.workers.drain()
    with svc.db.session() as s:
        s.execute(delete(User).where(User.email == "alice@example.com"))
    storage = svc.settings.storage_dir
    files = sorted(p for p in storage.rglob("*") if p.is_file())
    files[0].unlink()
    files[1].write_bytes(b"overwritten")


def _backup(
    svc: Services, clock: FakeClock, retention_days: int = 30
) -> backup_module.BackupResult:
    s = svc.settings
    return create_backup(s.database_url, s.storage_dir, s.backup_dir, clock.now(), retention_days)


def test_restore_brings_back_database_and_files_exactly(
    api: TestClient, svc: Services, clock: FakeClock
) -> None:
    _, alice = _seed(api, svc)
    db_before = _db_snapshot(svc.settings.database_url)
    files_before = _files_snapshot(svc.settings.storage_dir)
    assert len(db_before["files"]) == 3 and len(db_before["payments"]) == 2
    assert len(files_before) == 5  # three uploads, two translations

    result = _backup(svc, clock)
    suffix = ".sqlite.gz" if BACKEND != "postgres" else ".sql.gz"
    assert result.database.name == f"db_backup_20260105_120000{suffix}"
    assert result.files.name == "files_backup_20260105_120000.tar.gz"
    assert sorted(p.name for p in svc.settings.backup_dir.iterdir()) == sorted(
        [result.database.name, result.files.name]
    )

    _change_everything(api, svc, clock)
    assert _db_snapshot(svc.settings.database_url) != db_before
    assert _files_snapshot(svc.settings.storage_dir) != files_before

    restored = restore_backup(
        result.database, svc.settings.database_url, svc.settings.storage_dir, result.files
    )
    assert restored.backup_revision == restored.revision == HEAD
    assert restored.files_restored == 5
    assert _db_snapshot(svc.settings.database_url) == db_before
    assert _files_snapshot(svc.settings.storage_dir) == files_before

    # The running services see the restored data: alice's token and download work.
    r = api.get("/api/files/1/download", headers=alice)
    assert r.status_code == 200 and r.content.startswith(b"[offline auto")
    assert len(api.get("/api/jobs", headers=alice).json()) == 3
    # New rows after a restore continue from the restored ids.
    _, carol = add_user(svc, "carol@example.com")
    assert _upload(api, carol, "later.txt", b"After the restore.\n") == 4


@sqlite_only
def test_backup_of_a_live_sqlite_database_is_consistent_and_openable(
    api: TestClient, svc: Services, clock: FakeClock, tmp_path: Path
) -> None:
    _seed(api, svc)
    # A writer in the middle of a transaction neither blocks the backup nor leaks into it.
    with svc.db.session() as s:
        s.execute(delete(User))
        result = _backup(svc, clock)
    copy = tmp_path / "copy.db"
    copy.write_bytes(gzip.decompress(result.database.read_bytes()))
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM files").fetchone() == (3,)
        assert conn.execute("SELECT email FROM users").fetchall() == [("alice@example.com",)]
    finally:
        conn.close()


def _rewrite_dump(archive: Path, out: Path, tmp_path: Path, sql: str) -> None:
    """A copy of a database archive with ``sql`` applied (SQLite) or appended (pg_dump)."""
    raw = gzip.decompress(archive.read_bytes())
    if BACKEND == "postgres":
        out.write_bytes(gzip.compress(raw + sql.encode() + b"\n"))
        return
    work = tmp_path / "rewrite.db"
    work.write_bytes(raw)
    conn = sqlite3.connect(work)
    conn.executescript(sql)
    conn.close()
    out.write_bytes(gzip.compress(work.read_bytes()))


def test_bad_archives_are_refused_and_leave_the_database_untouched(
    api: TestClient, svc: Services, clock: FakeClock, tmp_path: Path
) -> None:
    _seed(api, svc)
    result = _backup(svc, clock)
    _change_everything(api, svc, clock)
    url, storage = svc.settings.database_url, svc.settings.storage_dir
    db_now, files_now = _db_snapshot(url), _files_snapshot(storage)

    def refused(archive: Path, match: str, files: Path | None = None) -> None:
        with pytest.raises(BackupError, match=match):
            restore_backup(archive, url, storage, files)
        assert _db_snapshot(url) == db_now
        assert _files_snapshot(storage) == files_now

    refused(tmp_path / "db_backup_20200101_000000.sql.gz", "not found")

    truncated = tmp_path / "truncated.gz"
    data = result.database.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    refused(truncated, "corrupt")

    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "flipped.gz").write_bytes(bytes(flipped))
    refused(tmp_path / "flipped.gz", "corrupt")

    (tmp_path / "plain.txt").write_bytes(b"not gzip at all")
    refused(tmp_path / "plain.txt", "corrupt")

    (tmp_path / "other.gz").write_bytes(gzip.compress(b"some,csv,data\n"))
    refused(tmp_path / "other.gz", "not a database backup")

    wrong = tmp_path / "wrong_kind.gz"
    if BACKEND == "postgres":
        wrong.write_bytes(gzip.compress(b"SQLite format 3\x00" + bytes(4080)))
        refused(wrong, "is a sqlite backup but .* is a postgresql database")
    else:
        wrong.write_bytes(gzip.compress(b"--\n-- PostgreSQL database dump\n--\n"))
        refused(wrong, "is a postgresql backup but .* is a sqlite database")

    newer = tmp_path / "newer.gz"
    if BACKEND == "postgres":
        raw = gzip.decompress(data).replace(
            f"COPY public.alembic_version (version_num) FROM stdin;\n{HEAD}\n".encode(),
            b"COPY public.alembic_version (version_num) FROM stdin;\n9999\n",
        )
        newer.write_bytes(gzip.compress(raw))
    else:
        _rewrite_dump(
            result.database, newer, tmp_path, "UPDATE alembic_version SET version_num='9999';"
        )
    refused(newer, "revision 9999, which this translator does not know")

    # A sound database archive with a broken files archive: refused before either is used.
    broken_files = tmp_path / "files.tar.gz"
    broken_files.write_bytes(result.files.read_bytes()[:-40])
    refused(result.database, "files archive .* is corrupt", broken_files)


@postgres_only
def test_a_failing_postgres_restore_is_rolled_back(
    api: TestClient, svc: Services, clock: FakeClock, tmp_path: Path
) -> None:
    _seed(api, svc)
    result = _backup(svc, clock)
    _change_everything(api, svc, clock)
    url = svc.settings.database_url
    db_now = _db_snapshot(url)
    # The whole dump applies, then the last statement fails: nothing may stick.
    failing = tmp_path / "failing.sql.gz"
    _rewrite_dump(result.database, failing, tmp_path, "SELECT * FROM no_such_table;")
    with pytest.raises(
        BackupError,
        match='psql failed .*rolled back.*: ERROR: +relation "no_such_table" does not exist',
    ):
        restore_backup(failing, url, svc.settings.storage_dir)
    assert _db_snapshot(url) == db_now


@sqlite_only
def test_a_damaged_sqlite_archive_is_refused(
    api: TestClient, svc: Services, clock: FakeClock, tmp_path: Path
) -> None:
    _seed(api, svc)
    db_now = _db_snapshot(svc.settings.database_url)
    damaged = tmp_path / "damaged.sqlite.gz"
    damaged.write_bytes(gzip.compress(b"SQLite format 3\x00" + os.urandom(8192)))
    with pytest.raises(BackupError, match="damaged|no usable SQLite database"):
        restore_backup(damaged, svc.settings.database_url, svc.settings.storage_dir)
    assert _db_snapshot(svc.settings.database_url) == db_now


def test_restore_onto_a_new_machine(
    api: TestClient, svc: Services, clock: FakeClock, tmp_path: Path
) -> None:
    """Disaster recovery: an empty database (SQLite: no file yet) and no files."""
    _seed(api, svc)
    result = _backup(svc, clock)
    with fresh_database(tmp_path, "new_machine") as url:
        storage = tmp_path / "new-machine" / "files"
        restored = restore_backup(result.database, url, storage, result.files)
        assert restored.revision == HEAD and restored.files_restored == 5
        assert _db_snapshot(url) == _db_snapshot(svc.settings.database_url)
        assert _files_snapshot(storage) == _files_snapshot(svc.settings.storage_dir)


def test_an_older_backup_is_migrated_to_the_current_schema(
    tmp_path: Path, clock: FakeClock
) -> None:
    with fresh_database(tmp_path, "old_schema") as url:
        engine = make_engine(url)
        upgrade(engine, "0001")  # before the default plans existed
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (email, name, role, api_token_hash, is_active, created_at) "
                    "VALUES ('old@example.com', '', 'user', 'h', :t, :now)"
                ),
                {"t": True, "now": clock.now().replace(tzinfo=None)},
            )
        engine.dispose()
        result = create_backup(url, tmp_path / "files", tmp_path / "backups", clock.now(), 30)

        restored = restore_backup(result.database, url, tmp_path / "files")
        assert (restored.backup_revision, restored.revision) == ("0001", HEAD)
        snapshot = _db_snapshot(url)
        assert [u["email"] for u in snapshot["users"]] == ["old@example.com"]
        assert sorted(p["code"] for p in snapshot["subscription_plans"]) == ["basic", "free", "pro"]


def test_retention_deletes_only_our_old_backups(svc: Services, clock: FakeClock) -> None:
    backups = svc.settings.backup_dir
    backups.mkdir(parents=True)
    now = clock.now()  # 2026-01-05 12:00 UTC
    stamp = lambda delta: (now - delta).strftime("%Y%m%d_%H%M%S")  # noqa: E731
    old = [
        f"db_backup_{stamp(timedelta(days=8))}.sql.gz",
        f"db_backup_{stamp(timedelta(days=30))}.sqlite.gz",
        f"files_backup_{stamp(timedelta(days=7, seconds=1))}.tar.gz",
        f"db_backup_{stamp(timedelta(days=9))}.sql.gz.part",  # left by a killed run
    ]
    kept = [
        f"db_backup_{stamp(timedelta(days=7))}.sql.gz",  # exactly at the limit
        f"files_backup_{stamp(timedelta(days=1))}.tar.gz",
        "db_backup_20200101_000000.sql",  # not a name we write
        "my_db_backup_20200101_000000.sql.gz",
        "db_backup_20201301_000000.sql.gz",  # not a real date
        "files_backup_20200101_000000.zip",
        "notes.txt",
    ]
    for name in old + kept:
        (backups / name).write_bytes(b"x")
    os.utime(backups / kept[1], (0, 0))  # the name decides, not the mtime
    (backups / "db_backup_20200101_000000.sqlite.gz.d").mkdir()
    (backups / "db_backup_20200102_000000.sqlite.gz").mkdir()  # a directory: left alone

    result = _backup(svc, clock, retention_days=7)

    assert sorted(p.name for p in result.removed) == sorted(old)
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [
            *kept,
            result.database.name,
            result.files.name,
            "db_backup_20200101_000000.sqlite.gz.d",
            "db_backup_20200102_000000.sqlite.gz",
        ]
    )
    assert prune_backups(backups, now, 0) == []  # 0 keeps everything


def test_an_interrupted_backup_leaves_no_complete_looking_file(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.settings.storage_dir.mkdir(parents=True)
    (svc.settings.storage_dir / "a.txt").write_bytes(b"a")

    def killed(source: Path, out: Path) -> None:
        out.write_bytes(b"\x1f\x8b half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_module, "_archive_dir", killed)
    with pytest.raises(KeyboardInterrupt):
        _backup(svc, clock)
    names = sorted(p.name for p in svc.settings.backup_dir.iterdir())
    assert not any(n.startswith("files_backup_") for n in names)  # neither final nor .part
    assert not any(n.endswith((".part", ".tmp")) for n in names)


def test_a_second_backup_in_the_same_second_is_refused(svc: Services, clock: FakeClock) -> None:
    _backup(svc, clock)
    with pytest.raises(BackupError, match="already exists"):
        _backup(svc, clock)


@postgres_only
def test_pg_dump_problems_are_reported(svc: Services, clock: FakeClock, tmp_path: Path) -> None:
    s = svc.settings
    with pytest.raises(BackupError, match="pg_dump-missing not found.*postgresql-client"):
        create_backup(
            s.database_url, s.storage_dir, s.backup_dir, clock.now(), 30, pg_dump="pg_dump-missing"
        )
    base, _, _ = s.database_url.rpartition("/")
    with pytest.raises(BackupError, match='pg_dump failed .*database "no_such_db" does not exist'):
        create_backup(f"{base}/no_such_db", s.storage_dir, s.backup_dir, clock.now(), 30)
    assert list(s.backup_dir.iterdir()) == []


@sqlite_only
def test_a_missing_sqlite_database_is_reported(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(BackupError, match="does not exist"):
        create_backup(
            f"sqlite:///{tmp_path / 'absent.db'}",
            tmp_path / "files",
            tmp_path / "backups",
            clock.now(),
            30,
        )
    assert not (tmp_path / "absent.db").exists()


def test_cli_backup_and_restore(
    api: TestClient,
    svc: Services,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _seed(api, svc)
    s = svc.settings
    monkeypatch.setenv("TRANSLATOR_DATABASE_URL", s.database_url)
    monkeypatch.setenv("TRANSLATOR_STORAGE_DIR", str(s.storage_dir))
    monkeypatch.setenv("TRANSLATOR_BACKUP_DIR", str(tmp_path / "unused"))
    monkeypatch.setenv("TRANSLATOR_LOG_LEVEL", "WARNING")
    db_before, files_before = _db_snapshot(s.database_url), _files_snapshot(s.storage_dir)
    runner = CliRunner()

    target = tmp_path / "cli-backups"
    target.mkdir()
    (target / "db_backup_20000101_000000.sql.gz").write_bytes(b"ancient")
    out = runner.invoke(main, ["backup", "--dir", str(target), "--retention-days", "7"])
    assert out.exit_code == 0, out.output
    db_archive, files_archive = (Path(line) for line in out.stdout.splitlines())
    assert db_archive.parent == target and db_archive.name.startswith("db_backup_")
    assert files_archive.is_file() and files_archive.name.startswith("files_backup_")
    assert "removed old backup" in out.stderr
    assert not (target / "db_backup_20000101_000000.sql.gz").exists()
    assert not (tmp_path / "unused").exists()

    _change_everything(api, svc, clock)

    refused = runner.invoke(main, ["restore", str(db_archive), "--files", str(files_archive)])
    assert refused.exit_code == 1
    assert "--yes" in refused.output
    missing = runner.invoke(main, ["restore", str(tmp_path / "nope.sql.gz"), "--yes"])
    assert missing.exit_code == 1
    assert "Error: backup archive" in missing.output and "not found" in missing.output

    done = runner.invoke(main, ["restore", str(db_archive), "--files", str(files_archive), "--yes"])
    assert done.exit_code == 0, done.output
    assert "restored 5 files" in done.stdout
    assert _db_snapshot(s.database_url) == db_before
    assert _files_snapshot(s.storage_dir) == files_before


def test_cli_backup_defaults_to_the_configured_directory(
    svc: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRANSLATOR_DATABASE_URL", svc.settings.database_url)
    monkeypatch.setenv("TRANSLATOR_STORAGE_DIR", str(tmp_path / "no-files-yet"))
    monkeypatch.setenv("TRANSLATOR_BACKUP_DIR", str(tmp_path / "configured"))
    monkeypatch.setenv("TRANSLATOR_LOG_LEVEL", "WARNING")
    out = CliRunner().invoke(main, ["backup"])
    assert out.exit_code == 0, out.output
    paths = [Path(line) for line in out.stdout.splitlines()]
    assert [p.parent for p in paths] == [tmp_path / "configured"] * 2
    with tarfile.open(paths[1]) as tar:
        assert tar.getnames() == []  # nothing stored yet: an empty archive
