"""Backups and restores of the translator's database and stored files (seed 000 §4).

One run writes a pair of archives into the backup directory, named by the UTC time:

    db_backup_20260105_120000.sqlite.gz   SQLite: a consistent copy made with the backup API
    db_backup_20260105_120000.sql.gz      PostgreSQL: ``pg_dump`` plain SQL
    files_backup_20260105_120000.tar.gz   the storage directory (uploads and translations)

With ``TRANSLATOR_FILE_STORAGE=database`` the documents are rows of the database
(``stored_files``, ``file_chunks``) and travel in the database archive; the files
archive then holds an empty directory.

Every archive is written under a ``.part`` name, read back in full, and only then
renamed, so an archive with a final name is always complete. A restore checks the
whole archive before it touches anything, replaces the database in one transaction,
and then runs the migrations so an older backup comes up at the current schema;
a files archive then replaces the storage directory (unpacked beside it, swapped in).
Stop the translator (API and workers) before restoring.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from common.clock import ensure_utc
from common.db import is_sqlite, make_engine, normalize_url
from common.logs import get_logger

log = get_logger(__name__)

STAMP_FORMAT = "%Y%m%d_%H%M%S"
CHUNK = 1024 * 1024
SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MARK = b"PostgreSQL database dump"
PG_DUMP_OPTIONS = ("--format=plain", "--no-owner", "--clean", "--if-exists")
# Only names we write ourselves are ever pruned; ``.part`` leftovers of killed runs too.
_OUR_NAME = re.compile(
    r"^(?P<kind>db|files)_backup_(?P<stamp>\d{8}_\d{6})\.(sqlite\.gz|sql\.gz|tar\.gz)(\.part)?$"
)
# Dropped first inside the restore transaction, so tables that a newer migration
# added (and the dump does not know) cannot block migrating the restored data.
_PG_DROP_PUBLIC_TABLES = b"""\
SET client_min_messages = warning;
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('DROP TABLE IF EXISTS public.%I CASCADE', r.tablename);
  END LOOP;
END $$;
"""


class BackupError(Exception):
    """A backup or restore could not be done; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    database: Path
    files: Path
    database_bytes: int
    files_bytes: int
    removed: tuple[Path, ...] = ()

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.database, self.files


@dataclass(frozen=True)
class RestoreResult:
    database_archive: Path
    files_archive: Path | None
    backup_revision: str
    revision: str | None  # after migrations; None when they were not run
    files_restored: int | None


# --- backup -----------------------------------------------------------------


def create_backup(
    database_url: str,
    storage_dir: Path | str,
    backup_dir: Path | str,
    now: datetime,
    retention_days: int,
    *,
    pg_dump: str = "pg_dump",
) -> BackupResult:
    """Back up the database and the storage directory, then prune our backups
    older than ``retention_days`` (0 keeps everything)."""
    if retention_days < 0:
        raise BackupError(f"retention_days must be 0 or more, not {retention_days}")
    url = normalize_url(database_url)
    sqlite = is_sqlite(url)
    backup_dir = Path(backup_dir)
    backup_dir.mkdir(parents=True, exist_ok=True)
    stamp = ensure_utc(now).strftime(STAMP_FORMAT)
    db_path = backup_dir / f"db_backup_{stamp}.{'sqlite' if sqlite else 'sql'}.gz"
    files_path = backup_dir / f"files_backup_{stamp}.tar.gz"
    for path in (db_path, files_path):
        if path.exists():
            raise BackupError(f"{path} already exists; backups are named by the second, retry")

    try:
        with _atomic_output(db_path) as part:
            if sqlite:
                _dump_sqlite(url, part)
            else:
                _dump_postgres(url, part, pg_dump)
            _check_written_dump(part, SQLITE_MAGIC if sqlite else PG_DUMP_MARK)
        log.info("backup.created", path=str(db_path), bytes=db_path.stat().st_size)
        with _atomic_output(files_path) as part:
            _archive_dir(Path(storage_dir), part)
            _check_files_archive(part)
        log.info("backup.created", path=str(files_path), bytes=files_path.stat().st_size)
    except (OSError, tarfile.TarError) as exc:
        log.error("backup.failed", error=str(exc))
        raise BackupError(f"writing the backup into {backup_dir} failed: {exc}") from exc
    except BackupError as exc:
        log.error("backup.failed", error=str(exc))
        raise

    removed = prune_backups(backup_dir, now, retention_days)
    return BackupResult(
        database=db_path,
        files=files_path,
        database_bytes=db_path.stat().st_size,
        files_bytes=files_path.stat().st_size,
        removed=tuple(removed),
    )


def prune_backups(backup_dir: Path | str, now: datetime, retention_days: int) -> list[Path]:
    """Delete our archives whose name stamp is more than ``retention_days`` before
    ``now``. The name, not the mtime, decides: copying backups around keeps their age."""
    if retention_days <= 0:
        return []
    cutoff = ensure_utc(now) - timedelta(days=retention_days)
    removed: list[Path] = []
    for entry in sorted(Path(backup_dir).iterdir()):
        match = _OUR_NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        try:
            taken = datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            continue  # looks like ours but is not a real date: not ours to delete
        if taken < cutoff:
            entry.unlink(missing_ok=True)
            removed.append(entry)
            log.info("backup.pruned", path=str(entry), taken=taken.isoformat())
    return removed


@contextlib.contextmanager
def _atomic_output(final: Path) -> Iterator[Path]:
    part = final.with_name(final.name + ".part")
    try:
        yield part
        part.chmod(0o600)  # archives hold token hashes and payment tokens
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere (e.g. Windows)
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _dump_sqlite(url: str, out: Path) -> None:
    source = _sqlite_path(url)
    if not source.is_file():
        raise BackupError(f"SQLite database {source} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=".db_backup_", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        # One step is one read transaction: a consistent snapshot even while the
        # translator keeps writing (WAL readers are never blocked by writers).
        _sqlite_copy(source, tmp, f"copying SQLite database {source}")
        with open(tmp, "rb") as raw, gzip.open(out, "wb", compresslevel=6) as gz:
            shutil.copyfileobj(raw, gz, CHUNK)
    finally:
        _unlink_sqlite(tmp)


def _sqlite_copy(source: Path, target: Path, what: str, lock_timeout: float = 30.0) -> None:
    """Copy every page of ``source`` into ``target`` in one backup step."""
    deadline = time.monotonic() + lock_timeout

    def give_up_when_locked(status: int, _remaining: int, _total: int) -> None:
        # Python's backup() retries a locked database forever; bound the wait.
        if status in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) and time.monotonic() > deadline:
            raise BackupError(
                f"{what} failed: the database stayed locked for {lock_timeout:.0f} s "
                "(stop the translator's API and workers first)"
            )

    try:
        src = sqlite3.connect(source, timeout=1)
        try:
            dst = sqlite3.connect(target, timeout=1)
            try:
                src.backup(dst, progress=give_up_when_locked)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{what} failed: {exc}") from exc


def _libpq_args(url: str) -> tuple[str, dict[str, str]]:
    """A libpq conninfo string for pg_dump/psql, and an environment carrying the
    password (kept out of the command line, where ``ps`` would show it)."""
    parsed = make_url(normalize_url(url))
    params: dict[str, str] = {}
    for key, value in (
        ("host", parsed.host),
        ("port", parsed.port),
        ("user", parsed.username),
        ("dbname", parsed.database),
    ):
        if value:
            params[key] = str(value)
    for key, value in parsed.query.items():  # sslmode, host=/socket/dir, ...
        params[key] = value[-1] if isinstance(value, tuple) else value
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    conninfo = " ".join(
        f"{key}='{value.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
        for key, value in params.items()
    )
    return conninfo, env


def _executable(name: str, purpose: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found (needed to {purpose}); install the PostgreSQL client tools "
            "(e.g. apt-get install postgresql-client) matching the server's major version"
        )
    return found


def _tail(stream: IO[bytes], limit: int = 1500) -> str:
    stream.seek(0)
    text = stream.read().decode("utf-8", "replace").strip()
    return ("..." + text[-limit:]) if len(text) > limit else (text or "(no output)")


def _dump_postgres(url: str, out: Path, pg_dump: str) -> None:
    exe = _executable(pg_dump, "back up PostgreSQL")
    conninfo, env = _libpq_args(url)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [exe, *PG_DUMP_OPTIONS, "--dbname", conninfo],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
        )
        assert proc.stdout is not None
        try:
            with gzip.open(out, "wb", compresslevel=6) as gz:
                shutil.copyfileobj(proc.stdout, gz, CHUNK)
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            raise BackupError(f"pg_dump failed (exit {code}): {_tail(err)}")


def _archive_dir(source: Path, out: Path) -> None:
    """Archive the storage directory with paths relative to it (``tar -C dir .``)."""
    with tarfile.open(out, "w:gz", compresslevel=6) as tar:
        if not source.is_dir():
            return  # nothing stored yet: an empty archive keeps the pair complete
        for path in sorted(source.rglob("*")):
            if path.name.endswith(".part"):
                continue  # a write in progress (see FileStorage.write)
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                log.warning("backup.skipped", path=str(path), reason="not a regular file")
                continue
            try:
                tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
            except FileNotFoundError:
                continue  # removed meanwhile, e.g. an expired temporary upload


# --- checking archives -------------------------------------------------------


def _open_gzip(path: Path) -> IO[bytes]:
    if not path.is_file():
        raise BackupError(f"backup archive {path} not found")
    return gzip.open(path, "rb")


def _gzip_head(path: Path, size: int = 256) -> bytes:
    try:
        with _open_gzip(path) as gz:
            return gz.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"backup archive {path} is corrupt: {exc}") from exc


def _kind_of(head: bytes) -> str | None:
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if PG_DUMP_MARK in head:
        return "postgresql"
    return None


def _check_written_dump(path: Path, mark: bytes) -> None:
    """Read the new archive back in full: the gzip CRC proves it is intact."""
    try:
        with gzip.open(path, "rb") as gz:
            head = gz.read(256)
            while gz.read(CHUNK):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"verifying {path} failed: {exc}") from exc
    if mark not in head:
        raise BackupError(f"verifying {path} failed: it does not look like a database dump")


def _check_files_archive(path: Path) -> int:
    """Read a files archive to its end and vet every member; returns the file count."""
    if not path.is_file():
        raise BackupError(f"files archive {path} not found")
    count = 0
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = member.name
                if name.startswith("/") or ".." in Path(name).parts:
                    raise BackupError(f"files archive {path} has an unsafe path: {name}")
                if not (member.isfile() or member.isdir()):
                    raise BackupError(f"files archive {path} holds a link or device: {name}")
                if member.isfile():
                    fh = tar.extractfile(member)
                    assert fh is not None
                    while fh.read(CHUNK):  # reading the data checks the gzip CRC
                        pass
                    count += 1
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"files archive {path} is corrupt: {exc}") from exc
    return count


def _known_revision(revision: str | None, archive: Path) -> str:
    from alembic.script import ScriptDirectory

    from translator.db import MIGRATIONS_DIR

    if not revision:
        raise BackupError(f"{archive} is not a translator backup: it has no schema revision")
    try:
        ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(revision)
    except Exception as exc:  # alembic raises several kinds for an unknown id
        raise BackupError(
            f"{archive} is at schema revision {revision}, which this translator does not "
            "know (taken by a newer release?); restore it with that release"
        ) from exc
    return revision


def _sql_dump_revision(path: Path) -> str | None:
    """Read the whole dump (checking the gzip CRC) and return its alembic revision."""
    revision: str | None = None
    try:
        with gzip.open(path, "rb") as gz:
            lines = iter(gz)
            for line in lines:
                if line.startswith(b"COPY public.alembic_version "):
                    value = next(lines, b"").strip()
                    if value and value != b"\\.":
                        revision = value.decode("ascii", "replace")
    except (OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"backup archive {path} is corrupt: {exc}") from exc
    return revision


def _sqlite_copy_revision(path: Path, archive: Path) -> str | None:
    try:
        conn = sqlite3.connect(path)  # our private temporary copy
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise BackupError(
                    f"backup archive {archive} holds a damaged SQLite database: {problems[:3]}"
                )
            if not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone():
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            return row[0] if row else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(
            f"backup archive {archive} holds no usable SQLite database: {exc}"
        ) from exc


# --- restore -----------------------------------------------------------------


def restore_backup(
    archive: Path | str,
    database_url: str,
    storage_dir: Path | str,
    files_archive: Path | str | None = None,
    *,
    migrate: bool = True,
    psql: str = "psql",
) -> RestoreResult:
    """Replace the database (and, given ``files_archive``, the storage directory)
    with a backup. Both archives are checked in full first; on any error before
    the database step nothing has changed, and the database step is one transaction."""
    archive = Path(archive)
    url = normalize_url(database_url)
    want = "sqlite" if is_sqlite(url) else "postgresql"
    kind = _kind_of(_gzip_head(archive))
    if kind is None:
        raise BackupError(f"{archive} is not a database backup (neither SQLite nor a pg_dump)")
    if kind != want:
        shown = make_url(url).render_as_string(hide_password=True)
        raise BackupError(
            f"{archive} is a {kind} backup but {shown} is a {want} database; "
            f"restore it into a {kind} database"
        )
    files = Path(files_archive) if files_archive is not None else None
    if files is not None:
        _check_files_archive(files)

    try:
        if want == "sqlite":
            revision = _restore_sqlite(archive, url)
        else:
            revision = _known_revision(_sql_dump_revision(archive), archive)
            _restore_postgres(archive, url, psql)
        log.info("backup.restored", path=str(archive), revision=revision)
        current = _migrate(url) if migrate else None
        restored = None
        if files is not None:
            try:
                restored = _restore_files(files, Path(storage_dir))
            except BackupError as exc:
                raise BackupError(f"{exc} (the database was already restored)") from exc
    except BackupError as exc:
        log.error("backup.restore_failed", path=str(archive), error=str(exc))
        raise
    return RestoreResult(archive, files, revision, current, restored)


def _restore_sqlite(archive: Path, url: str) -> str:
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.restore-", suffix=".tmp", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            with gzip.open(archive, "rb") as gz, open(tmp, "wb") as raw:
                shutil.copyfileobj(gz, raw, CHUNK)
        except (OSError, EOFError, zlib.error) as exc:
            raise BackupError(f"backup archive {archive} is corrupt: {exc}") from exc
        revision = _known_revision(_sqlite_copy_revision(tmp, archive), archive)
        if not target.exists():
            os.replace(tmp, target)
            return revision
        # Copy into the existing file rather than renaming over it: a rename would
        # pair the new file with the old file's -wal/-shm and with connections still
        # open on the old inode. One backup step is one write transaction on the
        # target, so the database is either fully old or fully restored.
        _sqlite_copy(tmp, target, f"restoring into {target}")
        return revision
    finally:
        _unlink_sqlite(tmp)


def _unlink_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _restore_postgres(archive: Path, url: str, psql: str) -> None:
    exe = _executable(psql, "restore PostgreSQL")
    conninfo, env = _libpq_args(url)
    command = [
        exe,
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "--dbname",
        conninfo,
    ]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, env=env
        )
        assert proc.stdin is not None
        try:
            proc.stdin.write(_PG_DROP_PUBLIC_TABLES)
            with gzip.open(archive, "rb") as gz:
                shutil.copyfileobj(gz, proc.stdin, CHUNK)
        except BrokenPipeError:
            pass  # psql stopped at an error; its exit code and stderr tell which
        except BaseException:
            proc.kill()
            raise
        finally:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
        if code != 0:
            raise BackupError(
                f"psql failed (exit {code}); the restore was rolled back and the database "
                f"left as it was: {_tail(err)}"
            )


def _migrate(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from translator.db import upgrade

    engine = make_engine(url)
    try:
        try:
            upgrade(engine)
        except Exception as exc:
            raise BackupError(f"the backup was restored but migrating it failed: {exc}") from exc
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _restore_files(archive: Path, storage_dir: Path) -> int:
    """Unpack next to the storage directory, then swap the directories, so a
    failed unpack leaves the current files alone."""
    storage_dir = storage_dir.absolute()
    parent = storage_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{storage_dir.name}.restore-", dir=parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, filter="data")
            else:  # Python < 3.11.4: members were vetted by _check_files_archive
                tar.extractall(staging)
        count = sum(1 for p in staging.rglob("*") if p.is_file())
        staging.chmod(storage_dir.stat().st_mode & 0o7777 if storage_dir.exists() else 0o755)
        old = parent / f".{storage_dir.name}.old-{uuid.uuid4().hex[:8]}"
        had_files = storage_dir.exists()
        if had_files:
            os.replace(storage_dir, old)
        try:
            os.replace(staging, storage_dir)
        except OSError:
            if had_files:
                os.replace(old, storage_dir)
            raise
        shutil.rmtree(old, ignore_errors=True)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"restoring files into {storage_dir} failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("backup.files_restored", path=str(archive), files=count, storage_dir=str(storage_dir))
    return count
