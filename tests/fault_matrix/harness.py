"""The fault matrix's harness: the real translator and the real sentinel as
processes (``translator serve``, ``sentinel serve``), on databases copied from a
template holding two weeks of history, the fake Twilio the sentinel pages
through, and seeded users driving traffic. One case reads::

    with run_stack(template, workdir) as stack:
        fault_at = stack.inject({...})       # healthy traffic first, then the fault, at once
        alerts = stack.wait_for(...)         # what the sentinel says (GET /api/alerts)
        stack.pages()                        # the SMS the fake Twilio received

The template (history, seeded users, backfilled SQL signals) is built once per
backend and copied for each case, so every case starts from the same two weeks
and no case sees another's alerts or traffic. Times are wall-clock seconds
(``time.time()``): the processes, the fake Twilio and the test share one clock.
Everything waits on state, boundedly; nothing sleeps blindly."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from sqlalchemy import create_engine, make_url, select, text

from common.db import normalize_url
from common.files import write_atomic
from sentinel.catalogue import load_catalogue
from sentinel.operations import backfill_signal
from sentinel.service import build_sentinel
from sentinel.settings import DEFAULT_CATALOGUE, SentinelSettings
from sentinel.sources.base import BackfillUnsupported
from tests.conftest import POSTGRES_URL
from tests.daemons import Daemon, free_port
from tests.fakes.twilio_server import FakeTwilioServer
from tests.identity import ADMIN_HEADERS, ADMIN_TOKEN
from translator.accounts.models import User
from translator.demo import seed_history, seed_users
from translator.services import build_services
from translator.settings import TranslatorSettings

T = TypeVar("T")

HISTORY_DAYS = 14
HISTORY_SEED = 20261204  # the same two weeks on every run
# As the demo does: 2,016 samples per series over two weeks, enough to learn
# daily and weekly rhythms from, without a million one-second rows.
BACKFILL_STEP = timedelta(minutes=10)
# Ordinary traffic, watched by a sentinel that has evaluated every signal, for
# at least this long before a fault is switched on (the case checks nothing
# fired); longer where a prior pools a window (see steady_seconds).
HEALTHY_SECONDS = 5.0
PROCESS_START_TIMEOUT = 60.0  # a cold start of either process on a busy machine
ON_CALL_PHONE = "+15550001111"

# The test's alerting: whoever is on call gets an SMS the moment any alert
# fires. Nothing batches (group_wait 0) and nothing escalates to a call, so a
# page's arrival time measures detection and delivery, not a chosen wait.
ALERTING_YAML = f"""\
people:
  oncall: {{name: On-call engineer, phone: "{ON_CALL_PHONE}"}}
schedules:
  around-the-clock:
    name: around-the-clock
    time_zone: UTC
    layers:
      - name: everyone
        rotation: {{participants: [oncall], start: "2026-01-05T00:00", handoff: weekly}}
policies:
  sms:
    steps:
      - notify: {{schedules: [around-the-clock]}}
        channels: [sms]
        wait_minutes: 60
routes:
  - name: page-by-sms
    policy: sms
    group_by: [signal, service]
    group_wait_seconds: 0
"""


# --- the template: seeded users, two weeks of history, backfilled signals ----


@dataclass(frozen=True)
class Template:
    translator_url: str
    sentinel_url: str
    catalogue: Path  # the default catalogue, sampled every second
    alerting: Path
    tokens: dict[str, str]  # email -> API token of the seeded users
    user_ids: dict[str, int]  # email -> id
    backfilled: dict[str, int]  # signal -> samples stored


def one_second_catalogue(source: Path, target: Path) -> Path:
    """Write ``source`` with every signal's ``interval_seconds`` set to 1 and
    nothing else changed (checked on the loaded models)."""
    data = yaml.safe_load(source.read_text())
    for signal in data["signals"]:
        signal["interval_seconds"] = 1
    header = f"# {source.name} with every interval_seconds set to 1; nothing else changed.\n"
    target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    original, derived = load_catalogue(source), load_catalogue(target)
    expected = [s.model_copy(update={"interval_seconds": 1}).model_dump() for s in original.signals]
    if [s.model_dump() for s in derived.signals] != expected:
        raise AssertionError(f"{target} differs from {source} by more than the intervals")
    return target


def steady_seconds(catalogue: Path, signals: list[str]) -> float:
    """How long healthy traffic must run before a fault so that it meets the
    sentinel in its steady state: HEALTHY_SECONDS, or the longest window a prior
    of ``signals`` pools over. A fault in a window still filling with healthy
    traffic would cross a pooled threshold sooner than it does in production."""
    windows = [
        float(spec.prior.params.get("window_seconds") or 0)
        for spec in load_catalogue(catalogue).signals
        if spec.name in signals and spec.prior is not None
    ]
    return max([HEALTHY_SECONDS, *windows])


def build_template(workdir: Path, translator_url: str, sentinel_url: str) -> Template:
    """Seed users and two weeks of history into ``translator_url``; backfill
    every signal whose source can look back into ``sentinel_url``."""
    workdir.mkdir(parents=True, exist_ok=True)
    catalogue = one_second_catalogue(DEFAULT_CATALOGUE, workdir / "catalogue.yaml")
    alerting = workdir / "alerting.yaml"
    alerting.write_text(ALERTING_YAML)
    services = build_services(
        TranslatorSettings(
            database_url=translator_url,
            storage_dir=workdir / "files",
            backup_dir=workdir / "backups",
            workers=0,
            scheduler_enabled=False,
        )
    )
    try:
        tokens = seed_users(services)
        seed_history(services, HISTORY_DAYS, random.Random(HISTORY_SEED))
        with services.db.session() as s:
            user_ids = {u.email: u.id for u in s.scalars(select(User))}
    finally:
        services.close()
    sentinel = build_sentinel(
        SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=translator_url,
            catalogue=catalogue,
            alerting=alerting,
            outbox_file=workdir / "outbox.jsonl",
        )
    )
    backfilled = {}
    # Two weeks of windows include quiet nights, each logged as "no data": expected here.
    logging.disable(logging.WARNING)
    try:
        for spec in sentinel.catalogue.signals:
            with contextlib.suppress(BackfillUnsupported):  # scrape and push see only now
                backfilled[spec.name] = backfill_signal(
                    sentinel, spec.name, HISTORY_DAYS, BACKFILL_STEP
                )
    finally:
        logging.disable(logging.NOTSET)
        sentinel.close()
    return Template(translator_url, sentinel_url, catalogue, alerting, tokens, user_ids, backfilled)


@contextlib.contextmanager
def copy_of(url: str, workdir: Path, label: str) -> Iterator[str]:
    """A private copy of the database at ``url``: a file copy for SQLite, a
    ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL (dropped afterwards)."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        target = workdir / f"{label}.db"
        source = sqlite3.connect(make_url(url).database or "")
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # consistent even if a WAL is in use
        finally:
            copy.close()
            source.close()
        yield f"sqlite:///{target}"
        return
    template = make_url(url).database
    name = f"vigil_fm_{label}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- traffic -----------------------------------------------------------------


class Traffic:
    """The seeded users, each in a thread of their own (a slow answer to one
    does not hold the others back): every second a user lists their jobs;
    every other second they pay, card and wallet in turn; every third second
    they upload a document. With three users: 3 job lists, 1.5 payments
    (0.75 per method) and 1 upload a second."""

    PERIOD_SECONDS = 1.0

    def __init__(self, base_url: str, tokens: dict[str, str]) -> None:
        self.base_url = base_url
        self.users = {e: t for e, t in tokens.items() if not e.startswith("admin")}
        self.outcomes: Counter[tuple[str, int]] = Counter()  # (what, status) -> count
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, (email, token) in enumerate(sorted(self.users.items())):
            thread = threading.Thread(
                target=self._user, args=(index, token), name=f"traffic-{email}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def count(self, what: str, status: int | None = None) -> int:
        with self._lock:
            return sum(
                n for (w, s), n in self.outcomes.items() if w == what and status in (None, s)
            )

    def _user(self, index: int, token: str) -> None:
        # Users start a third of a period apart, so requests spread over the second.
        if self._stop.wait(index * self.PERIOD_SECONDS / 3):
            return
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=self.base_url, timeout=10, trust_env=False) as client:
            tick = 0
            while not self._stop.is_set():
                started = time.monotonic()
                self._request(client, "jobs", "GET", "/api/jobs", headers=headers)
                if tick % 2 == 0:
                    method = ("card", "wallet")[(tick // 2 + index) % 2]
                    pay_token = "tok_visa" if method == "card" else "wallet_ok"
                    body = {"plan": "basic", "method": method, "token": pay_token}
                    pay = "/api/payments/checkout"
                    self._request(client, f"pay {method}", "POST", pay, headers=headers, json=body)
                if tick % 3 == 0:
                    files = {"file": ("letter.txt", f"Hello world. Letter {tick}.".encode())}
                    data = {"source_lang": "en", "target_lang": "de"}
                    self._request(
                        client,
                        "upload",
                        "POST",
                        "/api/files",
                        headers=headers,
                        files=files,
                        data=data,
                    )
                tick += 1
                self._stop.wait(max(0.0, self.PERIOD_SECONDS - (time.monotonic() - started)))

    def _request(self, client: httpx.Client, what: str, method: str, url: str, **kw: Any) -> None:
        try:
            status = client.request(method, url, **kw).status_code
        except httpx.HTTPError:
            status = 0  # no answer at all
        with self._lock:
            self.outcomes[(what, status)] += 1


# --- the processes -----------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One SMS as the fake Twilio received it."""

    at: float  # wall-clock seconds
    to: str
    body: str


def _start(name: str, module: str, port: int, env: dict[str, str], workdir: Path) -> Daemon:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**_clean_environment(), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Daemon(name, f"http://127.0.0.1:{port}", process, log_path)


def _clean_environment() -> dict[str, str]:
    """This environment without settings that would redirect either process or
    the Twilio client (a developer's own TRANSLATOR_*, SENTINEL_*, TWILIO_EDGE)."""
    prefixes = ("TRANSLATOR_", "SENTINEL_", "TWILIO_", "VIGIL_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _get_json(url: str) -> Any:
    try:
        answer = httpx.get(url, headers=ADMIN_HEADERS, timeout=5, trust_env=False)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def _wait_healthy(daemon: Daemon, ready: Callable[[dict[str, Any]], bool]) -> None:
    deadline = time.monotonic() + PROCESS_START_TIMEOUT
    while True:
        if daemon.process.poll() is not None:
            raise RuntimeError(
                f"{daemon.name} exited with {daemon.process.returncode}:\n{daemon.log_tail(40)}"
            )
        health = _get_json(daemon.url + "/api/health")
        if health is not None and ready(health):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{daemon.name} not ready after {PROCESS_START_TIMEOUT:g}s:\n{daemon.log_tail(40)}"
            )
        time.sleep(0.1)


def parse_time(value: str | None) -> float | None:
    """An API timestamp as wall-clock seconds (naive ones are UTC)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass
class Stack:
    """A running translator and sentinel, their traffic and the fake Twilio."""

    translator: Daemon
    sentinel: Daemon
    twilio: FakeTwilioServer
    traffic: Traffic
    started_at: float  # when the sentinel process was launched
    faults_file: Path  # the translator watches it: replacing it switches faults
    # What happened when (wall clock): launches, readiness; quoted when a case fails.
    timeline: dict[str, float] = field(default_factory=dict)
    fault_at: float | None = None

    def when(self, origin: float) -> str:
        return ", ".join(f"{k} {v - origin:+.1f}s" for k, v in self.timeline.items())

    # --- when the fault starts ---

    def inject(self, faults: dict[str, Any], healthy_seconds: float = HEALTHY_SECONDS) -> float:
        """Once the run is healthy (the sentinel leads and has evaluated every
        signal, users get answers, ``healthy_seconds`` pass), switch ``faults`` on
        in the running translator by replacing its watched faults file; returns the
        instant it was replaced. The translator applies it at its next fault check,
        the next request, so the time a page takes is counted from this instant."""
        self.wait_until_evaluated(deadline=time.time() + PROCESS_START_TIMEOUT)
        healthy_until = time.time() + healthy_seconds
        self.wait_for(lambda: None, healthy_until)
        assert self.traffic.count("jobs", 200) > 0, f"no healthy traffic: {self.traffic.outcomes}"
        write_atomic(self.faults_file, json.dumps({"seed": 1, **faults}) + "\n")
        self.fault_at = self.timeline["fault switched on"] = time.time()
        return self.fault_at

    def wait_until_evaluated(self, deadline: float) -> None:
        """Until every signal has a sample taken since the sentinel started."""
        unread: list[str] = []

        def every_signal_read() -> bool:
            signals = _get_json(self.sentinel.url + "/api/signals") or []
            unread[:] = [
                s["name"]
                for s in signals
                if not any((parse_time(x["last_t"]) or 0) >= self.started_at for x in s["series"])
            ]
            return bool(signals) and not unread

        if not self.wait_for(every_signal_read, deadline):
            raise AssertionError(
                f"harness: the sentinel had not evaluated {unread} within "
                f"{PROCESS_START_TIMEOUT:g}s; relative to then: {self.when(deadline)}; "
                "sentinel log:\n" + self.sentinel.log_tail(30)
            )
        self.timeline["every signal evaluated"] = time.time()

    # --- what the sentinel and the fake Twilio saw ---

    def alerts(self) -> list[dict[str, Any]]:
        return _get_json(self.sentinel.url + "/api/alerts?limit=1000") or []

    def fired(self) -> list[dict[str, Any]]:
        """Alerts that reached firing (whatever their state now), oldest first."""
        return sorted(
            (a for a in self.alerts() if a["firing_at"] is not None),
            key=lambda a: parse_time(a["firing_at"]) or 0,
        )

    def signal_names(self) -> list[str]:
        return [s["name"] for s in _get_json(self.sentinel.url + "/api/signals") or []]

    def signal(self, name: str) -> dict[str, Any] | None:
        return _get_json(self.sentinel.url + f"/api/signals/{name}")

    def groups(self) -> list[dict[str, Any]]:
        return _get_json(self.sentinel.url + "/api/groups") or []

    def pages(self, since: float = 0.0) -> list[Page]:
        return [
            Page(r.received_at, r.param("To") or "", r.param("Body") or "")
            for r in self.twilio.requests
            if r.resource == "Messages" and r.received_at >= since
        ]

    def injected(self, kind: str) -> int:
        """How many times the translator logged injecting a fault of ``kind``."""
        return self.translator.log_path.read_text(errors="replace").count(
            f"event=fault.injected kind={kind}"
        )

    def translator_log(self, lines: int = 20) -> str:
        return self.translator.log_tail(lines)

    @staticmethod
    def wait_for(probe: Callable[[], T | None], deadline: float, every: float = 0.2) -> T | None:
        """``probe()``'s first answer that is not None (nor empty), polling until
        the wall-clock ``deadline``; None if there was none by then."""
        while True:
            result = probe()
            if result:
                return result
            if time.time() >= deadline:
                return None
            time.sleep(min(every, max(0.0, deadline - time.time())))


@contextlib.contextmanager
def run_stack(template: Template, workdir: Path) -> Iterator[Stack]:
    """Both processes on fresh copies of the template's databases, the fake
    Twilio, and traffic flowing; everything stopped and dropped afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        copy_of(template.translator_url, workdir, "translator") as translator_url,
        copy_of(template.sentinel_url, workdir, "sentinel") as sentinel_url,
        FakeTwilioServer() as twilio,
    ):
        translator_port, sentinel_port = free_port(), free_port()
        event_log = workdir / "translator-events.log"  # what the log signals count
        faults_file = workdir / "faults.json"
        write_atomic(faults_file, "{}\n")  # no faults until a case switches them on
        translator_env = {
            "TRANSLATOR_DATABASE_URL": translator_url,
            "TRANSLATOR_STORAGE_DIR": str(workdir / "files"),
            "TRANSLATOR_BACKUP_DIR": str(workdir / "backups"),
            "TRANSLATOR_LOG_FILE": str(event_log),
            "TRANSLATOR_FAULTS_FILE": str(faults_file),
        }
        # Both processes share one identity store whose first start makes the test admin.
        identity_env = {
            "VIGIL_IDENTITY_DATABASE_URL": f"sqlite:///{workdir / 'identity.db'}",
            "VIGIL_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        translator_env.update(identity_env)
        sentinel_env = {
            **identity_env,
            "SENTINEL_DATABASE_URL": sentinel_url,
            "SENTINEL_TRANSLATOR_DATABASE_URL": translator_url,
            "SENTINEL_CATALOGUE": str(template.catalogue),
            "SENTINEL_SCRAPE_TARGETS": json.dumps([f"http://127.0.0.1:{translator_port}/metrics"]),
            # No fault here is a host's; the host signals have their own tests against a
            # real node exporter. A closed port: "no data", which does not page.
            "SENTINEL_NODE_TARGETS": json.dumps([f"http://127.0.0.1:{free_port()}/metrics"]),
            "SENTINEL_TRANSLATOR_LOG_FILE": str(event_log),
            "SENTINEL_ALERTING": str(template.alerting),
            "SENTINEL_PUBLIC_URL": f"http://127.0.0.1:{sentinel_port}",
            "SENTINEL_OUTBOX_FILE": str(workdir / "outbox.jsonl"),
            "SENTINEL_TWILIO_ACCOUNT_SID": twilio.account_sid,
            "SENTINEL_TWILIO_AUTH_TOKEN": twilio.auth_token,
            "SENTINEL_TWILIO_FROM_NUMBER": "+15005550006",
            "SENTINEL_TWILIO_BASE_URL": twilio.base_url,
        }
        # The translator first, as in production where the watched service is
        # already up (a sentinel whose first scrape fails records a no-data
        # series); then the sentinel.
        timeline = {"translator launched": time.time()}
        translator = _start(
            "translator", "translator.cli", translator_port, translator_env, workdir
        )
        sentinel: Daemon | None = None
        traffic: Traffic | None = None
        try:
            _wait_healthy(translator, lambda h: h.get("status") == "healthy")
            timeline["translator ready"] = time.time()
            traffic = Traffic(translator.url, template.tokens)
            traffic.start()
            started_at = timeline["sentinel launched"] = time.time()
            sentinel = _start("sentinel", "sentinel.cli", sentinel_port, sentinel_env, workdir)
            _wait_healthy(sentinel, lambda h: bool(h.get("leader")))
            timeline["sentinel leads"] = time.time()
            yield Stack(translator, sentinel, twilio, traffic, started_at, faults_file, timeline)
        finally:
            if traffic is not None:
                traffic.stop()
            if sentinel is not None:
                sentinel.stop()
            translator.stop()
