"""Canary judge benchmark, one command:

    .venv/bin/python bench/canary.py [--seed 5] [--good 1000] [--bad 300] [--burst 200]

Simulates releases on a canary node beside production and scores, in the same run,
three ways of deciding them:

* the release gate's judge (`release_gate.judge.judge`, its default configuration);
* a fixed-threshold rule in the style of Argo Rollouts / Flagger analysis: canary
  success rate >= 99% per 1-minute interval, an interval with no requests fails (as
  their "no data" does), one failure allowed (rollback on the second failing
  interval), promote after 5 intervals;
* the rule of seed 003 (Citymobil's preprod node): promote if no 500 in the first
  minute, roll back on the first 500.

Every release: production's error rate is 0.5%; the canary gets 2, 20 or 200
requests/s and production 9x as much (the preprod node takes a tenth of the traffic);
both are sampled every 5 s as cumulative counters, and the deadline is 10 minutes.
Good releases have production's error rate; bad ones multiply it by a factor drawn
log-uniformly from 2x to 100x. Reported per rate and rule: false rollbacks (good
builds rolled back), bad builds promoted, detection (bad builds rolled back) per
regression size, median time to decision, and the inconclusive share. Then the
targets: false rollbacks <= 1%, a 100x regression at 20 requests/s rolled back
within 30 s. Last, good releases during an error burst every node sees, which is what
comparing with production at the same moment is for.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from release_gate.judge import CountSample, JudgeInput, judge  # noqa: E402

BASE_RATE = 0.005
CONTROL_FACTOR = 9
SAMPLE_EVERY_S = 5
DEADLINE_S = 600
RATES = (2, 20, 200)
BUCKETS = ((2, 3), (3, 5), (5, 10), (10, 30), (30, 100.0001))


@dataclass
class Release:
    multiplier: float  # 1.0: a good build
    t: np.ndarray
    canary_requests: np.ndarray  # cumulative
    canary_errors: np.ndarray
    control_requests: np.ndarray
    control_errors: np.ndarray


@dataclass
class Outcome:
    decision: str  # promote, rollback, inconclusive
    at: float


def simulate(rng: np.random.Generator, rate: float, multiplier: float,
             burst: tuple[float, float, float] | None = None) -> Release:
    """``burst``: (start s, end s, error rate) of an outage every node sees (a dependency
    failing for everyone), on top of the regression if any."""
    steps = DEADLINE_S // SAMPLE_EVERY_S
    t = np.arange(steps + 1, dtype=float) * SAMPLE_EVERY_S
    base = np.full(steps, BASE_RATE)
    if burst is not None:
        start, end, burst_rate = burst
        base[(t[1:] > start) & (t[1:] <= end)] = burst_rate
    c_n = rng.poisson(rate * SAMPLE_EVERY_S, steps)
    c_e = rng.binomial(c_n, np.minimum(1.0, base * multiplier))
    p_n = rng.poisson(rate * CONTROL_FACTOR * SAMPLE_EVERY_S, steps)
    p_e = rng.binomial(p_n, base)
    # production has been up for a while: its counters do not start at zero
    p_start_n = int(rng.integers(10**5, 10**7))
    p_start_e = int(p_start_n * BASE_RATE)

    def cum(x: np.ndarray, start: int = 0) -> np.ndarray:
        return start + np.concatenate([[0], np.cumsum(x)])

    return Release(multiplier, t, cum(c_n), cum(c_e), cum(p_n, p_start_n), cum(p_e, p_start_e))


def run_judge(r: Release) -> Outcome:
    data = JudgeInput(
        canary=[CountSample(t=t, requests=n, errors=e)
                for t, n, e in zip(r.t, r.canary_requests, r.canary_errors, strict=True)],
        control=[CountSample(t=t, requests=n, errors=e)
                 for t, n, e in zip(r.t, r.control_requests, r.control_errors, strict=True)],
    )
    v = judge(data, final=True)
    assert v.decision is not None and v.decided_at is not None
    return Outcome(v.decision, v.decided_at)


def run_fixed_threshold(r: Release, interval_s: int = 60, failures_allowed: int = 1,
                        intervals_to_promote: int = 5) -> Outcome:
    per = interval_s // SAMPLE_EVERY_S
    failures = 0
    for i in range(1, intervals_to_promote + 1):
        n = r.canary_requests[i * per] - r.canary_requests[(i - 1) * per]
        e = r.canary_errors[i * per] - r.canary_errors[(i - 1) * per]
        if n == 0 or (n - e) / n < 0.99:
            failures += 1
            if failures > failures_allowed:
                return Outcome("rollback", float(r.t[i * per]))
    return Outcome("promote", float(r.t[intervals_to_promote * per]))


def run_zero_500s(r: Release, soak_s: int = 60) -> Outcome:
    for i in range(1, soak_s // SAMPLE_EVERY_S + 1):
        if r.canary_errors[i] > 0:
            return Outcome("rollback", float(r.t[i]))
    return Outcome("promote", float(soak_s))


RULES = {
    "judge (sequential)": run_judge,
    "fixed 99%/1m, 1 failure allowed": run_fixed_threshold,
    "no 500 in 1 min (seed 003)": run_zero_500s,
}


def pct(k: int, n: int) -> str:
    return f"{100 * k / n:5.1f}%" if n else "    -"


def median(xs: list[float]) -> str:
    return f"{statistics.median(xs):5.0f}s" if xs else "     -"


def report(rate: float, rule: str, releases: list[Release], outcomes: list[Outcome]) -> str:
    good = [o for r, o in zip(releases, outcomes, strict=True) if r.multiplier == 1.0]
    bad = [(r, o) for r, o in zip(releases, outcomes, strict=True) if r.multiplier > 1.0]
    false_rb = sum(o.decision == "rollback" for o in good)
    bad_promoted = sum(o.decision == "promote" for _, o in bad)
    detected = sum(o.decision == "rollback" for _, o in bad)
    inconclusive = sum(o.decision == "inconclusive" for o in outcomes)
    buckets = []
    for lo, hi in BUCKETS:
        inside = [o for r, o in bad if lo <= r.multiplier < hi]
        buckets.append(pct(sum(o.decision == "rollback" for o in inside), len(inside)))
    t_promote = [o.at for o in good if o.decision == "promote"]
    t_rollback = [o.at for _, o in bad if o.decision == "rollback"]
    return (f"{rate:>5g} {rule:<32} {pct(false_rb, len(good))} {pct(bad_promoted, len(bad))} "
            f"{pct(detected, len(bad))}  {'  '.join(buckets)}  {median(t_promote)}  "
            f"{median(t_rollback)}  {pct(inconclusive, len(outcomes))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--good", type=int, default=1000, help="good releases per rate")
    parser.add_argument("--bad", type=int, default=300, help="bad releases per rate")
    parser.add_argument("--burst", type=int, default=200,
                        help="good releases per rate during a production-wide error burst")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()

    print(f"Canary releases: production error rate {BASE_RATE:.1%}, production traffic "
          f"{CONTROL_FACTOR}x the canary's, samples every {SAMPLE_EVERY_S} s, deadline "
          f"{DEADLINE_S // 60} min; {args.good} good and {args.bad} bad (2x-100x) releases "
          f"per rate, seed {args.seed}.\n")
    bucket_names = "  ".join(f"{f'{lo:g}-{hi:.0f}x':>6}" for lo, hi in BUCKETS)
    print(f"{'req/s':>5} {'rule':<32} {'false':>6} {'bad':>6} {'detect':>6}  {bucket_names}  "
          f"{'t_prom':>6}  {'t_roll':>6}  {'incon':>6}")
    print(f"{'':>5} {'':<32} {'rollbk':>6} {'promot':>6} {'':>6}  "
          f"{'(detection by regression size)':<{len(bucket_names)}}  {'median':>6}  "
          f"{'median':>6}  {'':>6}")
    false_rates: list[tuple[float, int, int]] = []
    for rate in RATES:
        releases = [simulate(rng, rate, 1.0) for _ in range(args.good)]
        releases += [simulate(rng, rate, float(np.exp(rng.uniform(np.log(2), np.log(100)))))
                     for _ in range(args.bad)]
        for rule, run in RULES.items():
            outcomes = [run(r) for r in releases]
            print(report(rate, rule, releases, outcomes))
            if run is run_judge:
                good = [o for r, o in zip(releases, outcomes, strict=True) if r.multiplier == 1]
                false_rb = sum(o.decision == "rollback" for o in good)
                false_rates.append((false_rb / len(good), false_rb, len(good)))
        print()

    burst = (90.0, 210.0, 0.03)
    print(f"Good releases while every node's error rate jumps to {burst[2]:.0%} from "
          f"t={burst[0]:g}s to {burst[1]:g}s (a dependency failing for everyone):")
    for rate in RATES:
        releases = [simulate(rng, rate, 1.0, burst) for _ in range(args.burst)]
        cells = []
        for rule, run in RULES.items():
            outcomes = [run(r) for r in releases]
            rolled_back = pct(sum(o.decision == "rollback" for o in outcomes), len(outcomes))
            cells.append(f"{rule}: {rolled_back.strip()} rolled back")
        print(f"{rate:>5g} req/s  " + "; ".join(cells))
    print()

    hundred = [run_judge(simulate(rng, 20, 100.0)) for _ in range(100)]
    times = [o.at for o in hundred if o.decision == "rollback"]
    worst_false, worst_k, worst_n = max(false_rates)
    print("Targets")
    print(f"  false rollbacks <= 1%: worst rate {100 * worst_false:.1f}% ({worst_k}/{worst_n} "
          f"good releases) ({'met' if worst_false <= 0.01 else 'MISSED'})")
    within = sum(t <= 30 for t in times)
    print(f"  100x regression at 20 req/s rolled back within 30 s: {within}/{len(hundred)} "
          f"(median {median(times).strip()}, slowest {max(times) if times else 'n/a'} s) "
          f"({'met' if within == len(hundred) else 'MISSED'})")
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
