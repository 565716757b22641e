"""The built-in deployer for demos and tests: translator nodes as local processes
behind a real nginx.

    preprod (canary) ─┐
    prod-1 ───────────┼── nginx on 127.0.0.1:P ── clients
    prod-N ───────────┘

One preprod node gets ``canary_share`` of the traffic through its upstream
weight; a request it fails is retried on production by nginx. Every node runs
``translator serve`` on a loopback port with the environment of its version,
all on one database and one storage directory. A version is a directory under
``<state>/versions/<v>/`` holding what that build runs with (environment
overrides, a fault file for a deliberately bad build), so a rollback restarts
a node on a version that is already there: a switch, not a rebuild.

Processes belong to the fleet's owner: each runs in its own process group,
``stop()`` ends them all, and a small reaper process ends them too if the
owner dies without stopping (``kill -9`` included)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from math import gcd
from pathlib import Path
from typing import Any, Literal, Self

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.files import write_atomic
from common.logs import get_logger
from common.yaml_config import ConfigError
from release_gate.deployers.base import DeployError, Node
from release_gate.deployers.nginx import (
    DEFAULT_BINARY,
    NginxProcess,
    ProxySettings,
    UpstreamServer,
    signal_group,
)

log = get_logger(__name__)

CANARY = "preprod"
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionSpec(_Strict):
    """What one build runs with, beyond the code: environment overrides and faults
    (the translator's fault file, e.g. ``{http_errors: [{route: /api/jobs, rate: 0.3}]}``)."""

    env: dict[str, str] = {}
    faults: dict[str, Any] | None = None


class Weights(_Strict):
    canary: int = Field(ge=1)
    production: int = Field(ge=1)  # each production node


class LocalFleetConfig(_Strict):
    """The gate's ``deployer: {type: local_fleet, ...}`` section."""

    type: Literal["local_fleet"] = "local_fleet"
    service: str = "translator"
    production_nodes: int = Field(default=2, ge=1, le=32)
    # Share of all requests the canary gets; or explicit upstream weights.
    canary_share: float | None = Field(default=None, gt=0, lt=1)
    weights: Weights | None = None
    # Nodes on base_port (canary), base_port+1, ...; free ports when absent.
    base_port: int | None = Field(default=None, ge=1024, le=65000)
    proxy_port: int | None = Field(default=None, ge=1024, le=65535)
    # Shared by every node; a SQLite file in the state directory when absent.
    database_url: str | None = None
    env: dict[str, str] = {}  # for every node, under each version's own env
    versions: dict[str, VersionSpec] = {}
    initial_version: str | None = None
    # A version nobody installed runs the checked-out code with no overrides.
    install_unknown_versions: bool = True
    health_timeout_seconds: float = Field(default=60.0, gt=0)
    stop_timeout_seconds: float = Field(default=15.0, gt=0)
    nginx_binary: str = DEFAULT_BINARY
    next_upstream_tries: int = Field(default=2, ge=1)
    retry_non_idempotent: bool = False

    @model_validator(mode="after")
    def _one_share(self) -> Self:
        if self.canary_share is not None and self.weights is not None:
            raise ValueError("give canary_share or weights, not both")
        for name in [*self.versions, *([self.initial_version] if self.initial_version else [])]:
            if not VERSION_NAME.match(name):
                raise ValueError(f"version {name!r}: use letters, digits and . _ + -")
        return self

    def upstream_weights(self) -> Weights:
        if self.weights is not None:
            return self.weights
        return weights_for_share(
            0.1 if self.canary_share is None else self.canary_share, self.production_nodes
        )


def weights_for_share(share: float, production_nodes: int) -> Weights:
    """Integer weights giving the canary ``share`` of requests: w_c / (w_c + N·w_p)."""
    f = Fraction(share).limit_denominator(1000)
    canary, production = f.numerator * production_nodes, f.denominator - f.numerator
    g = gcd(canary, production)
    return Weights(canary=canary // g, production=production // g)


@dataclass
class _NodeProcess:
    name: str
    role: Literal["canary", "production"]
    port: int
    weight: int
    version: str | None = None
    process: subprocess.Popen[bytes] | None = None
    draining: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None and not self.draining

    def node(self) -> Node:
        return Node(self.name, self.role, f"{self.url}/metrics")


class LocalFleet:
    """A ``Deployer`` (see ``release_gate.deployers.base``) on local processes."""

    def __init__(self, config: LocalFleetConfig, state_dir: Path) -> None:
        self.config = config
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = config.database_url or f"sqlite:///{self.state_dir / 'translator.db'}"
        weights = config.upstream_weights()
        ports = self._initial_ports()
        self._nodes = [_NodeProcess(CANARY, "canary", ports[0], weights.canary)] + [
            _NodeProcess(f"prod-{i}", "production", ports[i], weights.production)
            for i in range(1, config.production_nodes + 1)
        ]
        self._nginx = NginxProcess(self.state_dir / "nginx", config.nginx_binary)
        self._reaper: _Reaper | None = None
        self._lock = threading.RLock()
        for version, spec in config.versions.items():
            self.install_version(version, spec.env, spec.faults)

    @classmethod
    def from_config(cls, section: dict[str, Any] | LocalFleetConfig, state_dir: Path) -> LocalFleet:
        if isinstance(section, LocalFleetConfig):
            return cls(section, state_dir)
        try:
            config = LocalFleetConfig.model_validate(section)
        except ValidationError as exc:
            raise ConfigError(
                "\n".join(
                    f"local_fleet.{'.'.join(str(p) for p in e['loc']) or '(section)'}: {e['msg']}"
                    for e in exc.errors()
                )
            ) from exc
        return cls(config, state_dir)

    # ---- versions -------------------------------------------------------------------------

    def _version_dir(self, version: str) -> Path:
        if not VERSION_NAME.match(version):
            raise DeployError(f"version {version!r}: use letters, digits and . _ + -")
        return self.state_dir / "versions" / version

    def install_version(
        self, version: str, env: dict[str, str] | None = None, faults: dict[str, Any] | None = None
    ) -> Path:
        """Put a build beside the others. Reinstalling replaces what it runs with."""
        directory = self._version_dir(version)
        directory.mkdir(parents=True, exist_ok=True)
        faults_file = directory / "faults.yaml"
        if faults:
            write_atomic(faults_file, yaml.safe_dump(faults, sort_keys=False))
        else:
            faults_file.unlink(missing_ok=True)
        write_atomic(directory / "version.json", json.dumps({"env": env or {}}, indent=2))
        log.info("fleet.version_installed", version=version, faults=bool(faults))
        return directory

    def installed_versions(self) -> list[str]:
        root = self.state_dir / "versions"
        if not root.exists():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "version.json").exists())

    def _version_env(self, version: str) -> dict[str, str]:
        directory = self._version_dir(version)
        spec = directory / "version.json"
        if not spec.exists():
            if not self.config.install_unknown_versions:
                known = ", ".join(self.installed_versions()) or "none"
                raise DeployError(f"version {version} is not installed (installed: {known})")
            self.install_version(version)
        env = dict(json.loads(spec.read_text())["env"])
        if (directory / "faults.yaml").exists():
            env["TRANSLATOR_FAULTS_FILE"] = str((directory / "faults.yaml").resolve())
        return env

    # ---- lifecycle ------------------------------------------------------------------------

    @property
    def proxy_url(self) -> str:
        return self._nginx.url

    @property
    def canary(self) -> Node:
        return self._nodes[0].node()

    @property
    def production(self) -> list[Node]:
        return [n.node() for n in self._nodes[1:]]

    def node_versions(self) -> dict[str, str | None]:
        return {n.name: n.version for n in self._nodes}

    def pids(self) -> list[int]:
        """Every process of the fleet now: node processes, nginx master and workers."""
        with self._lock:
            groups = [n.process.pid for n in self._nodes if n.process is not None]
            if self._nginx.pid is not None:
                groups.append(self._nginx.pid)
        return sorted({pid for g in groups for pid in _group_members(g)})

    def start(self, version: str | None = None) -> Self:
        """Every node on ``version`` (default: the version production ran last, or
        ``initial_version``), then nginx in front. Idempotent while running."""
        with self._lock:
            if self._nginx.running:
                return self
            version = (
                version or self._state().get("production_version") or self.config.initial_version
            )
            if version is None:
                raise DeployError("no version to start the fleet on (give one)")
            if not Path(self.config.nginx_binary).exists():
                raise DeployError(
                    f"nginx not found at {self.config.nginx_binary} (Debian package nginx-light)"
                )
            self._reaper = _Reaper.spawn(self.state_dir / "logs" / "reaper.log")
            try:
                # The first node migrates the database; the others then start together.
                first, *others = self._nodes
                self._start_node(first, version)
                with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
                    for future in [pool.submit(self._start_node, n, version) for n in others]:
                        future.result()
                self._start_nginx()
            except BaseException:
                self.stop()
                raise
            self._save_state(production_version=version, canary_version=version)
            log.info(
                "fleet.started",
                version=version,
                proxy=self.proxy_url,
                nodes=",".join(f"{n.name}:{n.port}" for n in self._nodes),
            )
            return self

    def stop(self) -> None:
        """Stop nginx and every node; nothing is left running. Idempotent."""
        with self._lock:
            self._nginx.stop()
            for node in self._nodes:
                self._stop_node(node)
            if self._reaper is not None:
                self._reaper.close()
                self._reaper = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- the Deployer protocol ------------------------------------------------------------

    def current_version(self, service: str) -> str | None:
        self._check_service(service)
        return self._state().get("production_version")

    def deploy_canary(self, service: str, version: str) -> Node:
        self._check_service(service)
        with self._lock:
            self._require_running()
            self._switch(self._nodes[0], version)
            self._save_state(canary_version=version)
            return self.canary

    def control_nodes(self, service: str) -> list[Node]:
        self._check_service(service)
        return self.production

    def promote(self, service: str, version: str) -> None:
        """Rolling: one production node at a time leaves the upstream, restarts on
        ``version``, and comes back before the next one goes."""
        self._check_service(service)
        with self._lock:
            self._require_running()
            for node in self._nodes[1:]:
                self._switch(node, version)
            if self._nodes[0].version != version:
                self._switch(self._nodes[0], version)
            self._save_state(production_version=version, canary_version=version)
            log.info("fleet.promoted", service=service, version=version)

    def rollback_canary(self, service: str, previous_version: str | None) -> None:
        """The canary back on ``previous_version`` (default: what production runs);
        with neither, the canary leaves the upstream and stops."""
        self._check_service(service)
        with self._lock:
            self._require_running()
            canary = self._nodes[0]
            target = previous_version or self._state().get("production_version")
            if target is None:
                self._drain(canary)
                self._stop_node(canary)
                canary.version = None
            elif canary.version != target or not canary.up or not self._healthy(canary):
                self._switch(canary, target)
            self._save_state(canary_version=target)
            log.info("fleet.canary_rolled_back", service=service, version=target)

    # ---- nodes ----------------------------------------------------------------------------

    def _check_service(self, service: str) -> None:
        if service != self.config.service:
            raise DeployError(f"this local fleet runs {self.config.service!r}, not {service!r}")

    def _require_running(self) -> None:
        if not self._nginx.running:
            # The fleet lives as long as the process that started it (the demo, a
            # test): a gate process of its own has no fleet to deploy to.
            raise DeployError(
                "the local fleet is not running: start it (LocalFleet.start) in the process "
                "that runs the gate"
            )

    def _switch(self, node: _NodeProcess, version: str) -> None:
        started = time.monotonic()
        self._drain(node)
        self._stop_node(node)
        self._start_node(node, version)
        node.draining = False
        self._reload_nginx()
        log.info(
            "fleet.node_switched",
            node=node.name,
            version=version,
            seconds=round(time.monotonic() - started, 2),
        )

    def _drain(self, node: _NodeProcess) -> None:
        """Out of the upstream before it restarts, so no request lands on a dead port.
        Skipped when it is the only node up (nginx then retries on nothing better)."""
        if not self._nginx.running or not any(n.up for n in self._nodes if n is not node):
            return
        node.draining = True
        self._reload_nginx()

    def _node_env(self, node: _NodeProcess, version: str) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TRANSLATOR_") and k != "PROMETHEUS_MULTIPROC_DIR"
        }
        # Maintenance jobs run once per fleet, on the first production node.
        env["TRANSLATOR_SCHEDULER_ENABLED"] = "true" if node.name == "prod-1" else "false"
        env["TRANSLATOR_STORAGE_DIR"] = str((self.state_dir / "files").resolve())
        env["TRANSLATOR_BACKUP_DIR"] = str((self.state_dir / "backups").resolve())
        env.update(self.config.env)
        env.update(self._version_env(version))
        # Set last: no configuration can make a node lie about what it runs or where.
        env.update(
            TRANSLATOR_VERSION=version,
            TRANSLATOR_NODE=node.name,
            TRANSLATOR_DATABASE_URL=self.database_url,
        )
        return env

    def _start_node(self, node: _NodeProcess, version: str, attempts: int = 3) -> None:
        env = self._node_env(node, version)
        log_path = self.state_dir / "logs" / f"{node.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, attempts + 1):
            command = [
                sys.executable,
                "-m",
                "translator.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(node.port),
            ]
            offset = log_path.stat().st_size if log_path.exists() else 0
            with open(log_path, "ab") as out:
                node.process = subprocess.Popen(
                    command,
                    env=env,
                    cwd=self.state_dir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if self._reaper is not None:
                self._reaper.watch(node.process.pid)
            node.version = version
            try:
                self._wait_healthy(node, log_path, offset)
                log.info(
                    "fleet.node_started",
                    node=node.name,
                    version=version,
                    port=node.port,
                    pid=node.process.pid,
                )
                return
            except DeployError as exc:
                self._stop_node(node)
                node.version = None
                port_taken = "address already in use" in str(exc).lower()
                if port_taken and self.config.base_port is None and attempt < attempts:
                    node.port = _free_port()
                    continue
                raise

    def _wait_healthy(self, node: _NodeProcess, log_path: Path, offset: int) -> None:
        deadline = time.monotonic() + self.config.health_timeout_seconds
        assert node.process is not None
        while True:
            if node.process.poll() is not None:
                raise DeployError(
                    f"{node.name} ({node.version}) exited with {node.process.returncode}: "
                    f"{_log_tail(log_path, offset)}"
                )
            if self._healthy(node):
                return
            if time.monotonic() > deadline:
                raise DeployError(
                    f"{node.name} ({node.version}) not healthy after "
                    f"{self.config.health_timeout_seconds:g}s: {_log_tail(log_path, offset)}"
                )
            time.sleep(0.1)

    @staticmethod
    def _healthy(node: _NodeProcess) -> bool:
        try:
            return httpx.get(f"{node.url}/api/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _stop_node(self, node: _NodeProcess) -> None:
        process, node.process = node.process, None
        if process is None:
            return
        _end_group(process, self.config.stop_timeout_seconds)
        if self._reaper is not None:
            self._reaper.forget(process.pid)
        log.info("fleet.node_stopped", node=node.name, pid=process.pid, code=process.returncode)

    # ---- nginx ----------------------------------------------------------------------------

    def _upstream(self) -> list[UpstreamServer]:
        return [UpstreamServer(n.name, n.port, n.weight, down=not n.up) for n in self._nodes]

    def _proxy_settings(self, port: int) -> ProxySettings:
        return ProxySettings(
            listen_port=port,
            next_upstream_tries=self.config.next_upstream_tries,
            retry_non_idempotent=self.config.retry_non_idempotent,
        )

    def _start_nginx(self, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            port = self.config.proxy_port or _free_port()
            try:
                self._nginx.start(
                    self._upstream(),
                    self._proxy_settings(port),
                    on_spawn=self._reaper.watch if self._reaper else None,
                )
                return
            except DeployError as exc:
                self._nginx.stop()
                taken = "address already in use" in str(exc).lower()
                if not (taken and self.config.proxy_port is None and attempt < attempts):
                    raise

    def _reload_nginx(self) -> None:
        if self._nginx.running and self._nginx.port is not None:
            self._nginx.reload(self._upstream(), self._proxy_settings(self._nginx.port))

    # ---- ports and state ------------------------------------------------------------------

    def _initial_ports(self) -> list[int]:
        count = self.config.production_nodes + 1
        if self.config.base_port is not None:
            return [self.config.base_port + i for i in range(count)]
        return [_free_port() for _ in range(count)]

    def _state(self) -> dict[str, Any]:
        path = self.state_dir / "fleet.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def _save_state(self, **changes: str | None) -> None:
        state = {**self._state(), **changes}
        write_atomic(self.state_dir / "fleet.json", json.dumps(state, indent=2))


# ---- processes --------------------------------------------------------------------------------


class _Reaper:
    """A child that outlives nothing: it reads process groups to watch on stdin and,
    when stdin closes because the fleet's owner died, ends every group still listed."""

    SCRIPT = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
groups = set()
for line in sys.stdin:
    op, _, pgid = line.strip().partition(" ")
    if pgid.isdigit():
        (groups.add if op == "watch" else groups.discard)(int(pgid))
if groups:
    print(f"reaper: the owner is gone; ending process groups {sorted(groups)}", flush=True)
def alive(g):
    try:
        os.killpg(g, 0)
        return True
    except OSError:
        return False
for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
    for g in list(groups):
        try:
            os.killpg(g, sig)
        except OSError:
            groups.discard(g)
    deadline = time.monotonic() + wait
    while groups and time.monotonic() < deadline:
        groups = {g for g in groups if alive(g)}
        time.sleep(0.1)
"""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        self._lock = threading.Lock()

    @classmethod
    def spawn(cls, log_path: Path) -> _Reaper:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-c", cls.SCRIPT],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,  # Ctrl-C on the owner's terminal is not for it
            )
        return cls(process)

    def _send(self, line: str) -> None:
        with self._lock:
            if self._process.stdin is None or self._process.stdin.closed:
                return
            try:
                self._process.stdin.write(line + "\n")
                self._process.stdin.flush()
            except BrokenPipeError:
                log.warning("fleet.reaper_gone")

    def watch(self, pgid: int) -> None:
        self._send(f"watch {pgid}")

    def forget(self, pgid: int) -> None:
        self._send(f"forget {pgid}")

    def close(self) -> None:
        with self._lock:
            if self._process.stdin is not None and not self._process.stdin.closed:
                self._process.stdin.close()
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _end_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM (uvicorn finishes in-flight requests), then SIGKILL for the group."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        if process.poll() is not None:
            break
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    signal_group(process.pid, signal.SIGKILL)  # anything the node forked is in its group


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state, ppid, pgrp, ...; zombies have already ended.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _log_tail(path: Path, offset: int, lines: int = 8) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"
