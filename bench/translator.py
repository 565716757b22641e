"""Translator benchmarks, one command:

    .venv/bin/python bench/translator.py [--jobs 400] [--postgres URL]

1. Queue throughput (jobs/s) with the offline provider on SQLite and on
   PostgreSQL, 1 worker thread (the baseline) and 4 worker threads.
2. Latency overhead of the request middleware (metrics + logging + request
   id): the same app with and without it, p50 and p99 per request, measured
   in-process in alternating rounds so machine noise hits both alike.

Figures are medians over repeats; ratios compare with the baseline of the
same run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from common.clock import SystemClock  # noqa: E402
from common.db import normalize_url  # noqa: E402
from common.logs import configure_logging  # noqa: E402
from translator.app import create_app  # noqa: E402
from translator.db import Database  # noqa: E402
from translator.files.models import File, FileStatus  # noqa: E402
from translator.jobs.service import create_job  # noqa: E402
from translator.services import build_services  # noqa: E402
from translator.settings import TranslatorSettings  # noqa: E402


def _services(url: str, tmp: Path, workers: int):  # type: ignore[no-untyped-def]
    settings = TranslatorSettings(
        database_url=url,
        storage_dir=tmp / "files",
        workers=workers,
        worker_poll_seconds=0.01,
        scheduler_enabled=False,
    )
    return build_services(settings, clock=SystemClock(), migrate=False)


def _fill(services, count: int, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp / "doc.txt"
    source.write_text("Hello world. The document is ready.\n\nPlease read the report today.")
    blocks = ["Hello world. The document is ready.", "Please read the report today."]
    with services.db.session() as s:
        for i in range(count):
            f = File(
                original_name=f"d{i}.txt",
                file_format="txt",
                size_bytes=60,
                file_path=str(source),
                status=FileStatus.pending,
                source_lang="en",
                target_lang="ru",
                created_at=services.clock.now(),
            )
            s.add(f)
            s.flush()
            create_job(s, f, blocks, "offline", services.clock.now())


def _wait_done(services, expected: int, timeout: float = 600) -> None:  # type: ignore[no-untyped-def]
    from translator.metrics import queue_snapshot

    deadline = time.monotonic() + timeout
    while queue_snapshot(services.db, services.clock.now())["jobs"].get("completed", 0) < expected:
        if time.monotonic() > deadline:
            raise SystemExit(f"queue did not finish {expected} jobs in {timeout:.0f}s")
        time.sleep(0.02)


def queue_throughput(url: str, jobs: int, workers: int, tmp: Path) -> float:
    services = _services(url, tmp, workers)
    _fill(services, jobs, tmp)
    started = time.perf_counter()
    services.workers.start()
    _wait_done(services, jobs)
    elapsed = time.perf_counter() - started
    services.close()
    return jobs / elapsed


def _fresh_sqlite(tmp: Path) -> str:
    url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    Database(url).migrate()
    return url


class _FreshPostgres:
    def __init__(self, server_url: str) -> None:
        self.admin = create_engine(normalize_url(server_url), isolation_level="AUTOCOMMIT")
        self.base = normalize_url(server_url).rpartition("/")[0]
        self.names: list[str] = []

    def __call__(self, _tmp: Path) -> str:
        name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        url = f"{self.base}/{name}"
        db = Database(url)
        db.migrate()
        db.dispose()
        return url

    def drop_all(self) -> None:
        with self.admin.connect() as c:
            for name in self.names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def bench_queue(backends: dict, jobs: int, repeats: int) -> None:
    print(f"\n## Queue throughput, offline provider, {jobs} jobs of 2 blocks (median of {repeats})")
    print(f"{'backend':<12}{'1 worker':>14}{'4 workers':>14}{'ratio':>8}")
    for name, fresh in backends.items():
        results = {}
        for workers in (1, 4):
            runs = []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as d:
                    tmp = Path(d)
                    runs.append(queue_throughput(fresh(tmp), jobs, workers, tmp))
            results[workers] = statistics.median(runs)
        print(
            f"{name:<12}{results[1]:>10.1f} j/s{results[4]:>10.1f} j/s"
            f"{results[4] / results[1]:>7.2f}x"
        )


async def _latencies(app, n: int, path: str, headers: dict) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for _ in range(n):
            t0 = time.perf_counter()
            r = await client.get(path, headers=headers)
            out.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def bench_middleware(rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url = _fresh_sqlite(tmp)
        services = _services(url, tmp, 0)
        from translator.accounts.service import create_user

        with services.db.session() as s:
            _, token = create_user(s, "bench@example.com", services.clock.now())
        headers = {"Authorization": f"Bearer {token}"}
        log_file = open(tmp / "requests.log", "w")  # noqa: SIM115 - real log writes
        configure_logging("INFO", stream=log_file)
        apps = {
            "without": create_app(services, run_background=False, instrument=False),
            "with": create_app(services, run_background=False, instrument=True),
        }
        results: dict[str, dict[str, list[float]]] = {}
        for path in ("/api/plans", "/api/jobs"):
            samples: dict[str, list[float]] = {"without": [], "with": []}
            for name in samples:  # warm-up
                asyncio.run(_latencies(apps[name], 50, path, headers))
            for _ in range(rounds):
                for name in samples:
                    samples[name] += asyncio.run(_latencies(apps[name], per_round, path, headers))
            results[path] = samples
        log_file.close()
        logging.getLogger().handlers.clear()
        services.close()
    print(
        f"\n## Request middleware overhead (metrics + logging + request id), "
        f"{rounds * per_round} requests per variant, in-process"
    )
    print(f"{'route':<12}{'':<10}{'p50 µs':>10}{'p99 µs':>10}")
    for path, samples in results.items():
        for name in ("without", "with"):
            print(
                f"{path:<12}{name:<10}{_pct(samples[name], 0.5):>10.0f}"
                f"{_pct(samples[name], 0.99):>10.0f}"
            )
        d50 = _pct(samples["with"], 0.5) - _pct(samples["without"], 0.5)
        d99 = _pct(samples["with"], 0.99) - _pct(samples["without"], 0.99)
        ratio = _pct(samples["with"], 0.5) / _pct(samples["without"], 0.5)
        print(f"{path:<12}{'overhead':<10}{d50:>+10.0f}{d99:>+10.0f}   (p50 ratio {ratio:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # queue runs: measure the queue, not the log writes

    backends: dict = {"sqlite": _fresh_sqlite}
    pg = None
    if not args.no_postgres:
        pg = _FreshPostgres(args.postgres)
        backends["postgresql"] = pg
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    try:
        bench_queue(backends, args.jobs, args.repeats)
    finally:
        if pg is not None:
            pg.drop_all()
    logging.disable(logging.NOTSET)
    bench_middleware(args.rounds, args.per_round)


if __name__ == "__main__":
    main()
