"""The anytime-valid comparison of the canary's error rate with production's.

Model. In one interval the canary serves n_c requests and production n_p. Errors on
each side are (close to) Poisson with means n_c * p_c and n_p * p_p, so given the
interval's k errors in total, the canary's share of them is Binomial(k, pi) with

    pi(rho) = rho * s / (rho * s + 1 - s),   s = n_c / (n_c + n_p),  rho = p_c / p_p.

Conditioning on k, interval by interval, removes production's error rate altogether:
it may drift (a dependency flapping for everyone) without fooling the test, which is
the reason to compare with production running at the same moment.

Rollback. Under "no regression" (rho <= 1) the likelihood ratio of any rho_j > 1
against rho = 1, multiplied over intervals, is a nonnegative supermartingale (the
binomial is an exponential family in log rho), and so is any fixed mixture of them.
By Ville's inequality the mixture ever reaching 1/alpha has probability at most
alpha, however often it is looked at: we roll back the first time it does. (With each
request failing independently instead, the canary's share of k errors is hypergeometric,
less spread than the binomial (Hoeffding), so the ratio stays a supermartingale.) The
bound holds per release whatever the sampling interval; bench/canary.py measures it
cell by cell over base rates, traffic levels and 1 s / 5 s samples.

Promote. The regression to rule out is "rho >= max_regression and the canary's rate
>= min_error_rate" (the floor stops a near-zero production rate from making every
release undecidable). Rejecting either half rejects the whole, each at promote_alpha/2:
  * ratio half: the likelihood ratio of rho = 1 against rho = max_regression, a
    supermartingale whenever rho >= max_regression;
  * floor half: the canary alone, Bernoulli(p_c); a mixture of likelihood ratios of
    p = a * floor (a < 1) against p = floor, a supermartingale whenever p_c >= floor.
Inverting the same tests for every rho (every p) gives the smallest ratio (rate) the
data ruled out so far, a confidence sequence at the same level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from release_gate.judge.models import ErrorRateCheck, JudgeConfig

# Alternatives the rollback mixture bets on, and their weights: from a 2x regression to a
# build failing every other request. The weight sits on 4x-13x, where a canary that runs
# out of time (2 requests/s, a low production error rate) needs every bit of evidence;
# big regressions are caught within a sample or two whatever their weight. Tuned with
# alpha on bench/canary.py's sweep: worst cell of false rollbacks well under 1%, and
# detection at 5x and 10x no worse than with 13 equal weights at alpha 0.01.
ROLLBACK_RATIOS: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.5, 8.0, 10.0, 13.0, 20.0, 50.0,
                                      200.0)
ROLLBACK_WEIGHTS: tuple[float, ...] = (0.7, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 1.5, 1.0, 0.7, 0.7)
# Alternatives of the floor half, as fractions of min_error_rate.
FLOOR_FRACTIONS: tuple[float, ...] = (0.02, 0.1, 0.25, 0.5)
_MAX_LOG_RATIO = math.log(1e6)


def _logsumexp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.sum(np.exp(values - top))))


# The test's formulas, on numbers or numpy arrays alike: ErrorRateTest applies them one
# interval at a time, release_gate.judge.batch to many releases at once.


def rollback_log_increment(canary_errors: ArrayLike, total_errors: ArrayLike,
                           share: ArrayLike,
                           ratios: tuple[float, ...] = ROLLBACK_RATIOS) -> np.ndarray:
    """Each rollback alternative's log likelihood ratio for one interval (last axis)."""
    ratios = np.asarray(ratios)
    c = np.asarray(canary_errors, dtype=float)[..., None]
    k = np.asarray(total_errors, dtype=float)[..., None]
    s = np.asarray(share, dtype=float)[..., None]
    return c * np.log(ratios) - k * np.log1p(s * (ratios - 1.0))


def promote_log_increment(canary_errors: ArrayLike, total_errors: ArrayLike, share: ArrayLike,
                          max_regression: float) -> np.ndarray:
    """The promote ratio half's log likelihood ratio (rho = 1 against max_regression)."""
    k = np.asarray(total_errors, dtype=float)
    c = np.asarray(canary_errors, dtype=float)
    return k * np.log1p(np.asarray(share) * (max_regression - 1.0)) - c * math.log(max_regression)


def floor_log_e(canary_requests: ArrayLike, canary_errors: ArrayLike, rate: float) -> np.ndarray:
    """Evidence against "canary rate >= rate", from the canary's totals alone."""
    n = np.asarray(canary_requests, dtype=float)
    e = np.asarray(canary_errors, dtype=float)
    logs = np.stack([
        e * math.log(a) + (n - e) * (math.log1p(-a * rate) - math.log1p(-rate))
        for a in FLOOR_FRACTIONS
    ], axis=-1)
    top = np.max(logs, axis=-1)
    return top + np.log(np.mean(np.exp(logs - top[..., None]), axis=-1))


def mixture_log_e(log_alternatives: np.ndarray,
                  weights: tuple[float, ...] = ROLLBACK_WEIGHTS) -> np.ndarray:
    """Log of the weighted mixture of the rollback alternatives (last axis)."""
    weights = np.asarray(weights) / np.sum(weights)
    top = np.max(log_alternatives, axis=-1)
    return top + np.log(np.sum(weights * np.exp(log_alternatives - top[..., None]), axis=-1))


@dataclass
class ErrorRateTest:
    """Running state of the test; ``update`` once per aligned interval."""

    config: JudgeConfig

    def __post_init__(self) -> None:
        self.canary_requests = 0
        self.canary_errors = 0
        self.control_requests = 0
        self.control_errors = 0
        self._log_rollback = np.zeros(len(ROLLBACK_RATIOS))
        self._ratios = np.array(ROLLBACK_RATIOS)
        self._log_promote_ratio = 0.0
        # per interval with errors: canary errors, total errors, canary share
        self._canary_errors: list[int] = []
        self._total_errors: list[int] = []
        self._shares: list[float] = []

    def update(self, canary_requests: int, canary_errors: int,
               control_requests: int, control_errors: int) -> None:
        # Scrapes of two counters are not atomic: never fewer requests than errors.
        n_c = max(canary_requests, canary_errors)
        n_p = max(control_requests, control_errors)
        self.canary_requests += n_c
        self.canary_errors += canary_errors
        self.control_requests += n_p
        self.control_errors += control_errors
        k = canary_errors + control_errors
        if k == 0 or n_c == 0 or n_p == 0:
            return  # no errors, or one side idle: the interval says nothing about rho
        share = n_c / (n_c + n_p)
        self._log_rollback += rollback_log_increment(canary_errors, k, share)
        self._log_promote_ratio += float(
            promote_log_increment(canary_errors, k, share, self.config.max_regression))
        self._canary_errors.append(canary_errors)
        self._total_errors.append(k)
        self._shares.append(share)

    # --- evidence -------------------------------------------------------------------

    @property
    def rollback_e_value(self) -> float:
        return math.exp(min(float(mixture_log_e(self._log_rollback)), 700.0))

    @property
    def rolls_back(self) -> bool:
        return self.rollback_e_value >= 1.0 / self.config.alpha

    def _log_floor_e(self, rate: float) -> float:
        return float(floor_log_e(self.canary_requests, self.canary_errors, rate))

    @property
    def promote_e_value(self) -> float:
        """The larger of the two halves' evidence (each must reach 2 / promote_alpha)."""
        log_e = max(self._log_promote_ratio, self._log_floor_e(self.config.min_error_rate))
        return math.exp(min(log_e, 700.0))

    @property
    def promote_threshold(self) -> float:
        return 2.0 / self.config.promote_alpha

    @property
    def rules_out_regression(self) -> bool:
        return self.promote_e_value >= self.promote_threshold

    @property
    def enough_traffic(self) -> bool:
        return (self.canary_requests >= self.config.min_canary_requests
                and self.control_requests >= self.config.min_control_requests)

    def ruled_out_ratio(self) -> float | None:
        """Smallest rho with "canary rate >= rho x production's" ruled out (None: none)."""
        if not self._total_errors:
            return None
        e_c = np.array(self._canary_errors, dtype=float)
        k = np.array(self._total_errors, dtype=float)
        s = np.array(self._shares)
        target = math.log(self.promote_threshold)

        def log_e(theta: float) -> float:  # convex in theta, 0 at theta = 0
            return float(np.sum(k * np.log1p(s * math.expm1(theta))) - e_c.sum() * theta)

        if log_e(_MAX_LOG_RATIO) < target:
            return None
        lo, hi = 0.0, _MAX_LOG_RATIO  # log_e(lo) < target <= log_e(hi), increasing between
        for _ in range(60):
            mid = (lo + hi) / 2
            if log_e(mid) >= target:
                hi = mid
            else:
                lo = mid
        return math.exp(hi)

    def worse_by_at_least(self) -> float | None:
        """Largest rho0 >= 1 with "canary rate <= rho0 x production's" rejected at alpha.

        The same weighted mixture as the rollback test, shifted to rho0 (alternatives rho0 x rho_j);
        its evidence falls as rho0 grows, so the boundary is found by bisection."""
        if not self._total_errors or not self.rolls_back:
            return None
        e_c = np.array(self._canary_errors, dtype=float)
        k = np.array(self._total_errors, dtype=float)
        s = np.array(self._shares)
        ratios = self._ratios
        target = math.log(1.0 / self.config.alpha)
        log_weights = np.log(np.asarray(ROLLBACK_WEIGHTS) / np.sum(ROLLBACK_WEIGHTS))

        def log_e(rho0: float) -> float:  # log of the mixture's sum, decreasing in rho0
            base = np.log1p(s * (rho0 - 1.0))
            logs = [
                float(np.sum(e_c * math.log(r) - k * (np.log1p(s * (rho0 * r - 1.0)) - base)))
                for r in ratios
            ]
            return _logsumexp(np.array(logs) + log_weights)

        lo, hi = 0.0, _MAX_LOG_RATIO  # in log rho0: evidence enough at lo
        if log_e(math.exp(hi)) >= target:
            return math.exp(hi)
        for _ in range(50):
            mid = (lo + hi) / 2
            if log_e(math.exp(mid)) >= target:
                lo = mid
            else:
                hi = mid
        return math.exp(lo)

    def ruled_out_error_rate(self) -> float | None:
        """Smallest canary error rate ruled out (None: none yet)."""
        if self.canary_requests == 0:
            return None
        target = math.log(self.promote_threshold)
        lo, hi = math.log(1e-7), math.log(0.999)
        if self._log_floor_e(math.exp(hi)) < target:
            return None
        if self._log_floor_e(math.exp(lo)) >= target:
            return math.exp(lo)
        for _ in range(60):  # increasing in the rate
            mid = (lo + hi) / 2
            if self._log_floor_e(math.exp(mid)) >= target:
                hi = mid
            else:
                lo = mid
        return math.exp(hi)

    def check(self) -> ErrorRateCheck:
        cfg = self.config
        c_rate = self.canary_errors / self.canary_requests if self.canary_requests else None
        p_rate = self.control_errors / self.control_requests if self.control_requests else None
        ratio = c_rate / p_rate if c_rate is not None and p_rate else None
        ruled_ratio = self.ruled_out_ratio()
        ruled_rate = self.ruled_out_error_rate()
        worse = self.worse_by_at_least()
        if self.canary_requests == 0 or self.control_requests == 0:
            status, reason = "no_data", _no_data_reason(self.canary_requests,
                                                        self.control_requests)
        elif self.rolls_back:
            status = "fail"
            reason = (
                f"canary 5xx rate {_pct(c_rate)} ({self.canary_errors}/{self.canary_requests}) "
                f"is credibly above production's {_pct(p_rate)} "
                f"({self.control_errors}/{self.control_requests}): "
                f"evidence {_num(self.rollback_e_value)} >= {_num(1 / cfg.alpha)}"
            )
            if worse is not None and worse >= 1.1:
                reason += f", at least {worse:.3g}x production's rate"
        elif self.rules_out_regression and self.enough_traffic:
            status = "pass"
            reason = (
                f"canary 5xx rate {_pct(c_rate)} ({self.canary_errors}/{self.canary_requests}) "
                f"vs production's {_pct(p_rate)} "
                f"({self.control_errors}/{self.control_requests}): "
                f"{ruled_out_text(ruled_ratio, ruled_rate)}"
            )
        else:
            status = "pending"
            needs = (f"needs {cfg.max_regression:g}x production's rate or "
                     f"{_pct(cfg.min_error_rate)} ruled out")
            if not self.enough_traffic:
                needs += (f" and {cfg.min_canary_requests} canary / "
                          f"{cfg.min_control_requests} production requests")
            reason = (
                f"canary {self.canary_errors}/{self.canary_requests} errors, production "
                f"{self.control_errors}/{self.control_requests}: "
                f"{ruled_out_text(ruled_ratio, ruled_rate)}; {needs}"
            )
        return ErrorRateCheck(
            status=status, reason=reason,
            canary_requests=self.canary_requests, canary_errors=self.canary_errors,
            control_requests=self.control_requests, control_errors=self.control_errors,
            canary_error_rate=c_rate, control_error_rate=p_rate, observed_ratio=ratio,
            rollback_e_value=self.rollback_e_value, rollback_threshold=1 / cfg.alpha,
            promote_e_value=self.promote_e_value, promote_threshold=self.promote_threshold,
            ruled_out_ratio=ruled_ratio, ruled_out_error_rate=ruled_rate,
            worse_by_at_least=worse,
        )


def ruled_out_text(ratio: float | None, rate: float | None) -> str:
    parts = []
    if ratio is not None:
        parts.append(f">={ratio:.3g}x production's rate")
    if rate is not None:
        parts.append(f"a canary rate >={_pct(rate)}")
    return "ruled out " + " and ".join(parts) if parts else "no regression ruled out yet"


def _no_data_reason(canary_requests: int, control_requests: int) -> str:
    missing = [side for side, n in (("canary", canary_requests),
                                    ("production", control_requests)) if n == 0]
    return f"no {' or '.join(missing)} traffic yet"


def _pct(rate: float | None) -> str:
    if rate is None:
        return "n/a"
    return f"{rate * 100:.2g}%" if rate < 0.001 else f"{rate * 100:.2f}%"


def _num(value: float) -> str:
    return f"{value:.3g}"
