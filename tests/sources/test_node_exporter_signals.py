"""The default catalogue's host signals against a real node exporter (Debian's
prometheus-node-exporter on a loopback port): CPU, memory and disk per host and
mountpoint, compared with what the kernel says, and no data once it is down."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from sentinel.catalogue import load_catalogue
from sentinel.settings import DEFAULT_CATALOGUE
from sentinel.sources import Reading, SourceContext, build_source
from tests.node_exporter_server import node_exporter


@pytest.fixture(scope="module")
def exporter():
    with node_exporter() as running:
        yield running


def _host_source(name: str, url: str):
    spec = load_catalogue(DEFAULT_CATALOGUE).get(name)
    return build_source(spec.source, SourceContext(node_targets=[url]), signal=name)


def _meminfo() -> dict[str, float]:
    with open("/proc/meminfo") as fh:
        return {line.split(":")[0]: float(line.split()[1]) for line in fh}


def _by_labels(reading: Reading) -> dict[tuple, float]:
    assert reading.ok, reading.no_data
    return {p.labels: p.value for p in reading.points}


def test_memory_used_share_per_host(exporter):
    instance = exporter.url.removeprefix("http://")
    reading = _host_source("host.memory_used_ratio", exporter.metrics_url).read(datetime.now(UTC))
    values = _by_labels(reading)
    assert list(values) == [(("instance", instance),)]
    info = _meminfo()
    expected = 1 - info["MemAvailable"] / info["MemTotal"]
    assert values[(("instance", instance),)] == pytest.approx(expected, abs=0.05)


def test_disk_used_share_per_host_and_mountpoint(exporter):
    instance = exporter.url.removeprefix("http://")
    reading = _host_source("host.disk_used_ratio", exporter.metrics_url).read(datetime.now(UTC))
    values = {dict(labels)["mountpoint"]: v for labels, v in _by_labels(reading).items()}
    assert values, "no filesystem reported"
    for labels in _by_labels(reading):
        assert dict(labels)["instance"] == instance
    # The same share `df` would show, for every mountpoint this process can see.
    checked = 0
    for mountpoint, value in values.items():
        try:
            fs = os.statvfs(mountpoint)
        except OSError:
            continue
        if fs.f_blocks:
            assert value == pytest.approx(1 - fs.f_bavail / fs.f_blocks, abs=0.02), mountpoint
            checked += 1
    assert checked


def test_cpu_busy_share_needs_two_scrapes_then_is_a_share(exporter):
    source = _host_source("host.cpu_busy_ratio", exporter.metrics_url)
    start = datetime.now(UTC)
    assert source.read(start).no_data.startswith("warming up")
    # The kernel counts CPU time in ticks: wait until some has passed.
    deadline = time.monotonic() + 10
    step = 0
    while True:
        step += 1
        reading = source.read(start + timedelta(seconds=step))
        if reading.ok or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    values = _by_labels(reading)
    assert list(values) == [(("instance", exporter.url.removeprefix("http://")),)]
    assert 0.0 <= next(iter(values.values())) <= 1.0


def test_an_exporter_that_is_down_is_no_data():
    with node_exporter() as down:
        source = _host_source("host.memory_used_ratio", down.metrics_url)
        assert source.read(datetime.now(UTC)).ok
    reading = source.read(datetime.now(UTC))
    assert not reading.ok and reading.points == ()
    assert reading.no_data.startswith(f"scrape failed: {down.metrics_url}: unreachable")
