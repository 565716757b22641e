"""The judge's behaviour on tables of recorded counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from release_gate.judge import CountSample, JudgeConfig, JudgeInput, Verdict, judge

EVERY = 5.0


def counts(
    rate: float,
    error_rate: float | Callable[[float], float],
    until: float = 600.0,
    every: float = EVERY,
    offset: float = 0.0,
    start: int = 0,
) -> list[dict]:
    """Cumulative readings of a node serving ``rate`` requests/s, ``error_rate`` of them
    5xx (a number, or a function of the time)."""
    out: list[dict] = []
    requests, errors, carry = start, int(start * 0.005), 0.0
    t = offset
    previous_t = 0.0
    while t <= until + 1e-9:
        new = round(rate * (t - previous_t))
        p = error_rate(t) if callable(error_rate) else error_rate
        carry += new * p
        requests += new
        errors += int(carry)
        carry -= int(carry)
        out.append({"t": t, "requests": requests, "errors": errors})
        previous_t = t
        t += every
    return out


def run(canary: list[dict], control: list[dict], config: JudgeConfig | None = None,
        final: bool = True) -> Verdict:
    return judge(JudgeInput.model_validate({"canary": canary, "control": control}), config,
                 final=final)


def cut(data: JudgeInput, at: float) -> JudgeInput:
    return JudgeInput(canary=[s for s in data.canary if s.t <= at],
                      control=[s for s in data.control if s.t <= at])


# --- the error rate -------------------------------------------------------------------


def test_clear_regression_rolls_back_within_seconds() -> None:
    v = run(counts(20, 0.10), counts(180, 0.005))
    assert v.decision == "rollback"
    assert v.decided_at is not None and v.decided_at <= 15
    assert v.evidence.error_rate.status == "fail"
    assert v.evidence.error_rate.rollback_e_value >= v.evidence.error_rate.rollback_threshold
    assert "credibly above production" in v.reason
    # 20x production's rate: credibly several times worse, and no more than observed
    worse = v.evidence.error_rate.worse_by_at_least
    assert worse is not None and 2 < worse <= (v.evidence.error_rate.observed_ratio or 0)
    assert f"at least {worse:.3g}x" in v.reason


def test_good_build_with_enough_traffic_is_promoted_and_says_what_it_ruled_out() -> None:
    v = run(counts(20, 0.005), counts(180, 0.005))
    assert v.decision == "promote"
    er = v.evidence.error_rate
    assert v.decided_at is not None and v.decided_at >= JudgeConfig().min_duration_s
    assert er.canary_requests >= JudgeConfig().min_canary_requests
    assert er.ruled_out_ratio is not None and 1 < er.ruled_out_ratio <= 2.0
    assert er.observed_ratio is not None and er.observed_ratio < er.ruled_out_ratio
    assert er.worse_by_at_least is None
    assert f"ruled out >={er.ruled_out_ratio:.3g}x" in v.reason


def test_promote_waits_for_the_minimum_duration_even_on_heavy_traffic() -> None:
    v = run(counts(2000, 0.005), counts(18000, 0.005))
    assert v.decision == "promote"
    assert v.decided_at == 60


def test_mild_regression_is_caught_given_time_not_promoted() -> None:
    v = run(counts(20, 0.009), counts(180, 0.005))  # 1.8x production's rate
    assert v.decision == "rollback"
    assert v.decided_at is not None and v.decided_at > 60


def test_no_canary_traffic_is_inconclusive_never_promoted() -> None:
    v = run(counts(0, 0.0), counts(180, 0.005))
    assert v.decision == "inconclusive"
    assert "too little traffic" in v.reason
    assert v.evidence.error_rate.status == "no_data"


def test_no_samples_at_all_is_inconclusive() -> None:
    v = run([], [])
    assert v.decision == "inconclusive"
    assert v.decided_at is None


def test_no_control_is_inconclusive() -> None:
    v = run(counts(20, 0.0), [])
    assert v.decision == "inconclusive"


def test_too_little_traffic_before_the_deadline_is_inconclusive() -> None:
    v = run(counts(1, 0.005), counts(9, 0.005))
    assert v.decision == "inconclusive"
    assert v.decided_at == 600
    assert "deadline" in v.reason and "too little traffic" in v.reason


def test_slow_canary_with_errors_at_production_rate_reaches_the_deadline() -> None:
    v = run(counts(2, 0.005), counts(18, 0.005))
    assert v.decision == "inconclusive"
    assert "deadline of 600s" in v.reason
    assert v.evidence.error_rate.ruled_out_ratio is None or (
        v.evidence.error_rate.ruled_out_ratio > 2
    )


def test_samples_after_the_deadline_are_not_used() -> None:
    late_errors = counts(20, lambda t: 0.005 if t <= 600 else 0.9, until=900)
    v = run(late_errors, counts(180, 0.005, until=900), JudgeConfig(min_canary_requests=10**6))
    assert v.decision == "inconclusive"
    assert v.decided_at == 600


def test_zero_error_production_and_clean_canary_promote_on_the_floor() -> None:
    v = run(counts(20, 0.0), counts(180, 0.0))
    assert v.decision == "promote"
    er = v.evidence.error_rate
    assert er.control_error_rate == 0 and er.observed_ratio is None
    assert er.ruled_out_ratio is None
    assert er.ruled_out_error_rate is not None
    assert er.ruled_out_error_rate <= JudgeConfig().min_error_rate


def test_zero_error_production_and_failing_canary_rolls_back() -> None:
    v = run(counts(20, 0.02), counts(180, 0.0))
    assert v.decision == "rollback"
    assert v.decided_at is not None and v.decided_at <= 30


def test_an_error_burst_on_every_node_does_not_roll_back() -> None:
    # production's own rate swings 0.5% -> 20% -> 0.5%; the canary follows it exactly
    def burst(t: float) -> float:
        return 0.2 if 100 <= t <= 160 else 0.005

    v = run(counts(20, burst), counts(180, burst))
    assert v.decision != "rollback"


def test_counter_reset_counts_the_restarted_node_from_zero() -> None:
    steady = counts(20, 0.02, until=50)
    restarted = [dict(s) for s in steady]
    for s in restarted[6:]:  # the canary restarts just before t=30: counters from zero,
        s["requests"] -= steady[5]["requests"] + 50  # and the old process's last 50 requests
        s["errors"] -= steady[5]["errors"] + 1  # and 1 error were never scraped
    assert restarted[6]["requests"] > 0 and restarted[6]["errors"] >= 0
    control = counts(180, 0.02, until=50)
    ok = run(steady, control, final=False).evidence.error_rate
    after = run(restarted, control, final=False).evidence.error_rate
    # the increase of the restarted reading is all of it, as Prometheus's increase()
    assert after.canary_requests == ok.canary_requests - 50
    assert after.canary_errors == ok.canary_errors - 1
    assert run(restarted, control, final=False).decision is None


def test_counter_reset_never_reads_as_a_negative_increase() -> None:
    canary = counts(20, 0.005, until=300)
    canary[10] = {"t": canary[10]["t"], "requests": 3, "errors": 0}  # restarted, 3 requests
    for s in canary[11:]:
        s["requests"] -= canary[9]["requests"] - 3
        s["errors"] = max(0, s["errors"] - canary[9]["errors"])
    v = run(canary, counts(180, 0.005, until=300), final=False)
    assert v.evidence.error_rate.canary_requests > 0
    assert v.decision != "rollback"


def test_a_restart_resets_errors_even_when_they_climb_back_above_the_old_count() -> None:
    # requests dropped (restart) while errors read 7 after 5: those 7 are all new errors
    canary = [{"t": 0, "requests": 0, "errors": 0}, {"t": 5, "requests": 1000, "errors": 5},
              {"t": 10, "requests": 100, "errors": 7}]
    control = counts(900, 0.005, until=10)
    v = run(canary, control, final=False)
    assert v.evidence.error_rate.canary_requests == 1100
    assert v.evidence.error_rate.canary_errors == 12


def test_offset_sampling_still_compares_the_same_stretches() -> None:
    v = run(counts(20, 0.10), counts(180, 0.005, offset=2.5))
    assert v.decision == "rollback"
    good = run(counts(20, 0.005), counts(180, 0.005, offset=2.5))
    assert good.decision == "promote"


# --- live use ------------------------------------------------------------------------


def test_live_gate_keeps_watching_until_the_evidence_is_enough() -> None:
    data = JudgeInput.model_validate({"canary": counts(20, 0.005), "control": counts(180, 0.005)})
    final = judge(data)
    assert final.decision == "promote" and final.decided_at is not None
    before = judge(cut(data, final.decided_at - EVERY), final=False)
    assert before.decision is None and before.decided_at is None
    assert before.reason.startswith("Not decided yet")
    at = judge(cut(data, final.decided_at), final=False)
    assert at.decision == "promote" and at.decided_at == final.decided_at


def test_live_gate_gets_inconclusive_at_the_deadline() -> None:
    v = run(counts(2, 0.005), counts(18, 0.005), final=False)
    assert v.decision == "inconclusive"


# --- canary-only error signatures ------------------------------------------------------


def routed(rate: float, routes: dict[str, tuple[float, dict[str, float]]],
           until: float = 600.0) -> list[dict]:
    """Readings with per-route counts: route -> (share of traffic, {status: error rate})."""
    out = []
    t = 0.0
    while t <= until:
        per_route = {}
        for name, (share, statuses) in routes.items():
            n = round(rate * share * t)
            by_status = {s: int(n * p) for s, p in statuses.items()}
            per_route[name] = {"requests": n, "errors": sum(by_status.values()),
                               "statuses": by_status}
        out.append({
            "t": t,
            "requests": sum(r["requests"] for r in per_route.values()),
            "errors": sum(r["errors"] for r in per_route.values()),
            "routes": per_route,
        })
        t += EVERY
    return out


def test_canary_only_signature_rolls_back_and_names_it() -> None:
    # Overall the canary fails as often as production, but one route answers 503 on the
    # canary only: a new failure, hidden in the totals.
    canary = routed(20, {"GET /api/files": (0.5, {"500": 0.0}),
                         "GET /api/jobs": (0.5, {"503": 0.01})})
    control = routed(180, {"GET /api/files": (0.5, {"500": 0.01}),
                           "GET /api/jobs": (0.5, {})})
    v = run(canary, control)
    assert v.decision == "rollback"
    assert v.evidence.signatures.status == "fail"
    assert v.evidence.error_rate.status != "fail"
    worst = v.evidence.signatures.findings[0]
    assert (worst.route, worst.status) == ("GET /api/jobs", "503")
    assert worst.control_errors == 0
    assert worst.canary_errors >= JudgeConfig().signature_min_errors
    assert worst.chance <= JudgeConfig().signature_alpha
    assert "GET /api/jobs answered 503" in v.reason


def restart_after(samples: list[dict], index: int) -> list[dict]:
    """The same readings from a node that restarted right after ``samples[index]``."""
    base = samples[index]
    out = list(samples[: index + 1])
    for s in samples[index + 1:]:
        routes = {
            name: {
                "requests": r["requests"] - base["routes"][name]["requests"],
                "errors": r["errors"] - base["routes"][name]["errors"],
                "statuses": {k: v - base["routes"][name]["statuses"].get(k, 0)
                             for k, v in r["statuses"].items()},
            }
            for name, r in s["routes"].items()
        }
        out.append({**s, "requests": s["requests"] - base["requests"],
                    "errors": s["errors"] - base["errors"], "routes": routes})
    return out


def test_signatures_survive_a_canary_restart() -> None:
    canary = routed(20, {"GET /api/files": (0.5, {"500": 0.0}),
                         "GET /api/jobs": (0.5, {"503": 0.01})})
    control = routed(180, {"GET /api/files": (0.5, {"500": 0.01}),
                           "GET /api/jobs": (0.5, {})})
    steady = run(canary, control)
    restarted = run(restart_after(canary, 5), control)
    assert (restarted.decision, restarted.decided_at) == (steady.decision, steady.decided_at)
    assert restarted.evidence.signatures.findings == steady.evidence.signatures.findings
    assert restarted.evidence.error_rate.canary_requests == (
        steady.evidence.error_rate.canary_requests
    )


def test_signature_seen_on_production_too_is_not_canary_only() -> None:
    routes = {"GET /api/files": (0.5, {"500": 0.005}), "GET /api/jobs": (0.5, {"503": 0.005})}
    v = run(routed(20, routes), routed(180, routes))
    assert v.decision == "promote"
    assert v.evidence.signatures.status == "pass"
    assert v.evidence.signatures.findings == []


def test_errors_without_status_labels_are_one_5xx_signature_per_route() -> None:
    canary = routed(20, {"GET /a": (0.5, {"500": 0.0}), "GET /b": (0.5, {"500": 0.01})})
    for s in canary:
        s["routes"]["GET /b"]["statuses"] = {}
    control = routed(180, {"GET /a": (0.5, {"500": 0.01}), "GET /b": (0.5, {})})
    v = run(canary, control)
    assert v.decision == "rollback"
    assert (v.evidence.signatures.findings[0].route,
            v.evidence.signatures.findings[0].status) == ("GET /b", "5xx")


def test_without_routes_the_signature_check_has_no_data() -> None:
    v = run(counts(20, 0.005), counts(180, 0.005))
    assert v.evidence.signatures.status == "no_data"


# --- latency ---------------------------------------------------------------------------


def with_p95(samples: list[dict], p95: Callable[[float], float]) -> list[dict]:
    return [{**s, "latency_p95_ms": p95(s["t"])} if i else s for i, s in enumerate(samples)]


def test_credibly_slower_canary_rolls_back_on_latency() -> None:
    v = run(with_p95(counts(20, 0.005), lambda t: 400.0 + (t % 7)),
            with_p95(counts(180, 0.005), lambda t: 150.0 + (t % 3)))
    assert v.decision == "rollback"
    assert v.evidence.latency.status == "fail"
    assert v.evidence.error_rate.status != "fail"
    assert v.evidence.latency.slower_intervals == v.evidence.latency.intervals
    assert "p95" in v.reason


def test_latency_within_the_factor_is_not_a_rollback() -> None:
    v = run(with_p95(counts(20, 0.005), lambda t: 200.0 if int(t) % 10 else 400.0),
            with_p95(counts(180, 0.005), lambda t: 180.0))
    assert v.decision == "promote"
    assert v.evidence.latency.status == "pass"
    assert 0 < v.evidence.latency.slower_intervals < v.evidence.latency.intervals


def test_p95_over_too_few_requests_is_not_compared() -> None:
    v = run(with_p95(counts(1, 0.0), lambda t: 900.0), with_p95(counts(9, 0.0), lambda t: 100.0))
    assert v.evidence.latency.status == "no_data"
    assert v.decision == "inconclusive"


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [
    ("alpha", 0.0), ("alpha", 1.5), ("max_regression", 1.0), ("min_canary_requests", 0),
    ("max_duration_s", 0),
])
def test_config_rejects_nonsense(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        JudgeConfig.model_validate({field: value})


def test_stricter_alpha_needs_more_evidence() -> None:
    canary, control = counts(20, 0.012), counts(180, 0.005)
    loose = run(canary, control, JudgeConfig(alpha=0.05))
    strict = run(canary, control, JudgeConfig(alpha=0.0001))
    assert loose.decision == "rollback"
    assert strict.decision != "rollback" or (strict.decided_at or 0) > (loose.decided_at or 0)


def test_samples_must_be_in_time_order() -> None:
    with pytest.raises(ValueError, match=r"canary\[1\]\.t"):
        JudgeInput.model_validate({"canary": [{"t": 5, "requests": 1, "errors": 0},
                                              {"t": 0, "requests": 2, "errors": 0}],
                                   "control": []})


def test_errors_cannot_exceed_requests() -> None:
    with pytest.raises(ValueError, match="exceed requests"):
        CountSample(t=0, requests=1, errors=2)
