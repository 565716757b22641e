"""The translator as an operator runs it: ``translator serve`` on a fresh
database, the ops commands, and a clean shutdown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from translator.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def env(database_url, tmp_path, monkeypatch):
    values = {
        "TRANSLATOR_DATABASE_URL": database_url,
        "TRANSLATOR_STORAGE_DIR": str(tmp_path / "files"),
        "TRANSLATOR_WORKERS": "2",
        "TRANSLATOR_WORKER_POLL_SECONDS": "0.05",
        "TRANSLATOR_VERSION": "9.9.9",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def _wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def _healthy(base):
    try:
        return httpx.get(f"{base}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_translates_and_stops_cleanly(env, tmp_path):
    runner = CliRunner()
    created = runner.invoke(main, ["create-user", "ops@example.com", "--admin"])
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)["api_token"]
    headers = {"Authorization": f"Bearer {token}"}

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "translator.cli", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(lambda: _healthy(base))
        body = httpx.get(f"{base}/api/health").json()
        assert body["status"] == "healthy" and body["version"] == "9.9.9"
        assert body["checks"]["workers"] == {"status": "ok", "alive": 2, "configured": 2}
        r = httpx.post(
            f"{base}/api/files",
            headers=headers,
            files={"file": ("a.md", b"# Hello world")},
            data={"target_lang": "de"},
        )
        assert r.status_code == 201
        file_id = r.json()["file"]["id"]
        _wait_for(
            lambda: (
                httpx.get(f"{base}/api/files/{file_id}", headers=headers).json()["status"]
                == "ready"
            )
        )
        out = httpx.get(f"{base}/api/files/{file_id}/download", headers=headers)
        assert out.text == "# [offline auto→de] Hallo Welt"
        assert 'translator_build_info{node="local"' in httpx.get(f"{base}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal
    assert "workers.stopped" in output
    assert "event=http.request method=POST path=/api/files route=/api/files status=201" in output

    # Ops commands on the same database.
    retried = runner.invoke(main, ["retry-file", str(file_id)])
    assert retried.exit_code == 0 and "queued for retry as job 2" in retried.output
    missing = runner.invoke(main, ["retry-file", "999"])
    assert missing.exit_code == 1 and "file 999 not found" in missing.output
    reset = runner.invoke(main, ["reset-stuck", "--older-than", "60"])
    assert reset.exit_code == 0 and "requeued 0" in reset.output
    diag = runner.invoke(main, ["diagnose", "--json"])
    assert diag.exit_code == 0
    assert [c["name"] for c in json.loads(diag.stdout)] == ["offline"]


def test_bad_fault_configuration_names_file_and_line(env, tmp_path, monkeypatch):
    faults = tmp_path / "faults.yaml"
    faults.write_text("http_errors:\n  - route: /api/jobs\n    rate: 0.5\n    status: 404\n")
    monkeypatch.setenv("TRANSLATOR_FAULTS_FILE", str(faults))
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 1
    assert f"{faults}:4: http_errors.0.status" in result.output
