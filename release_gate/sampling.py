"""Reading the canary's and the control's counters for the judge.

Each read gives cumulative counts as the node exports them
(``translator_http_requests_total{method,route,status}`` and the
``translator_http_request_duration_seconds`` histogram), from the node's
``/metrics`` (parsed with prometheus_client's parser) or from PromQL. The
judge wants counts since the canary started, so a ``SideTracker`` subtracts a
baseline read at the start, sums the production nodes into one control, and
carries on through counter resets (a node that restarted counts from zero).
Requests to ``/metrics`` itself are left out: the gate makes them."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from release_gate.judge import CountSample, RouteCounts
from release_gate.peers import error_text
from sentinel.sources.scrape import histogram_quantile

REQUESTS = "translator_http_requests"
DURATION = "translator_http_request_duration_seconds"
EXCLUDED_ROUTES = frozenset({"/metrics"})

RequestKey = tuple[str, str]  # ("GET /api/jobs", "500")


class SamplingError(RuntimeError):
    """A node's counters could not be read; the message names the node and why."""


@dataclass
class Counts:
    """Cumulative counters of one node (or of several, summed)."""

    requests: dict[RequestKey, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count

    def plus(self, other: Counts) -> Counts:
        return Counts(_add(self.requests, other.requests), _add(self.buckets, other.buckets))

    def minus(self, other: Counts) -> Counts:
        return Counts(_sub(self.requests, other.requests), _sub(self.buckets, other.buckets))


def _add(a: Mapping, b: Mapping) -> dict:  # type: ignore[type-arg]
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return out


def _sub(a: Mapping, b: Mapping) -> dict:  # type: ignore[type-arg]
    return {k: max(0.0, v - b.get(k, 0.0)) for k, v in a.items()}


def parse_metrics(text: str) -> Counts:
    """The gate's view of one ``/metrics`` page."""
    counts = Counts()
    buckets: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        # Without a TYPE line the parser names the family after its samples.
        if family.name in (REQUESTS, f"{REQUESTS}_total"):
            for sample in family.samples:
                if sample.name != f"{REQUESTS}_total":
                    continue
                labels = sample.labels
                if labels.get("route") in EXCLUDED_ROUTES:
                    continue
                key = (
                    f"{labels.get('method', '')} {labels.get('route', '')}".strip(),
                    labels.get("status", ""),
                )
                counts.requests[key] = counts.requests.get(key, 0.0) + sample.value
        elif family.name in (DURATION, f"{DURATION}_bucket"):
            for sample in family.samples:
                if sample.name != f"{DURATION}_bucket":
                    continue
                if sample.labels.get("route") in EXCLUDED_ROUTES:
                    continue
                buckets[float(sample.labels["le"])] += sample.value
    counts.buckets = dict(buckets)
    return counts


def read_metrics(url: str, client: httpx.Client) -> Counts:
    try:
        response = client.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise SamplingError(f"{url}: {error_text(exc)}") from exc
    try:
        return parse_metrics(response.text)
    except (ValueError, KeyError) as exc:
        raise SamplingError(f"{url}: not Prometheus text format: {exc}") from exc


def read_promql(base_url: str, matcher: str, client: httpx.Client) -> Counts:
    """The same counters summed over the series ``matcher`` selects, from a
    Prometheus server (its last scrape; a little behind the nodes)."""
    selector = f'{matcher},route!="/metrics"' if matcher else 'route!="/metrics"'
    counts = Counts()
    for item in _query(
        base_url, f"sum by (method, route, status) ({REQUESTS}_total{{{selector}}})", client
    ):
        m = item["metric"]
        key = (f"{m.get('method', '')} {m.get('route', '')}".strip(), m.get("status", ""))
        counts.requests[key] = float(item["value"][1])
    for item in _query(base_url, f"sum by (le) ({DURATION}_bucket{{{selector}}})", client):
        counts.buckets[float(item["metric"]["le"])] = float(item["value"][1])
    return counts


def _query(base_url: str, promql: str, client: httpx.Client) -> list[dict]:  # type: ignore[type-arg]
    url = f"{base_url.rstrip('/')}/api/v1/query"
    try:
        response = client.get(url, params={"query": promql})
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SamplingError(f"{url}: {error_text(exc)}") from exc
    if body.get("status") != "success" or body.get("data", {}).get("resultType") != "vector":
        raise SamplingError(f"{url}: query failed: {body.get('error', body)}")
    return list(body["data"]["result"])


class NodeTracker:
    """One node's counters made monotonic across restarts, since a baseline."""

    def __init__(self) -> None:
        self._last: Counts | None = None
        self._offset = Counts()
        self._baseline: Counts | None = None

    def update(self, raw: Counts) -> Counts:
        if self._last is not None:
            reset = any(raw.requests.get(k, 0.0) < v for k, v in self._last.requests.items())
            if reset:
                self._offset = self._offset.plus(self._last)
        self._last = raw
        corrected = self._offset.plus(raw)
        if self._baseline is None:
            self._baseline = corrected
        return corrected.minus(self._baseline)


class SideTracker:
    """The canary (one node) or the control (the production nodes, summed)."""

    def __init__(self, nodes: Iterable[str]) -> None:
        self.trackers = {name: NodeTracker() for name in nodes}
        self._previous_buckets: dict[float, float] = {}

    def update(self, t: float, readings: Mapping[str, Counts]) -> CountSample:
        total = Counts()
        for name, tracker in self.trackers.items():
            total = total.plus(tracker.update(readings[name]))
        interval = _sub(total.buckets, self._previous_buckets)
        self._previous_buckets = total.buckets
        return to_count_sample(t, total, p95_ms(interval))


def to_count_sample(t: float, counts: Counts, latency_p95_ms: float | None) -> CountSample:
    routes: dict[str, dict[str, float]] = {}
    for (route, status), value in counts.requests.items():
        entry = routes.setdefault(route, {"requests": 0.0, "errors": 0.0})
        entry["requests"] += value
        if status.startswith("5"):
            entry["errors"] += value
            entry[status] = entry.get(status, 0.0) + value
    route_counts = {
        route: RouteCounts(
            requests=round(e["requests"]),
            errors=round(e["errors"]),
            statuses={s: round(v) for s, v in e.items() if s not in ("requests", "errors")},
        )
        for route, e in sorted(routes.items())
    }
    return CountSample(
        t=t,
        requests=sum(r.requests for r in route_counts.values()),
        errors=sum(r.errors for r in route_counts.values()),
        routes=route_counts,
        latency_p95_ms=latency_p95_ms,
    )


def p95_ms(buckets: Mapping[float, float], q: float = 0.95) -> float | None:
    """PromQL's histogram_quantile (the sentinel's) in milliseconds; None without requests."""
    value = histogram_quantile(q, list(buckets.items()))
    return None if math.isnan(value) else value * 1000.0
