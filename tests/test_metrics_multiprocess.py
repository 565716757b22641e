"""Counters from a separate worker process appear on the API's /metrics when
PROMETHEUS_MULTIPROC_DIR is shared."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import add_user, client_for, make_services


def test_worker_process_counters_are_merged(database_url, tmp_path, clock, monkeypatch):
    services = make_services(database_url, tmp_path, clock)
    _, h = add_user(services, "a@example.com")
    api = client_for(services)
    for name in ("a.txt", "b.txt", "c.txt"):
        assert (
            api.post("/api/files", headers=h, files={"file": (name, b"Hello")}).status_code == 201
        )

    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    worker = textwrap.dedent(f"""
        from pathlib import Path
        from common.clock import FakeClock
        from tests.helpers import make_services
        services = make_services({database_url!r}, Path({str(tmp_path)!r}), FakeClock())
        print(services.workers.drain())
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    out = subprocess.run(
        [sys.executable, "-c", worker],
        env=env,
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    text = api.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("translator_job_attempts_total", (("outcome", "completed"),))] == 3
    assert samples[("translator_jobs", (("status", "completed"),))] == 3
    assert (
        samples[
            (
                "translator_build_info",
                (
                    ("node", "local"),
                    ("python", sys.version.split()[0]),
                    ("version", services.settings.version),
                ),
            )
        ]
        == 1
    )
    services.close()
