"""Pages in the first ten minutes of a sentinel started before the translator, one command:

    .venv/bin/python bench/startup_pages.py [--translator-after 60] [--minutes 10]

The default catalogue and the built-in alerting configuration, on an injected clock
(the loop evaluates every 5 simulated seconds): the translator's database is a SQLite
file that does not exist yet and its /metrics port is closed, until the translator
starts ``--translator-after`` seconds in (its database created and migrated, the real
app served on that port). Counted: the pages (SMS and calls to a person) decided in
the first ``--minutes``, and in a second scenario where the translator never starts.

Baseline in the same run: the same sentinel without source alerts and start-up grace
(what the sentinel did before: each signal's no-data paged on its own)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import uvicorn
from sqlalchemy import select

# Run as a script from bench/: the repository's packages, not bench/translator.py.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.clock import FakeClock  # noqa: E402
from sentinel.db import Database  # noqa: E402
from sentinel.models import Notification  # noqa: E402
from sentinel.service import build_sentinel  # noqa: E402
from sentinel.settings import SentinelSettings  # noqa: E402
from translator.app import create_app  # noqa: E402
from translator.db import Database as TranslatorDatabase  # noqa: E402
from translator.services import build_services  # noqa: E402
from translator.settings import TranslatorSettings  # noqa: E402

STEP_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def translator(url: str, port: int, workdir: Path, clock: FakeClock) -> Iterator[None]:
    db = TranslatorDatabase(url)
    db.migrate()
    db.dispose()
    settings = TranslatorSettings(
        database_url=url,
        storage_dir=workdir / "files",
        backup_dir=workdir / "backups",
        workers=0,
        scheduler_enabled=False,
    )
    services = build_services(settings, clock=clock, sleep=lambda _s: None, migrate=False)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services, run_background=False),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        services.close()


def run(
    workdir: Path, *, features: bool, translator_after: float | None, minutes: float
) -> list[str]:
    """The pages decided in the first ``minutes``: "channel person: text" each."""
    workdir.mkdir(parents=True)
    sentinel_url = f"sqlite:///{workdir / 'sentinel.db'}"
    Database(sentinel_url).migrate()
    translator_url = f"sqlite:///{workdir / 'later' / 'translator.db'}"
    port = free_port()
    clock = FakeClock()  # Monday 12:00 UTC
    sentinel = build_sentinel(
        SentinelSettings(
            database_url=sentinel_url,
            translator_database_url=translator_url,
            scrape_targets=[f"http://127.0.0.1:{port}/metrics"],
            node_targets=[f"http://127.0.0.1:{free_port()}/metrics"],
            translator_log_file=workdir / "translator.log",
            outbox_file=workdir / "outbox.jsonl",
            backfill_days=0,
        ),
        clock=clock,
        migrate=False,
    )
    if not features:
        sentinel.health = None
    end = clock.now() + timedelta(minutes=minutes)
    starts = (
        clock.now() + timedelta(seconds=translator_after) if translator_after is not None else None
    )
    with contextlib.ExitStack() as stack:
        while clock.now() < end:
            if starts is not None and clock.now() >= starts:
                stack.enter_context(translator(translator_url, port, workdir, clock))
                starts = None
            sentinel.cycle()
            clock.advance(seconds=STEP_SECONDS)
        with sentinel.db.session() as s:
            rows = s.scalars(
                select(Notification)
                .where(Notification.channel.in_(("sms", "voice")), Notification.person.is_not(None))
                .order_by(Notification.id)
            ).all()
            pages = [f"{r.channel} {r.person}: {r.payload.get('text', '')}" for r in rows]
    sentinel.close()
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--translator-after", type=float, default=60)
    parser.add_argument("--minutes", type=float, default=10)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    scenarios = [
        (
            f"translator starts {args.translator_after:g} s after the sentinel",
            args.translator_after,
        ),
        ("translator never starts", None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (title, after) in enumerate(scenarios):
            print(f"\n{title} (injected clock, {args.minutes:g} simulated minutes):")
            for features in (False, True):
                label = "source alerts + grace" if features else "baseline (per-signal no-data)"
                pages = run(
                    Path(tmp) / f"{i}-{features}",
                    features=features,
                    translator_after=after,
                    minutes=args.minutes,
                )
                print(f"  {label:32} {len(pages)} page(s)")
                for page in pages:
                    print(f"      {page[:150]}")


if __name__ == "__main__":
    main()
