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
from release_gate.judge.models import Decision, Evidence, JudgeConfig, JudgeInput, Verdict
from release_gate.judge.sequential import ErrorRateTest
from release_gate.judge.signatures import SignatureTracker


def judge(data: JudgeInput, config: JudgeConfig | None = None, *, final: bool = True) -> Verdict:
    """Decide promote / rollback / inconclusive from cumulative counts.

    ``final=False`` is the live gate calling after every new sample: decision None means
    "not yet". ``final=True`` means the input is all there is: undecided is inconclusive.
    Pure: no I/O and no clock, time is the samples' ``t``.
    """
    config = config or JudgeConfig()
    errors = ErrorRateTest(config)
    signatures = SignatureTracker(config)
    latency = LatencyTracker(config)
    evaluations = 0
    last_t: float | None = None

    def verdict(decision: Decision | None, at: float | None, reason: str) -> Verdict:
        evidence = Evidence(
            t=at if at is not None else last_t, evaluations=evaluations,
            error_rate=errors.check(), signatures=signatures.check(), latency=latency.check(),
            config=config,
        )
        return Verdict(decision=decision, decided_at=at, reason=reason, evidence=evidence)

    for step in align(data):
        if step.t > config.max_duration_s:
            return _deadline(verdict, step.t, config, errors)
        last_t = step.t
        if step.interval is not None:
            evaluations += 1
            iv = step.interval
            errors.update(iv.canary.requests, iv.canary.errors,
                          iv.control.requests, iv.control.errors)
            signatures.update(iv.canary, iv.control)
            latency.update(iv.canary, iv.control)
            failing = [check for check, fails in (
                ("error_rate", errors.rolls_back),
                ("signatures", signatures.fails),
                ("latency", latency.fails),
            ) if fails]
            if failing:
                v = verdict("rollback", step.t, "")
                first = getattr(v.evidence, failing[0])
                v.reason = f"Roll back at t={step.t:g}s: {first.reason}."
                return v
            if (errors.rules_out_regression and errors.enough_traffic
                    and step.t >= config.min_duration_s):
                v = verdict("promote", step.t, "")
                v.reason = f"Promote at t={step.t:g}s: {v.evidence.error_rate.reason}."
                return v
        if step.t >= config.max_duration_s:
            return _deadline(verdict, step.t, config, errors)

    if not final:
        v = verdict(None, None, "")
        v.reason = f"Not decided yet: {v.evidence.error_rate.reason}."
        return v
    if last_t is None:
        return verdict("inconclusive", None, "Inconclusive: no samples.")
    v = verdict("inconclusive", last_t, "")
    v.reason = (f"Inconclusive: the input ends at t={last_t:g}s before the evidence was "
                f"enough ({v.evidence.error_rate.reason}).")
    return v


def _deadline(verdict, t: float, config: JudgeConfig, errors: ErrorRateTest) -> Verdict:  # type: ignore[no-untyped-def]
    v = verdict("inconclusive", t, "")
    if not errors.enough_traffic:
        why = (f"too little traffic ({errors.canary_requests} canary requests, "
               f"{errors.control_requests} production; a promote needs "
               f"{config.min_canary_requests} and {config.min_control_requests})")
    else:
        why = v.evidence.error_rate.reason
    v.reason = f"Inconclusive: deadline of {config.max_duration_s:g}s reached, {why}."
    return v
