"""The judge: the classifiers (error rate, signatures, latency) look at each aligned
interval in time order; the scorer turns their results into one decision and stops
at the first one, so the same input cut at ``decided_at`` gives the same answer.

Any failing check rolls back. A promote needs the error-rate check to have ruled out
the configured regression on enough traffic and the canary to have run for
``min_duration_s``. At ``max_duration_s`` an undecided canary is inconclusive, and
so is one whose input ends first when the input is all there is (``final``).
"""

from __future__ import annotations

from release_gate.judge.counts import align
from release_gate.judge.latency import LatencyTracker
from release_gate.judge.models import Evidence, JudgeConfig, JudgeInput, Verdict
from release_gate.judge.sequential import ErrorRateTest
from release_gate.judge.signatures import SignatureTracker


class _Checks:
    """The three classifiers, fed the same intervals."""

    def __init__(self, config: JudgeConfig) -> None:
        self.config = config
        self.errors = ErrorRateTest(config)
        self.signatures = SignatureTracker(config)
        self.latency = LatencyTracker(config)
        self.evaluations = 0

    def evidence(self, t: float | None) -> Evidence:
        return Evidence(
            t=t, evaluations=self.evaluations, error_rate=self.errors.check(),
            signatures=self.signatures.check(), latency=self.latency.check(), config=self.config,
        )

    def failing(self) -> list[str]:
        return [name for name, fails in (
            ("error_rate", self.errors.rolls_back),
            ("signatures", self.signatures.fails),
            ("latency", self.latency.fails),
        ) if fails]


def judge(data: JudgeInput, config: JudgeConfig | None = None, *, final: bool = True) -> Verdict:
    """Decide promote / rollback / inconclusive from cumulative counts.

    ``final=False`` is the live gate calling after every new sample: decision None means
    "not yet". ``final=True`` means the input is all there is: undecided is inconclusive.
    Pure: no I/O and no clock, time is the samples' ``t``.
    """
    config = config or JudgeConfig()
    checks = _Checks(config)
    last_t: float | None = None
    for step in align(data):
        if step.t > config.max_duration_s:
            return _deadline(checks, step.t)
        last_t = step.t
        if step.interval is not None:
            iv = step.interval
            checks.evaluations += 1
            checks.errors.update(iv.canary.requests, iv.canary.errors,
                                 iv.control.requests, iv.control.errors)
            checks.signatures.update(iv.canary, iv.control)
            checks.latency.update(iv.canary, iv.control)
            failing = checks.failing()
            if failing:
                evidence = checks.evidence(step.t)
                first = getattr(evidence, failing[0])
                return Verdict(decision="rollback", decided_at=step.t, evidence=evidence,
                               reason=f"Roll back at t={step.t:g}s: {first.reason}.")
            if (checks.errors.rules_out_regression and checks.errors.enough_traffic
                    and step.t >= config.min_duration_s):
                evidence = checks.evidence(step.t)
                return Verdict(decision="promote", decided_at=step.t, evidence=evidence,
                               reason=f"Promote at t={step.t:g}s: {evidence.error_rate.reason}.")
        if step.t >= config.max_duration_s:
            return _deadline(checks, step.t)

    evidence = checks.evidence(last_t)
    if not final:
        return Verdict(decision=None, decided_at=None, evidence=evidence,
                       reason=f"Not decided yet: {evidence.error_rate.reason}.")
    if last_t is None:
        return Verdict(decision="inconclusive", decided_at=None, evidence=evidence,
                       reason="Inconclusive: no samples.")
    return Verdict(
        decision="inconclusive", decided_at=last_t, evidence=evidence,
        reason=(f"Inconclusive: the input ends at t={last_t:g}s before the evidence was "
                f"enough ({evidence.error_rate.reason})."),
    )


def _deadline(checks: _Checks, t: float) -> Verdict:
    config, errors = checks.config, checks.errors
    evidence = checks.evidence(t)
    if not errors.enough_traffic:
        why = (f"too little traffic ({errors.canary_requests} canary requests, "
               f"{errors.control_requests} production; a promote needs "
               f"{config.min_canary_requests} and {config.min_control_requests})")
    else:
        why = evidence.error_rate.reason
    return Verdict(decision="inconclusive", decided_at=t, evidence=evidence,
                   reason=f"Inconclusive: deadline of {config.max_duration_s:g}s reached, {why}.")
