"""A prior: a fixed guard that judges a series until its learned detector can.

A fresh install, or a new series (a new payment method, a new route), has no history for
a learned band to stand on. On those steps the prior (a static threshold from the seeds'
norms, e.g. a payment method failing at least 20% of at least 5 attempts) gives the
verdict, and the verdict says so. The learned detector keeps learning underneath and
takes over at the first step it judges; on a step it cannot judge again (a quiet hour
without reference data, too little volume) the prior stands in once more.

A step counts as judged when it is not "no data" and the detector gave a verdict with a
band or an anomaly; warm-up and under-volume steps carry neither. The batch path applies
the same rule to the kernels' arrays, so both paths agree step for step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from .base import Observation, Raw, Verdict

LEARNED = "learned"
PRIOR = "prior"


def judged(v: Verdict) -> bool:
    return not v.no_data and (
        v.anomalous or v.expected is not None or v.lower is not None or v.upper is not None
    )


def judged_array(raw: Raw) -> np.ndarray:
    """`judged` of every step of a kernel's batch output."""
    band = np.isfinite(raw.expected) | np.isfinite(raw.lower) | np.isfinite(raw.upper)
    return ~raw.no_data & (raw.anomalous | band)


class Guarded:
    """The learned detector's verdict where it judges, else the prior's (see module)."""

    def __init__(self, learned: Any, prior: Any) -> None:
        self.learned = learned
        self.prior = prior
        self.name = learned.name
        self.judged_by: str | None = None  # who judged the last judged step
        self.since: float | None = None  # when that judge took over

    def describe(self) -> dict[str, Any]:
        d = dict(self.learned.describe())
        d["prior"] = self.prior.describe()
        d["judged_by"] = self.judged_by
        d["judged_since"] = (
            datetime.fromtimestamp(self.since, UTC).isoformat() if self.since is not None else None
        )
        return d

    def step(self, obs: Observation) -> Verdict:
        lv = self.learned.step(obs)
        pv = self.prior.step(obs)  # stepped every time, so its windows stay current
        if judged(lv):
            self._took(LEARNED, obs.t)
            return lv
        if lv.no_data or not judged(pv):
            return lv
        self._took(PRIOR, obs.t)
        since = datetime.fromtimestamp(self.since or obs.t, UTC).strftime("%Y-%m-%d %H:%M UTC")
        reason = f"{pv.reason}; judged by the prior since {since} (learned band: {lv.reason})"
        return Verdict(
            pv.t,
            pv.value,
            pv.score,
            pv.anomalous,
            pv.firing,
            pv.no_data,
            pv.expected,
            pv.lower,
            pv.upper,
            reason,
        )

    def _took(self, by: str, t: float) -> None:
        if self.judged_by != by:
            self.judged_by, self.since = by, t


def guarded_batch(learned: Raw, prior: Raw) -> Raw:
    """`Guarded.step` over a whole series, from both kernels' batch outputs."""
    use = ~judged_array(learned) & ~learned.no_data & judged_array(prior)

    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(use, b, a)

    return Raw(
        strength=pick(learned.strength, prior.strength),
        anomalous=pick(learned.anomalous, prior.anomalous),
        no_data=learned.no_data.copy(),
        judged=learned.judged | use,
        expected=pick(learned.expected, prior.expected),
        lower=pick(learned.lower, prior.lower),
        upper=pick(learned.upper, prior.upper),
        score=pick(learned.score, prior.score),
    )
