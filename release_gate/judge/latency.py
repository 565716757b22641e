"""p95 latency: is the canary credibly slower than production by ``latency_factor``?

Only per-interval p95s are available, not the requests' latencies, so the check is a
sign test: in each interval with enough requests on both sides, is the canary's p95
above ``latency_factor`` times production's? With the same latency distribution on
both sides that happens with probability well under one half, so a mixture of
likelihood ratios of q > 1/2 against q = 1/2 over the intervals is an e-process:
the canary is called slow when it reaches 1 / latency_alpha.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from release_gate.judge.counts import SideDelta
from release_gate.judge.models import JudgeConfig, LatencyCheck

_SLOW_SHARES = (0.6, 0.7, 0.8, 0.9, 0.95)


@dataclass
class LatencyTracker:
    config: JudgeConfig

    def __post_init__(self) -> None:
        self.intervals = 0
        self.slower = 0
        self.canary_p95: float | None = None
        self.control_p95: float | None = None

    def update(self, canary: SideDelta, control: SideDelta) -> None:
        minimum = self.config.latency_min_requests
        if (canary.latency_p95_ms is None or control.latency_p95_ms is None
                or canary.latency_requests < minimum or control.latency_requests < minimum):
            return
        self.intervals += 1
        self.slower += canary.latency_p95_ms > self.config.latency_factor * control.latency_p95_ms
        self.canary_p95, self.control_p95 = canary.latency_p95_ms, control.latency_p95_ms

    @property
    def e_value(self) -> float:
        faster = self.intervals - self.slower
        terms = [
            self.slower * math.log(2 * q) + faster * math.log(2 * (1 - q)) for q in _SLOW_SHARES
        ]
        top = max(terms)
        log_e = top + math.log(sum(math.exp(t - top) for t in terms) / len(terms))
        return math.exp(min(log_e, 700.0))

    @property
    def fails(self) -> bool:
        return self.e_value >= 1 / self.config.latency_alpha

    def check(self) -> LatencyCheck:
        cfg = self.config
        if self.intervals == 0:
            status, reason = "no_data", (
                f"no interval with p95 and {cfg.latency_min_requests}+ requests on both sides"
            )
        else:
            counted = (f"canary p95 above {cfg.latency_factor:g}x production's in "
                       f"{self.slower} of {self.intervals} intervals "
                       f"(latest {self.canary_p95:.0f} ms vs {self.control_p95:.0f} ms)")
            status = "fail" if self.fails else "pass"
            reason = counted if self.fails else counted + ", not credibly slower"
        return LatencyCheck(
            status=status, reason=reason, factor=cfg.latency_factor, intervals=self.intervals,
            slower_intervals=self.slower, e_value=self.e_value, threshold=1 / cfg.latency_alpha,
            canary_p95_ms=self.canary_p95, control_p95_ms=self.control_p95,
        )
