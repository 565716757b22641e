"""The demo's node exporter: started on a free loopback port and stopped at
exit when Debian's binary is there; one clear line and no targets when not."""

from __future__ import annotations

import httpx

from demo import node_exporter
from tests.node_exporter_server import require_node_exporter


def test_without_the_binary_the_demo_says_so_once_and_goes_on(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(node_exporter, "BINARIES", (str(tmp_path / "no-such-exporter"),))
    assert node_exporter.start_node_exporter("127.0.0.1", tmp_path / "exporter.log") == []
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "No prometheus-node-exporter found (apt-get install prometheus-node-exporter): "
        "the host signals will show no data."
    ]


def test_with_the_binary_it_serves_host_metrics_until_exit(tmp_path, monkeypatch):
    monkeypatch.setattr(node_exporter, "BINARIES", (require_node_exporter(),))
    at_exit = []
    register = node_exporter.atexit.register

    def capture(f, *args):  # the exporter's stop, kept to be called here
        if f is node_exporter._stop:
            at_exit.append((f, args))
        else:
            register(f, *args)

    monkeypatch.setattr(node_exporter.atexit, "register", capture)
    targets = node_exporter.start_node_exporter("127.0.0.1", tmp_path / "exporter.log")
    try:
        assert len(targets) == 1 and targets[0].startswith("http://127.0.0.1:")
        body = httpx.get(targets[0], timeout=5, trust_env=False).text
        assert "node_memory_MemAvailable_bytes" in body and "node_filesystem_size_bytes" in body
    finally:
        for stop, args in at_exit:
            stop(*args)
    (process,) = (args[0] for _, args in at_exit)
    assert process.poll() is not None  # stopped
