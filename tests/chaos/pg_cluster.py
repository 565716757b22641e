"""A PostgreSQL cluster of the test's own (``initdb`` / ``pg_ctl`` from the
Debian packages), which the test may stop and start under load. PostgreSQL
refuses to run as root: as root the cluster belongs to the ``postgres`` user
and every command runs through ``runuser``. Without the binaries, or as root
without a ``postgres`` user, the test is skipped with the reason."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemons import free_port

TIMEOUT = 60  # seconds for initdb, a start or a stop


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    return Path(found[-1]).parent if found else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parent.parent.name)
    except ValueError:
        return 0.0


@dataclass
class Cluster:
    bin_dir: Path
    home: Path
    port: int
    run_as: str | None  # a user to run the server as (when we are root)

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{done.stdout}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", str(TIMEOUT), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(TIMEOUT), "stop")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


def own_cluster() -> Cluster:
    """A new, started cluster on a free loopback port (skips when impossible)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
    run_as: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser to start the server as 'postgres'")
        run_as = "postgres"
    home = Path(tempfile.mkdtemp(prefix="vigil-pg-"))
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bin_dir, home, free_port(), run_as)
    try:
        cluster.init()
        cluster.start()
    except Exception:
        cluster.destroy()
        raise
    return cluster
