"""Canary judge benchmark, one command:

    .venv/bin/python bench/canary.py [--seed 5] [--good 1000] [--bad 300] [--quick]

Simulates releases on a canary node beside production over a sweep of conditions:
production's error rate (0.05%, 0.2%, 1%), canary traffic (2, 20, 200 requests/s,
production 9x as much: the canary takes a tenth of the traffic) and how often both
sides' cumulative counters are read (every 1 s and every 5 s); the deadline is 10
minutes. Each of the 18 cells gets ``--good`` good releases (the canary's error rate
is production's) and ``--bad`` releases per regression size (2x, 5x, 10x, 100x).

Scored in the same run, on the same releases:

* the release gate's judge, its default configuration (``JudgeConfig()``);
* the judge as it was before this sweep (``alpha=0.01``, 13 equally weighted
  alternatives), the baseline for detection;
* a fixed-threshold rule in the style of Argo Rollouts / Flagger analysis: canary
  success rate >= 99% per 1-minute interval, an interval with no requests fails (as
  their "no data" does), one failure allowed (rollback on the second failing
  interval), promote after 5 intervals;
* the rule of seed 003 (Citymobil's preprod node): promote if no 500 in the first
  minute, roll back on the first 500.

The judge runs through ``release_gate.judge.batch`` (numpy over all releases of a
cell at once); a sample of releases also goes through ``judge()`` itself, and the
two must agree. Reported: false rollbacks per cell and the worst cell (the target is
<= 1% in every cell, not on average), detection and median time to rollback per
regression size, then the targets, then good releases during an error burst that
every node sees (what comparing with production at the same moment is for).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from release_gate.judge import CountSample, JudgeConfig, JudgeInput, judge  # noqa: E402
from release_gate.judge.batch import judge_batch  # noqa: E402

BASE_RATES = (0.0005, 0.002, 0.01)
CANARY_RATES = (2, 20, 200)
SAMPLE_INTERVALS = (1, 5)
REGRESSIONS = (2.0, 5.0, 10.0, 100.0)
CONTROL_FACTOR = 9
DEADLINE_S = 600
# The judge as it was before this sweep: alpha 0.01, 13 equally weighted alternatives.
BEFORE = JudgeConfig(alpha=0.01)
BEFORE_MIXTURE = ((1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0, 13.0, 20.0, 35.0, 60.0, 100.0, 200.0),
                  (1.0,) * 13)


@dataclass
class Releases:
    """``n`` releases of one cell: per-interval counts, shape (releases, intervals)."""

    t: np.ndarray  # sample times, t[0] = 0 the baseline reading
    canary_requests: np.ndarray
    canary_errors: np.ndarray
    control_requests: np.ndarray
    control_errors: np.ndarray


@dataclass
class Outcomes:
    decision: np.ndarray  # "promote", "rollback", "inconclusive" per release
    at: np.ndarray  # seconds


def simulate(rng: np.random.Generator, n: int, canary_rate: float, base_rate: float,
             every: int, multiplier: float,
             burst: tuple[float, float, float] | None = None) -> Releases:
    """``burst``: (start s, end s, error rate) of an outage every node sees, on top of
    the regression if any."""
    steps = DEADLINE_S // every
    t = np.arange(steps + 1, dtype=float) * every
    base = np.full(steps, base_rate)
    if burst is not None:
        start, end, burst_rate = burst
        base[(t[1:] > start) & (t[1:] <= end)] = burst_rate
    c_n = rng.poisson(canary_rate * every, (n, steps))
    c_e = rng.binomial(c_n, np.minimum(1.0, base * multiplier))
    p_n = rng.poisson(canary_rate * CONTROL_FACTOR * every, (n, steps))
    p_e = rng.binomial(p_n, base)
    return Releases(t, c_n, c_e, p_n, p_e)


def run_judge(r: Releases, config: JudgeConfig,
              mixture: tuple[tuple[float, ...], tuple[float, ...]] | None = None) -> Outcomes:
    v = judge_batch(r.t, r.canary_requests, r.canary_errors, r.control_requests,
                    r.control_errors, config, mixture)
    return Outcomes(v.decision, v.decided_at)


def run_fixed_threshold(r: Releases, interval_s: int = 60, failures_allowed: int = 1,
                        intervals_to_promote: int = 5) -> Outcomes:
    every = int(r.t[1] - r.t[0])
    per = interval_s // every
    n = r.canary_requests[:, : per * intervals_to_promote].reshape(len(r.canary_requests), -1, per)
    e = r.canary_errors[:, : per * intervals_to_promote].reshape(n.shape)
    n, e = n.sum(axis=2), e.sum(axis=2)
    failed = (n == 0) | ((n - e) < 0.99 * n)
    second_failure = np.cumsum(failed, axis=1) > failures_allowed
    rolled_back = second_failure.any(axis=1)
    decision = np.where(rolled_back, "rollback", "promote").astype(object)
    at = np.where(rolled_back, (second_failure.argmax(axis=1) + 1) * interval_s,
                  intervals_to_promote * interval_s).astype(float)
    return Outcomes(decision, at)


def run_zero_500s(r: Releases, soak_s: int = 60) -> Outcomes:
    every = int(r.t[1] - r.t[0])
    errors = np.cumsum(r.canary_errors[:, : soak_s // every], axis=1) > 0
    rolled_back = errors.any(axis=1)
    decision = np.where(rolled_back, "rollback", "promote").astype(object)
    at = np.where(rolled_back, (errors.argmax(axis=1) + 1) * every, soak_s).astype(float)
    return Outcomes(decision, at)


RULES: dict[str, Callable[[Releases], Outcomes]] = {
    "judge": lambda r: run_judge(r, JudgeConfig()),
    "judge as before (a 0.01)": lambda r: run_judge(r, BEFORE, BEFORE_MIXTURE),
    "fixed 99%/1m, 1 failure": run_fixed_threshold,
    "no 500 in 1 min (seed 003)": run_zero_500s,
}


def cross_check(r: Releases, outcomes: Outcomes, sample: np.ndarray) -> int:
    """How many of ``sample`` releases ``judge()`` itself decides differently."""
    disagree = 0
    for i in sample:
        def readings(n: np.ndarray, e: np.ndarray, start: int) -> list[CountSample]:
            cum_n = start + np.concatenate([[0], np.cumsum(n)])
            cum_e = start // 200 + np.concatenate([[0], np.cumsum(e)])
            return [CountSample(t=float(t), requests=int(a), errors=int(b))
                    for t, a, b in zip(r.t, cum_n, cum_e, strict=True)]

        data = JudgeInput(canary=readings(r.canary_requests[i], r.canary_errors[i], 0),
                          control=readings(r.control_requests[i], r.control_errors[i], 10**6))
        v = judge(data, JudgeConfig(), final=True)
        disagree += (v.decision, v.decided_at) != (outcomes.decision[i], outcomes.at[i])
    return disagree


def pct(k: int, n: int) -> str:
    return f"{100 * k / n:5.1f}%" if n else "    -"


def median(xs: np.ndarray) -> str:
    return f"{np.median(xs):4.0f}s" if xs.size else "    -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--good", type=int, default=1000, help="good releases per cell")
    parser.add_argument("--bad", type=int, default=300,
                        help="bad releases per cell and regression size")
    parser.add_argument("--burst", type=int, default=300,
                        help="good releases per traffic level during a production-wide burst")
    parser.add_argument("--check", type=int, default=20,
                        help="releases per cell also run through judge() itself")
    parser.add_argument("--quick", action="store_true", help="200 good, 60 bad per cell")
    args = parser.parse_args()
    if args.quick:
        args.good, args.bad, args.burst, args.check = 200, 60, 100, 5
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    config = JudgeConfig()

    print(f"Canary releases: production {CONTROL_FACTOR}x the canary's traffic, deadline "
          f"{DEADLINE_S // 60} min; per cell {args.good} good releases and {args.bad} per "
          f"regression size ({', '.join(f'{m:g}x' for m in REGRESSIONS)}); seed {args.seed}.")
    print(f"The judge: alpha {config.alpha:g} (before: {BEFORE.alpha:g}), "
          f"max_regression {config.max_regression:g}, promote_alpha {config.promote_alpha:g}.\n")
    sizes = "  ".join(f"{f'{m:g}x':>11}" for m in REGRESSIONS)
    print(f"{'base':>5} {'req/s':>5} {'every':>5} {'rule':<27} {'false rollbacks':>15} "
          f"{'t_prom':>6}  {'incon':>6}  {sizes}")
    print(f"{'':>5} {'':>5} {'':>5} {'':<27} {'':>15} {'median':>6}  {'':>6}  "
          f"{'(detected, median time to rollback)':<{len(sizes)}}")

    worst: dict[str, tuple[float, int, int, str]] = {}
    totals: dict[str, list[int]] = {}
    detection: dict[tuple[str, float], list[int]] = {}
    disagreements = checked = 0
    for base in BASE_RATES:
        for canary_rate in CANARY_RATES:
            for every in SAMPLE_INTERVALS:
                good = simulate(rng, args.good, canary_rate, base, every, 1.0)
                bad = {m: simulate(rng, args.bad, canary_rate, base, every, m)
                       for m in REGRESSIONS}
                cell = f"{base:.2%} {canary_rate} req/s every {every} s"
                for rule, run in RULES.items():
                    g = run(good)
                    false_rb = int(np.sum(g.decision == "rollback"))
                    share = false_rb / args.good
                    if share >= worst.get(rule, (-1.0, 0, 0, ""))[0]:
                        worst[rule] = (share, false_rb, args.good, cell)
                    tot = totals.setdefault(rule, [0, 0])
                    tot[0] += false_rb
                    tot[1] += args.good
                    cells = []
                    for m, releases in bad.items():
                        o = run(releases)
                        caught = o.decision == "rollback"
                        d = detection.setdefault((rule, m), [0, 0])
                        d[0] += int(caught.sum())
                        d[1] += args.bad
                        cells.append(f"{pct(int(caught.sum()), args.bad)} {median(o.at[caught])}")
                    promoted = g.decision == "promote"
                    print(f"{base:>5.2%} {canary_rate:>5} {every:>4}s {rule:<27} "
                          f"{false_rb:>4}/{args.good:<4} {pct(false_rb, args.good)} "
                          f"{median(g.at[promoted]):>6}  "
                          f"{pct(int(np.sum(g.decision == 'inconclusive')), args.good)}  "
                          f"{'  '.join(cells)}")
                    if rule == "judge" and args.check:
                        sample = rng.choice(args.good, size=min(args.check, args.good),
                                            replace=False)
                        disagreements += cross_check(good, g, sample)
                        checked += sample.size
                print()

    print("Over the whole sweep (false rollbacks: all cells, then the worst cell; detection "
          "of each regression size over all cells):")
    for rule in RULES:
        share, k, n, cell = worst[rule]
        det = "  ".join(f"{m:g}x {pct(*detection[(rule, m)])}" for m in REGRESSIONS)
        print(f"  {rule:<27} {pct(*totals[rule])} all, worst {pct(k, n)} ({k}/{n} at {cell}); "
              f"detected {det}")
    print()

    burst = (90.0, 210.0, 0.03)
    print(f"Good releases while every node's error rate jumps to {burst[2]:.0%} from "
          f"t={burst[0]:g}s to {burst[1]:g}s (a dependency failing for everyone), "
          f"production otherwise at 0.2%, samples every 1 s:")
    for canary_rate in CANARY_RATES:
        releases = simulate(rng, args.burst, canary_rate, 0.002, 1, 1.0, burst)
        cells = []
        for rule, run in RULES.items():
            o = run(releases)
            rolled_back = pct(int(np.sum(o.decision == "rollback")), args.burst).strip()
            cells.append(f"{rule}: {rolled_back}")
        print(f"  {canary_rate:>3} req/s  rolled back: " + "; ".join(cells))
    print()

    print("Targets")
    share, k, n, cell = worst["judge"]
    print(f"  false rollbacks <= 1% in every cell: worst {100 * share:.1f}% ({k}/{n} at {cell}) "
          f"({'met' if share <= 0.01 else 'MISSED'})")
    hundred_ok = True
    for base in BASE_RATES:
        for every in SAMPLE_INTERVALS:
            o = run_judge(simulate(rng, 100, 20, base, every, 100.0), config)
            caught = (o.decision == "rollback") & (o.at <= 30)
            hundred_ok &= bool(caught.all())
            times = o.at[o.decision == "rollback"]
            slowest = times.max() if times.size else "n/a"
            print(f"  100x regression at 20 req/s, base {base:.2%}, every {every} s: "
                  f"{int(caught.sum())}/100 rolled back within 30 s "
                  f"(median {median(times).strip()}, slowest {slowest} s)")
    print(f"  100x within 30 s everywhere: {'met' if hundred_ok else 'MISSED'}")
    for m in (5.0, 10.0):
        now, before = detection[("judge", m)], detection[("judge as before (a 0.01)", m)]
        print(f"  detection at {m:g}x: {pct(*now).strip()} (before: {pct(*before).strip()}) "
              f"({'met' if now[0] >= before[0] else 'WORSE'})")
    print(f"  judge() itself on {checked} sampled good releases: {disagreements} disagreements "
          f"with the batch judge ({'met' if disagreements == 0 else 'MISSED'})")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
