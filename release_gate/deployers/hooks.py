"""The command-hook deployer: any infrastructure, through shell commands the
configuration names (seed 000 §6's update and rollback scripts are such
commands). Placeholders ``{service}``, ``{version}``, ``{node}`` and
``{previous_version}`` are filled in shell-quoted. A command that exits
non-zero or outlives its timeout is a DeployError carrying the tail of its
stderr."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from pathlib import Path

from common.files import write_atomic
from common.logs import get_logger
from release_gate.config import HooksDeployerConfig
from release_gate.deployers.base import DeployError, Node

log = get_logger(__name__)

STDERR_TAIL_CHARS = 2000


class HooksDeployer:
    def __init__(self, service: str, config: HooksDeployerConfig, state_dir: Path) -> None:
        self.service = service
        self.config = config
        self.state_dir = state_dir
        self.canary = Node(config.canary.name, "canary", config.canary.metrics_url)
        self.production = [Node(n.name, "production", n.metrics_url) for n in config.production]

    # -- the Deployer protocol ---------------------------------------------------

    def current_version(self, service: str) -> str | None:
        if self.config.current_version:
            out = self._run("current_version", self.config.current_version, service, "", "")
            return out.strip().splitlines()[-1].strip() if out.strip() else None
        try:
            return self._version_file(service).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def deploy_canary(self, service: str, version: str) -> Node:
        self._run("deploy_canary", self.config.deploy_canary, service, version, self.canary.name)
        if self.config.health_check:
            self._run("health_check", self.config.health_check, service, version, self.canary.name)
        return self.canary

    def control_nodes(self, service: str) -> list[Node]:
        return list(self.production)

    def promote(self, service: str, version: str) -> None:
        if "{node}" in self.config.promote:
            for node in self.production:
                self._run("promote", self.config.promote, service, version, node.name)
        else:
            names = ",".join(n.name for n in self.production)
            self._run("promote", self.config.promote, service, version, names)
        # Atomic: a kill never leaves half a version.
        write_atomic(self._version_file(service), version + "\n")

    def rollback_canary(self, service: str, previous_version: str | None) -> None:
        self._run(
            "rollback",
            self.config.rollback,
            service,
            previous_version or "",
            self.canary.name,
            previous_version=previous_version or "",
        )

    # -- running one hook --------------------------------------------------------

    def _version_file(self, service: str) -> Path:
        return self.state_dir / "hooks" / f"{service}.version"

    def _run(
        self,
        hook: str,
        template: str,
        service: str,
        version: str,
        node: str,
        previous_version: str = "",
    ) -> str:
        values = {
            "service": service,
            "version": version,
            "node": node,
            "previous_version": previous_version,
        }
        try:
            command = template.format_map({k: shlex.quote(v) for k, v in values.items()})
        except (KeyError, IndexError, ValueError) as exc:
            raise DeployError(f"{hook} hook {template!r}: bad placeholder {exc}") from exc
        env = {**os.environ, **self.config.env}
        log.info("hook.started", hook=hook, service=service, version=version, node=node)
        proc = subprocess.Popen(
            command,
            shell=True,
            cwd=self.config.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so a timeout kills the whole pipeline
        )
        try:
            stdout, stderr = proc.communicate(timeout=self.config.timeout_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            log.error("hook.timeout", hook=hook, service=service, command=command)
            raise DeployError(
                f"{hook} hook timed out after {self.config.timeout_seconds:g}s: {command}"
                + _tail(stderr)
            ) from None
        if proc.returncode != 0:
            log.error("hook.failed", hook=hook, service=service, code=proc.returncode)
            raise DeployError(f"{hook} hook exited {proc.returncode}: {command}" + _tail(stderr))
        log.info("hook.finished", hook=hook, service=service, node=node)
        return stdout


def _tail(stderr: str | None) -> str:
    text = (stderr or "").strip()
    if not text:
        return ""
    if len(text) > STDERR_TAIL_CHARS:
        text = "..." + text[-STDERR_TAIL_CHARS:]
    return "\nstderr: " + text
