"""A private nginx in front of the local fleet: its configuration rendered from
the node list, and the master process started, reloaded and stopped.

Everything nginx writes (pid, logs, temp files) stays under its own prefix
directory, so several fleets run side by side on one machine. The upstream is
one weighted round-robin group: the canary gets its share through its weight,
and a request the canary answers with an error (or never answers) is passed
to a production node (``proxy_next_upstream``), so clients do not see the
canary's 500s while the canary's own counters still record them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from common.logs import get_logger
from release_gate.deployers.base import DeployError

log = get_logger(__name__)

DEFAULT_BINARY = "/usr/sbin/nginx"
GENERATION_PATH = "/_fleet/generation"
# Why a retry happens. 502/503 also cover a node that is restarting or overloaded.
RETRY_ON = ("error", "timeout", "http_500", "http_502", "http_503")


@dataclass(frozen=True)
class UpstreamServer:
    name: str
    port: int
    weight: int
    down: bool = False


@dataclass(frozen=True)
class ProxySettings:
    listen_port: int
    # The canary plus one production node: a failed canary answer is retried
    # once, and a production failure is not multiplied across the fleet.
    next_upstream_tries: int = 2
    # POST/PATCH are retried only when the request never reached the node
    # (nginx's default). The translator's checkout takes no idempotency key, so
    # a canary that charged and then failed would charge again on production.
    retry_non_idempotent: bool = False
    connect_timeout_seconds: float = 2.0
    read_timeout_seconds: float = 60.0
    client_max_body_size: str = "100m"


def render_config(
    prefix: Path, servers: list[UpstreamServer], proxy: ProxySettings, generation: int
) -> str:
    """The whole nginx.conf. ``generation`` is served at ``/_fleet/generation`` so
    the fleet can tell when a reload has taken effect."""
    if not servers:
        raise ValueError("an upstream needs at least one server")
    if all(s.down for s in servers):
        raise ValueError("every upstream server is down; nothing would answer")
    # max_fails=0: an error from the canary must not take it out of rotation,
    # or the gate would stop seeing the very errors it judges. Nodes that are
    # being restarted are marked ``down`` explicitly instead.
    upstream = "\n".join(
        f"        server 127.0.0.1:{s.port} weight={s.weight} max_fails=0"
        f"{' down' if s.down else ''};  # {s.name}"
        for s in servers
    )
    retry_on = " ".join(RETRY_ON + (("non_idempotent",) if proxy.retry_non_idempotent else ()))
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach our temp dirs
    p = prefix.resolve()
    return f"""# Rendered by the release gate's local fleet; changes are overwritten.
{user}worker_processes 1;
daemon off;
master_process on;
pid {p}/nginx.pid;
error_log {p}/logs/error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
    client_body_temp_path {p}/temp/body;
    proxy_temp_path {p}/temp/proxy;
    fastcgi_temp_path {p}/temp/fastcgi;
    uwsgi_temp_path {p}/temp/uwsgi;
    scgi_temp_path {p}/temp/scgi;

    # One line per request, with every upstream tried: "500, 200" is a retry.
    log_format fleet 'time=$time_iso8601 request_id=$fleet_request_id '
                     'method=$request_method uri="$request_uri" status=$status '
                     'upstream="$upstream_addr" upstream_status="$upstream_status" '
                     'seconds=$request_time';
    access_log {p}/logs/access.log fleet;

    # The client's request id if it sent one; the canary's attempt and its retry
    # on production then log the same id.
    map $http_x_request_id $fleet_request_id {{
        default $http_x_request_id;
        "" $request_id;
    }}

    upstream translator_fleet {{
{upstream}
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{proxy.listen_port};
        client_max_body_size {proxy.client_max_body_size};
        # No idle client connections: on every reload (a node switching versions)
        # old workers close them, and a request sent at that moment would fail
        # with no response at all. A new loopback connection per request is cheap.
        keepalive_timeout 0;

        location = {GENERATION_PATH} {{
            access_log off;
            default_type text/plain;
            return 200 "{generation}\\n";
        }}

        location / {{
            proxy_pass http://translator_fleet;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-ID $fleet_request_id;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_next_upstream {retry_on};
            proxy_next_upstream_tries {proxy.next_upstream_tries};
            proxy_connect_timeout {proxy.connect_timeout_seconds:g}s;
            proxy_read_timeout {proxy.read_timeout_seconds:g}s;
        }}
    }}
}}
"""


class NginxProcess:
    """One nginx master (``daemon off``) in its own process group."""

    def __init__(self, prefix: Path, binary: str = DEFAULT_BINARY) -> None:
        self.prefix = prefix
        self.binary = binary
        self.conf = prefix / "nginx.conf"
        self._process: subprocess.Popen[bytes] | None = None
        self._generation = 0
        self.port: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        if self.port is None:
            raise DeployError("nginx is not running")
        return f"http://127.0.0.1:{self.port}"

    def _prepare_dirs(self) -> None:
        for sub in ("logs", "temp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)

    def _command(self, conf: Path, *extra: str) -> list[str]:
        # -e: nginx opens its error log before reading the config; keep that one ours too.
        return [
            self.binary,
            "-p",
            str(self.prefix.resolve()),
            "-c",
            str(conf.resolve()),
            "-e",
            str((self.prefix / "logs" / "error.log").resolve()),
            *extra,
        ]

    def _test(self, conf: Path) -> None:
        result = subprocess.run(
            self._command(conf, "-t", "-q"), capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise DeployError(f"nginx rejected {conf}: {result.stderr.strip()}")

    def _write_checked(self, servers: list[UpstreamServer], proxy: ProxySettings) -> None:
        """Render, let ``nginx -t`` check it, then replace the live file."""
        self._generation += 1
        candidate = self.prefix / "nginx.conf.new"
        candidate.write_text(render_config(self.prefix, servers, proxy, self._generation))
        self._test(candidate)
        candidate.replace(self.conf)

    def start(
        self,
        servers: list[UpstreamServer],
        proxy: ProxySettings,
        on_spawn: Callable[[int], None] | None = None,
        timeout: float = 20.0,
    ) -> None:
        if not Path(self.binary).exists():
            raise DeployError(f"nginx not found at {self.binary} (Debian package nginx-light)")
        self._prepare_dirs()
        self._write_checked(servers, proxy)
        self.port = proxy.listen_port
        with open(self.prefix / "logs" / "nginx.out", "ab") as out:
            self._process = subprocess.Popen(
                self._command(self.conf),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if on_spawn is not None:
            on_spawn(self._process.pid)
        log.info("fleet.nginx_started", pid=self._process.pid, port=self.port)
        self._wait_for_generation(timeout)

    def reload(
        self, servers: list[UpstreamServer], proxy: ProxySettings, timeout: float = 20.0
    ) -> None:
        """Graceful: old workers finish their requests, new ones use the new upstream."""
        if not self.running:
            raise DeployError("nginx is not running; cannot reload")
        self._write_checked(servers, proxy)
        assert self._process is not None
        self._process.send_signal(signal.SIGHUP)
        self._wait_for_generation(timeout)
        log.info(
            "fleet.nginx_reloaded",
            generation=self._generation,
            upstream=",".join(
                f"{s.name}:{s.port}w{s.weight}{'(down)' if s.down else ''}" for s in servers
            ),
        )

    def _wait_for_generation(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        expected = str(self._generation)
        while True:
            if not self.running:
                raise DeployError(f"nginx exited: {self.error_log_tail()}")
            try:
                # A fresh connection each time: an old worker keeps its keep-alive ones.
                r = httpx.get(
                    f"{self.url}{GENERATION_PATH}", timeout=2.0, headers={"Connection": "close"}
                )
                if r.status_code == 200 and r.text.strip() == expected:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise DeployError(
                    f"nginx did not serve configuration {expected} within {timeout:g}s: "
                    f"{self.error_log_tail()}"
                )
            time.sleep(0.05)

    def error_log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.prefix / "logs" / "error.log").read_text(errors="replace")
        except OSError:
            return "(no error log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(error log empty)"

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful quit, then the whole group is killed if it lingers. Idempotent."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            signal_group(process.pid, signal.SIGQUIT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout)
        # Workers are in the master's group; make sure none outlives it.
        signal_group(process.pid, signal.SIGKILL)
        log.info("fleet.nginx_stopped", pid=process.pid, returncode=process.returncode)


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
