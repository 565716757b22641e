"""Detection benchmark, one command:

    .venv/bin/python bench/sentinel_detection.py [--seed 7] [--detector auto] [--timing]

Scores, on the labelled set of bench/series.py, the default detector (what the product
runs when the user names none: `default_spec(None)`, the `auto` detector) against two
baselines measured in the same run:

* fixed threshold: from the first two weeks, above max × 1.2 or below min × 0.8 (the
  rule of thumb of "look at last month's graph and draw a line");
* rolling mean ± 3σ over the previous 60 samples.

All three see the same series and are scored the same way over the evaluation period
(after the first two weeks, or half of a short series): recall (faults with at least one
firing step inside the fault window), false alerts per week (firing episodes that touch
no fault window, nor the 30 minutes after one, per signal and for the worst signal), and
the median delay from fault start to the first firing step, in minutes and in samples of
the series (a 1-hour series cannot page sooner than an hour). Per fault type, then
overall. With --timing it also measures
step() in µs (a seasonal series stepped live) and the batch path in ms per 43,200-point
series.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from series import WEEK, Series, generate  # noqa: E402

from sentinel.detectors import (  # noqa: E402
    DetectorSpec,
    Observation,
    build_detector,
    default_spec,
    evaluate,
)

RECOVERY = 1800.0  # alerts this soon after a fault ends belong to it


def fixed_threshold(s: Series) -> np.ndarray:
    learn = s.t < s.eval_start
    x = s.v[learn]
    x = x[np.isfinite(x)]
    hi = x.max() * 1.2 if x.max() > 0 else x.max() + 1
    lo = x.min() * 0.8 if x.min() > 0 else -np.inf
    with np.errstate(invalid="ignore"):
        return np.isfinite(s.v) & ((s.v > hi) | (s.v < lo))


def rolling_3sigma(s: Series, window: int = 60) -> np.ndarray:
    import pandas as pd

    x = pd.Series(s.v)
    prev = x.shift(1).rolling(window, min_periods=window // 2)
    mean, sd = prev.mean().to_numpy(), prev.std().to_numpy()
    with np.errstate(invalid="ignore"):
        return np.isfinite(s.v) & (np.abs(s.v - mean) > 3 * sd) & (sd > 0)


def auto(s: Series, spec: DetectorSpec) -> np.ndarray:
    return evaluate(spec, s.t, s.v, s.volume).firing


def score(s: Series, firing: np.ndarray) -> dict:
    """Per fault: caught and delay; false episodes in the evaluation period."""
    t = s.t
    d = np.diff(firing.astype(np.int8), prepend=0, append=0)
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    faults = []
    for f in s.faults:
        inside = firing & (t >= f.start) & (t <= f.end)
        idx = np.flatnonzero(inside)
        delay = float(t[idx[0]] - f.start) if len(idx) else None
        faults.append((f.kind, len(idx) > 0, delay, None if delay is None else delay / s.interval))
    false = 0
    warm = 0
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        ta, tb = t[a], t[b]
        if any(ta <= f.end + RECOVERY and tb >= f.start for f in s.faults):
            continue
        if ta >= s.eval_start:
            false += 1
        else:
            warm += 1
    weeks = (t[-1] - s.eval_start) / WEEK
    return {"faults": faults, "false": false, "weeks": weeks, "warm": warm}


def table(results: dict[str, list[dict]], series: list[Series]) -> None:
    methods = list(results)
    kinds = sorted({f.kind for s in series for f in s.faults})
    w = 34
    print()
    print("fault type".ljust(16) + "".join(m.rjust(w) for m in methods))
    print("".ljust(16) + "".join("recall  median delay".rjust(w) for _ in methods))
    for kind in [*kinds, "ALL"]:
        row = kind.ljust(16)
        for m in methods:
            got = [f for r in results[m] for f in r["faults"] if kind in ("ALL", f[0])]
            caught = [f for f in got if f[1]]
            delays = [f[2] for f in caught]
            med = f"{np.median(delays) / 60:.1f} min" if delays else "-"
            samples = f"{np.median([f[3] for f in caught]):.0f} smp" if caught else ""
            share = len(caught) / max(len(got), 1)
            row += f"{len(caught):3d}/{len(got):<3d} {share:5.0%} {med:>10} {samples:>7}".rjust(w)
        print(row)
    print()
    print("false alerts per week (evaluation period), by signal kind")
    for kind in [*sorted({s.kind for s in series}), "ALL"]:
        row = kind.ljust(16)
        for m in methods:
            rs = [r for r, s in zip(results[m], series, strict=True) if kind in ("ALL", s.kind)]
            fa = sum(r["false"] for r in rs)
            wk = sum(r["weeks"] for r in rs)
            row += f"{fa:5d} alerts {fa / wk:8.2f}/week".rjust(w)
        print(row)
    row = "worst signal".ljust(16)
    for m in methods:
        pairs = zip(results[m], series, strict=True)
        r, s = max(pairs, key=lambda x: x[0]["false"] / x[0]["weeks"])
        row += f"{r['false'] / r['weeks']:6.2f}/week {s.name[:14]:>14}".rjust(w)
    print(row)
    row = "warm-up alerts".ljust(16)
    for m in methods:
        row += f"{sum(r['warm'] for r in results[m]):5d}".rjust(w)
    print(row)


def timing(spec: DetectorSpec) -> None:
    from series import count_series, level_series

    rng = np.random.default_rng(1)
    s = level_series("timing", rng, interval=60.0, weeks=30 / 7)
    n = len(s.t)
    ts = []
    for _ in range(5):
        t0 = time.process_time()
        evaluate(spec, s.t, s.v)
        ts.append(time.process_time() - t0)
    print(
        f"\nbatch: {min(ts) * 1e3:.1f} ms per {n}-point series "
        f"(min of 5; median {np.median(ts) * 1e3:.1f})"
    )
    # stepping: a seasonal count series at 10 s, as the live evaluator would step it
    s = count_series("timing", rng, interval=10.0, weeks=2.0)
    det = build_detector(spec)
    obs = [Observation(float(a), float(b)) for a, b in zip(s.t, s.v, strict=True)]
    warm = len(obs) - 20000
    for o in obs[:warm]:
        det.step(o)
    per = []
    for o in obs[warm:]:
        t0 = time.perf_counter()
        det.step(o)
        per.append(time.perf_counter() - t0)
    per_us = np.array(per) * 1e6
    print(
        f"step(): mean {per_us.mean():.1f} µs, median {np.median(per_us):.1f} µs, "
        f"p99 {np.percentile(per_us, 99):.1f} µs, max {per_us.max():.0f} µs "
        f"(20,000 steps of a 10-s series after 12 days of history; hour boundaries included)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--detector", default=None, help="detector spec text (default: default_spec(None))"
    )
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="per-series figures")
    args = ap.parse_args()
    spec = DetectorSpec.parse(args.detector) if args.detector else default_spec(None)
    series = generate(args.seed)
    npts = sum(len(s.t) for s in series)
    print(
        f"{len(series)} series, {npts:,} points, {sum(len(s.faults) for s in series)} faults; "
        f"default detector: {spec.describe()}"
    )
    methods = {
        "default (auto)": lambda s: auto(s, spec),
        "fixed threshold": fixed_threshold,
        "rolling mean±3σ": rolling_3sigma,
    }
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for m, fn in methods.items():
        t0 = time.process_time()
        for s in series:
            results[m].append(score(s, fn(s)))
        print(f"  {m}: {time.process_time() - t0:.1f} s CPU")
    if args.verbose:
        for i, s in enumerate(series):
            parts = []
            for m in methods:
                r = results[m][i]
                c = "".join("x" if f[1] else "." for f in r["faults"])
                parts.append(f"{c:>4} {r['false']:3d}")
            print(f"{s.name:28s} " + " | ".join(parts))
    table(results, series)
    if args.timing:
        timing(spec)


if __name__ == "__main__":
    main()
