"""Prometheus alerting rules for the signals PromQL can express.

A rule needs the signal's value in PromQL (a ``scrape`` or ``promql`` source)
and a fixed judge: a ``static`` threshold, a ``ratio`` (with its minimum volume
over its window), a ``share`` of a volume, or a multi-window burn rate. A signal
judged by a learned band gets the rule of its prior, the fixed guard the
sentinel itself uses until the band can judge; the band is sharper, so where
the sentinel runs, its alerts are the ones to page on, and these rules are for
a Prometheus that watches the same service on its own (or keeps watching while
the sentinel is down).

Persistence carries over: ``for_seconds`` (or ``for_samples`` intervals) becomes
``for``, ``keep_firing_for_seconds`` becomes ``keep_firing_for``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashboards.judges import Judge, judge_of
from dashboards.promql import SignalQuery, duration, query_for
from sentinel.catalogue import Catalogue, SignalSpec

# Rates need a few scrapes inside their window: at least a minute.
MIN_RATE_WINDOW = 60.0


@dataclass(frozen=True)
class Rule:
    signal: SignalSpec
    judge: Judge
    query: SignalQuery
    alert: str
    expr: str
    window_seconds: float  # the series' age from which the rule can fire
    for_seconds: float
    keep_firing_for_seconds: float
    labels: dict[str, str]
    annotations: dict[str, str]

    def as_yaml(self) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_seconds > 0:
            rule["for"] = duration(self.for_seconds)
        if self.keep_firing_for_seconds > 0:
            rule["keep_firing_for"] = duration(self.keep_firing_for_seconds)
        rule["labels"] = self.labels
        rule["annotations"] = self.annotations
        return rule


def alert_name(signal: str) -> str:
    """``http.error_ratio_by_route`` → ``HttpErrorRatioByRoute``."""
    return "".join(part.capitalize() for part in re.split(r"[._]", signal) if part)


def rules_for(
    catalogue: Catalogue,
    *,
    sentinel_url: str,
    tunings: Mapping[tuple[str, str], Any] | None = None,
) -> list[Rule]:
    rules = []
    for signal in catalogue.signals:
        rule = rule_for(signal, judge_of(signal, tunings), sentinel_url)
        if rule is not None:
            rules.append(rule)
    return rules


def not_expressible(
    catalogue: Catalogue, tunings: Mapping[tuple[str, str], Any] | None = None
) -> dict[str, str]:
    """Signals without a rule, and why (for the export's report)."""
    out = {}
    for signal in catalogue.signals:
        judge = judge_of(signal, tunings)
        if query_for(signal) is None:
            out[signal.name] = f"its {signal.source.type} source is not in Prometheus"
        elif rule_for(signal, judge, "") is None:
            out[signal.name] = f"judged by {judge.detector.kind} with no fixed guard"
    return out


def rule_for(signal: SignalSpec, judge: Judge, sentinel_url: str) -> Rule | None:
    query = query_for(signal)
    if query is None:
        return None
    persistence = judge.detector
    for_seconds = max(
        persistence.for_seconds, (persistence.for_samples - 1) * signal.interval_seconds
    )
    if judge.burn:
        expr, window, condition = _burn_expr(query, judge)
    elif judge.fixed is not None:
        built = _fixed_expr(query, judge, signal)
        if built is None:
            return None
        expr, window, condition = built
    else:
        return None
    series = "".join(f" {label}={{{{ $labels.{label} }}}}" for label in query.by)
    labels = {
        "severity": signal.severity.value,
        **{k: v for k, v in signal.labels.items() if k not in ("severity", "signal")},
        "signal": signal.name,
        "source": "vigil",
    }
    annotations = {
        "summary": f"[{signal.severity.value}] {signal.name}{series}: {condition}",
        "description": f"{signal.description} Judged by {judge.describe}.",
        "runbook_url": f"{sentinel_url}/runbooks/{signal.name}",
        "runbook": signal.runbook.strip(),
    }
    return Rule(
        signal=signal,
        judge=judge,
        query=query,
        alert=alert_name(signal.name),
        expr=expr,
        window_seconds=window,
        for_seconds=for_seconds,
        keep_firing_for_seconds=persistence.keep_firing_for_seconds,
        labels=labels,
        annotations=annotations,
    )


def _num(value: float) -> str:
    return f"{value:.10g}"


def _window(signal: SignalSpec, params: Mapping[str, Any]) -> float:
    return max(
        MIN_RATE_WINDOW, float(params.get("window_seconds") or 0), 2 * signal.interval_seconds
    )


def _fixed_expr(
    query: SignalQuery, judge: Judge, signal: SignalSpec
) -> tuple[str, float, str] | None:
    fixed = judge.fixed
    assert fixed is not None
    p = fixed.params
    op = ">=" if p.get("direction", "above") == "above" else "<="
    window = _window(signal, p)
    w = duration(window)
    value = query.value(w)
    threshold = _num(p["threshold"])
    what = (
        "tuned threshold"
        if judge.tuning_id is not None and not judge.learned
        else ("prior, until the learned band judges" if judge.learned else "threshold")
    )
    over = f" over {w}" if query.uses_rates else ""
    if fixed.kind == "static":
        return (
            f"(\n{value}\n) {op} {threshold}",
            window,
            (f"{p['direction']} {threshold}{over} ({what})"),
        )
    min_volume = float(p.get("min_volume") or 0)
    if fixed.kind == "ratio":
        expr = f"(\n{value}\n) {op} {threshold}"
        condition = f"ratio {p['direction']} {threshold}{over}"
        if min_volume > 0:
            as_count = bool(p.get("volume_is_rate"))
            volume = query.volume(w, as_count=as_count)
            if volume is None:
                return None  # a guard the expression cannot reproduce
            expr += f"\nand\n(\n{volume}\n) >= {_num(min_volume)}"
            unit = "requests" if as_count else "per second"
            condition += f" on at least {_num(min_volume)} {unit}"
        return expr, window, f"{condition} ({what})"
    # share: the value as a share of its volume
    volume = query.volume(w)
    if volume is None:
        return None
    expr = f"(\n{value}\n)\n  /\n(\n{volume}\n) {op} {threshold}"
    if min_volume > 0:
        expr += f"\nand\n(\n{volume}\n) >= {_num(min_volume)}"
    return (
        expr,
        window,
        f"share {p['direction']} {threshold} of at least {_num(min_volume)} ({what})",
    )


def _burn_expr(query: SignalQuery, judge: Judge) -> tuple[str, float, str]:
    p = judge.detector.params
    pairs = []
    for window in judge.burn:
        long_w, short_w = duration(window.long_seconds), duration(window.short_seconds)
        limit = _num(round(window.error_ratio, 12))
        pair = (
            f"(\n  (\n{query.value(long_w)}\n  ) >= {limit}\n  and\n"
            f"  (\n{query.value(short_w)}\n  ) >= {limit}"
        )
        if p["min_volume"] > 0:
            volume = query.volume(short_w, as_count=True)
            if volume is not None:
                pair += f"\n  and\n  (\n{volume}\n  ) >= {_num(p['min_volume'])}"
        pairs.append(pair + "\n)")
    # The quickest pair can fire once its long window holds data.
    needed = min(w.long_seconds for w in judge.burn)
    factors = ", ".join(
        f"{_num(round(w.error_ratio, 12))} over {duration(w.long_seconds)} and "
        f"{duration(w.short_seconds)}"
        for w in judge.burn
    )
    condition = f"burning the {judge.slo:g} SLO's error budget: error ratio at least {factors}"
    return "\nor\n".join(pairs), needed, condition


def rules_file(rules: list[Rule]) -> dict[str, Any]:
    """Prometheus' rule file: one group per service."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        groups.setdefault(rule.signal.labels["service"], []).append(rule.as_yaml())
    return {
        "groups": [
            {"name": f"vigil-{service}", "rules": items} for service, items in groups.items()
        ]
    }
