"""Reading the translator's counters for the judge: its real /metrics text,
routes and statuses, the gate's own scrapes left out, counter resets, p95
from histogram buckets, and the same from PromQL."""

from __future__ import annotations

import httpx
import pytest

from release_gate.sampling import (
    SamplingError,
    SideTracker,
    parse_metrics,
    read_metrics,
    read_promql,
)
from translator.metrics import TranslatorMetrics


def _metrics(requests: dict[tuple[str, str, str], int], seconds: float = 0.03) -> str:
    metrics = TranslatorMetrics()
    for (method, route, status), count in requests.items():
        for _ in range(count):
            metrics.http_requests.labels(method, route, status).inc()
            metrics.http_duration.labels(method, route).observe(seconds)
    return metrics.render().decode()


def test_the_translators_own_exposition_is_read_per_route_and_status() -> None:
    text = _metrics(
        {
            ("GET", "/api/jobs", "200"): 90,
            ("GET", "/api/jobs", "500"): 7,
            ("POST", "/api/files", "201"): 20,
            ("POST", "/api/files", "503"): 3,
            ("GET", "/metrics", "200"): 50,  # the gate's own scrapes
        }
    )
    sample = SideTracker(["n"]).update(0.0, {"n": parse_metrics(text)})
    # The first reading is the baseline: counts since the canary started are zero.
    assert (sample.requests, sample.errors) == (0, 0)

    tracker = SideTracker(["n"])
    tracker.update(0.0, {"n": parse_metrics(_metrics({}))})
    later = tracker.update(10.0, {"n": parse_metrics(text)})
    assert later.requests == 120 and later.errors == 10
    assert later.routes is not None
    jobs = later.routes["GET /api/jobs"]
    assert (jobs.requests, jobs.errors, jobs.statuses) == (97, 7, {"500": 7})
    files = later.routes["POST /api/files"]
    assert (files.requests, files.errors, files.statuses) == (23, 3, {"503": 3})
    assert "GET /metrics" not in later.routes
    assert later.latency_p95_ms is not None and 25 <= later.latency_p95_ms <= 50


def test_production_nodes_are_summed_and_a_restarted_node_keeps_counting() -> None:
    control = SideTracker(["prod-1", "prod-2"])
    start = {
        "prod-1": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 100})),
        "prod-2": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 50})),
    }
    control.update(0.0, start)
    step = {
        "prod-1": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 130})),
        "prod-2": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 60})),
    }
    assert control.update(5.0, step).requests == 40
    # prod-1 restarted: its counter went back to 4; the 4 are new requests.
    restarted = {
        "prod-1": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 4})),
        "prod-2": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 70})),
    }
    assert control.update(10.0, restarted).requests == 40 + 4 + 10


def test_p95_is_of_the_interval_since_the_previous_reading() -> None:
    side = SideTracker(["n"])
    side.update(0.0, {"n": parse_metrics(_metrics({("GET", "/api/jobs", "200"): 100}, 0.02))})
    metrics = TranslatorMetrics()
    for _ in range(100):
        metrics.http_requests.labels("GET", "/api/jobs", "200").inc()
        metrics.http_duration.labels("GET", "/api/jobs").observe(0.02)
    for _ in range(100):
        metrics.http_requests.labels("GET", "/api/jobs", "200").inc()
        metrics.http_duration.labels("GET", "/api/jobs").observe(3.0)  # slow since the last read
    sample = side.update(5.0, {"n": parse_metrics(metrics.render().decode())})
    assert sample.latency_p95_ms is not None and sample.latency_p95_ms > 2500


def test_an_unreachable_node_is_a_sampling_error_naming_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        httpx.Client(transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(SamplingError, match="http://preprod:9000/metrics: connection refused"),
    ):
        read_metrics("http://preprod:9000/metrics", client)

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="starting")

    with (
        httpx.Client(transport=httpx.MockTransport(garbage)) as client,
        pytest.raises(SamplingError, match="503"),
    ):
        read_metrics("http://preprod:9000/metrics", client)


def test_the_same_counts_from_promql() -> None:
    queries: list[str] = []

    def prometheus(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        queries.append(query)
        if "_bucket" in query:
            result = [
                {"metric": {"le": "0.05"}, "value": [0, "90"]},
                {"metric": {"le": "+Inf"}, "value": [0, "100"]},
            ]
        else:
            result = [
                {
                    "metric": {"method": "GET", "route": "/api/jobs", "status": "200"},
                    "value": [0, "95"],
                },
                {
                    "metric": {"method": "GET", "route": "/api/jobs", "status": "500"},
                    "value": [0, "5"],
                },
            ]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    with httpx.Client(transport=httpx.MockTransport(prometheus)) as client:
        counts = read_promql("http://prom:9090", 'instance="127.0.0.1:8001"', client)
    assert counts.requests == {("GET /api/jobs", "200"): 95.0, ("GET /api/jobs", "500"): 5.0}
    assert counts.buckets == {0.05: 90.0, float("inf"): 100.0}
    assert 'instance="127.0.0.1:8001",route!="/metrics"' in queries[0]
