"""The demo's clean start: the previous run moves to var/last-run/ (one run kept),
nothing moves while another demo holds its ports; the summary counts the faults
the translator logged."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from demo.state import DemoBusy, ensure_ports_free, start_fresh
from demo.summary import faults_in_log


def _run_leaves(var: Path, marker: str) -> None:
    (var / "fleet").mkdir(parents=True, exist_ok=True)
    (var / "fleet" / "state.json").write_text(marker)
    (var / "sentinel.db").write_text(marker)


def test_each_run_moves_the_previous_one_aside_and_keeps_only_it(tmp_path: Path) -> None:
    var = tmp_path / "var"
    assert start_fresh(var) is None and list(var.iterdir()) == []
    _run_leaves(var, "first")
    assert start_fresh(var) == var / "last-run"
    assert sorted(p.name for p in var.iterdir()) == ["last-run"]
    assert (var / "last-run" / "sentinel.db").read_text() == "first"
    _run_leaves(var, "second")
    start_fresh(var)
    assert (var / "last-run" / "sentinel.db").read_text() == "second"
    assert (var / "last-run" / "fleet" / "state.json").read_text() == "second"
    assert not (var / "last-run" / "last-run").exists()


def test_a_port_in_use_stops_the_demo_before_it_touches_var() -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(DemoBusy, match=rf"127.0.0.1:{port} \(sentinel\) is in use"):
            ensure_ports_free("127.0.0.1", {"sentinel": port})
    ensure_ports_free("127.0.0.1", {"sentinel": port})  # free again


def test_faults_are_counted_by_kind_and_target(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    log.write_text(
        "2026-12-04T20:33:03Z WARNING translator.faults event=fault.injected kind=http_error "
        "route=/api/jobs status=500 request_id=1\n"
        "2026-12-04T20:33:04Z INFO translator.http event=http.request route=/api/jobs\n"
        "2026-12-04T20:33:05Z WARNING translator.faults event=fault.injected kind=http_error "
        "route=/api/jobs status=500 request_id=2\n"
        "2026-12-04T20:33:06Z WARNING translator.faults event=fault.injected "
        "kind=payment_failure method=wallet reason=wallet_declined\n"
        "2026-12-04T20:33:07Z WARNING translator.faults event=fault.injected kind=worker_hang "
        "seconds=900\n"
    )
    assert faults_in_log(log) == {
        "http_error route=/api/jobs": 2,
        "payment_failure method=wallet": 1,
        "worker_hang": 1,
    }
    assert faults_in_log(tmp_path / "missing.log") == {}
