"""Error signatures on the canary only: a (route, status) that fails on the canary
while production, serving the same route, never fails that way.

If a signature's errors were no more likely on the canary than on production, each
of them would land on the canary with probability s, the canary's share of the
route's requests. The check fires when the first c errors of a signature all landed
on the canary, which has probability s**c: this event does not depend on when it is
looked at, so checking after every interval costs nothing. Each signature spends at
most ``signature_alpha`` of false rollbacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from release_gate.judge.counts import SideDelta
from release_gate.judge.models import JudgeConfig, SignatureCheck, SignatureFinding

_SHOWN = 10


@dataclass
class SignatureTracker:
    config: JudgeConfig
    canary: dict[tuple[str, str], int] = field(default_factory=dict)
    control: dict[tuple[str, str], int] = field(default_factory=dict)
    canary_route_requests: dict[str, int] = field(default_factory=dict)
    control_route_requests: dict[str, int] = field(default_factory=dict)
    seen_routes: bool = False

    def update(self, canary: SideDelta, control: SideDelta) -> None:
        if canary.routes is None or control.routes is None:
            return
        self.seen_routes = True
        for side, counts, requests in (
            (canary, self.canary, self.canary_route_requests),
            (control, self.control, self.control_route_requests),
        ):
            for route, totals in (side.routes or {}).items():
                requests[route] = requests.get(route, 0) + totals.requests
                for status, n in totals.statuses.items():
                    counts[(route, status)] = counts.get((route, status), 0) + n

    def findings(self) -> list[SignatureFinding]:
        """Canary-only signatures, least likely to be luck first."""
        found = []
        for (route, status), errors in self.canary.items():
            if self.control.get((route, status), 0) > 0:
                continue
            c_req = max(self.canary_route_requests.get(route, 0), errors)
            p_req = self.control_route_requests.get(route, 0)
            share = c_req / (c_req + p_req)
            found.append(SignatureFinding(
                route=route, status=status, canary_errors=errors, control_errors=0,
                canary_share=share, chance=share**errors,
            ))
        found.sort(key=lambda f: (f.chance, -f.canary_errors, f.route, f.status))
        return found

    def _credible(self, finding: SignatureFinding) -> bool:
        return (finding.canary_errors >= self.config.signature_min_errors
                and finding.chance <= self.config.signature_alpha)

    @property
    def fails(self) -> bool:
        return any(self._credible(f) for f in self.findings())

    def check(self) -> SignatureCheck:
        threshold = self.config.signature_alpha
        if not self.seen_routes:
            return SignatureCheck(status="no_data", reason="no per-route counts on both sides",
                                  threshold=threshold, findings=[])
        findings = self.findings()
        credible = [f for f in findings if self._credible(f)]
        if credible:
            worst = credible[0]
            reason = (
                f"{worst.route} answered {worst.status} {worst.canary_errors} times on the "
                f"canary and never on production (chance {worst.chance:.2g} with "
                f"{worst.canary_share:.0%} of its traffic on the canary)"
            )
            if len(credible) > 1:
                reason += f", and {len(credible) - 1} more canary-only signatures"
            return SignatureCheck(status="fail", reason=reason, threshold=threshold,
                                  findings=findings[:_SHOWN])
        reason = ("no canary-only error signature" if not findings else
                  f"{len(findings)} canary-only signatures, none credible yet")
        return SignatureCheck(status="pass", reason=reason, threshold=threshold,
                              findings=findings[:_SHOWN])
