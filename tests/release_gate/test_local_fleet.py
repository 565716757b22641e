"""The local fleet: translator nodes behind a real nginx, the canary's share of
traffic, version switches, retries of the canary's 500s on production, and no
process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from common.yaml_config import ConfigError
from release_gate.deployers import DeployError
from release_gate.deployers.local_fleet import LocalFleet, weights_for_share
from release_gate.deployers.nginx import ProxySettings, UpstreamServer, render_config
from tests.conftest import fresh_database
from tests.release_gate.fleet_helpers import (
    alive,
    build_info,
    delta,
    fleet_section,
    request_counts,
    require_nginx,
)

SERVICE = "translator"
BAD_PLANS = {"http_errors": [{"route": "/api/plans", "rate": 1.0, "status": 500}]}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    require_nginx()
    root = tmp_path_factory.mktemp("fleet")
    with fresh_database(root, "fleet") as url:
        section = fleet_section(
            url,
            versions={"1.0.0": {}, "2.0.0": {}, "bad-plans": {"faults": BAD_PLANS}},
        )
        with LocalFleet.from_config(section, root / "state") as running:
            running.start("1.0.0")
            yield running


@pytest.fixture
def client(fleet: LocalFleet):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=fleet.proxy_url, timeout=30) as c:
        yield c


def _all_counts(fleet: LocalFleet, route: str) -> dict[str, dict[str, float]]:
    return {n.name: request_counts(n, route) for n in [fleet.canary, *fleet.production]}


def test_traffic_through_nginx_reaches_every_node_in_its_share(fleet, client):
    before = _all_counts(fleet, "/api/plans")
    statuses = Counter(client.get("/api/plans").status_code for _ in range(200))
    after = _all_counts(fleet, "/api/plans")

    assert statuses == {200: 200}
    served = {name: delta(after[name], before[name]).get("200", 0.0) for name in after}
    assert sum(served.values()) == 200
    # canary_share 0.2 with two production nodes: 20% / 40% / 40%.
    assert 0.1 <= served["preprod"] / 200 <= 0.3
    assert all(0.3 <= served[n.name] / 200 <= 0.5 for n in fleet.production)


def test_a_failing_canary_is_switched_in_and_out_and_users_see_only_200(fleet, client):
    """The canary restarts on a build that fails every ``GET /api/plans``: its build
    info says so, its own counters show the 500s, nginx answers users from
    production, and users see no error while the canary leaves and rejoins."""
    production_version = fleet.current_version(SERVICE)
    stop = threading.Event()
    background: Counter[int] = Counter()

    def users() -> None:  # keep coming while the canary restarts (another route)
        with httpx.Client(base_url=fleet.proxy_url, timeout=30) as c:
            while not stop.is_set():
                background[c.get("/api/health").status_code] += 1
                stop.wait(0.01)

    thread = threading.Thread(target=users)
    thread.start()
    try:
        canary = fleet.deploy_canary(SERVICE, "bad-plans")
        assert (canary.name, canary.role) == ("preprod", "canary")
        assert build_info(canary)["version"] == "bad-plans"
        assert build_info(canary)["node"] == "preprod"
        assert {build_info(n)["version"] for n in fleet.control_nodes(SERVICE)} == {
            production_version
        }
        assert fleet.current_version(SERVICE) == production_version

        before = _all_counts(fleet, "/api/plans")
        statuses = Counter(client.get("/api/plans").status_code for _ in range(100))
        after = _all_counts(fleet, "/api/plans")

        fleet.rollback_canary(SERVICE, production_version)
        assert build_info(fleet.canary)["version"] == production_version
    finally:
        stop.set()
        thread.join()

    assert statuses == {200: 100}
    canary_seen = delta(after[canary.name], before[canary.name])
    # The users' thread shares the upstream's rotation, so the canary's exact
    # share of these 100 varies; that it got some, and failed every one, matters.
    assert canary_seen.get("500", 0) >= 1
    assert "200" not in canary_seen
    production_served = sum(
        delta(after[n.name], before[n.name]).get("200", 0.0) for n in fleet.production
    )
    assert production_served == 100  # ...and production answered all of them
    access_log = (fleet.state_dir / "nginx" / "logs" / "access.log").read_text()
    assert 'upstream_status="500, 200"' in access_log
    assert background[200] > 0
    assert set(background) == {200}, f"users saw {dict(background)} during the switches"


def test_promote_moves_every_production_node(fleet, client):
    old = fleet.current_version(SERVICE)
    new = "2.0.0" if old != "2.0.0" else "1.0.0"
    fleet.promote(SERVICE, new)  # production one node at a time, and the canary with it

    assert fleet.current_version(SERVICE) == new
    assert {build_info(n)["version"] for n in [fleet.canary, *fleet.production]} == {new}
    assert client.get("/api/plans").status_code == 200


def test_a_build_that_does_not_start_fails_the_deploy_and_users_see_nothing(fleet, client):
    production_version = fleet.current_version(SERVICE)
    fleet.install_version("no-start", faults={"http_errors": [{"route": "/x", "rate": 7}]})

    with pytest.raises(DeployError) as failure:
        fleet.deploy_canary(SERVICE, "no-start")
    assert "preprod" in str(failure.value) and "rate" in str(failure.value)

    assert Counter(client.get("/api/plans").status_code for _ in range(20)) == {200: 20}
    fleet.rollback_canary(SERVICE, production_version)
    assert build_info(fleet.canary)["version"] == production_version


def test_another_service_is_refused(fleet):
    with pytest.raises(DeployError, match="runs 'translator', not 'billing'"):
        fleet.deploy_canary("billing", "2.0.0")


def test_a_killed_owner_leaves_no_orphans(tmp_path):
    require_nginx()
    with fresh_database(tmp_path, "orphans") as url:
        owner_code = textwrap.dedent(f"""
            import json, time
            from pathlib import Path
            from release_gate.deployers.local_fleet import LocalFleet
            fleet = LocalFleet.from_config({fleet_section(url, production_nodes=1)!r},
                                           Path({str(tmp_path / "s")!r}))
            fleet.start("1.0.0")
            print(json.dumps(fleet.pids()), flush=True)
            time.sleep(300)
        """)
        owner = subprocess.Popen(
            [sys.executable, "-c", owner_code], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
        )
        try:
            line = owner.stdout.readline() if owner.stdout else ""
            assert line, "the owner could not start its fleet"
            pids = json.loads(line)
            assert all(alive(pid) for pid in pids)
        finally:
            owner.send_signal(signal.SIGKILL)
            owner.wait()
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in pids if alive(pid)] == []


# ---- configuration and rendering, no processes -----------------------------------------------


@pytest.mark.parametrize(
    ("share", "nodes", "expected"),
    [(0.1, 2, (2, 9)), (0.2, 2, (1, 2)), (0.5, 1, (1, 1)), (0.25, 3, (1, 1)), (0.05, 4, (4, 19))],
)
def test_weights_give_the_canary_its_share(share, nodes, expected):
    w = weights_for_share(share, nodes)
    assert (w.canary, w.production) == expected
    assert w.canary / (w.canary + nodes * w.production) == pytest.approx(share, abs=1e-3)


def test_bad_configuration_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match="local_fleet.production_nodes"):
        LocalFleet.from_config({"production_nodes": 0}, tmp_path)
    with pytest.raises(ConfigError, match="canary_share or weights, not both"):
        LocalFleet.from_config(
            {"canary_share": 0.1, "weights": {"canary": 1, "production": 5}}, tmp_path
        )
    with pytest.raises(ConfigError, match="local_fleet.nodes"):
        LocalFleet.from_config({"nodes": 3}, tmp_path)
    with pytest.raises(DeployError, match="version"):
        LocalFleet.from_config({}, tmp_path).install_version("../escape")


def _render(tmp_path: Path, **proxy: object) -> str:
    servers = [
        UpstreamServer("preprod", 18001, 1),
        UpstreamServer("prod-1", 18002, 2, down=True),
        UpstreamServer("prod-2", 18003, 2),
    ]
    return render_config(tmp_path, servers, ProxySettings(listen_port=18000, **proxy), 7)  # type: ignore[arg-type]


def test_rendered_config_is_accepted_by_nginx(tmp_path):
    require_nginx()
    for sub in ("logs", "temp"):
        (tmp_path / sub).mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(_render(tmp_path))
    result = subprocess.run(
        [
            "/usr/sbin/nginx",
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            "-e",
            str(tmp_path / "logs" / "error.log"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_post_retries_only_when_configured(tmp_path):
    default = _render(tmp_path)
    assert "proxy_next_upstream error timeout http_500 http_502 http_503;" in default
    assert "non_idempotent" not in default
    assert "non_idempotent;" in _render(tmp_path, retry_non_idempotent=True)
    assert "server 127.0.0.1:18002 weight=2 max_fails=0 down;" in default
    with pytest.raises(ValueError, match="every upstream server is down"):
        render_config(
            tmp_path, [UpstreamServer("p", 1, 1, down=True)], ProxySettings(listen_port=2), 1
        )


# Last on purpose: it stops the module's fleet (the fixture's own stop then has nothing to do).
def test_stop_leaves_no_process_behind(fleet):
    pids = fleet.pids()
    assert len(pids) >= 5  # three nodes, nginx master and worker
    fleet.stop()
    assert [pid for pid in pids if alive(pid)] == []
    fleet.stop()  # idempotent
    with pytest.raises(DeployError, match="not running"):
        fleet.deploy_canary(SERVICE, "2.0.0")
