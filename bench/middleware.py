"""Request middleware overhead (metrics + request log + request id), one command:

    .venv/bin/python bench/middleware.py [--rounds 20] [--per-round 200]

1. End to end, in-process: the same translator app built with and without the
   middleware, ``GET /api/plans`` and ``GET /api/jobs`` through an in-process
   HTTP client, their requests taken in turns so machine noise hits both alike;
   p50 and p99 per request, and the p50 ratio.
2. The middleware alone: its cost per request around an app that answers at
   once, against that bare app (median of batches), in microseconds, with the
   writing of its log lines (done on the log flush thread in the end-to-end
   case, after the response) counted in.

Each request writes its log line to a real file (the process's stream);
``--log-file`` adds ``TRANSLATOR_LOG_FILE``, a second handler, as ``translator
serve`` runs with it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402

from common.clock import SystemClock  # noqa: E402
from common.logs import configure_logging  # noqa: E402
from translator.app import create_app  # noqa: E402
from translator.db import Database  # noqa: E402
from translator.metrics import TranslatorMetrics  # noqa: E402
from translator.middleware import RequestMiddleware  # noqa: E402
from translator.services import build_services  # noqa: E402
from translator.settings import TranslatorSettings  # noqa: E402

ROUTES = ("/api/plans", "/api/jobs")


async def _latencies(app, n: int, path: str, headers: dict) -> list[float]:  # type: ignore[no-untyped-def]
    return (await _interleaved({"app": app}, n, path, headers))["app"]


async def _interleaved(apps: dict, n: int, path: str, headers: dict) -> dict[str, list[float]]:
    """``n`` requests to each app, taken in turns (the order of each turn swapped
    every time), so that whatever else the machine does hits all alike."""
    out: dict[str, list[float]] = {name: [] for name in apps}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
            )
            for name, app in apps.items()
        }
        order = list(clients.items())
        for _ in range(n):
            for name, client in order:
                t0 = time.perf_counter()
                r = await client.get(path, headers=headers)
                out[name].append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
            order.reverse()
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


def end_to_end(services, rounds: int, per_round: int, headers: dict) -> None:  # type: ignore[no-untyped-def]
    apps = {
        "without": create_app(services, run_background=False, instrument=False),
        "with": create_app(services, run_background=False, instrument=True),
    }
    print(
        f"\n## End to end, in-process, {rounds * per_round} requests per variant "
        f"(rounds of {per_round}, the two apps' requests taken in turns)"
    )
    print(f"{'route':<12}{'':<10}{'p50 µs':>10}{'p99 µs':>10}")
    for path in ROUTES:
        samples: dict[str, list[float]] = {"without": [], "with": []}
        round_ratios = []  # p50 with / p50 without, per round: robust to load that drifts
        asyncio.run(_interleaved(apps, 100, path, headers))  # warm-up
        for _ in range(rounds):
            latencies = asyncio.run(_interleaved(apps, per_round, path, headers))
            for name, values in latencies.items():
                samples[name] += values
            round_ratios.append(_pct(latencies["with"], 0.5) / _pct(latencies["without"], 0.5))
        for name in ("without", "with"):
            print(
                f"{path:<12}{name:<10}{_pct(samples[name], 0.5):>10.0f}"
                f"{_pct(samples[name], 0.99):>10.0f}"
            )
        p50 = {name: _pct(values, 0.5) for name, values in samples.items()}
        d99 = _pct(samples["with"], 0.99) - _pct(samples["without"], 0.99)
        print(
            f"{path:<12}{'overhead':<10}{p50['with'] - p50['without']:>+10.0f}{d99:>+10.0f}"
            f"   (p50 ratio {p50['with'] / p50['without']:.3f}x; "
            f"median of per-round ratios {statistics.median(round_ratios):.3f}x)"
        )


async def _answer(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """An app that answers at once, as a matched route would."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"{}"})


class _Route:
    path = "/api/plans"


def alone(batches: int, per_batch: int) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/plans",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*"), (b"user-agent", b"bench")],
        "route": _Route(),
    }

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request", "body": b""}

    async def send(_message) -> None:  # type: ignore[no-untyped-def]
        return None

    apps = {"bare app": _answer, "with middleware": RequestMiddleware(_answer, TranslatorMetrics())}

    async def batch(app) -> float:  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        for _ in range(per_batch):
            await app(dict(scope), receive, send)
        # The batch's log lines are written (made into text) within its time, not
        # left to the flush thread: this is the whole cost, wherever it is paid.
        for handler in logging.getLogger().handlers:
            handler.flush()
        return (time.perf_counter() - t0) / per_batch * 1e6

    async def run() -> dict[str, list[float]]:
        per_call: dict[str, list[float]] = {name: [] for name in apps}
        for app in apps.values():  # warm-up
            await batch(app)
        for _ in range(batches):
            for name, app in apps.items():
                per_call[name].append(await batch(app))
        return per_call

    per_call = asyncio.run(run())
    print(f"\n## The middleware alone, median of {batches} batches of {per_batch} requests")
    medians = {name: statistics.median(values) for name, values in per_call.items()}
    for name, value in medians.items():
        print(f"{name:<18}{value:>8.1f} µs/request")
    cost = medians["with middleware"] - medians["bare app"]
    print(f"{'middleware cost':<18}{cost:>8.1f} µs/request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--per-batch", type=int, default=2000)
    parser.add_argument(
        "--log-file", action="store_true", help="also write each line to a log file"
    )
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        url = f"sqlite:///{tmp / 'bench.db'}"
        Database(url).migrate()
        settings = TranslatorSettings(
            database_url=url, storage_dir=tmp / "files", workers=0, scheduler_enabled=False
        )
        services = build_services(settings, clock=SystemClock(), migrate=False)
        from translator.accounts.service import create_user

        with services.db.session() as s:
            _, token = create_user(s, "bench@example.com", services.clock.now())
        headers = {"Authorization": f"Bearer {token}"}
        with open(tmp / "stderr.log", "w") as stream:
            log_file = tmp / "translator.log" if args.log_file else None
            configure_logging("INFO", stream=stream, file=log_file)
            print("log lines to: the stream" + (" and TRANSLATOR_LOG_FILE" if log_file else ""))
            try:
                end_to_end(services, args.rounds, args.per_round, headers)
                alone(args.batches, args.per_batch)
            finally:
                for handler in list(logging.getLogger().handlers):
                    logging.getLogger().removeHandler(handler)
                    handler.close()
        services.close()


if __name__ == "__main__":
    main()
