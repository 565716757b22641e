"""Shared fixtures. The suite runs on one backend per run:

    TEST_DATABASE=sqlite   (default) a fresh SQLite file per test
    TEST_DATABASE=postgres a private database on TEST_POSTGRES_URL, emptied per test

Without a reachable PostgreSQL the postgres run skips with the reason, except
under CI (``CI`` set), where it fails."""

from __future__ import annotations

import contextlib
import os
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from common.clock import FakeClock
from common.db import normalize_url

BACKEND = os.environ.get("TEST_DATABASE", "sqlite")
# A sentinel backfills empty signals in a thread when it takes the lead; tests that are
# not about that keep their history to what they write themselves.
os.environ.setdefault("SENTINEL_BACKFILL_DAYS", "0")
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
KEEP_TABLES = {"subscription_plans"}  # seed rows written by migrations
# Each component's Database class; a component's tables appear once it has one.
COMPONENT_DATABASES = (
    "common.identity.db",
    "translator.db",
    "sentinel.db",
    "release_gate.db",
    "postmortems.db",
)


def pytest_report_header(config: pytest.Config) -> str:
    return f"database backend: {BACKEND}" + (f" ({POSTGRES_URL})" if BACKEND == "postgres" else "")


def _server_url(url: str, database: str) -> str:
    base, _, _ = normalize_url(url).rpartition("/")
    return f"{base}/{database}"


def _admin_engine():  # type: ignore[no-untyped-def]
    """A connection to the PostgreSQL server, or skip (fail under CI) without one."""
    admin = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: {type(exc).__name__}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return admin


@contextlib.contextmanager
def fresh_database(tmp_path: Path, label: str = "fresh") -> Iterator[str]:
    """An empty database of the backend under test: a new SQLite file, or a
    PostgreSQL database created here and dropped afterwards."""
    if BACKEND != "postgres":
        yield f"sqlite:///{tmp_path / f'{label}.db'}"
        return
    admin = _admin_engine()
    name = f"vigil_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield _server_url(POSTGRES_URL, name)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """A private PostgreSQL database for this test run, migrated once."""
    if BACKEND != "postgres":
        yield None
        return
    with fresh_database(tmp_path_factory.mktemp("pg"), "test") as url:
        migrate_all(url)
        yield url


def migrate_all(url: str) -> None:
    """Bring every component's schema in one database to its latest revision."""
    import importlib

    for module_name in COMPONENT_DATABASES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        db = module.Database(url)
        db.migrate()
        db.dispose()


# Every engine that opened a connection during the test running now. A test hands
# stores and databases to apps and CLI commands that do not own them, and some of
# those stay referenced after the test (by the app's metrics, for one), so their
# pools would keep PostgreSQL connections open until the server's limit of 100.
_engines_of_the_test: weakref.WeakSet[Engine] = weakref.WeakSet()


@event.listens_for(Engine, "engine_connect")
def _remember_the_engine(connection: Any) -> None:
    _engines_of_the_test.add(connection.engine)


@pytest.fixture(autouse=True)
def _pools_closed_after_each_test() -> Iterator[None]:
    """Close the pooled connections of every engine the test used; an engine used
    again later (a session's) simply opens new ones."""
    yield
    for engine in list(_engines_of_the_test):
        engine.dispose()
    _engines_of_the_test.clear()


@pytest.fixture
def database_url(postgres_database: str | None, tmp_path: Path) -> Iterator[str]:
    """A database for one test, at the latest schema and empty but for seed rows."""
    if postgres_database is None:
        url = f"sqlite:///{tmp_path / 'test.db'}"
        from translator.db import Database

        db = Database(url)
        db.migrate()
        db.dispose()
        yield url
        return
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        tables = [
            row[0]
            for row in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
            if row[0] not in KEEP_TABLES and not row[0].endswith("alembic_version")
        ]
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield postgres_database


@pytest.fixture(autouse=True)
def platform_identity(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, postgres_database: str | None
) -> str:
    """Every test's services share one identity store (a SQLite file of the test, or
    the PostgreSQL test database), whose first start makes the admin of
    ``tests.identity.ADMIN_TOKEN``; every ``TestClient`` and every process started
    with this environment speaks as that admin unless a test says otherwise. The
    translator's clients are the exception: its customers send their own tokens,
    and its tests say who they are (``ADMIN_HEADERS`` for its operator route)."""
    from fastapi.testclient import TestClient

    from tests.identity import ADMIN_TOKEN

    url = postgres_database or f"sqlite:///{tmp_path / 'identity.db'}"
    monkeypatch.setenv("VIGIL_IDENTITY_DATABASE_URL", url)
    monkeypatch.setenv("VIGIL_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("VIGIL_TOKEN", ADMIN_TOKEN)
    original = TestClient.__init__

    def as_admin(self: TestClient, app: Any, *args: object, **kwargs: object) -> None:
        if getattr(app, "title", None) == "Translator":
            original(self, app, *args, **kwargs)  # type: ignore[arg-type]
            return
        headers = {
            "Authorization": f"Bearer {ADMIN_TOKEN}",
            **dict(kwargs.pop("headers", None) or {}),
        }  # type: ignore[call-overload]
        original(self, app, *args, headers=headers, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(TestClient, "__init__", as_admin)
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def svc(database_url: str, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest):
    """Translator services on the test database; ``indirect`` params set faults."""
    from tests.helpers import make_services

    services = make_services(database_url, tmp_path, clock, faults=getattr(request, "param", None))
    yield services
    services.close()


@pytest.fixture
def api(svc):  # type: ignore[no-untyped-def]
    """An HTTP client for ``svc``'s app, without background workers."""
    from tests.helpers import client_for

    with client_for(svc) as client:
        yield client


@pytest.fixture
def sentinel_url(postgres_database: str | None, database_url: str, tmp_path: Path) -> str:
    """The sentinel's database: its own SQLite file, or (on PostgreSQL) the test
    database, which it shares with the translator's tables like a small install."""
    if postgres_database is not None:
        return database_url
    from sentinel.db import Database

    url = f"sqlite:///{tmp_path / 'sentinel.db'}"
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Whatever a test does to the root logger (a CLI or configure_logging installing
    handlers, a level) is undone afterwards; added handlers are closed."""
    import logging

    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    for handler in before:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def translator_log(tmp_path: Path, restore_logging: None) -> Path:
    """This process logs to a file, as ``translator serve`` does with TRANSLATOR_LOG_FILE."""
    from common.logs import configure_logging

    path = tmp_path / "logs" / "translator.log"
    configure_logging("INFO", file=path)
    return path
