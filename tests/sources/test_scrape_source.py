"""The scrape source: against live translator nodes served by uvicorn (real
traffic, a node restart, unreachable targets), and the exact arithmetic of
rates, resets and quantiles on canned expositions."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError

from sentinel.sources import (
    MetricSelector,
    ScrapeSource,
    ScrapeSourceConfig,
    SourceContext,
    build_source,
    parse_source_config,
)
from sentinel.sources.scrape import histogram_quantile
from tests.helpers import add_user
from tests.sources.conftest import closed_port
from translator.metrics import JOB_BUCKETS

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _scrape(targets, selector, **options) -> ScrapeSource:
    config = parse_source_config(
        {"type": "scrape", "targets": targets, "selector": selector, **options}
    )
    source = build_source(config, SourceContext(), signal="test.scrape")
    assert isinstance(source, ScrapeSource)
    return source


def _values(reading) -> dict:
    assert reading.ok, reading.no_data
    return {tuple(v for _, v in p.labels): (p.value, p.volume) for p in reading.points}


# --- live translator nodes ----------------------------------------------------------


def test_value_rate_and_ratio_from_a_live_translator(translator_node):
    faults = (
        '{"http_errors": [{"route": "/api/payments", "rate": 1.0, "methods": ["GET"]}],'
        ' "empty_job_list": {"users": ["bob@example.com"]}}'
    )
    with translator_node(faults=faults) as node:
        _, bob = add_user(node.services, "bob@example.com")
        for name in ("a.txt", "b.txt"):
            assert node.post("/api/files", files={"file": (name, b"Hello")}).status_code == 201
        target = [node.metrics_url]
        depth = _scrape(target, "translator_queue_depth")
        per_route = _scrape(
            target,
            'translator_http_requests_total{route=~"/api/(jobs|payments)"}',
            function="rate",
            by=["route", "status"],
        )
        errors = _scrape(
            target,
            'translator_http_requests_total{status=~"5..", route!="/metrics"}',
            function="ratio",
            denominator='translator_http_requests_total{route!="/metrics"}',
            by=["route"],
        )
        overall = _scrape(
            target,
            'translator_http_requests{status=~"5..", route!="/metrics"}',
            function="ratio",
            denominator='translator_http_requests{route!="/metrics"}',
        )
        empty_share = _scrape(
            target,
            'translator_job_list_responses_total{result="empty"}',
            function="ratio",
            denominator="translator_job_list_responses_total",
        )
        assert _values(depth.read(_at(0))) == {(): (2, None)}
        for source in (per_route, errors, overall, empty_share):
            first = source.read(_at(0))
            assert first.points == () and first.no_data.startswith("warming up")

        for _ in range(4):
            assert node.get("/api/jobs").status_code == 200
        for _ in range(2):
            assert node.get("/api/payments").status_code == 500
        assert node.http.get(node.url + "/api/jobs", headers=bob).json() == []

        assert _values(per_route.read(_at(10))) == {
            ("/api/jobs", "200"): (0.5, None),  # alice's 4 and bob's 1 in 10 s
            ("/api/payments", "500"): (0.2, None),
        }
        by_route = _values(errors.read(_at(10)))
        assert by_route[("/api/payments",)] == (1.0, 0.2)
        assert by_route[("/api/jobs",)] == (0.0, 0.5)
        (point,) = overall.read(_at(10)).points
        assert point.value == pytest.approx(2 / 7) and point.volume == pytest.approx(0.7)
        assert _values(empty_share.read(_at(10))) == {(): (pytest.approx(1 / 5), 0.5)}

        # A quiet interval: the ratio has no denominator, so no data rather than 0.
        quiet = empty_share.read(_at(20))
        assert quiet.points == () and quiet.no_data.startswith("no traffic")
        for source in (depth, per_route, errors, overall, empty_share):
            source.close()


def test_a_restarted_node_counts_from_zero(translator_node):
    selector = 'translator_http_requests_total{route="/api/jobs"}'
    with translator_node() as a:
        with translator_node() as b:
            b_url = b.url
            targets = [a.metrics_url, b.metrics_url]
            rate = _scrape(targets, selector, function="rate")
            per_node = _scrape(targets, selector, function="rate", by=["instance"])
            assert rate.read(_at(0)).no_data.startswith("warming up")
            per_node.read(_at(0))
            for node, count in ((a, 3), (b, 2)):
                for _ in range(count):
                    node.get("/api/jobs")
            assert _values(rate.read(_at(10))) == {(): (0.5, None)}
            assert _values(per_node.read(_at(10))) == {
                (a.url.removeprefix("http://"),): (0.3, None),
                (b.url.removeprefix("http://"),): (0.2, None),
            }
        # b stopped; a new process on its port starts with a fresh registry.
        with translator_node(port=int(b_url.rsplit(":", 1)[1])) as b:
            a.get("/api/jobs")
            b.get("/api/jobs")
            # b's counter fell from 2 to 1: it restarted, so that is 1 new request, not -1.
            assert _values(rate.read(_at(20))) == {(): (pytest.approx(0.2), None)}
    rate.close()
    per_node.close()


def test_unreachable_and_broken_targets(translator_node, caplog):
    dead = f"http://127.0.0.1:{closed_port()}/metrics"
    with translator_node() as node:
        partial = _scrape([node.metrics_url, dead], "translator_worker_capacity")
        with caplog.at_level(logging.WARNING):
            reading = partial.read(_at(0))
            assert _values(reading) == {(): (0, None)}
        record = next(r for r in caplog.records if r.getMessage() == "source.scrape_partial")
        assert record.fields["failed"] == dead
        # The answering target's value stands; the dead one is named as a failed source.
        assert [f.source for f in reading.faults] == [f"scrape target {dead}"]
        assert partial.depends_on == (f"scrape target {node.metrics_url}", f"scrape target {dead}")

        down = _scrape([dead], "translator_worker_capacity")
        reading = down.read(_at(0))
        assert reading.points == () and dead in reading.no_data
        assert "unreachable" in reading.no_data

        missing = _scrape([node.url + "/nope"], "translator_worker_capacity")
        assert "HTTP 404" in missing.read(_at(0)).no_data
        absent = _scrape([node.metrics_url], "translator_no_such_metric")
        assert "no target exposes translator_no_such_metric" in absent.read(_at(0)).no_data
        unmatched = _scrape([node.metrics_url], 'translator_jobs{status="nope"}')
        assert "no series matched" in unmatched.read(_at(0)).no_data
        for source in (partial, down, missing, absent, unmatched):
            source.close()


def test_quantile_of_job_processing_time(translator_node):
    with translator_node() as node:
        for name in ("a.txt", "b.txt", "c.txt"):
            node.post("/api/files", files={"file": (name, b"Hello")})
        p90 = _scrape(
            [node.metrics_url],
            "translator_job_processing_seconds_bucket",
            function="quantile",
            quantile=0.9,
        )
        assert p90.read(_at(0)).no_data.startswith("warming up")
        assert node.services.workers.drain() == 3
        (point,) = p90.read(_at(30)).points
        # Three short jobs: their p90 lies inside the histogram's finite buckets
        # (how far inside depends on how busy the machine is).
        assert 0 < point.value <= JOB_BUCKETS[-1] and point.volume == pytest.approx(3 / 30)
        quiet = p90.read(_at(60))
        assert quiet.points == () and "no observations" in quiet.no_data
        p90.close()


# --- exact arithmetic on canned expositions --------------------------------------------


class Exposition:
    """Serves a settable /metrics body per host, like several nodes would."""

    def __init__(self) -> None:
        self.bodies: dict[str, str] = {}

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = self.bodies.get(request.url.host)
        if body is None:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, text=body)

    def source(self, hosts, selector, **options) -> ScrapeSource:
        config = ScrapeSourceConfig.model_validate(
            {"targets": [f"http://{h}/metrics" for h in hosts], "selector": selector, **options}
        )
        client = httpx.Client(transport=httpx.MockTransport(self.handler))
        return ScrapeSource(
            client,
            config.targets,
            config.selector,
            function=config.function,
            by=config.by,
            denominator=config.denominator,
            complement=config.complement,
            quantile=config.quantile,
        )


def _counter(**series: float) -> str:
    lines = ["# TYPE reqs counter"]
    lines += [f'reqs_total{{code="{code}"}} {value}' for code, value in series.items()]
    return "\n".join(lines) + "\n"


def test_rate_handles_a_reset_on_one_node_only():
    ex = Exposition()
    source = ex.source(["a", "b"], "reqs_total", function="rate", by=["code"])
    ex.bodies = {"a": _counter(ok=100), "b": _counter(ok=50)}
    assert source.read(_at(0)).no_data.startswith("warming up")
    ex.bodies = {"a": _counter(ok=110), "b": _counter(ok=70)}
    assert _values(source.read(_at(10))) == {("ok",): (3.0, None)}
    ex.bodies = {"a": _counter(ok=120), "b": _counter(ok=5)}  # b restarted and counted 5
    assert _values(source.read(_at(20))) == {("ok",): (1.5, None)}
    # A series that did not exist at the previous scrape counted from zero.
    ex.bodies = {"a": _counter(ok=120, err=4), "b": _counter(ok=5)}
    assert _values(source.read(_at(30))) == {("err",): (0.4, None), ("ok",): (0.0, None)}
    # No time passed: no rate (and the baseline stays).
    assert source.read(_at(30)).no_data.startswith("warming up")


def test_a_target_down_for_a_while_is_rated_over_its_own_interval(caplog):
    ex = Exposition()
    source = ex.source(["a", "b"], "reqs_total", function="rate")
    ex.bodies = {"a": _counter(ok=0), "b": _counter(ok=0)}
    source.read(_at(0))
    ex.bodies = {"a": _counter(ok=10)}  # b is down
    with caplog.at_level(logging.WARNING):
        assert _values(source.read(_at(10))) == {(): (1.0, None)}
    assert any(r.getMessage() == "source.scrape_partial" for r in caplog.records)
    ex.bodies = {"a": _counter(ok=20), "b": _counter(ok=40)}  # b: 40 over 20 s
    assert _values(source.read(_at(20))) == {(): (3.0, None)}
    ex.bodies = {}
    down = source.read(_at(30))
    assert "http://a/metrics" in down.no_data and "http://b/metrics" in down.no_data


def test_histogram_quantile_matches_promql():
    buckets = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (float("inf"), 40.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.3)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.1, buckets) == pytest.approx(0.04)
    assert histogram_quantile(0.99, [(1.0, 1.0), (float("inf"), 10.0)]) == 1.0  # in +Inf
    assert histogram_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) != histogram_quantile(
        0.5, [(1.0, 0.0), (float("inf"), 0.0)]
    )  # NaN: no observations

    ex = Exposition()
    hist = "# TYPE lat histogram\n" + "".join(
        f'lat_bucket{{route="{route}",le="{le}"}} {count}\n'
        for route, counts in (("/a", (0, 0, 0, 0)), ("/b", (0, 0, 0, 0)))
        for le, count in zip(("0.1", "0.5", "1.0", "+Inf"), counts, strict=True)
    )
    source = ex.source(["a"], "lat", function="quantile", quantile=0.5, by=["route"])
    ex.bodies = {"a": hist}
    source.read(_at(0))
    ex.bodies = {
        "a": hist.replace('"/a",le="0.1"} 0', '"/a",le="0.1"} 10')
        .replace('"/a",le="0.5"} 0', '"/a",le="0.5"} 30')
        .replace('"/a",le="1.0"} 0', '"/a",le="1.0"} 40')
        .replace('"/a",le="+Inf"} 0', '"/a",le="+Inf"} 40')
    }
    # /b saw nothing: no quantile for it, and /a's comes with its observation rate.
    assert _values(source.read(_at(10))) == {("/a",): (pytest.approx(0.3), 4.0)}


def test_selector_syntax_and_config_errors():
    selector = MetricSelector.model_validate(
        'translator_http_requests_total{status=~"5..", route!="/metrics", method="GET"}'
    )
    assert selector.metric == "translator_http_requests_total"
    assert [(m.label, m.op, m.value) for m in selector.matchers] == [
        ("status", "=~", "5.."),
        ("route", "!=", "/metrics"),
        ("method", "=", "GET"),
    ]
    assert selector.matches({"status": "503", "route": "/api/jobs", "method": "GET"})
    assert not selector.matches({"status": "5000", "route": "/api/jobs", "method": "GET"})
    as_mapping = MetricSelector.model_validate({"metric": "x", "matchers": {"route": "/a"}})
    assert as_mapping.matches({"route": "/a"}) and not as_mapping.matches({"route": "/b"})

    bad = [
        ({"selector": "x", "function": "ratio"}, "needs a denominator"),
        ({"selector": "x", "function": "quantile"}, "needs quantile"),
        ({"selector": "x", "function": "quantile", "quantile": 1.5}, "less than or equal to 1"),
        ({"selector": "x", "denominator": "y"}, "only used by function 'ratio'"),
        ({"selector": 'x{status=~"("}', "function": "value"}, "does not compile"),
        ({"selector": "x{status=5}"}, "cannot read label matchers"),
        ({"selector": "9lives"}, "is not a selector"),
        ({"selector": "x", "targets": ["ftp://host/metrics"]}, "not an http(s) URL"),
        ({"selector": "x", "by": ["bad-label"]}, "not a label name"),
        ({"selector": "x_bucket", "function": "quantile", "quantile": 0.5, "by": ["le"]}, "'le'"),
        ({"selector": "x", "speed": 3}, "Extra inputs are not permitted"),
    ]
    for options, message in bad:
        with pytest.raises(ValidationError) as caught:
            parse_source_config({"type": "scrape", **options})
        assert message in str(caught.value), (options, str(caught.value))


def _gauges(**series: float) -> str:
    lines = ["# TYPE fs_avail_bytes gauge", "# TYPE fs_size_bytes gauge"]
    for name, value in series.items():
        metric, mount = name.split("__")
        lines.append(f'fs_{metric}_bytes{{mountpoint="/{mount}"}} {value}')
    return "\n".join(lines) + "\n"


def test_gauge_ratio_and_its_complement_per_node_and_label():
    ex = Exposition()
    used = ex.source(
        ["a", "b"],
        "fs_avail_bytes",
        function="gauge_ratio",
        denominator="fs_size_bytes",
        complement=True,
        by=["instance", "mountpoint"],
    )
    ex.bodies = {
        "a": _gauges(avail__data=5, size__data=100, avail__srv=50, size__srv=200),
        "b": _gauges(avail__data=90, size__data=100, size__empty=0),
    }
    # Gauges need no earlier scrape: the first reading has values.
    assert _values(used.read(_at(0))) == {
        ("a", "/data"): (pytest.approx(0.95), 100.0),
        ("a", "/srv"): (pytest.approx(0.75), 200.0),
        ("b", "/data"): (pytest.approx(0.10), 100.0),
    }  # a size of 0 divides nothing: no series
    share = ex.source(["a"], "fs_avail_bytes", function="gauge_ratio", denominator="fs_size_bytes")
    assert _values(share.read(_at(0))) == {(): (pytest.approx(55 / 300), 300.0)}
    ex.bodies = {"a": _gauges(size__data=0)}
    assert share.read(_at(1)).no_data == "no series of fs_size_bytes above zero to divide by"


def test_ratio_complement_is_the_busy_share_of_cpu_time():
    ex = Exposition()

    def cpu(**seconds: float) -> str:
        lines = [f'cpu_seconds_total{{mode="{m}"}} {v}' for m, v in seconds.items()]
        return "# TYPE cpu_seconds counter\n" + "\n".join(lines) + "\n"

    busy = ex.source(
        ["a"],
        'cpu_seconds_total{mode=~"idle|iowait"}',
        function="ratio",
        denominator="cpu_seconds_total",
        complement=True,
    )
    ex.bodies = {"a": cpu(idle=100, iowait=10, user=50)}
    assert busy.read(_at(0)).no_data.startswith("warming up")
    ex.bodies = {"a": cpu(idle=106, iowait=11, user=63)}  # 20 s of CPU, 13 busy
    assert _values(busy.read(_at(10))) == {(): (pytest.approx(13 / 20), 2.0)}


def test_complement_and_gauge_ratio_configuration_errors():
    def error(**config) -> str:
        with pytest.raises(ValidationError) as info:
            parse_source_config({"type": "scrape", "selector": "m", **config})
        return str(info.value)

    assert "needs a denominator" in error(function="gauge_ratio")
    assert "only used by ratios" in error(function="value", complement=True)
    assert "'ratio' or 'gauge_ratio'" in error(function="rate", denominator="d")
    assert "job" in error(job="mysql")
    config = parse_source_config({"type": "scrape", "job": "node", "selector": "m"})
    with pytest.raises(Exception, match="no default targets are set for job 'node'"):
        build_source(config, SourceContext(scrape_targets=["http://t/metrics"]))
    source = build_source(config, SourceContext(node_targets=["http://n:9100/metrics"]))
    assert isinstance(source, ScrapeSource) and source.targets == ["http://n:9100/metrics"]
