"""The queue's hot path: claim-and-load and complete, as hand-written SQL run
on a DBAPI cursor.

Every job passes through these two steps once per attempt, so they skip what
the rest of the code gets from SQLAlchemy: no statement building, compiling or
cache keys, no ORM flush, no pool checkout or pre-ping per job (a worker
keeps its own connection, see ``QueueConnection``). The SQL text is fixed, so
psycopg prepares it on the server after a few uses.

On PostgreSQL each step is a single statement (data-modifying CTEs) and runs
in autocommit: one round trip, no COMMIT. SQLite allows no DML in a CTE, so a
step is a few statements in one ``BEGIN IMMEDIATE`` transaction, each an
in-process call.

The guarantees are those of ``translator.jobs.queue``: competing workers take
different rows (``FOR UPDATE SKIP LOCKED``; SQLite serialises writers), every
claim gets a fresh token, and completion only happens under the token that
is still current, so a job is completed at most once."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from common.logs import get_logger
from translator.files.models import FileStatus
from translator.jobs.models import JobStatus, QueueStatus

log = get_logger(__name__)

Cursor = Any  # a DBAPI cursor (psycopg or sqlite3)
Translations = dict[int, str]  # block id -> translated text


@dataclass(frozen=True)
class Claim:
    job_id: int
    token: str
    worker_id: str
    attempt: int


@dataclass(frozen=True)
class Work:
    """What a worker needs to translate a claimed job."""

    file_path: str
    file_format: str
    provider: str
    source_lang: str
    target_lang: str
    blocks: list[tuple[int, str, str | None]]  # (block id, source, translation so far)


def new_token() -> str:
    return secrets.token_hex(8)


# Status literals in the SQL below: the enums' values, as the ORM stores them.
Q_QUEUED, Q_PROCESSING, Q_DONE = QueueStatus.queued, QueueStatus.processing, QueueStatus.done
J_PROCESSING, J_COMPLETED = JobStatus.processing, JobStatus.completed
F_PROCESSING, F_READY = FileStatus.processing, FileStatus.ready


class HotPath(Protocol):
    # True when every step is one statement, so autocommit makes it atomic.
    single_statement: bool

    def claim(
        self, cur: Cursor, worker_id: str, token: str, now: datetime
    ) -> tuple[Claim, Work] | None: ...

    def complete(
        self,
        cur: Cursor,
        claim: Claim,
        now: datetime,
        translated_path: str,
        translations: Translations,
        blocks_done: int,
    ) -> int | None: ...


class PostgresHotPath:
    single_statement = True

    # The blocks come back as rows of the same statement (one per block, the
    # job's columns repeated): data-modifying CTEs and the final SELECT share
    # one snapshot, and the blocks are not modified by it.
    #
    # The claim commits without waiting for its WAL flush (``set_config(...,
    # true)`` is SET LOCAL for the statement's own transaction): a claim lost
    # to a database crash only puts the job back in the queue, and the worker's
    # completion, which is synchronous, is then refused for its stale token.
    # The completion's flush also makes the claim before it durable.
    CLAIM = f"""
        WITH picked AS (
            SELECT id FROM translation_queue
            WHERE status = '{Q_QUEUED}'
            ORDER BY priority, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE translation_queue AS q
            SET status = '{Q_PROCESSING}', claimed_at = %(now)s, heartbeat_at = %(now)s,
                worker_id = %(worker_id)s, claim_token = %(token)s, attempts = q.attempts + 1
            FROM picked WHERE q.id = picked.id
            RETURNING q.job_id, q.attempts
        ), job AS (
            UPDATE translation_jobs AS j
            SET status = '{J_PROCESSING}', started_at = %(now)s
            FROM claimed WHERE j.id = claimed.job_id
            RETURNING j.id, j.file_id, j.provider, j.source_lang, j.target_lang
        ), file AS (
            UPDATE files AS f SET status = '{F_PROCESSING}'
            FROM job WHERE f.id = job.file_id
            RETURNING f.id, f.file_path, f.file_format
        )
        SELECT claimed.job_id, claimed.attempts, file.file_path, file.file_format,
               job.provider, job.source_lang, job.target_lang,
               b.id, b.source_text, b.translated_text,
               set_config('synchronous_commit', 'off', true)
        FROM claimed
        JOIN job ON job.id = claimed.job_id
        JOIN file ON file.id = job.file_id
        LEFT JOIN translation_blocks AS b ON b.job_id = claimed.job_id
        ORDER BY b.position
    """

    # The queue row is updated first and only under the current token; the
    # other updates join on its RETURNING, so a lost claim changes nothing.
    # A concurrent recovery holding the row makes this wait, then re-check the
    # token on the row's new version (and find it gone).
    COMPLETE = f"""
        WITH finished AS (
            UPDATE translation_queue
            SET status = '{Q_DONE}'
            WHERE job_id = %(job_id)s AND claim_token = %(token)s
              AND status = '{Q_PROCESSING}'
            RETURNING job_id
        ), saved AS (
            UPDATE translation_blocks AS b SET translated_text = t.text
            FROM finished, unnest(%(block_ids)s::integer[], %(texts)s::text[]) AS t(id, text)
            WHERE b.id = t.id AND b.job_id = finished.job_id
            RETURNING b.id
        ), job AS (
            UPDATE translation_jobs AS j
            SET status = '{J_COMPLETED}', finished_at = %(now)s, error_message = NULL,
                blocks_done = %(blocks_done)s
            FROM finished WHERE j.id = finished.job_id
            RETURNING j.file_id
        ), file AS (
            UPDATE files AS f
            SET status = '{F_READY}', translated_path = %(path)s, translated_at = %(now)s,
                error_message = NULL
            FROM job WHERE f.id = job.file_id
            RETURNING f.id
        )
        SELECT file.id FROM file
    """

    def claim(
        self, cur: Cursor, worker_id: str, token: str, now: datetime
    ) -> tuple[Claim, Work] | None:
        cur.execute(self.CLAIM, {"now": now, "worker_id": worker_id, "token": token})
        rows = cur.fetchall()
        if not rows:
            return None
        job_id, attempt, file_path, file_format, provider, source_lang, target_lang = rows[0][:7]
        blocks = [(r[7], r[8], r[9]) for r in rows if r[7] is not None]
        return (
            Claim(job_id, token, worker_id, attempt),
            Work(file_path, file_format, provider, source_lang, target_lang, blocks),
        )

    def complete(
        self,
        cur: Cursor,
        claim: Claim,
        now: datetime,
        translated_path: str,
        translations: Translations,
        blocks_done: int,
    ) -> int | None:
        cur.execute(
            self.COMPLETE,
            {
                "job_id": claim.job_id,
                "token": claim.token,
                "now": now,
                "path": translated_path,
                "blocks_done": blocks_done,
                "block_ids": list(translations),
                "texts": list(translations.values()),
            },
        )
        row = cur.fetchone()
        return None if row is None else row[0]


def sqlite_time(value: datetime) -> str:
    """A UTC instant as ``common.db.UTCDateTime`` stores it on SQLite."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class SqliteHotPath:
    single_statement = False

    # The status guard makes the update a no-op for a row another transaction
    # took first (writers are serialised by BEGIN IMMEDIATE anyway).
    CLAIM_QUEUE = f"""
        UPDATE translation_queue
        SET status = '{Q_PROCESSING}', claimed_at = :now, heartbeat_at = :now,
            worker_id = :worker_id, claim_token = :token, attempts = attempts + 1
        WHERE id = (
            SELECT id FROM translation_queue WHERE status = '{Q_QUEUED}'
            ORDER BY priority, id LIMIT 1
        ) AND status = '{Q_QUEUED}'
        RETURNING job_id, attempts
    """
    CLAIM_JOB = f"""
        UPDATE translation_jobs SET status = '{J_PROCESSING}', started_at = :now
        WHERE id = :job_id
        RETURNING file_id, provider, source_lang, target_lang
    """
    CLAIM_FILE = f"""
        UPDATE files SET status = '{F_PROCESSING}' WHERE id = :file_id
        RETURNING file_path, file_format
    """
    LOAD_BLOCKS = """
        SELECT id, source_text, translated_text FROM translation_blocks
        WHERE job_id = :job_id ORDER BY position
    """
    FINISH_QUEUE = f"""
        UPDATE translation_queue SET status = '{Q_DONE}'
        WHERE job_id = :job_id AND claim_token = :token AND status = '{Q_PROCESSING}'
        RETURNING job_id
    """
    SAVE_BLOCK = "UPDATE translation_blocks SET translated_text = :text WHERE id = :id"
    FINISH_JOB = f"""
        UPDATE translation_jobs
        SET status = '{J_COMPLETED}', finished_at = :now, error_message = NULL,
            blocks_done = :blocks_done
        WHERE id = :job_id
        RETURNING file_id
    """
    FINISH_FILE = f"""
        UPDATE files
        SET status = '{F_READY}', translated_path = :path, translated_at = :now,
            error_message = NULL
        WHERE id = :file_id
    """

    def claim(
        self, cur: Cursor, worker_id: str, token: str, now: datetime
    ) -> tuple[Claim, Work] | None:
        stamp = sqlite_time(now)
        row = cur.execute(
            self.CLAIM_QUEUE, {"now": stamp, "worker_id": worker_id, "token": token}
        ).fetchone()
        if row is None:
            return None
        job_id, attempt = row
        file_id, provider, source_lang, target_lang = cur.execute(
            self.CLAIM_JOB, {"now": stamp, "job_id": job_id}
        ).fetchone()
        file_path, file_format = cur.execute(self.CLAIM_FILE, {"file_id": file_id}).fetchone()
        blocks = cur.execute(self.LOAD_BLOCKS, {"job_id": job_id}).fetchall()
        return (
            Claim(job_id, token, worker_id, attempt),
            Work(file_path, file_format, provider, source_lang, target_lang, blocks),
        )

    def complete(
        self,
        cur: Cursor,
        claim: Claim,
        now: datetime,
        translated_path: str,
        translations: Translations,
        blocks_done: int,
    ) -> int | None:
        owned = cur.execute(
            self.FINISH_QUEUE, {"job_id": claim.job_id, "token": claim.token}
        ).fetchone()
        if owned is None:
            return None
        if translations:
            cur.executemany(
                self.SAVE_BLOCK, [{"id": i, "text": text} for i, text in translations.items()]
            )
        stamp = sqlite_time(now)
        (file_id,) = cur.execute(
            self.FINISH_JOB, {"now": stamp, "blocks_done": blocks_done, "job_id": claim.job_id}
        ).fetchone()
        cur.execute(self.FINISH_FILE, {"path": translated_path, "now": stamp, "file_id": file_id})
        return file_id


def hot_path_for(dialect_name: str) -> HotPath:
    if dialect_name == "postgresql":
        return PostgresHotPath()
    if dialect_name == "sqlite":
        return SqliteHotPath()
    raise ValueError(f"no queue hot path for the {dialect_name} dialect")


class QueueConnection:
    """One worker's own database connection for the hot path, checked out of
    the engine's pool once and kept for the worker's life.

    There is no pre-ping per job. A connection the server dropped fails the
    next claim, which is retried once on a new connection: a claim that failed
    changed nothing, or, if it committed just before the line dropped, it
    holds a job that no heartbeat keeps alive and that is taken back like a
    dead worker's. A completion is never retried blindly (it may have
    committed): the error goes to the processor's failure path."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.hot_path = hot_path_for(engine.dialect.name)
        self._pooled: Any = None  # SQLAlchemy's pooled DBAPI connection

    def claim(self, worker_id: str, now: datetime) -> tuple[Claim, Work] | None:
        token = new_token()
        try:
            with self._transaction() as cur:
                return self.hot_path.claim(cur, worker_id, token, now)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.warning("queue.connection_lost", worker=worker_id, retry="claim")
        with self._transaction() as cur:
            return self.hot_path.claim(cur, worker_id, token, now)

    def complete(
        self,
        claim: Claim,
        now: datetime,
        translated_path: str,
        translations: Translations,
        blocks_done: int,
    ) -> int | None:
        """Record success; the file id, or None if the claim was lost."""
        with self._transaction() as cur:
            return self.hot_path.complete(
                cur, claim, now, translated_path, translations, blocks_done
            )

    def _connection(self) -> Any:
        if self._pooled is None:
            pooled = self.engine.raw_connection()
            if self.hot_path.single_statement:
                pooled.driver_connection.autocommit = True
            self._pooled = pooled
        return self._pooled

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        dbapi = self.engine.dialect.loaded_dbapi
        pooled = self._connection()  # the pool wraps its own connect errors
        cur = None
        try:
            cur = pooled.cursor()
            if not self.hot_path.single_statement:
                cur.execute("BEGIN IMMEDIATE")
            yield cur
            if not self.hot_path.single_statement:
                cur.execute("COMMIT")
        except dbapi.Error as exc:
            disconnect = self.engine.dialect.is_disconnect(exc, pooled.driver_connection, cur)
            self._end(disconnect)
            raise DBAPIError.instance(
                None, None, exc, dbapi.Error, connection_invalidated=disconnect
            ) from exc
        except BaseException:
            self._end(False)
            raise
        finally:
            if cur is not None:
                with contextlib.suppress(Exception):
                    cur.close()

    def _end(self, disconnect: bool) -> None:
        """After an error: roll back, or drop a connection the server lost."""
        pooled = self._pooled
        if pooled is None:
            return
        if disconnect:
            self._pooled = None
            pooled.invalidate()
            return
        try:
            if not self.hot_path.single_statement:
                pooled.driver_connection.rollback()
        except Exception:
            self._pooled = None
            pooled.invalidate()

    def close(self) -> None:
        """Give the connection back to the pool as the pool lent it."""
        pooled, self._pooled = self._pooled, None
        if pooled is None:
            return
        try:
            if self.hot_path.single_statement:
                pooled.driver_connection.autocommit = False
            pooled.close()
        except Exception:
            pooled.invalidate()

    def __enter__(self) -> QueueConnection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
