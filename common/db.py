"""Engine and session construction shared by every component.

SQLite is the embedded default; PostgreSQL is production. The differences that
matter to correctness are handled here once:
- SQLite runs in WAL mode with a busy timeout, and every transaction starts with
  BEGIN IMMEDIATE so a read-then-write transaction cannot deadlock on a lock
  upgrade when several threads or processes write.
- ``postgresql://`` URLs are mapped to the psycopg 3 driver.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator


def normalize_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url_or_engine: str | Engine) -> bool:
    url = url_or_engine.url if isinstance(url_or_engine, Engine) else make_url(url_or_engine)
    return url.get_backend_name() == "sqlite"


def make_engine(url: str, *, read_only: bool = False, **kwargs: Any) -> Engine:
    """Create an engine. ``read_only`` opens SQLite in ``mode=ro`` and marks
    PostgreSQL sessions read-only, for readers such as the sentinel."""
    url = normalize_url(url)
    if is_sqlite(url):
        return _sqlite_engine(url, read_only=read_only, **kwargs)
    connect_args = dict(kwargs.pop("connect_args", {}))
    if read_only:
        connect_args.setdefault("options", "-c default_transaction_read_only=on")
    # A server that does not answer (network cut) fails a connect, never hangs it.
    connect_args.setdefault("connect_timeout", 10)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, connect_args=connect_args, **kwargs)


def _sqlite_engine(url: str, *, read_only: bool, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 30)
    if read_only and not in_memory:
        # URI form so the file is opened read-only by SQLite itself.
        uri = f"file:{os.path.abspath(database)}?mode=ro"
        engine = create_engine(
            "sqlite://", creator=lambda: _connect_ro(uri, connect_args["timeout"]), **kwargs
        )
    else:
        engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event own transaction start (see below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not read_only and not in_memory:
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        if not read_only:
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _connect_ro(uri: str, timeout: float):  # type: ignore[no-untyped-def]
    import sqlite3

    return sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Constraint names every component's tables use, so migrations can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def naming_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)


class Database:
    """One component's database: the engine, sessions, and its Alembic migrations."""

    def __init__(self, url: str, migrations_dir: Path, engine: Engine | None = None) -> None:
        self.url = normalize_url(url)
        self.migrations_dir = migrations_dir
        self.engine = engine or make_engine(self.url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def migrate(self, revision: str = "head") -> None:
        upgrade(self.engine, self.migrations_dir, revision)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine, migrations_dir: Path):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, migrations_dir: Path, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine, migrations_dir), revision)


def downgrade(engine: Engine, migrations_dir: Path, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(engine, migrations_dir), revision)


def run_migrations(
    metadata: MetaData, default_url: Callable[[], str], version_table: str = "alembic_version"
) -> None:
    """The body of a component's Alembic ``env.py``. The engine comes from the
    caller (``Database.migrate``) or, for the alembic CLI, from ``default_url``."""
    from alembic import context

    engine = context.config.attributes.get("engine") or make_engine(default_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            # SQLite cannot ALTER most things in place: copy-and-move tables.
            render_as_batch=is_sqlite(engine),
            compare_type=True,
            version_table=version_table,
        )
        with context.begin_transaction():
            context.run_migrations()
