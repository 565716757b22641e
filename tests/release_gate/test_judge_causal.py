"""Properties of the judge on arbitrary recorded counts: it is causal (the input cut at
``decided_at`` gives the same decision, and no earlier cut decides), and it never
promotes on (almost) no data."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from release_gate.judge import CountSample, JudgeConfig, JudgeInput, judge

CONFIGS = [
    JudgeConfig(),
    # quick to decide, so that promotes and rollbacks both happen within short inputs
    JudgeConfig(min_duration_s=0, min_canary_requests=50, min_control_requests=50,
                max_duration_s=200, latency_min_requests=1, max_regression=3.0,
                min_error_rate=0.01, promote_alpha=0.2),
]


def series(rng: random.Random, rate: float, error_rate: float, p95: float | None,
           every: float, offset: float, n: int, restarts: bool) -> list[CountSample]:
    """Readings of a node: Poisson-ish traffic, binomial errors, sometimes a restart."""
    requests = rng.randrange(0, 10**5)
    errors = int(requests * error_rate)
    samples = []
    for i in range(n):
        if restarts and i and rng.random() < 0.1:
            requests = errors = 0
        new = max(0, round(rng.gauss(rate * every, (rate * every) ** 0.5)))
        requests += new
        errors += sum(rng.random() < error_rate for _ in range(new))
        latency = None if p95 is None else p95 * rng.uniform(0.8, 1.25)
        samples.append(CountSample(t=offset + i * every, requests=requests, errors=errors,
                                   latency_p95_ms=latency))
    return samples


@st.composite
def inputs(draw: st.DrawFn) -> tuple[JudgeInput, JudgeConfig]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    rate = draw(st.sampled_from([0.0, 1.0, 10.0, 60.0]))
    base = draw(st.sampled_from([0.0, 0.005, 0.05]))
    worse = draw(st.sampled_from([1.0, 1.0, 3.0, 30.0]))
    every = draw(st.sampled_from([2.0, 5.0, 10.0]))
    n = draw(st.integers(0, 40))
    restarts = draw(st.booleans())
    p95 = draw(st.sampled_from([None, 100.0]))
    slower = draw(st.sampled_from([1.0, 3.0]))
    canary = series(rng, rate, min(1.0, base * worse), p95 and p95 * slower, every,
                    draw(st.sampled_from([0.0, 1.0])), n, restarts)
    control = series(rng, rate * 9, base, p95, every, draw(st.sampled_from([0.0, 2.5])),
                     draw(st.integers(0, 40)), restarts)
    config = draw(st.sampled_from([CONFIGS[0], CONFIGS[1], CONFIGS[1]]))
    return JudgeInput(canary=canary, control=control), config


def cut(data: JudgeInput, at: float) -> JudgeInput:
    return JudgeInput(canary=[s for s in data.canary if s.t <= at],
                      control=[s for s in data.control if s.t <= at])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_cut_at_decided_at_gives_the_same_decision_and_no_earlier_cut_decides(
    case: tuple[JudgeInput, JudgeConfig],
) -> None:
    data, config = case
    v = judge(data, config, final=True)
    assert v.decision is not None
    event(v.decision)
    if v.decided_at is None:
        assert not data.canary and not data.control
        return
    again = judge(cut(data, v.decided_at), config, final=True)
    assert (again.decision, again.decided_at) == (v.decision, v.decided_at)
    ended_early = v.decision == "inconclusive" and v.decided_at < config.max_duration_s
    live = judge(cut(data, v.decided_at), config, final=False)
    assert live.decision == (None if ended_early else v.decision)
    times = sorted({s.t for s in data.canary} | {s.t for s in data.control})
    for t in times:
        if t >= v.decided_at:
            break
        assert judge(cut(data, t), config, final=False).decision is None


@settings(max_examples=100, deadline=None)
@given(inputs())
def test_never_promotes_on_too_little_traffic(case: tuple[JudgeInput, JudgeConfig]) -> None:
    data, config = case
    v = judge(data, config)
    if v.decision == "promote":
        er = v.evidence.error_rate
        assert er.canary_requests >= config.min_canary_requests
        assert er.control_requests >= config.min_control_requests
        assert v.decided_at is not None and v.decided_at >= config.min_duration_s


@settings(max_examples=60, deadline=None)
@given(inputs())
def test_no_canary_traffic_never_promotes(case: tuple[JudgeInput, JudgeConfig]) -> None:
    data, config = case
    idle = [CountSample(t=s.t, requests=0, errors=0) for s in data.canary]
    v = judge(JudgeInput(canary=idle, control=data.control), config)
    assert v.decision != "promote"
    assert v.decision != "rollback"
