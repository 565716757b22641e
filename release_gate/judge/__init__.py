"""The release gate's judge: pure, causal, explained. Cumulative request and error
counts of the canary and of production in; promote, rollback or inconclusive out,
with the evidence of every check."""

from release_gate.judge.models import (
    CheckStatus,
    CountSample,
    Decision,
    ErrorRateCheck,
    Evidence,
    JudgeConfig,
    JudgeInput,
    LatencyCheck,
    RouteCounts,
    SignatureCheck,
    SignatureFinding,
    Verdict,
)
from release_gate.judge.scorer import judge

__all__ = [
    "CheckStatus",
    "CountSample",
    "Decision",
    "ErrorRateCheck",
    "Evidence",
    "JudgeConfig",
    "JudgeInput",
    "LatencyCheck",
    "RouteCounts",
    "SignatureCheck",
    "SignatureFinding",
    "Verdict",
    "judge",
]
