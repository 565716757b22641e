"""The PromQL a signal stands for, where its source is one Prometheus also sees.

A ``scrape`` source reads the same ``/metrics`` a Prometheus server scrapes, and
its functions are PromQL's: samples summed by the ``by`` labels (``value``),
``rate``, a ratio of rates, a ratio of gauges, ``histogram_quantile``; a
``promql`` source is a query already. ``sql``, ``log`` and ``push`` sources read
what Prometheus never sees, so they have no expression here (the dashboards show
them from the sentinel's stored samples instead)."""

from __future__ import annotations

from dataclasses import dataclass

from sentinel.catalogue import SignalSpec
from sentinel.sources.config import MetricSelector, PromQLSourceConfig, ScrapeSourceConfig

# Grafana's own rate window: at least four scrape intervals of the data source.
GRAFANA_RATE_WINDOW = "$__rate_interval"


def duration(seconds: float) -> str:
    """PromQL's duration syntax: ``90s``, ``5m``, ``6h``."""
    whole = round(seconds)
    if whole <= 0:
        raise ValueError(f"a duration must be positive, not {seconds!r}")
    for unit, size in (("h", 3600), ("m", 60)):
        if whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


@dataclass(frozen=True)
class SignalQuery:
    """How to compute a signal (and its volume) over a chosen rate window."""

    source: ScrapeSourceConfig | PromQLSourceConfig

    @property
    def by(self) -> tuple[str, ...]:
        return tuple(self.source.by or ())

    @property
    def uses_rates(self) -> bool:
        return isinstance(self.source, ScrapeSourceConfig) and self.source.function in (
            "rate",
            "ratio",
            "quantile",
        )

    @property
    def legend(self) -> str:
        """Grafana's legend for one series: its ``by`` labels."""
        if not self.by:
            return "__auto"
        return ", ".join(f"{label}={{{{{label}}}}}" for label in self.by)

    def value(self, window: str) -> str:
        source = self.source
        if isinstance(source, PromQLSourceConfig):
            return source.query
        f = source.function
        if f == "value":
            return self._sum(source.selector.describe())
        if f == "rate":
            return self._sum(_rate(source.selector, window))
        if f == "quantile":
            assert source.quantile is not None
            buckets = _bucket_selector(source.selector)
            by = ", ".join((*self.by, "le"))
            rates = f"sum by ({by}) (rate({buckets}[{window}]))"
            return f"histogram_quantile({source.quantile:g}, {rates})"
        assert source.denominator is not None
        if f == "ratio":
            part = self._sum(_rate(source.selector, window))
            whole = self._sum(_rate(source.denominator, window))
        else:  # gauge_ratio
            part = self._sum(source.selector.describe())
            whole = self._sum(source.denominator.describe())
        # A series of the whole without any of the part (a route that never failed) is
        # 0%, as the sentinel reads it, not missing.
        ratio = f"(\n{part}\n  or\n0 * {whole}\n)\n  /\n{whole}"
        return f"1 - (\n{ratio}\n)" if source.complement else ratio

    def volume(self, window: str, as_count: bool = False) -> str | None:
        """What the sentinel takes as the sample's volume: the denominator's rate (or,
        ``as_count``, its increase over the window), the +Inf bucket's rate, the
        denominator gauge; None for functions without one."""
        source = self.source
        if isinstance(source, PromQLSourceConfig):
            return source.volume_query
        f = source.function
        fn = "increase" if as_count else "rate"
        if f == "ratio":
            assert source.denominator is not None
            return self._sum(f"{fn}({source.denominator.describe()}[{window}])")
        if f == "quantile":
            inf = MetricSelector(
                metric=f"{source.selector.metric}_bucket",
                matchers=[*source.selector.matchers, {"label": "le", "op": "=", "value": "+Inf"}],
            )
            return self._sum(f"{fn}({inf.describe()}[{window}])")
        if f == "gauge_ratio":
            assert source.denominator is not None
            return self._sum(source.denominator.describe())
        return None

    def _sum(self, inner: str) -> str:
        return f"sum by ({', '.join(self.by)}) ({inner})" if self.by else f"sum({inner})"


def query_for(signal: SignalSpec) -> SignalQuery | None:
    """The signal's PromQL, or None when Prometheus cannot see its source."""
    if isinstance(signal.source, ScrapeSourceConfig | PromQLSourceConfig):
        return SignalQuery(signal.source)
    return None


def _rate(selector: MetricSelector, window: str) -> str:
    return f"rate({selector.describe()}[{window}])"


def _bucket_selector(selector: MetricSelector) -> str:
    return MetricSelector(
        metric=f"{selector.metric}_bucket", matchers=list(selector.matchers)
    ).describe()
