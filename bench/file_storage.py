"""Document storage throughput, one command:

    .venv/bin/python bench/file_storage.py [--sizes 1,16,64] [--repeats 5] [--postgres URL]

Uploads (``write`` from a stream of 64 KB pieces, as a request body arrives) and
downloads (``iter_chunks``, as ``GET /api/files/{id}/download`` streams) through the
two storage backends of ``translator.files.storage``: local disk (the baseline) and
the PostgreSQL database (``TRANSLATOR_FILE_STORAGE=database``), in MB/s, median of
``--repeats``, with the ratio to disk. Then the peak of Python memory while a whole
document goes up and comes down again (tracemalloc), which stays near one chunk
whatever the document's size: neither backend holds a whole document.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from common.db import normalize_url  # noqa: E402
from translator.db import Database  # noqa: E402
from translator.files.storage import (  # noqa: E402
    CHUNK_BYTES,
    DatabaseStorage,
    FileStorage,
    LocalDiskStorage,
)

MB = 1024 * 1024
PIECE = 64 * 1024


def body(size: int, seed: bytes) -> Iterator[bytes]:
    """``size`` bytes in pieces, made as they are asked for (never all at once)."""
    block = (seed * (PIECE // len(seed) + 1))[:PIECE]
    sent = 0
    while sent < size:
        piece = block[: min(PIECE, size - sent)]
        sent += len(piece)
        yield piece


def drain(chunks: Iterator[bytes]) -> int:
    return sum(len(c) for c in chunks)


def measure(storage: FileStorage, size: int, repeats: int) -> tuple[float, float]:
    """Median upload and download MB/s for documents of ``size`` bytes."""
    ups, downs = [], []
    for _ in range(repeats):
        key = storage.new_path(datetime.now(UTC), "txt")
        started = time.perf_counter()
        storage.write(key, body(size, uuid.uuid4().bytes))
        ups.append(time.perf_counter() - started)
        started = time.perf_counter()
        got = drain(storage.iter_chunks(key))
        downs.append(time.perf_counter() - started)
        assert got == size, (got, size)
        storage.delete(key)
    mb = size / MB
    return mb / statistics.median(ups), mb / statistics.median(downs)


def peak_memory(storage: FileStorage, size: int) -> tuple[float, float]:
    """Peak Python allocations (MB) during one upload and one download."""
    key = storage.new_path(datetime.now(UTC), "txt")
    tracemalloc.start()
    storage.write(key, body(size, b"peak"))
    _, up = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    drain(storage.iter_chunks(key))
    _, down = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    storage.delete(key)
    return up / MB, down / MB


class FreshPostgres:
    """A throwaway database on the server, migrated; dropped by ``drop``."""

    def __init__(self, server_url: str) -> None:
        self.admin = create_engine(
            normalize_url(server_url),
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 5},
        )
        self.name = f"vigil_bench_files_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = f"{normalize_url(server_url).rpartition('/')[0]}/{self.name}"
        self.db = Database(self.url)
        self.db.migrate()

    def drop(self) -> None:
        self.db.dispose()
        with self.admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def report(postgres_url: str, sizes_mb: list[float], repeats: int) -> None:
    """Prints upload and download throughput of each backend beside local disk, then
    peak memory (a fresh PostgreSQL database, dropped afterwards)."""
    sizes = [int(size * MB) for size in sizes_mb]
    pg = FreshPostgres(postgres_url)
    try:
        with tempfile.TemporaryDirectory(prefix="vigil-bench-files-") as tmp:
            backends: dict[str, FileStorage] = {
                "local disk (baseline)": LocalDiskStorage(Path(tmp) / "files"),
                "PostgreSQL database": DatabaseStorage(pg.db),
            }
            print(
                f"Document storage, chunks of {CHUNK_BYTES // 1024} KB, uploads streamed in "
                f"{PIECE // 1024} KB pieces; MB/s, median of {repeats}.\n"
            )
            print(
                f"{'size':>6}  {'backend':<22} {'upload':>9} {'download':>9}  "
                f"{'upload vs disk':>14} {'download vs disk':>16}"
            )
            for size in sizes:
                base: tuple[float, float] | None = None
                for name, storage in backends.items():
                    up, down = measure(storage, size, repeats)
                    base = base or (up, down)
                    print(
                        f"{size / MB:>4.0f}MB  {name:<22} {up:>9.1f} {down:>9.1f}  "
                        f"{up / base[0]:>13.2f}x {down / base[1]:>15.2f}x"
                    )
            largest = max(sizes)
            print(
                f"\nPeak Python memory moving one {largest / MB:.0f} MB document "
                "(upload, download):"
            )
            for name, storage in backends.items():
                up, down = peak_memory(storage, largest)
                print(f"  {name:<22} {up:6.1f} MB, {down:6.1f} MB")
    finally:
        pg.drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,16,64", help="document sizes in MB")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    report(args.postgres, [float(s) for s in args.sizes.split(",")], args.repeats)


if __name__ == "__main__":
    main()
