"""The promql source against a real Prometheus (Debian's package) scraping a
live translator every second; and its failure paths."""

from __future__ import annotations

import math
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sentinel.sources import (
    PromQLSource,
    SourceConfigError,
    SourceContext,
    backfill,
    build_source,
    parse_source_config,
)
from sentinel.sources.promql import (
    EMPTY_JOB_LIST_SHARE_PROMQL,
    HTTP_500_RATIO_BY_ROUTE_PROMQL,
    HTTP_REQUESTS_RATE_BY_ROUTE_PROMQL,
    JOB_LIST_RESPONSES_RATE_PROMQL,
)
from tests.helpers import add_user
from tests.prometheus_server import prometheus_server, require_prometheus
from tests.sources.conftest import closed_port

FAULTS = (
    '{"http_errors": [{"route": "/api/payments", "rate": 1.0, "methods": ["GET"]}],'
    ' "empty_job_list": {"users": ["bob@example.com"]}}'
)
FAILED_PAYMENTS = 'sum(translator_payments_total{outcome="failed"})'


def _now() -> datetime:
    return datetime.now(UTC)


def _promql(url: str, query: str, **options) -> PromQLSource:
    config = parse_source_config({"type": "promql", "query": query, **options})
    source = build_source(config, SourceContext(prometheus_url=url), signal="test.promql")
    assert isinstance(source, PromQLSource)
    return source


def _values(reading) -> dict:
    assert reading.ok, reading.no_data
    return {tuple(v for _, v in p.labels): (p.value, p.volume) for p in reading.points}


def test_against_a_real_prometheus(translator_node):
    require_prometheus()
    with translator_node(faults=FAULTS) as node, prometheus_server([node.metrics_url]) as prom:
        _, bob = add_user(node.services, "bob@example.com")
        failed = _promql(prom.url, FAILED_PAYMENTS)

        def failed_payments_seen(expected: float):  # type: ignore[no-untyped-def]
            reading = failed.read(_now())
            return True if reading.ok and reading.points[0].value == expected else None

        prom.wait_for(lambda: failed_payments_seen(0), what="first scrape")
        started = _now()
        node.post("/api/files", files={"file": ("a.txt", b"Hello")})

        def traffic(declines: list[tuple[str, str]]) -> None:
            for _ in range(2):
                node.get("/api/jobs")
            node.get("/api/payments")  # an injected 500
            node.http.get(node.url + "/api/jobs", headers=bob)  # empty for bob
            for method, token in declines:
                body = {"plan": "basic", "method": method, "token": token}
                assert node.post("/api/payments/checkout", json=body).status_code == 402

        # Two rounds with a scrape between: series created by the first round's
        # requests need a second sample before rate() sees them move.
        traffic([("card", "tok_declined")])
        prom.wait_for(lambda: failed_payments_seen(1), what="round 1")
        traffic([("wallet", "wallet_auth_failed"), ("wallet", "wallet_cancelled")])
        prom.wait_for(lambda: failed_payments_seen(3), what="round 2")
        now = _now()

        by_method = _promql(
            prom.url, 'sum by (method) (translator_payments_total{outcome="failed"})'
        )
        assert _values(by_method.read(now)) == {
            ("card",): (1, None),
            ("promo",): (0, None),
            ("wallet",): (2, None),
        }
        # `by` keeps the named labels of a raw vector (instance, job, outcome dropped).
        raw = _promql(prom.url, 'translator_payments_total{outcome="failed"}', by=["method"])
        assert _values(raw.read(now)) == _values(by_method.read(now))
        scalar = _promql(prom.url, "scalar(sum(translator_queue_depth))")
        assert _values(scalar.read(now)) == {(): (1, None)}

        share = _promql(
            prom.url, EMPTY_JOB_LIST_SHARE_PROMQL, volume_query=JOB_LIST_RESPONSES_RATE_PROMQL
        )
        (point,) = share.read(now).points
        assert point.value == pytest.approx(1 / 3) and point.volume > 0
        errors = _promql(
            prom.url,
            HTTP_500_RATIO_BY_ROUTE_PROMQL,
            volume_query=HTTP_REQUESTS_RATE_BY_ROUTE_PROMQL,
        )
        ratio = _values(errors.read(now))
        assert ratio[("/api/payments",)][0] == pytest.approx(1.0)
        assert ratio[("/api/payments",)][1] > 0

        # No data, with the reason.
        empty = _promql(prom.url, "translator_no_such_metric").read(now)
        assert empty.points == () and "no series" in empty.no_data
        bad = _promql(prom.url, "sum(").read(now)
        assert bad.points == () and "bad_data" in bad.no_data and "HTTP 400" in bad.no_data
        matrix = _promql(prom.url, "translator_queue_depth[1m]").read(now)
        assert "range vector" in matrix.no_data

        # Backfill through query_range: the counter as Prometheus stored it, second by second.
        # Steps end exactly at `now`, the time the instant queries above saw 3.
        start = now - timedelta(seconds=math.ceil((now - started).total_seconds()) + 1)
        history = backfill(failed, start, now, timedelta(seconds=1))
        assert [r.t for r in history] == [start + timedelta(seconds=i) for i in range(len(history))]
        values = [r.points[0].value for r in history if r.ok]
        assert values[0] <= 1 and values[-1] == 3 and values == sorted(values)
        # query_range agrees with instant queries at the same times, no-data steps included.
        assert history == [failed.read(r.t) for r in history]
        for source in (failed, by_method, raw, scalar, share, errors):
            source.close()


def test_unreachable_slow_and_broken_servers():
    now = _now()
    dead = _promql(f"http://127.0.0.1:{closed_port()}", "up").read(now)
    assert dead.points == () and "unreachable" in dead.no_data

    # Accepts the connection and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        source = PromQLSource(
            httpx.Client(trust_env=False), f"http://127.0.0.1:{port}", "up", timeout_seconds=0.1
        )
        slow = source.read(now)
        source.close()
    assert "did not answer within 0.1s" in slow.no_data
    assert slow.no_data.startswith("Prometheus at http://127.0.0.1:")

    def answer(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        if query == "html":
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        if query == "malformed":
            return httpx.Response(200, json={"status": "success", "data": {"resultType": "vector"}})
        if query == "nan":
            return httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": {}, "value": [1, "NaN"]}],
                    },
                },
            )
        return httpx.Response(
            422, json={"status": "error", "errorType": "execution", "error": "too many samples"}
        )

    client = httpx.Client(transport=httpx.MockTransport(answer))
    for query, reason in [
        ("html", "HTTP 502 without JSON"),
        ("malformed", "malformed answer"),
        ("nan", "only NaN"),
        ("heavy", "Prometheus error (execution, HTTP 422): too many samples"),
    ]:
        reading = PromQLSource(client, "http://prom", query, owns_client=False).read(now)
        assert reading.points == () and reason in reading.no_data, reading.no_data
    client.close()


def test_promql_config_and_context():
    with pytest.raises(SourceConfigError, match="needs a Prometheus URL"):
        build_source(parse_source_config({"type": "promql", "query": "up"}), SourceContext())
    own_url = parse_source_config({"type": "promql", "query": "up", "url": "http://prom:9090"})
    assert isinstance(build_source(own_url, SourceContext()), PromQLSource)
    with pytest.raises(ValueError, match="not an http"):
        parse_source_config({"type": "promql", "query": "up", "url": "prom:9090"})
    with pytest.raises(ValueError, match="at least 1 character"):
        parse_source_config({"type": "promql", "query": ""})
