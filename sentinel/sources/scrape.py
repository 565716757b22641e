"""``scrape`` signals: read ``/metrics`` of one or more targets directly, no
Prometheus server needed.

A selector picks samples (metric name and label matchers); ``by`` labels split
the result into sub-series; the function turns samples into a value:

- ``value``: the sum of the matched samples as they are (gauges);
- ``rate``: per-second increase of counters since the previous scrape;
- ``ratio``: rate(numerator) / rate(denominator), the denominator rate as volume;
- ``gauge_ratio``: sum(numerator) / sum(denominator) of gauges as they are, e.g.
  available / total memory, the denominator as volume;
- ``quantile``: from histogram buckets' rates, like PromQL's histogram_quantile.

With ``complement`` a ratio is reported as ``1 - ratio``: the used share from
"available" and "total" gauges, the busy share from idle CPU time.

Rates are computed per target and per series and then summed: each node
restarts on its own, and a counter that went down restarted there and counts
from zero. Every sample gets an ``instance`` label (the target's host:port)
unless it has one, so ``by: [instance]`` splits per node."""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

from common.logs import get_logger
from sentinel.sources.base import Labels, Reading, SeriesPoint, SourceFault, as_utc, labels_of

if TYPE_CHECKING:
    from sentinel.sources.config import MetricSelector

log = get_logger(__name__)

Function = Literal["value", "rate", "ratio", "quantile", "gauge_ratio"]
RATIOS = ("ratio", "gauge_ratio")
SeriesKey = tuple[str, Labels]  # sample name and its full label set
TargetRates = dict[SeriesKey, tuple[Mapping[str, str], float]]  # per-second, one target
WARMING_UP = "warming up"


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


class ScrapeError(Exception):
    """One target could not be read; the message names it and says why."""


@dataclass(frozen=True, slots=True)
class Exposition:
    samples: list[Sample]
    # Declared metric families, with or without samples: a labelled counter that
    # has not counted anything yet is declared but has no series.
    families: frozenset[str]


def parse_exposition(body: str, instance: str) -> Exposition:
    """A Prometheus text exposition; every sample gets an ``instance`` label."""
    samples = []
    families = set()
    for family in text_string_to_metric_families(body):
        families.add(family.name)
        for s in family.samples:
            labels = dict(s.labels)
            labels.setdefault("instance", instance)
            samples.append(Sample(s.name, labels, float(s.value)))
    return Exposition(samples, frozenset(families))


def target_source(target: str) -> str:
    """How a failing target is named in its source alert."""
    return f"scrape target {target}"


def instance_of(target: str) -> str:
    return urlsplit(target).netloc or target


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile over ``(upper bound, cumulative count)`` pairs.
    NaN when there were no observations or no +Inf bucket."""
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    # Rates of separately scraped buckets can be slightly non-monotonic; flatten them.
    fixed: list[tuple[float, float]] = []
    running = 0.0
    for bound, count in ordered:
        running = max(running, count)
        fixed.append((bound, running))
    total = fixed[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    b = next(i for i, (_, count) in enumerate(fixed) if count >= rank)
    if b == len(fixed) - 1:
        return fixed[-2][0]  # in the +Inf bucket: the highest finite bound
    if b == 0 and fixed[0][0] <= 0:
        return fixed[0][0]
    lower, below = (0.0, 0.0) if b == 0 else fixed[b - 1]
    upper, count = fixed[b]
    in_bucket = count - below
    if in_bucket <= 0:
        return upper
    return lower + (upper - lower) * ((rank - below) / in_bucket)


@dataclass
class _TargetState:
    t: datetime
    values: dict[SeriesKey, float]


class ScrapeSource:
    def __init__(
        self,
        client: httpx.Client,
        targets: Sequence[str],
        selector: MetricSelector,
        *,
        function: Function = "value",
        by: Sequence[str] = (),
        denominator: MetricSelector | None = None,
        complement: bool = False,
        quantile: float | None = None,
        name: str = "scrape",
        owns_client: bool = True,
    ) -> None:
        if not targets:
            raise ValueError("a scrape source needs at least one target")
        if function in RATIOS and denominator is None:
            raise ValueError(f"function {function!r} needs a denominator selector")
        if complement and function not in RATIOS:
            raise ValueError(f"complement is only used by ratios, not {function!r}")
        if function == "quantile" and quantile is None:
            raise ValueError("function 'quantile' needs quantile (0..1)")
        self.client = client
        self.targets = list(targets)
        self.selector = selector
        self.function = function
        self.by = tuple(sorted(set(by)))
        self.denominator = denominator
        self.complement = complement
        self.quantile = quantile
        self.name = name
        self._owns_client = owns_client
        self.depends_on = tuple(target_source(t) for t in self.targets)
        self._state: dict[str, _TargetState] = {}
        self._lock = threading.Lock()  # read() may be called from an API thread too

    # --- Source ---------------------------------------------------------------

    def read(self, now: datetime) -> Reading:
        now = as_utc(now)
        scraped, failures = self._scrape_all()
        faults = tuple(SourceFault(target_source(t), why) for t, why in failures.items())
        if not scraped:
            reason = "scrape failed: " + "; ".join(failures.values())
            log.error("source.scrape_failed", signal=self.name, reason=reason)
            return Reading.empty(now, reason, faults)
        if failures:
            # Partial: the answering targets still give a reading; the log names the others.
            log.warning(
                "source.scrape_partial",
                signal=self.name,
                failed=",".join(failures),
                reasons="; ".join(failures.values()),
                answered=len(scraped),
            )
        with self._lock:
            reading = self._compute(now, scraped)
        if faults:
            reading = replace(reading, faults=faults)
        if not reading.ok:
            level = log.info if (reading.no_data or "").startswith(WARMING_UP) else log.warning
            level("source.no_data", signal=self.name, source="scrape", reason=reading.no_data)
        return reading

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # --- scraping ---------------------------------------------------------------

    def _scrape_all(self) -> tuple[dict[str, Exposition], dict[str, str]]:
        scraped: dict[str, Exposition] = {}
        failures: dict[str, str] = {}
        for target in self.targets:
            try:
                scraped[target] = self._scrape(target)
            except ScrapeError as exc:
                failures[target] = str(exc)
        return scraped, failures

    def _scrape(self, target: str) -> Exposition:
        try:
            response = self.client.get(target, headers={"Accept": "text/plain;version=0.0.4"})
        except httpx.TimeoutException:
            raise ScrapeError(f"{target}: timed out") from None
        except httpx.HTTPError as exc:
            raise ScrapeError(f"{target}: unreachable ({type(exc).__name__}: {exc})") from None
        if response.status_code != 200:
            raise ScrapeError(f"{target}: HTTP {response.status_code}")
        try:
            return parse_exposition(response.text, instance_of(target))
        except Exception as exc:  # the parser raises ValueError, IndexError, ... on bad text
            raise ScrapeError(f"{target}: not a Prometheus exposition ({exc})") from None

    # --- computing ---------------------------------------------------------------

    def _selectors(self) -> list[MetricSelector]:
        return [self.selector] + ([self.denominator] if self.denominator is not None else [])

    def _names(self, selector: MetricSelector) -> frozenset[str]:
        """Sample names the selector means (``x`` also finds counter samples ``x_total``)."""
        metric = selector.metric
        if self.function == "quantile":
            return frozenset({metric.removesuffix("_bucket") + "_bucket"})
        if metric.endswith("_total"):
            return frozenset({metric})
        return frozenset({metric, metric + "_total"})

    def _family(self, selector: MetricSelector) -> str:
        """The family name the parser reports for the selector's samples."""
        if self.function == "quantile":
            return selector.metric.removesuffix("_bucket")
        return selector.metric.removesuffix("_total")

    def _matched(self, selector: MetricSelector, samples: Iterable[Sample]) -> list[Sample]:
        names = self._names(selector)
        return [s for s in samples if s.name in names and selector.matches(s.labels)]

    def _compute(self, now: datetime, scraped: dict[str, Exposition]) -> Reading:
        # Rates first: every answering target's baseline is kept even when this
        # reading ends up as no data, so the next one can compute a rate.
        gauges = ("value", "gauge_ratio")
        rates, warming = self._rates(now, scraped) if self.function not in gauges else ([], [])
        for selector in self._selectors():
            family, names = self._family(selector), self._names(selector)
            if not any(
                family in ex.families or any(s.name in names for s in ex.samples)
                for ex in scraped.values()
            ):
                return Reading.empty(
                    now, f"no target exposes {selector.metric} ({', '.join(scraped)})"
                )
        if self.function == "value":
            return self._values(now, scraped)
        if self.function == "gauge_ratio":
            return self._gauge_ratio_points(now, scraped)
        if not rates:
            return Reading.empty(
                now,
                f"{WARMING_UP}: no earlier scrape of {', '.join(warming)} to compute a rate from",
            )
        if warming:
            log.info("source.target_warming_up", signal=self.name, targets=",".join(warming))
        if self.function == "rate":
            return self._rate_points(now, rates)
        if self.function == "ratio":
            return self._ratio_points(now, rates)
        return self._quantile_points(now, rates)

    def _group(self, labels: Mapping[str, str]) -> Labels:
        return labels_of({k: labels.get(k, "") for k in self.by})

    def _gauge_sums(
        self, selector: MetricSelector, scraped: dict[str, Exposition]
    ) -> dict[Labels, float]:
        sums: dict[Labels, float] = defaultdict(float)
        for ex in scraped.values():
            for s in self._matched(selector, ex.samples):
                if math.isfinite(s.value):
                    sums[self._group(s.labels)] += s.value
        return sums

    def _values(self, now: datetime, scraped: dict[str, Exposition]) -> Reading:
        sums = self._gauge_sums(self.selector, scraped)
        if not sums:
            return Reading.empty(now, f"no series matched {self.selector.describe()}")
        return Reading(now, tuple(SeriesPoint(k, v) for k, v in sorted(sums.items())))

    def _share(self, part: float, whole: float) -> float:
        ratio = part / whole
        return 1.0 - ratio if self.complement else ratio

    def _gauge_ratio_points(self, now: datetime, scraped: dict[str, Exposition]) -> Reading:
        assert self.denominator is not None
        num = self._gauge_sums(self.selector, scraped)
        den = self._gauge_sums(self.denominator, scraped)
        points = [
            SeriesPoint(key, self._share(num.get(key, 0.0), whole), whole)
            for key, whole in sorted(den.items())
            if whole > 0
        ]
        if not points:
            return Reading.empty(
                now, f"no series of {self.denominator.describe()} above zero to divide by"
            )
        return Reading(now, tuple(points))

    def _rates(
        self, now: datetime, scraped: dict[str, Exposition]
    ) -> tuple[list[TargetRates], list[str]]:
        """Per-second rates per series of every answering target that has a
        previous scrape; and the targets seen for the first time."""
        out = []
        warming = []
        for target, ex in scraped.items():
            current: TargetRates = {}
            for selector in self._selectors():
                for s in self._matched(selector, ex.samples):
                    current[(s.name, labels_of(s.labels))] = (s.labels, s.value)
            prev = self._state.get(target)
            if prev is not None and now <= prev.t:
                warming.append(target)  # time did not move: keep the older baseline
                continue
            self._state[target] = _TargetState(now, {k: v for k, (_, v) in current.items()})
            if prev is None:
                warming.append(target)
                continue
            dt = (now - prev.t).total_seconds()
            rates: TargetRates = {}
            for key, (labels, value) in current.items():
                # A series absent last time did not exist yet (client libraries create
                # series on first use), so it counted from zero.
                before = prev.values.get(key, 0.0)
                increase = value - before if value >= before else value  # reset: restarted at 0
                rates[key] = (labels, increase / dt)
            out.append(rates)
        return out, warming

    def _sum_rates(
        self,
        selector: MetricSelector,
        rates: list[TargetRates],
        extra: Callable[[Mapping[str, str]], tuple[str, ...]] = lambda _l: (),
    ) -> dict[tuple[Labels, tuple[str, ...]], float]:
        names = self._names(selector)
        sums: dict[tuple[Labels, tuple[str, ...]], float] = defaultdict(float)
        for per_target in rates:
            for (name, _), (labels, rate) in per_target.items():
                if name in names and selector.matches(labels):
                    sums[(self._group(labels), extra(labels))] += rate
        return sums

    def _rate_points(self, now: datetime, rates: list[TargetRates]) -> Reading:
        sums = self._sum_rates(self.selector, rates)
        if not sums:
            if not self.by:  # the metric exists but no series matches yet: nothing happened
                return Reading(now, (SeriesPoint((), 0.0),))
            return Reading.empty(now, f"no series matched {self.selector.describe()}")
        return Reading(now, tuple(SeriesPoint(k, v) for (k, _), v in sorted(sums.items())))

    def _ratio_points(self, now: datetime, rates: list[TargetRates]) -> Reading:
        assert self.denominator is not None
        num = self._sum_rates(self.selector, rates)
        den = self._sum_rates(self.denominator, rates)
        points = []
        for key, volume in sorted(den.items()):
            if volume > 0:
                # A numerator series that does not exist yet (no 500s so far) is a zero.
                points.append(SeriesPoint(key[0], self._share(num.get(key, 0.0), volume), volume))
        if not points:
            return Reading.empty(
                now, f"no traffic: {self.denominator.describe()} did not increase since last scrape"
            )
        return Reading(now, tuple(points))

    def _quantile_points(self, now: datetime, rates: list[TargetRates]) -> Reading:
        assert self.quantile is not None
        by_le = self._sum_rates(self.selector, rates, extra=lambda labels: (labels.get("le", ""),))
        groups: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
        for (group, (le,)), rate in by_le.items():
            try:
                groups[group].append((float(le), rate))
            except ValueError:
                continue  # a bucket without a numeric le is not a bucket
        points = []
        for group, buckets in sorted(groups.items()):
            value = histogram_quantile(self.quantile, buckets)
            if math.isfinite(value):
                volume = max((r for b, r in buckets if math.isinf(b)), default=None)
                points.append(SeriesPoint(group, value, volume))
        if not points:
            return Reading.empty(
                now, f"no observations of {self.selector.describe()} since the last scrape"
            )
        return Reading(now, tuple(points))
