"""The release gate's judge: pure, causal, explained. Cumulative request and error
counts of the canary and of production in; promote, rollback or inconclusive out,
with the evidence of every check.

    judge(JudgeInput(canary=[...], control=[...]), JudgeConfig(), final=True) -> Verdict

Modules: ``models`` (inputs, settings, verdict), ``counts`` (counter resets, aligned
intervals), ``sequential`` (the anytime-valid error-rate test), ``signatures``
(canary-only route/status errors), ``latency`` (p95), ``scorer`` (the decision),
``reading`` (JSON input with errors that name the field)."""

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
from release_gate.judge.reading import JudgeInputError, parse_judge_input
from release_gate.judge.scorer import judge

__all__ = [
    "CheckStatus",
    "CountSample",
    "Decision",
    "ErrorRateCheck",
    "Evidence",
    "JudgeConfig",
    "JudgeInput",
    "JudgeInputError",
    "LatencyCheck",
    "RouteCounts",
    "SignatureCheck",
    "SignatureFinding",
    "Verdict",
    "judge",
    "parse_judge_input",
]
