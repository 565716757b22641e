"""``promtool test rules`` cases for the generated rules: for every rule, input
series of the metrics its signal reads that make it fire (with the labels and
annotations the alert must carry) and series that keep it quiet.

The series are made from the signal's own selectors: each label gets a value
its matcher accepts (``status=~"5.."`` → ``500``, ``route!="/metrics"`` → ``x``),
and the denominator's other series a value the numerator's matcher refuses, so
a ratio is exactly the share it was built for."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dashboards.promql import duration
from dashboards.rules import Rule
from sentinel.sources.config import LabelMatcher, MetricSelector, ScrapeSourceConfig

FALLBACK_VALUES = ("x", "y", "200", "other")
STEP_SECONDS = 15.0  # the scrape interval of the test series


class UntestableRule(ValueError):
    """A rule whose inputs cannot be made from its signal's selectors."""


@dataclass(frozen=True)
class Scenario:
    fires: bool
    level: float  # the signal's value the series produce
    low_volume: bool = False  # under the rule's minimum volume: no verdict, no alert


def accepted_value(matcher: LabelMatcher) -> str:
    """A label value ``matcher`` accepts."""
    if matcher.op == "=":
        return matcher.value
    candidates: list[str] = []
    if matcher.op == "=~":
        for alternative in matcher.value.split("|"):
            candidates.append(re.sub(r"\\(.)", r"\1", alternative.replace(".", "0")))
    candidates += FALLBACK_VALUES
    for value in candidates:
        if matcher.matches({matcher.label: value}):
            return value
    raise UntestableRule(f"no example value for the matcher {matcher.describe()}")


def refused_value(matcher: LabelMatcher) -> str:
    """A label value ``matcher`` refuses."""
    opposite = {"=": "!=", "!=": "=", "=~": "!~", "!~": "=~"}[matcher.op]
    return accepted_value(LabelMatcher(label=matcher.label, op=opposite, value=matcher.value))


def labels_for(selector: MetricSelector, by: dict[str, str]) -> dict[str, str]:
    labels = dict(by)
    for matcher in selector.matchers:
        if matcher.label not in labels:
            labels[matcher.label] = accepted_value(matcher)
    if not selector.matches(labels):
        raise UntestableRule(f"the series labels {labels} do not match {selector.describe()}")
    return labels


def _series(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _num(value: float) -> str:
    return f"{value:.10g}"


def _counter(per_step: float, steps: int) -> str:
    return f"0+{_num(per_step)}x{steps}"


def _gauge(value: float, steps: int) -> str:
    return f"{_num(value)}x{steps}"


def by_values(rule: Rule) -> dict[str, str]:
    """The ``by`` labels of the test series: accepted by the selector's matchers."""
    source = rule.query.source
    assert isinstance(source, ScrapeSourceConfig)
    values = {}
    for label in rule.query.by:
        matcher = next((m for m in source.selector.matchers if m.label == label), None)
        values[label] = accepted_value(matcher) if matcher else "a"
    return values


def input_series(
    rule: Rule, level: float, steps: int, step: float, low_volume: bool = False
) -> list[dict[str, str]]:
    """Series whose signal value is ``level`` throughout (``low_volume``: on half the
    rule's minimum volume)."""
    source = rule.query.source
    if not isinstance(source, ScrapeSourceConfig):
        raise UntestableRule(f"{rule.signal.name}: a promql source has no metrics to invent")
    by = by_values(rule)
    selector, f = source.selector, source.function
    if f == "value":
        return [_input(selector.metric, labels_for(selector, by), _gauge(level, steps))]
    if f == "rate":
        return [_input(selector.metric, labels_for(selector, by), _counter(level * step, steps))]
    if f == "quantile":
        return _histogram(rule, source, by, level, steps)
    denominator = source.denominator
    assert denominator is not None
    share = 1.0 - level if source.complement else level
    if f == "gauge_ratio":
        total = 1000.0
        return [
            _input(selector.metric, labels_for(selector, by), _gauge(share * total, steps)),
            _input(denominator.metric, labels_for(denominator, by), _gauge(total, steps)),
        ]
    # A ratio of counters, on enough volume for the rule's guard (or half of it).
    params = rule.judge.fixed.params if rule.judge.fixed else {}
    min_volume = float(params.get("min_volume", 0))
    if low_volume:
        per_second = (
            min_volume / rule.window_seconds if params.get("volume_is_rate") else min_volume
        )
        total = per_second / 2 * step
    else:
        total = max(100.0, 4 * min_volume * step)
    bad = labels_for(selector, by)
    out = [_input(selector.metric, bad, _counter(share * total, steps))]
    if denominator.metric != selector.metric or not denominator.matches(bad):
        out.append(_input(denominator.metric, labels_for(denominator, by), _counter(total, steps)))
        return out
    # The denominator counts the numerator's series too: add the rest of it, a series the
    # denominator takes and the numerator refuses (status="x" beside status="500").
    good = labels_for(denominator, by)
    shared = {m.describe() for m in denominator.matchers}
    extra = next((m for m in selector.matchers if m.describe() not in shared), None)
    if extra is not None:
        good[extra.label] = refused_value(extra)
    if selector.matches(good) or not denominator.matches(good):
        raise UntestableRule(f"{rule.signal.name}: no denominator-only series to make")
    out.append(_input(denominator.metric, good, _counter((1 - share) * total, steps)))
    return out


def _input(metric: str, labels: dict[str, str], values: str) -> dict[str, str]:
    return {"series": _series(metric, labels), "values": values}


def _histogram(
    rule: Rule, source: ScrapeSourceConfig, by: dict[str, str], level: float, steps: int
) -> list[dict[str, str]]:
    """Cumulative buckets at half the line, the line and twice the line. Above the line
    every observation falls in (line, 2 × line], so the quantile lies past the line;
    below it every observation is at most half the line."""
    threshold = float(rule.judge.fixed.params["threshold"]) if rule.judge.fixed else level
    above = level > threshold
    labels = labels_for(source.selector, by)
    metric = f"{source.selector.metric}_bucket"
    out = []
    for bound in (threshold / 2, threshold, threshold * 2, float("inf")):
        counted = bound > threshold if above else True
        le = "+Inf" if bound == float("inf") else _num(bound)
        out.append(_input(metric, {**labels, "le": le}, _counter(10.0 if counted else 0.0, steps)))
    return out


def scenarios(rule: Rule) -> list[Scenario]:
    """A level that fires and one that stays quiet, on the paging side of the line."""
    if rule.judge.burn:
        budget = 1.0 - (rule.judge.slo or 0.999)
        return [Scenario(True, 0.5), Scenario(False, budget / 2)]
    assert rule.judge.fixed is not None
    p = rule.judge.fixed.params
    threshold = float(p["threshold"])
    source = rule.query.source
    ratio_like = rule.judge.fixed.kind in ("ratio", "share") or (
        isinstance(source, ScrapeSourceConfig) and source.function in ("ratio", "gauge_ratio")
    )
    high = (threshold + 1) / 2 if ratio_like else (threshold * 2 if threshold > 0 else 1.0)
    low = threshold / 2 if threshold > 0 else -1.0
    fire, quiet = (high, low) if p.get("direction", "above") == "above" else (low, high)
    out = [Scenario(True, fire), Scenario(False, quiet)]
    if rule.judge.fixed.kind == "ratio" and p.get("min_volume", 0) > 0:
        out.append(Scenario(False, fire, low_volume=True))
    return out


def _expected_annotations(rule: Rule, labels: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, text in rule.annotations.items():
        for label, value in labels.items():
            text = text.replace(f"{{{{ $labels.{label} }}}}", value)
        out[key] = text
    return out


def rule_tests(rules: list[Rule], rule_file: str) -> dict[str, Any]:
    """The promtool test file for ``rules`` (written beside ``rule_file``)."""
    tests = []
    for rule in rules:
        step = 60.0 if rule.judge.burn else STEP_SECONDS
        # The condition holds from the second sample; ``for`` then has to pass.
        eval_seconds = rule.window_seconds + rule.for_seconds + 4 * step
        steps = int(eval_seconds / step) + 5
        for scenario in scenarios(rule):
            labels = {**rule.labels, **by_values(rule)}
            expected = (
                [{"exp_labels": labels, "exp_annotations": _expected_annotations(rule, labels)}]
                if scenario.fires
                else []
            )
            tests.append(
                {
                    "name": f"{rule.alert} {'fires' if scenario.fires else 'stays quiet'} "
                    f"at {_num(scenario.level)}"
                    + (" on too little volume" if scenario.low_volume else ""),
                    "interval": duration(step),
                    "input_series": input_series(
                        rule, scenario.level, steps, step, scenario.low_volume
                    ),
                    "alert_rule_test": [
                        {
                            "eval_time": duration(eval_seconds),
                            "alertname": rule.alert,
                            "exp_alerts": expected,
                        }
                    ],
                }
            )
    return {"rule_files": [rule_file], "evaluation_interval": "15s", "tests": tests}
