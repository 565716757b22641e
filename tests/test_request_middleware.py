"""The request middleware's cheaper ways give what the plain ones gave: request
metrics queued and added up when read, and a request line made in one format call."""

from __future__ import annotations

import math

import pytest

from common.logs import format_line, log_context, pop_context, push_context
from tests.helpers import client_for, make_services
from translator import metrics as metrics_module
from translator.metrics import LATENCY_BUCKETS, TranslatorMetrics
from translator.middleware import _RequestLine, _Series

# Every bucket edge, either side of it, zero, past the last edge, and sums whose
# rounding depends on the order of the additions.
VALUES = [
    *LATENCY_BUCKETS,
    *(b * (1 + 1e-9) for b in LATENCY_BUCKETS),
    *(b * (1 - 1e-9) for b in LATENCY_BUCKETS),
    0.0,
    11.5,
    1e-7,
    0.1 + 0.2,
    1 / 3,
    math.pi,
]


def _samples(metrics: TranslatorMetrics) -> list[tuple[str, tuple, float]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in metrics.registry.collect()
        if family.name.startswith("translator_http_")
        for s in family.samples
    )


def test_queued_request_metrics_read_as_if_each_were_observed():
    queued, direct = TranslatorMetrics(), TranslatorMetrics()
    keys = [("GET", "/api/plans", 200), ("GET", "/api/plans", 404), ("POST", "/api/files", 201)]
    queued_series = {k: queued.http_series(*k) for k in keys}
    for i, value in enumerate(VALUES * 3):
        key = keys[i % len(keys)]
        queued.observe_http(queued_series[key], value)
        direct.http_requests.labels(key[0], key[1], str(key[2])).inc()
        direct.http_duration.labels(key[0], key[1]).observe(value)
    assert queued._http_pending  # nothing added yet
    assert _samples(queued) == _samples(direct)  # exactly: sums included
    assert not queued._http_pending
    assert _samples(queued) == _samples(direct)  # read twice: nothing counted twice


def test_queued_request_metrics_are_added_without_a_read_when_many_wait(monkeypatch):
    monkeypatch.setattr(metrics_module, "HTTP_FOLD_AT", 10)
    metrics = TranslatorMetrics()
    series = metrics.http_series("GET", "/api/jobs", 200)
    for _ in range(25):
        metrics.observe_http(series, 0.001)
    assert len(metrics._http_pending) == 5
    assert series.requests._value.get() == 20


def test_with_shared_metric_files_each_request_is_recorded_at_once(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = TranslatorMetrics()
    series = metrics.http_series("GET", "/api/jobs", 200)
    metrics.observe_http(series, 0.002)
    assert not metrics._http_pending
    assert series.requests._value.get() == 1


def test_metrics_scraped_right_after_requests_count_every_one(database_url, tmp_path, clock):
    services = make_services(database_url, tmp_path, clock)
    try:
        api = client_for(services)
        for _ in range(7):
            assert api.get("/api/plans").status_code == 200
        assert api.get("/nowhere").status_code == 404
        text = api.get("/metrics").text
        assert (
            'translator_http_requests_total{method="GET",route="/api/plans",status="200"} 7.0'
            in text
        )
        assert (
            'translator_http_request_duration_seconds_count{method="GET",route="/api/plans"} 7.0'
            in text
        )
        assert (
            'translator_http_requests_total{method="GET",route="unmatched",status="404"} 1.0'
            in text
        )
    finally:
        services.close()


class _Route:
    path = "/api/jobs/{job_id}"


@pytest.mark.parametrize(
    ("method", "path", "request_id", "outer"),
    [
        ("GET", "/api/jobs/7", "0123456789abcdef", {}),
        ("GET", '/api/a b"c=d', 'given id "quoted"', {}),
        ("PROPFIND", "/api/jobs/7", "x", {}),
        ("GET", "/api/jobs/7", "r1", {"node": "a", "path": "/shadowed"}),
    ],
)
def test_a_request_line_reads_as_the_general_format_makes_it(method, path, request_id, outer):
    series = _Series(_Route(), method, _Route.path, 200, metrics=None)  # type: ignore[arg-type]
    with log_context(**outer):
        token, context = push_context("request_id", request_id)
        pop_context(token)
    line = _RequestLine((1_800_000_000.0625, series, path, 0.00123456, context))
    assert line.text() == format_line(*line.parts)
    fields = {"method": method, "path": path, "route": _Route.path, "status": 200, "ms": 1.2}
    assert line.parts[4] == fields and line.parts[5] == {**outer, "request_id": request_id}
