"""The batch judge (what bench/canary.py measures) answers what the judge answers."""

from __future__ import annotations

import numpy as np
import pytest

from release_gate.judge import CountSample, JudgeConfig, JudgeInput, judge
from release_gate.judge.batch import judge_batch


def _cumulative(deltas: np.ndarray, start: int = 0) -> list[int]:
    return [start, *(start + np.cumsum(deltas)).tolist()]


def _one_by_one(t: np.ndarray, c_n: np.ndarray, c_e: np.ndarray, p_n: np.ndarray,
                p_e: np.ndarray, config: JudgeConfig) -> list[tuple[str, float]]:
    out = []
    for i in range(c_n.shape[0]):
        data = JudgeInput(
            canary=[CountSample(t=float(s), requests=n, errors=e) for s, n, e in
                    zip(t, _cumulative(c_n[i]), _cumulative(c_e[i]), strict=True)],
            control=[CountSample(t=float(s), requests=n, errors=e) for s, n, e in
                     zip(t, _cumulative(p_n[i], 50_000), _cumulative(p_e[i], 250),
                         strict=True)],
        )
        v = judge(data, config, final=True)
        assert v.decision is not None and v.decided_at is not None
        out.append((v.decision, v.decided_at))
    return out


@pytest.mark.parametrize(("rate", "every", "until", "config"), [
    (2.0, 1.0, 300.0, JudgeConfig()),
    (20.0, 5.0, 700.0, JudgeConfig()),
    (200.0, 1.0, 120.0, JudgeConfig(alpha=0.05, min_duration_s=30)),
    (20.0, 7.0, 400.0, JudgeConfig(max_duration_s=200)),
])
def test_batch_matches_the_judge(rate: float, every: float, until: float,
                                 config: JudgeConfig) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(0.0, until + 1e-9, every)
    releases, steps = 40, t.size - 1
    # good builds, 3x and 30x regressions, and intervals where the canary serves nothing
    multiplier = np.repeat([1.0, 3.0, 30.0, 1.0], releases // 4)[:, None]
    c_n = rng.poisson(rate * every, (releases, steps))
    c_n[30:, ::3] = 0
    p_n = rng.poisson(9 * rate * every, (releases, steps))
    c_e = rng.binomial(c_n, np.minimum(1.0, 0.01 * multiplier))
    p_e = rng.binomial(p_n, 0.01)

    batch = judge_batch(t, c_n, c_e, p_n, p_e, config)
    expected = _one_by_one(t, c_n, c_e, p_n, p_e, config)

    assert list(zip(batch.decision.tolist(), batch.decided_at.tolist(), strict=True)) == expected
    assert len({d for d, _ in expected}) >= 2  # the cases are not all alike


def test_reading_every_second_keeps_false_rollbacks_under_the_budget() -> None:
    """The error-rate test is anytime-valid: 300 peeks at good releases (the canary's
    error rate is production's) still roll back at most alpha of them."""
    rng = np.random.default_rng(3)
    releases, steps = 1000, 300
    t = np.arange(steps + 1, dtype=float)
    c_n = rng.poisson(200, (releases, steps))
    p_n = rng.poisson(1800, (releases, steps))
    c_e, p_e = rng.binomial(c_n, 0.0005), rng.binomial(p_n, 0.0005)
    never_promote = JudgeConfig(min_canary_requests=10**9)  # every release watched 300 s

    batch = judge_batch(t, c_n, c_e, p_n, p_e, never_promote)

    rolled_back = int(np.sum(batch.decision == "rollback"))
    assert rolled_back <= never_promote.alpha * releases
    # and the test is not asleep: a 5x regression on the same traffic is caught
    bad = judge_batch(t, c_n, rng.binomial(c_n, 0.0025), p_n, p_e, never_promote)
    assert np.mean(bad.decision == "rollback") > 0.9
