"""Translator queue benchmark, one command:

    .venv/bin/python bench/translator.py [--jobs 400] [--postgres URL] [--baseline REV]

Queue throughput with the offline provider on SQLite and on PostgreSQL, 1
and 4 worker threads in one process, and what each job costs: CPU time,
statements (BEGIN/COMMIT and pre-pings counted apart) and transactions, seen
at the DBAPI level so every path is counted alike.

``--baseline REV`` measures the git revision REV (exported to a temporary
directory) in the same run, alternating with this tree, so machine noise hits
both alike. Every measurement runs in a fresh process on a fresh database.
Figures are medians over ``--repeats``; ratios compare with the baseline.

``--file-storage`` adds upload and download throughput of the database file
storage beside local disk (``bench/file_storage.py``'s measurement, sizes from
``--file-sizes``). The request middleware's overhead is measured by
``bench/middleware.py``."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A measurement process imports the tree under test (this one, or the baseline's).
TREE = Path(os.environ.get("BENCH_TREE", REPO))
sys.path.insert(0, str(TREE))

PING_SQL = {"select 1", ";", ""}
TRANSACTION_SQL = ("begin", "commit", "rollback")


class StatementCounter:
    """Counts what reaches the database driver, per kind of statement."""

    def __init__(self) -> None:
        self.counts: dict[str, itertools.count] = {}
        self.snapshot: dict[str, int] = {}

    def hit(self, kind: str) -> None:
        counter = self.counts.get(kind)
        if counter is None:
            counter = self.counts.setdefault(kind, itertools.count())
        next(counter)  # atomic under the GIL

    def observe_sql(self, sql: str) -> None:
        text = sql.strip().lower()
        if text in PING_SQL:
            self.hit("ping")
        elif text.startswith(TRANSACTION_SQL):
            self.hit("commit" if text.startswith("commit") else "begin/rollback")
        else:
            self.hit(text.split(None, 1)[0].upper())

    def install(self, engine) -> None:  # type: ignore[no-untyped-def]
        from sqlalchemy import event

        counter = self

        @event.listens_for(engine, "connect")
        def _count(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            if engine.dialect.name == "sqlite":
                dbapi_conn.set_trace_callback(counter.observe_sql)
                return
            import psycopg

            class CountingCursor(psycopg.Cursor):  # type: ignore[type-arg]
                def execute(self, query, params=None, **kw):  # type: ignore[no-untyped-def]
                    counter.observe_sql(str(query))
                    if self.connection.autocommit:
                        counter.hit("autocommit")
                    return super().execute(query, params, **kw)

                def executemany(self, query, params_seq, **kw):  # type: ignore[no-untyped-def]
                    params_seq = list(params_seq)
                    for _ in params_seq:
                        counter.observe_sql(str(query))
                    return super().executemany(query, params_seq, **kw)

            dbapi_conn.cursor_factory = CountingCursor
            commit = dbapi_conn.commit

            def counted_commit() -> None:
                counter.hit("commit")
                commit()

            dbapi_conn.commit = counted_commit

    def start(self) -> None:
        self.snapshot = self.read()

    def read(self) -> dict[str, int]:
        # A fresh count() object reports its next value without consuming it.
        return {k: int(repr(c)[6:-1]) for k, c in self.counts.items()}

    def since_start(self) -> dict[str, int]:
        deltas = {k: v - self.snapshot.get(k, 0) for k, v in self.read().items()}
        return {k: v for k, v in deltas.items() if v}


def _fill(services, count: int, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    from translator.files.models import File, FileStatus
    from translator.jobs.service import create_job

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


def measure(url: str, workers: int, jobs: int, tmp: Path) -> dict:
    """Run ``jobs`` jobs through ``workers`` threads of this process."""
    import logging

    from common.clock import SystemClock
    from translator.db import Database
    from translator.services import build_services
    from translator.settings import TranslatorSettings

    logging.disable(logging.CRITICAL)  # measure the queue, not the log writes
    db = Database(url)
    db.migrate()
    db.dispose()
    settings = TranslatorSettings(
        database_url=url,
        storage_dir=tmp / "files",
        workers=workers,
        worker_poll_seconds=0.01,
        scheduler_enabled=False,
    )
    services = build_services(settings, clock=SystemClock(), migrate=False)
    counter = StatementCounter()
    counter.install(services.db.engine)
    services.db.engine.dispose()  # connections opened while building are counted too
    _fill(services, jobs, tmp)
    completed = services.metrics.jobs_finished.labels("completed")._value
    counter.start()
    cpu, started = time.process_time(), time.perf_counter()
    services.workers.start()
    deadline = started + 600
    while completed.get() < jobs:  # in-process: waiting costs no queries
        if time.perf_counter() > deadline:
            raise SystemExit(f"the queue did not finish {jobs} jobs in 600 s")
        time.sleep(0.002)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    counts = counter.since_start()
    services.close()
    return {"jobs_per_s": jobs / elapsed, "cpu_ms_per_job": cpu * 1000 / jobs, "counts": counts}


class Databases:
    """A fresh database per measurement: a SQLite file, or a PostgreSQL database."""

    def __init__(self, postgres_url: str) -> None:
        self.postgres_url = postgres_url

    def create(self, backend: str, tmp: Path) -> str:
        if backend == "sqlite":
            return f"sqlite:///{tmp / 'bench.db'}"
        from sqlalchemy import create_engine, text

        from common.db import normalize_url

        name = f"vigil_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(normalize_url(self.postgres_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return f"{normalize_url(self.postgres_url).rpartition('/')[0]}/{name}"

    def drop(self, url: str) -> None:
        if url.startswith("sqlite"):
            return
        from sqlalchemy import create_engine, text

        from common.db import normalize_url

        name = url.rpartition("/")[2]
        admin = create_engine(normalize_url(self.postgres_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _measure_in_child(tree: Path, backend: str, workers: int, jobs: int, postgres: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            backend,
            "--workers",
            str(workers),
            "--jobs",
            str(jobs),
            "--postgres",
            postgres,
        ],
        env={**os.environ, "BENCH_TREE": str(tree)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if out.returncode != 0:
        raise SystemExit(f"measurement in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _export(revision: str, into: Path) -> Path:
    """The tree of a git revision, as files (its own migrations, its own code)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", revision],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True, timeout=60)
    return into


def _per_job(counts: dict[str, int], jobs: int) -> str:
    apart = ("ping", "commit", "begin/rollback", "autocommit")
    statements = {k: v for k, v in counts.items() if k not in apart}
    total = sum(statements.values()) / jobs
    parts = " + ".join(f"{v / jobs:.1f} {k}" for k, v in sorted(statements.items()))
    return f"{total:.1f} ({parts})"


def _transactions(counts: dict[str, int], jobs: int) -> float:
    return (counts.get("commit", 0) + counts.get("autocommit", 0)) / jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 4])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--baseline", metavar="REV", help="also measure this git revision")
    parser.add_argument(
        "--file-storage", action="store_true", help="also measure the file storage backends"
    )
    parser.add_argument("--file-sizes", default="1,16", help="document sizes in MB")
    parser.add_argument("--no-queue", action="store_true", help="skip the queue measurement")
    parser.add_argument("--measure", choices=["sqlite", "postgresql"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    databases = Databases(args.postgres)
    if args.measure:  # a child: one measurement, one JSON line
        with tempfile.TemporaryDirectory() as d:
            url = databases.create(args.measure, Path(d))
            try:
                result = measure(url, args.workers[0], args.jobs, Path(d))
            finally:
                databases.drop(url)
        print(json.dumps(result))
        return

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    if not args.no_queue:
        queue(args)
    if args.file_storage:
        # bench/ is not a package: its sibling is imported from the tree under test.
        sys.path.insert(0, str(REPO / "bench"))
        from file_storage import report

        print(f"\n## Files, local disk and the database (median of {args.repeats})")
        report(args.postgres, [float(s) for s in args.file_sizes.split(",")], args.repeats)


def queue(args: argparse.Namespace) -> None:
    backends = ([] if args.no_sqlite else ["sqlite"]) + ([] if args.no_postgres else ["postgresql"])
    with tempfile.TemporaryDirectory() as d:
        trees = {"this tree": REPO}
        if args.baseline:
            trees = {f"baseline {args.baseline}": _export(args.baseline, Path(d)), **trees}
        print(
            f"\n## Queue, offline provider, {args.jobs} jobs of 2 blocks, one process "
            f"(median of {args.repeats})"
        )
        print(
            f"{'backend':<11}{'workers':>8}  {'tree':<22}{'jobs/s':>8}{'CPU ms/job':>12}"
            f"{'xact/job':>10}{'pings/job':>10}  statements/job"
        )
        for backend in backends:
            for workers in args.workers:
                runs: dict[str, list[dict]] = {name: [] for name in trees}
                for _ in range(args.repeats):
                    for name, tree in trees.items():
                        runs[name].append(
                            _measure_in_child(tree, backend, workers, args.jobs, args.postgres)
                        )
                rates = {}
                for name, results in runs.items():
                    rate = statistics.median(r["jobs_per_s"] for r in results)
                    cpu = statistics.median(r["cpu_ms_per_job"] for r in results)
                    counts = results[len(results) // 2]["counts"]
                    rates[name] = rate
                    print(
                        f"{backend:<11}{workers:>8}  {name:<22}{rate:>8.1f}{cpu:>12.2f}"
                        f"{_transactions(counts, args.jobs):>10.2f}"
                        f"{counts.get('ping', 0) / args.jobs:>10.2f}  "
                        f"{_per_job(counts, args.jobs)}"
                    )
                if len(rates) == 2:
                    base, ours = rates.values()
                    print(f"{'':<21}{'ratio':<22}{ours / base:>7.2f}x")


if __name__ == "__main__":
    main()
