"""The database's clock. Leases and heartbeats that several processes (on
several hosts) compare must be stamped and judged by one clock, the
database server's, never by each process's own, which may be skewed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from common.clock import ensure_utc

# SQLite is embedded: its clock is the host's, read through SQLite itself.
_SQLITE_NOW = text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")


def database_now(session: Session | Connection) -> datetime:
    """The database server's current time (UTC, timezone-aware)."""
    if session.get_bind().dialect.name == "sqlite":
        stamp = session.execute(_SQLITE_NOW).scalar_one()
        return datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    # clock_timestamp(), not now(): now() is frozen at the start of the transaction.
    return ensure_utc(session.execute(select(func.clock_timestamp())).scalar_one())
