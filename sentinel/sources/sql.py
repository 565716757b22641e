"""``sql`` signals: a SELECT over the translator's business tables.

The query gets ``:start`` and ``:end`` (UTC, the window ``[now - window, now)``)
and returns a ``value`` column, optionally ``volume``; every other column is a
label naming a sub-series (one row each).

Running it, in layers (the guard in ``sql_guard`` refused writes at load time):

- the text runs wrapped as ``SELECT * FROM (<query>) AS sentinel_q LIMIT :n``,
  so the database's own parser sees exactly one SELECT (a second statement is
  a syntax error) and the bound LIMIT keeps PostgreSQL on the extended
  protocol, which never runs two statements;
- inside a transaction made read-only here as well (``SET TRANSACTION READ
  ONLY`` on PostgreSQL, ``PRAGMA query_only`` on SQLite), on an engine opened
  read-only by ``common.db.make_engine(url, read_only=True)``; always rolled back;
- with a time limit: ``SET LOCAL statement_timeout`` on PostgreSQL, a progress
  handler on SQLite.

Portability: SQLite stores the translator's timestamps as naive-UTC text and
PostgreSQL as timestamptz, so ``:start``/``:end`` are bound through
``common.db.UTCDateTime`` and compare correctly on both. For durations and ages
use PostgreSQL's ``date_part('epoch', ts)``; the source provides the same
function on SQLite, so one query works on both."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import URL, Connection, Engine, TextClause, bindparam, make_url, text
from sqlalchemy.exc import DBAPIError

from common.db import UTCDateTime
from common.logs import get_logger
from sentinel.sources.base import (
    Labels,
    Reading,
    SeriesPoint,
    SourceFault,
    as_utc,
    backfill_times,
    labels_of,
)
from sentinel.sources.sql_guard import CheckedSelect, validate_select

log = get_logger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_ROWS = 1000

# ---------------------------------------------------------------------------
# Example queries for the business signals, against the translator's schema.
# Each runs unchanged on SQLite and PostgreSQL.

FAILED_PAYMENTS_SQL = """
SELECT m.method AS method,
       SUM(CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END) AS value,
       COUNT(p.id) AS volume
FROM (SELECT 'card' AS method UNION ALL SELECT 'wallet') AS m
LEFT JOIN payments AS p
  ON p.method = m.method AND p.created_at >= :start AND p.created_at < :end
GROUP BY m.method
"""
"""Failed payments per method in the window; volume = attempts. One row per
method even in a quiet window (a zero with volume 0, not "no data"); promo
payments are left out as they never reach a gateway."""

FAILED_PAYMENTS_RATIO_SQL = """
SELECT method,
       SUM(CASE WHEN status = 'failed' THEN 1.0 ELSE 0.0 END) / COUNT(*) AS value,
       COUNT(*) AS volume
FROM payments
WHERE created_at >= :start AND created_at < :end AND method IN ('card', 'wallet')
GROUP BY method
"""
"""Share of payments that failed, per method; volume = attempts. A method
without attempts has no ratio, so it has no row (no data, not 0%)."""

QUEUE_LAG_SQL = """
SELECT COALESCE(date_part('epoch', :end) - date_part('epoch', MIN(enqueued_at)), 0) AS value,
       COUNT(*) AS volume
FROM translation_queue
WHERE enqueued_at <= :end AND (claimed_at IS NULL OR claimed_at > :end)
"""
"""Queue lag: age in seconds of the oldest job waiting at ``:end`` (0 when
none waits); volume = queue depth. "Waiting at T" is read from enqueued_at and
claimed_at rather than the current status, so a backfill sees the past queue
(a retried job only shows its latest wait)."""

QUEUE_DEPTH_SQL = """
SELECT COUNT(*) AS value
FROM translation_queue
WHERE enqueued_at <= :end AND (claimed_at IS NULL OR claimed_at > :end)
"""
"""Queue depth: jobs waiting at ``:end``."""

JOBS_PROCESSING_VS_CAPACITY_SQL = """
SELECT COUNT(*) * 1.0 / :capacity AS value,
       :capacity AS volume
FROM translation_jobs
WHERE started_at <= :end
  AND (finished_at > :end OR (finished_at IS NULL AND status = 'processing'))
"""
"""Jobs being processed at ``:end`` as a share of worker capacity (1.0 =
saturated); volume = capacity. Capacity is not in the database: give it as
``params: {capacity: N}`` (worker threads times processes)."""

JOB_PROCESSING_SECONDS_SQL = """
SELECT AVG(date_part('epoch', finished_at) - date_part('epoch', started_at)) AS value,
       COUNT(*) AS volume
FROM translation_jobs
WHERE finished_at >= :start AND finished_at < :end AND started_at IS NOT NULL
"""
"""Average processing time (seconds, last attempt) of the jobs that finished
in the window, completed or failed; volume = jobs. No job finished: no data."""

EXAMPLE_QUERIES: dict[str, str] = {
    "payments.failed": FAILED_PAYMENTS_SQL,
    "payments.failed_ratio": FAILED_PAYMENTS_RATIO_SQL,
    "queue.lag_seconds": QUEUE_LAG_SQL,
    "queue.depth": QUEUE_DEPTH_SQL,
    "jobs.processing_vs_capacity": JOBS_PROCESSING_VS_CAPACITY_SQL,
    "jobs.processing_seconds": JOB_PROCESSING_SECONDS_SQL,
}


class _ShapeError(Exception):
    """The query ran but its result cannot be read as a signal."""


class SqlSource:
    """Runs a guarded SELECT over one window per reading."""

    def __init__(
        self,
        engine: Engine,
        query: str | CheckedSelect,
        window: timedelta,
        *,
        value_column: str = "value",
        volume_column: str = "volume",
        params: Mapping[str, Any] | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_rows: int = DEFAULT_MAX_ROWS,
        name: str = "sql",
        database: str = "translator",
        database_url: str | None = None,
    ) -> None:
        checked = query if isinstance(query, CheckedSelect) else validate_select(query)
        if window <= timedelta(0):
            raise ValueError(f"window must be positive, got {window}")
        params = dict(params or {})
        missing = checked.binds - {"start", "end"} - params.keys()
        if missing:
            raise ValueError(f"the query uses :{min(missing)} but no value is given for it")
        self.engine = engine
        self.checked = checked
        self.window = window
        self.value_column = value_column.lower()
        self.volume_column = volume_column.lower()
        self.params = {k: v for k, v in params.items() if k in checked.binds}
        self.timeout_seconds = timeout_seconds
        self.max_rows = max_rows
        self.name = name
        # How a failure names the database: its name and where it is, never a password.
        self.source_name = f"database {database}"
        self.where = shown_url(database_url or engine.url)
        self.depends_on = (self.source_name,)
        self._statement = self._compile(checked)

    @staticmethod
    def _compile(checked: CheckedSelect) -> TextClause:
        # The newline before ")" keeps a trailing "-- comment" from eating it.
        stmt = text(f"SELECT * FROM (\n{checked.sql}\n) AS sentinel_q LIMIT :sentinel_limit")
        # Bound as UTC datetimes: naive-UTC text on SQLite (the stored format), timestamptz
        # on PostgreSQL, so comparisons with the translator's columns hold on both.
        times = [bindparam(b, type_=UTCDateTime()) for b in ("start", "end") if b in checked.binds]
        return stmt.bindparams(*times) if times else stmt

    # --- Source ---------------------------------------------------------------

    def read(self, now: datetime) -> Reading:
        now = as_utc(now)
        try:
            conn = self.engine.connect()
        except Exception as exc:  # the database cannot be opened: the source is down
            return self._unreachable(now, exc)
        try:
            with conn:
                return self._read_one(conn, now)
        except Exception as exc:
            return self._failed(now, exc)

    def read_range(self, start: datetime, end: datetime, step: timedelta) -> list[Reading]:
        """The same query over past windows, one connection, one transaction each."""
        readings: list[Reading] = []
        times = list(backfill_times(as_utc(start, "start"), as_utc(end, "end"), step))
        try:
            with self.engine.connect() as conn:
                for t in times:
                    readings.append(self._read_one(conn, t))
        except Exception as exc:  # the connection itself failed: the rest have no data
            if len(readings) < len(times):
                failed = self._failed(times[len(readings)], exc)
                rest = times[len(readings) :]
                readings.extend(Reading.empty(t, failed.no_data or "") for t in rest)
        log.info(
            "source.backfilled",
            signal=self.name,
            readings=len(readings),
            no_data=sum(1 for r in readings if not r.ok),
        )
        return readings

    def close(self) -> None:
        """The engine is shared (SourceContext owns it); nothing of ours to release."""

    # --- internals --------------------------------------------------------------

    def _read_one(self, conn: Connection, now: datetime) -> Reading:
        start = now - self.window
        try:
            with read_only_transaction(conn, self.timeout_seconds):
                result = conn.execute(self._statement, self._binds(start, now))
                columns = list(map(str, result.keys()))
                rows = result.fetchall()
        except Exception as exc:
            return self._failed(now, exc)
        try:
            points = self._points(columns, rows)
        except _ShapeError as exc:
            log.warning("source.no_data", signal=self.name, source="sql", reason=str(exc))
            return Reading.empty(now, str(exc))
        return Reading(t=now, points=points)

    def _binds(self, start: datetime, end: datetime) -> dict[str, Any]:
        binds: dict[str, Any] = {**self.params, "sentinel_limit": self.max_rows + 1}
        if "start" in self.checked.binds:
            binds["start"] = start
        if "end" in self.checked.binds:
            binds["end"] = end
        return binds

    def _unreachable(self, now: datetime, exc: BaseException) -> Reading:
        """Not this query's fault: every signal on this database fails alike, so the
        reading names the database, and the sentinel raises one alert for it."""
        reason = describe_connect_error(exc)
        log.error("source.unreachable", signal=self.name, source=self.source_name, reason=reason)
        where = f" ({self.where})" if self.where else ""
        fault = SourceFault(self.source_name, f"{reason}{where}")
        return Reading.empty(now, f"{self.source_name} cannot be read: {reason}", (fault,))

    def _failed(self, now: datetime, exc: BaseException) -> Reading:
        reason = describe_db_error(exc, self.timeout_seconds)
        log.error("source.query_failed", signal=self.name, source="sql", reason=reason)
        return Reading.empty(now, reason)

    def _points(self, columns: list[str], rows: Sequence[Any]) -> tuple[SeriesPoint, ...]:
        lowered = [c.lower() for c in columns]
        if self.value_column not in lowered:
            raise _ShapeError(
                f"the query returned no {self.value_column!r} column "
                f"(columns: {', '.join(columns) or 'none'})"
            )
        if not rows:
            raise _ShapeError("the query returned no rows")
        if len(rows) > self.max_rows:
            raise _ShapeError(
                f"the query returned more than {self.max_rows} rows; aggregate it (GROUP BY)"
            )
        v_at = lowered.index(self.value_column)
        vol_at = lowered.index(self.volume_column) if self.volume_column in lowered else None
        label_at = [i for i in range(len(columns)) if i not in (v_at, vol_at)]
        points: dict[Labels, SeriesPoint] = {}
        for row in rows:
            labels = labels_of({columns[i]: _label_text(row[i]) for i in label_at})
            value = _number(row[v_at], self.value_column)
            if value is None:
                continue  # e.g. AVG over no rows: no value for this series, not zero
            volume = _number(row[vol_at], self.volume_column) if vol_at is not None else None
            if labels in points:
                shown = ", ".join(f"{k}={v}" for k, v in labels) or "no labels"
                raise _ShapeError(
                    f"two rows have the same labels ({shown}); group by every label column"
                )
            points[labels] = SeriesPoint(labels=labels, value=value, volume=volume)
        if not points:
            raise _ShapeError(f"every row had a NULL {self.value_column!r} (nothing to measure)")
        return tuple(points[k] for k in sorted(points))


@contextlib.contextmanager
def read_only_transaction(conn: Connection, timeout_seconds: float) -> Iterator[None]:
    """A transaction that cannot write and cannot run past ``timeout_seconds``,
    whatever the engine was opened as; always rolled back."""
    dialect = conn.dialect.name
    tx = conn.begin()
    raw: Any = None
    restore_query_only = False
    try:
        if dialect == "postgresql":
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(
                f"SET LOCAL statement_timeout = {max(1, int(timeout_seconds * 1000))}"
            )
        elif dialect == "sqlite":
            raw = conn.connection.dbapi_connection
            restore_query_only = not conn.exec_driver_sql("PRAGMA query_only").scalar()
            conn.exec_driver_sql("PRAGMA query_only = ON")
            raw.create_function("date_part", 2, sqlite_date_part, deterministic=True)
            deadline = time.monotonic() + timeout_seconds
            raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        yield
    finally:
        try:
            tx.rollback()
        finally:
            if raw is not None:
                raw.set_progress_handler(None, 0)
                if restore_query_only:
                    raw.execute("PRAGMA query_only = OFF")


def sqlite_date_part(field: Any, value: Any) -> float | None:
    """PostgreSQL's ``date_part('epoch', ts)`` for SQLite's naive-UTC text timestamps."""
    if value is None:
        return None
    if str(field).lower() != "epoch":
        raise ValueError(f"date_part({field!r}, ...) is not supported on SQLite; use 'epoch'")
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def shown_url(url: object) -> str:
    """A database URL fit for a page or a log line: the password hidden."""
    if url is None:
        return ""
    try:
        parsed = make_url(str(url)) if not isinstance(url, URL) else url
    except Exception:
        return ""
    if parsed.drivername.startswith("sqlite") and not parsed.database:
        return ""  # the read-only SQLite engine's own URL names no file
    return parsed.render_as_string(hide_password=True).replace("***", "…")


def describe_connect_error(exc: BaseException) -> str:
    """Why a database could not be opened, in the driver's own words
    ("unable to open database file", "database \"x\" does not exist")."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = " ".join(str(orig).split())
    # psycopg says "connection failed: connection to server at "h", port p failed:
    # FATAL:  database "x" does not exist"; the cause is the last part (the URL names
    # the server anyway).
    for marker in ("FATAL:", " failed: "):
        if marker in message:
            message = message.rsplit(marker, 1)[1].strip()
            break
    return message[:300] or type(orig).__name__


def describe_db_error(exc: BaseException, timeout_seconds: float) -> str:
    """One line an on-call engineer can act on."""
    orig = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = (str(orig).strip().splitlines() or [""])[0][:300]
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate == "57014" or first == "interrupted":
        return f"query timed out after {timeout_seconds:g}s"
    if sqlstate == "25006" or "readonly" in first.replace("-", "").replace(" ", "").lower():
        return f"query tried to write on the read-only connection: {first}"
    return f"query failed: {type(orig).__name__}: {first}"


def _number(value: Any, column: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | Decimal):
        number = float(value)
    else:
        try:
            number = float(str(value))
        except ValueError:
            shown = str(value)[:40]
            raise _ShapeError(f"column {column!r} holds {shown!r}, not a number") from None
    return number if math.isfinite(number) else None


def _label_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)
