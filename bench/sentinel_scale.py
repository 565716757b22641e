"""Sentinel scale benchmark, one command:

    .venv/bin/python bench/sentinel_scale.py [--signals 10000] [--series 1000]

1. CPU time of one evaluation cycle over N push signals (default 10,000), each
   read, stored, stepped through its detector and judged by the alert state
   machine, as the leader does every 10 s. Target: under 2.5 s of CPU per
   cycle (a quarter of one core). Baseline in the same run: the same cycle
   with a static threshold detector, so the default detector's own cost shows.
2. Tuning time for M series (default 1,000) of 30 days of minute data.
   Target: under 30 s. Baseline in the same run: evaluating the default
   detector once over the same series (what one tuning candidate costs).

Detector state is warmed on two days of history once per series shape and
copied, so the cycle is measured in steady state, not in warm-up."""

from __future__ import annotations

import argparse
import copy
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from common.clock import FakeClock  # noqa: E402
from sentinel.catalogue import Catalogue  # noqa: E402
from sentinel.detectors import Observation, build_detector, evaluate, tune  # noqa: E402
from sentinel.detectors.spec import DetectorSpec, default_spec  # noqa: E402
from sentinel.engine import Evaluator, SeriesState  # noqa: E402
from sentinel.service import build_sentinel  # noqa: E402
from sentinel.settings import SentinelSettings  # noqa: E402

T0 = datetime(2026, 3, 2, tzinfo=UTC)
SHAPES = 8  # distinct warmed detector states, copied across signals


def _series(rng: np.random.Generator, n: int, step: float, shape: int) -> np.ndarray:
    t = np.arange(n) * step
    day = np.sin(2 * np.pi * t / 86400)
    level = 50 + 20 * shape
    return level + 0.3 * level * day + rng.normal(0, 0.05 * level, n)


def _catalogue(n: int, detector: dict | None) -> Catalogue:
    return Catalogue.model_validate(
        {
            "signals": [
                {
                    "name": f"bench.s{i:05d}",
                    "description": "bench",
                    "kind": "level",
                    "interval_seconds": 10,
                    "labels": {"team": "bench", "service": "bench"},
                    "source": {"type": "push", "window_seconds": 60},
                    "detector": detector,
                }
                for i in range(n)
            ]
        }
    )


def _warm_states(spec: DetectorSpec, rng: np.random.Generator) -> list:
    states = []
    for shape in range(SHAPES):
        detector = build_detector(spec)
        values = _series(rng, 2 * 8640, 10.0, shape)  # two days at 10 s
        start = (T0 - timedelta(days=2)).timestamp()
        for i, v in enumerate(values):
            detector.step(Observation(start + 10 * i, float(v)))
        states.append(detector)
    return states


def bench_cycle(n: int, detector: dict | None, cycles: int, label: str) -> float:
    rng = np.random.default_rng(1)
    spec = DetectorSpec.model_validate(detector) if detector else default_spec("level")
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(T0)
        settings = SentinelSettings(
            database_url=f"sqlite:///{tmp}/s.db", translator_database_url=f"sqlite:///{tmp}/t.db"
        )
        sentinel = build_sentinel(settings, clock=clock, catalogue=_catalogue(n, detector))
        warmed = _warm_states(spec, rng)
        evaluator = Evaluator(sentinel.catalogue, sentinel.sources, sentinel.history, sentinel.book)
        for i, signal in enumerate(sentinel.catalogue.signals):
            evaluator.series[signal.name][""] = SeriesState(
                detector=copy.deepcopy(warmed[i % SHAPES]),
                labels={},
                spec=spec.model_dump(mode="json"),
                provenance=None,
                last_data_t=(T0 - timedelta(seconds=10)).timestamp(),
            )
        names = [s.name for s in sentinel.catalogue.signals]
        levels = [50 + 20 * (i % SHAPES) for i in range(n)]
        cpu = []
        for _ in range(cycles):
            clock.advance(seconds=10)
            now = clock.now()
            for name, level in zip(names, levels, strict=True):
                sentinel.push.push(name, level * (1 + rng.normal(0, 0.05)), t=now)
            started = time.process_time()
            evaluated = evaluator.tick(now)
            cpu.append(time.process_time() - started)
            assert evaluated == n
        sentinel.close()
    median = statistics.median(cpu)
    print(
        f"{label:<34}{median:>9.3f} s{median / n * 1e6:>10.0f} µs/signal"
        f"{median / 10 * 100:>9.1f}% of a core at 10 s"
    )
    return median


def bench_tuning(m: int) -> None:
    rng = np.random.default_rng(2)
    n = 30 * 1440
    t = T0.timestamp() + np.arange(n) * 60.0
    series = []
    for i in range(m):
        v = _series(rng, n, 60.0, i % SHAPES)
        if i % 4 == 0:  # a quarter carry a two-hour incident on day 20
            v[20 * 1440 : 20 * 1440 + 120] *= 3
        series.append(v)
    started = time.perf_counter()
    for v in series:
        evaluate(default_spec("level"), t, v, None)
    one_pass = time.perf_counter() - started
    started = time.perf_counter()
    for i, v in enumerate(series):
        incidents = [(t[20 * 1440], t[20 * 1440 + 120])] if i % 4 == 0 else []
        tune((t, v), "level", incidents, budget_per_week=1.0)
    total = time.perf_counter() - started
    print(f"\n## Tuning, {m} series x 30 days of minute data ({n} points each)")
    print(
        f"{'one evaluation pass (baseline)':<34}{one_pass:>9.1f} s"
        f"{one_pass / m * 1000:>10.1f} ms/series"
    )
    print(
        f"{'tune (sweep + exact backtest)':<34}{total:>9.1f} s{total / m * 1000:>10.1f} ms/series"
        f"   target < 30 s: {'met' if total < 30 else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--series", type=int, default=1_000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"\n## Evaluation cycle, {args.signals} push signals (median of {args.cycles} cycles)")
    static = bench_cycle(
        args.signals,
        {"kind": "static", "params": {"threshold": 1e9}},
        args.cycles,
        "static threshold (baseline)",
    )
    default = bench_cycle(args.signals, None, args.cycles, "default detector (auto)")
    print(
        f"{'ratio default / baseline':<34}{default / static:>9.2f}x"
        f"   target < 2.5 s: {'met' if default < 2.5 else 'MISSED'}"
    )
    bench_tuning(args.series)


if __name__ == "__main__":
    main()
