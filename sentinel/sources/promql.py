"""``promql`` signals: instant queries against a Prometheus server's HTTP API,
and range queries for backfill.

A vector result becomes one point per series (its labels without
``__name__``, or only the ``by`` labels); a scalar becomes one unlabelled
point. An optional ``volume_query`` (e.g. the request rate behind an error
ratio) is evaluated at the same time and joined on the same labels."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from common.logs import get_logger
from sentinel.sources.base import (
    Labels,
    Reading,
    SeriesPoint,
    SourceFault,
    as_utc,
    backfill_times,
    labels_of,
)

log = get_logger(__name__)

# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS_PER_RANGE_QUERY = 10_000

# Example queries for the business signals, on the translator's metrics.
EMPTY_JOB_LIST_SHARE_PROMQL = (
    'sum(rate(translator_job_list_responses_total{result="empty"}[5m]))'
    " / sum(rate(translator_job_list_responses_total[5m]))"
)
JOB_LIST_RESPONSES_RATE_PROMQL = "sum(rate(translator_job_list_responses_total[5m]))"
HTTP_500_RATIO_BY_ROUTE_PROMQL = (
    'sum by (route) (rate(translator_http_requests_total{status=~"5.."}[5m]))'
    " / sum by (route) (rate(translator_http_requests_total[5m]))"
)
HTTP_REQUESTS_RATE_BY_ROUTE_PROMQL = "sum by (route) (rate(translator_http_requests_total[5m]))"
HTTP_500_RATIO_PROMQL = (
    'sum(rate(translator_http_requests_total{status=~"5.."}[5m]))'
    " / sum(rate(translator_http_requests_total[5m]))"
)
FAILED_PAYMENTS_BY_METHOD_PROMQL = (
    'sum by (method) (increase(translator_payments_total{outcome="failed"}[10m]))'
)
QUEUE_LAG_PROMQL = "max(translator_queue_oldest_pending_age_seconds)"
QUEUE_DEPTH_PROMQL = "max(translator_queue_depth)"


class PromQLError(Exception):
    """The query could not be answered; the message is the no-data reason."""


class PrometheusUnreachable(PromQLError):
    """Prometheus itself did not answer (down, timed out, not an API): every
    signal on it fails alike, unlike a query Prometheus refused."""


class PromQLSource:
    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        query: str,
        *,
        by: Sequence[str] | None = None,
        volume_query: str | None = None,
        timeout_seconds: float = 10.0,
        name: str = "promql",
        owns_client: bool = True,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.query = query
        self.by = tuple(sorted(set(by))) if by is not None else None
        self.volume_query = volume_query
        self.timeout_seconds = timeout_seconds
        self.name = name
        self._owns_client = owns_client
        self.source_name = f"prometheus {self.base_url}"
        self.depends_on = (self.source_name,)

    # --- Source ---------------------------------------------------------------

    def read(self, now: datetime) -> Reading:
        now = as_utc(now)
        try:
            values = self._instant(self.query, now)
        except PromQLError as exc:
            log.error("source.query_failed", signal=self.name, source="promql", reason=str(exc))
            down = isinstance(exc, PrometheusUnreachable)
            faults = (SourceFault(self.source_name, str(exc)),) if down else ()
            return Reading.empty(now, str(exc), faults)
        volumes = self._volumes_instant(now) if values else {}
        return self._reading(now, values, volumes)

    def read_range(self, start: datetime, end: datetime, step: timedelta) -> list[Reading]:
        times = list(backfill_times(as_utc(start, "start"), as_utc(end, "end"), step))
        readings: list[Reading] = []
        for i in range(0, len(times), MAX_POINTS_PER_RANGE_QUERY):
            chunk = times[i : i + MAX_POINTS_PER_RANGE_QUERY]
            try:
                values = self._range(self.query, chunk[0], chunk[-1], step)
            except PromQLError as exc:
                log.error("source.backfill_failed", signal=self.name, reason=str(exc))
                readings.extend(Reading.empty(t, str(exc)) for t in chunk)
                continue
            volumes: dict[int, dict[Labels, float]] = {}
            if self.volume_query:
                try:
                    volumes = self._range(self.volume_query, chunk[0], chunk[-1], step)
                except PromQLError as exc:
                    log.warning("source.volume_failed", signal=self.name, reason=str(exc))
            for t in chunk:
                ms = _ms(t)
                readings.append(self._reading(t, values.get(ms, {}), volumes.get(ms, {})))
        return readings

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # --- internals --------------------------------------------------------------

    def _reading(
        self, t: datetime, values: dict[Labels, float], volumes: dict[Labels, float]
    ) -> Reading:
        if not values:
            return Reading.empty(t, f"the query returned no series at {t.isoformat()}")
        points = []
        for labels, value in sorted(values.items()):
            if math.isfinite(value):
                volume = volumes.get(labels)
                points.append(SeriesPoint(labels, value, volume))
        if not points:
            # e.g. 0/0 for a ratio over a quiet window
            return Reading.empty(t, "the query returned only NaN or infinite values (no traffic?)")
        return Reading(t, tuple(points))

    def _volumes_instant(self, now: datetime) -> dict[Labels, float]:
        if not self.volume_query:
            return {}
        try:
            return self._instant(self.volume_query, now)
        except PromQLError as exc:
            # The values stand on their own; the detector just loses the weighting.
            log.warning("source.volume_failed", signal=self.name, reason=str(exc))
            return {}

    def _instant(self, query: str, now: datetime) -> dict[Labels, float]:
        data = self._get(
            "/api/v1/query",
            {"query": query, "time": f"{now.timestamp():.3f}", "timeout": self._timeout()},
        )
        kind = data.get("resultType")
        result: Any = data.get("result")
        if kind == "matrix":
            raise PromQLError(
                "the query returns a range vector; wrap it in a function such as rate()"
            )
        if kind not in ("scalar", "vector"):
            raise PromQLError(f"unsupported result type {kind!r}")
        with _malformed_answer():
            if kind == "scalar":
                return {(): _float(result[1])}
            return self._series((s.get("metric", {}), s["value"]) for s in result)

    def _range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> dict[int, dict[Labels, float]]:
        data = self._get(
            "/api/v1/query_range",
            {
                "query": query,
                "start": f"{start.timestamp():.3f}",
                "end": f"{end.timestamp():.3f}",
                "step": f"{step.total_seconds():g}",
                "timeout": self._timeout(),
            },
        )
        kind = data.get("resultType")
        result: Any = data.get("result")
        if kind != "matrix":
            raise PromQLError(f"unsupported range result type {kind!r}")
        by_time: dict[int, list[tuple[dict[str, str], list[Any]]]] = {}
        with _malformed_answer():
            for series in result:
                for pair in series.get("values", []):
                    by_time.setdefault(round(float(pair[0]) * 1000), []).append(
                        (series.get("metric", {}), pair)
                    )
            return {ms: self._series(items) for ms, items in by_time.items()}

    def _series(self, items: Iterable[tuple[dict[str, str], list[Any]]]) -> dict[Labels, float]:
        out: dict[Labels, float] = {}
        for metric, pair in items:
            metric = {k: v for k, v in metric.items() if k != "__name__"}
            if self.by is not None:
                metric = {k: metric.get(k, "") for k in self.by}
            labels = labels_of(metric)
            if labels in out:
                raise PromQLError(
                    f"two series share the labels {dict(labels)} after keeping only "
                    f"{list(self.by or [])}; aggregate in the query, e.g. sum by (...)"
                )
            out[labels] = _float(pair[1])
        return out

    def _timeout(self) -> str:
        return f"{self.timeout_seconds:g}s"

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        url = self.base_url + path
        try:
            # A little longer than the query timeout Prometheus is given, so that
            # its own, more telling, timeout error arrives first.
            response = self.client.get(url, params=params, timeout=self.timeout_seconds + 0.5)
        except httpx.TimeoutException:
            raise PrometheusUnreachable(
                f"Prometheus at {self.base_url} did not answer within {self.timeout_seconds:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusUnreachable(
                f"Prometheus unreachable at {self.base_url}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusUnreachable(
                f"Prometheus answered HTTP {response.status_code} without JSON: "
                f"{response.text[:200]!r}"
            )
        if body.get("status") != "success":
            raise PromQLError(
                f"Prometheus error ({body.get('errorType', 'unknown')}, HTTP "
                f"{response.status_code}): {body.get('error', 'no message')}"
            )
        for warning in body.get("warnings") or []:
            log.warning("source.promql_warning", signal=self.name, warning=warning)
        data = body.get("data")
        if not isinstance(data, dict):
            raise PromQLError("Prometheus answered success without data")
        return data


@contextlib.contextmanager
def _malformed_answer() -> Iterator[None]:
    """A body that is JSON but not shaped like Prometheus' answer is a no-data reason too."""
    try:
        yield
    except PromQLError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        reason = f"malformed answer from Prometheus: {type(exc).__name__}: {exc}"
        raise PromQLError(reason) from None


def _float(text: Any) -> float:
    """Prometheus sends sample values as strings ("1.5", "NaN", "+Inf")."""
    try:
        return float(text)
    except (TypeError, ValueError):
        raise PromQLError(f"sample value {text!r} is not a number") from None


def _ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)
