"""What the judge reads and what it answers. Everything here crosses a boundary
(the CLI's JSON, the live gate's receipts), so it is all pydantic."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Decision = Literal["promote", "rollback", "inconclusive"]
CheckStatus = Literal["fail", "pass", "pending", "no_data"]


class RouteCounts(BaseModel):
    """Cumulative counts of one route ("GET /api/jobs") on one node."""

    model_config = ConfigDict(extra="forbid")

    requests: int = Field(ge=0)
    errors: int = Field(ge=0, description="5xx answers")
    statuses: dict[str, int] = Field(
        default_factory=dict, description='5xx answers by status: "500" -> count'
    )

    @model_validator(mode="after")
    def _consistent(self) -> RouteCounts:
        if self.errors > self.requests:
            raise ValueError(f"errors ({self.errors}) exceed requests ({self.requests})")
        for status, count in self.statuses.items():
            if count < 0:
                raise ValueError(f"statuses[{status!r}] is negative ({count})")
        return self


class CountSample(BaseModel):
    """One reading of a node's counters, cumulative since the node started."""

    model_config = ConfigDict(extra="forbid")

    t: float = Field(ge=0, allow_inf_nan=False, description="seconds since the canary started")
    requests: int = Field(ge=0)
    errors: int = Field(ge=0, description="5xx answers")
    routes: dict[str, RouteCounts] | None = None
    latency_p95_ms: float | None = Field(
        default=None, ge=0, allow_inf_nan=False,
        description="p95 latency over the window since the previous sample",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CountSample:
        if self.errors > self.requests:
            raise ValueError(f"errors ({self.errors}) exceed requests ({self.requests})")
        return self


class JudgeInput(BaseModel):
    """Samples of the canary and of the production control, each in time order."""

    model_config = ConfigDict(extra="forbid")

    canary: list[CountSample]
    control: list[CountSample]

    @model_validator(mode="after")
    def _in_time_order(self) -> JudgeInput:
        for side in ("canary", "control"):
            samples: list[CountSample] = getattr(self, side)
            for i in range(1, len(samples)):
                if samples[i].t < samples[i - 1].t:
                    raise ValueError(
                        f"{side}[{i}].t = {samples[i].t:g} is before "
                        f"{side}[{i - 1}].t = {samples[i - 1].t:g}: samples must be in time order"
                    )
        return self


class JudgeConfig(BaseModel):
    """The judge's thresholds. The defaults are what the product uses."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(
        default=0.007, gt=0, lt=1,
        description="false-rollback budget of the sequential error-rate test: holds however "
        "often the counts are read (bench/canary.py: worst cell of its sweep under 1%)",
    )
    promote_alpha: float = Field(
        default=0.05, gt=0, lt=1,
        description="chance of promoting a build whose regression is max_regression or worse",
    )
    max_regression: float = Field(
        default=2.0, gt=1,
        description="a promote must rule out the canary's error rate being this many times "
        "the control's ...",
    )
    min_error_rate: float = Field(
        default=0.001, gt=0, lt=1,
        description="... or, when production has (almost) no errors, being at least this rate",
    )
    min_canary_requests: int = Field(default=1000, ge=1, description="never promote on less")
    min_control_requests: int = Field(default=1000, ge=1, description="never promote on less")
    min_duration_s: float = Field(default=60.0, ge=0, description="never promote sooner")
    max_duration_s: float = Field(default=600.0, gt=0, description="inconclusive after this")
    signature_alpha: float = Field(
        default=0.001, gt=0, lt=1,
        description="chance that one (route, status) seen on the canary only is a coincidence",
    )
    signature_min_errors: int = Field(
        default=5, ge=1, description="a canary-only signature needs at least this many errors"
    )
    latency_factor: float = Field(
        default=1.5, gt=1, description="canary p95 above this many times the control's is slow"
    )
    latency_alpha: float = Field(default=0.01, gt=0, lt=1)
    latency_min_requests: int = Field(
        default=10, ge=1, description="an interval's p95 counts only with this many requests"
    )

    @model_validator(mode="after")
    def _durations(self) -> JudgeConfig:
        if self.min_duration_s > self.max_duration_s:
            raise ValueError("min_duration_s exceeds max_duration_s")
        return self


class ErrorRateCheck(BaseModel):
    """The sequential comparison of the canary's 5xx rate with the control's."""

    status: CheckStatus
    reason: str
    canary_requests: int
    canary_errors: int
    control_requests: int
    control_errors: int
    canary_error_rate: float | None
    control_error_rate: float | None
    observed_ratio: float | None = Field(description="canary rate / control rate")
    rollback_e_value: float = Field(
        description="evidence that the canary is worse (mixture likelihood ratio)"
    )
    rollback_threshold: float = Field(description="1 / alpha")
    promote_e_value: float = Field(
        description="evidence that the regression is below max_regression or min_error_rate"
    )
    promote_threshold: float = Field(description="1 / promote_alpha")
    ruled_out_ratio: float | None = Field(
        description="smallest canary/control ratio the data ruled out (None: none yet)"
    )
    ruled_out_error_rate: float | None = Field(
        description="smallest canary error rate the data ruled out (None: none yet)"
    )
    worse_by_at_least: float | None = Field(
        default=None,
        description="largest ratio the canary is credibly worse than (None: not credibly worse)",
    )


class SignatureFinding(BaseModel):
    route: str
    status: str
    canary_errors: int
    control_errors: int
    canary_share: float = Field(description="canary's share of the route's requests")
    chance: float = Field(description="probability all these errors land on the canary by luck")


class SignatureCheck(BaseModel):
    status: CheckStatus
    reason: str
    threshold: float = Field(description="signature_alpha")
    findings: list[SignatureFinding] = Field(description="canary-only signatures, worst first")


class LatencyCheck(BaseModel):
    status: CheckStatus
    reason: str
    factor: float
    intervals: int = Field(description="intervals with enough requests on both sides")
    slower_intervals: int = Field(description="intervals with canary p95 above factor x control")
    e_value: float
    threshold: float = Field(description="1 / latency_alpha")
    canary_p95_ms: float | None = Field(description="latest interval compared")
    control_p95_ms: float | None


class Evidence(BaseModel):
    """Kayenta style: every check's result, and the scorer's inputs."""

    t: float | None = Field(description="the time the evidence was read at")
    evaluations: int = Field(description="aligned canary/control intervals examined")
    error_rate: ErrorRateCheck
    signatures: SignatureCheck
    latency: LatencyCheck
    config: JudgeConfig


class Verdict(BaseModel):
    decision: Decision | None = Field(description="None: keep watching (live gate only)")
    decided_at: float | None
    reason: str
    evidence: Evidence
