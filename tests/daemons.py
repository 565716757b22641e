"""What the tests' real daemons (Prometheus, Alertmanager) share: finding the
binary, a free loopback port, a log to quote when something goes wrong,
waiting for readiness, polling, and a clean stop."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

T = TypeVar("T")


def require_binary(path: str, *names: str, hint: str) -> str:
    """The binary's path, or skip (fail under CI) with how to get it."""
    found = path if os.path.exists(path) else next(filter(None, map(shutil.which, names)), None)
    if found is None:
        message = f"{path} missing: {hint}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Daemon:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def poll(
        self,
        probe: Callable[[], T | None],
        timeout: float,
        what: str,
        done: Callable[[T | None], bool] = lambda result: result is not None,
    ) -> T:
        """Poll ``probe`` until ``done`` says its answer will do (daemons work on
        their own timers, so tests wait for them, boundedly)."""
        deadline = time.monotonic() + timeout
        while True:
            result = probe()
            if done(result):
                return result  # type: ignore[return-value]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"waited {timeout}s for {what}; {self.name}'s log:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1, trust_env=False) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url + "/-/ready").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} not ready after {timeout}s:\n{self.log_tail()}"
                    )
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # both shut down cleanly on TERM
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
