"""The judge's decision for many releases at once, for simulations (bench/canary.py).

Restricted to what a simulation produces: request and error counts only (no routes,
no latency), both sides read at the same times, no counter resets. On such input it
answers what ``judge`` answers (tests/release_gate/test_judge_batch.py holds it to
that), from the same formulas (``sequential``), but with numpy over a whole
(releases x intervals) table instead of one interval at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from release_gate.judge.models import JudgeConfig
from release_gate.judge.sequential import (
    ROLLBACK_RATIOS,
    ROLLBACK_WEIGHTS,
    floor_log_e,
    mixture_log_e,
    promote_log_increment,
    rollback_log_increment,
)

_CHUNK = 256  # releases per pass: keeps the (releases x intervals x alternatives) table small


@dataclass(frozen=True)
class BatchVerdicts:
    """One entry per release: decision ("promote", "rollback", "inconclusive") and time."""

    decision: np.ndarray
    decided_at: np.ndarray


def judge_batch(t: np.ndarray, canary_requests: np.ndarray, canary_errors: np.ndarray,
                control_requests: np.ndarray, control_errors: np.ndarray,
                config: JudgeConfig | None = None,
                mixture: tuple[tuple[float, ...], tuple[float, ...]] | None = None
                ) -> BatchVerdicts:
    """``t``: the sample times (t[0] the baseline reading), shape (T + 1,); the others:
    what each side served in each interval between them, shape (releases, T).
    ``mixture``: other rollback alternatives and weights than the judge's (to compare
    with an earlier tuning)."""
    mixture = mixture or (ROLLBACK_RATIOS, ROLLBACK_WEIGHTS)
    config = config or JudgeConfig()
    decisions, times = [], []
    for lo in range(0, canary_requests.shape[0], _CHUNK):
        part = slice(lo, lo + _CHUNK)
        d, at = _judge_chunk(t, canary_requests[part], canary_errors[part],
                             control_requests[part], control_errors[part], config, mixture)
        decisions.append(d)
        times.append(at)
    return BatchVerdicts(np.concatenate(decisions), np.concatenate(times))


def _judge_chunk(t: np.ndarray, c_req: np.ndarray, c_err: np.ndarray, p_req: np.ndarray,
                 p_err: np.ndarray, config: JudgeConfig,
                 mixture: tuple[tuple[float, ...], tuple[float, ...]]
                 ) -> tuple[np.ndarray, np.ndarray]:
    ends = t[1:]
    n_c = np.maximum(c_req, c_err)  # as ErrorRateTest.update: never fewer requests than errors
    n_p = np.maximum(p_req, p_err)
    k = c_err + p_err
    informative = (k > 0) & (n_c > 0) & (n_p > 0)
    share = np.where(informative, n_c / np.maximum(n_c + n_p, 1), 0.0)
    c_used = np.where(informative, c_err, 0)
    k_used = np.where(informative, k, 0)

    ratios, weights = mixture
    log_rollback = mixture_log_e(
        np.cumsum(rollback_log_increment(c_used, k_used, share, ratios), axis=1), weights)
    rolls_back = np.minimum(log_rollback, 700.0) >= math.log(1.0 / config.alpha)

    log_ratio_half = np.cumsum(
        promote_log_increment(c_used, k_used, share, config.max_regression), axis=1)
    total_c_req = np.cumsum(n_c, axis=1)
    total_c_err = np.cumsum(c_err, axis=1)
    log_promote = np.maximum(log_ratio_half,
                             floor_log_e(total_c_req, total_c_err, config.min_error_rate))
    promotes = (
        (np.minimum(log_promote, 700.0) >= math.log(2.0 / config.promote_alpha))
        & (total_c_req >= config.min_canary_requests)
        & (np.cumsum(n_p, axis=1) >= config.min_control_requests)
        & (ends >= config.min_duration_s)[None, :]
    )

    in_time = ends <= config.max_duration_s
    rolls_back &= in_time[None, :]
    promotes &= in_time[None, :]
    never = ends.size
    first_rollback = np.where(rolls_back.any(axis=1), rolls_back.argmax(axis=1), never)
    first_promote = np.where(promotes.any(axis=1), promotes.argmax(axis=1), never)
    # Undecided: inconclusive at the first sample at or past the deadline, or the last one.
    past = np.flatnonzero(ends >= config.max_duration_s)
    deadline_at = ends[past[0]] if past.size else (ends[-1] if ends.size else t[0])

    decision = np.full(c_req.shape[0], "inconclusive", dtype=object)
    at = np.full(c_req.shape[0], float(deadline_at))
    rollback = (first_rollback <= first_promote) & (first_rollback < never)  # checked first
    promote = (first_promote < first_rollback) & (first_promote < never)
    decision[rollback] = "rollback"
    decision[promote] = "promote"
    at[rollback] = ends[first_rollback[rollback]]
    at[promote] = ends[first_promote[promote]]
    return decision, at
