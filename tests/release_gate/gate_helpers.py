"""Builders for the release gate's tests: its database, a fake deployer whose
nodes serve Prometheus text driven by the fake clock, fake sentinel and
postmortems peers behind httpx.MockTransport, and a gate wired to them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from common.clock import FakeClock
from release_gate.announce import Announcer
from release_gate.config import GateConfig, parse_config
from release_gate.db import Database
from release_gate.deployers.base import DeployError, Node
from release_gate.guards import Guards
from release_gate.incidents import IncidentReporter
from release_gate.judge import JudgeConfig, JudgeInput, Verdict, judge
from release_gate.service import ReleaseGate

SENTINEL = "http://sentinel.test"
POSTMORTEMS = "http://postmortems.test"


@dataclass
class NodeTraffic:
    """A node's counters as a function of the fake clock: ``rps`` requests a
    second per route, ``error_share`` of them answered with ``error_status``."""

    rps: float = 20.0
    error_share: float = 0.0
    error_status: str = "500"
    routes: tuple[str, ...] = ("/api/jobs",)
    latency_seconds: float = 0.02
    started: float = 0.0  # clock seconds when the node (re)started

    def exposition(self, elapsed: float) -> str:
        counters = ["# TYPE translator_http_requests counter"]
        buckets = ["# TYPE translator_http_request_duration_seconds histogram"]
        seconds = max(0.0, elapsed - self.started)
        for route in self.routes:
            total = int(self.rps * seconds)
            errors = int(total * self.error_share)
            counters.append(
                f'translator_http_requests_total{{method="GET",route="{route}",status="200"}} '
                f"{total - errors}"
            )
            if errors:
                counters.append(
                    f'translator_http_requests_total{{method="GET",route="{route}",'
                    f'status="{self.error_status}"}} {errors}'
                )
            for le in ("0.01", "0.05", "0.1", "0.5", "+Inf"):
                count = total if float(le) >= self.latency_seconds else 0
                buckets.append(
                    "translator_http_request_duration_seconds_bucket"
                    f'{{method="GET",route="{route}",le="{le}"}} {count}'
                )
        # The gate's own scrapes: never part of the comparison.
        counters.append(
            'translator_http_requests_total{method="GET",route="/metrics",status="200"} 999'
        )
        return "\n".join(counters + buckets) + "\n"


class FakeFleet:
    """Nodes ``canary``, ``prod-1``, ``prod-2`` serving /metrics on the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.origin = clock.now()
        self.nodes: dict[str, NodeTraffic] = {
            "canary": NodeTraffic(rps=20.0),
            "prod-1": NodeTraffic(rps=100.0, error_share=0.001),
            "prod-2": NodeTraffic(rps=100.0, error_share=0.001),
        }
        self.unreachable: set[str] = set()

    def elapsed(self) -> float:
        return (self.clock.now() - self.origin).total_seconds()

    def node(self, name: str, role: str) -> Node:
        return Node(name, role, f"http://{name}.test/metrics")  # type: ignore[arg-type]

    def handle(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.removesuffix(".test")
        if name in self.unreachable or name not in self.nodes:
            raise httpx.ConnectError(f"connection refused: {name}", request=request)
        return httpx.Response(200, text=self.nodes[name].exposition(self.elapsed()))

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


@dataclass
class FakeDeployer:
    """Records every call; ``canary_version`` is what the canary node runs."""

    fleet: FakeFleet
    production_version: str | None = "1.0.0"
    canary_version: str | None = "1.0.0"
    calls: list[tuple[str, ...]] = field(default_factory=list)
    fail_on: set[str] = field(default_factory=set)
    # Traffic the canary gets with the new version (None: like production's).
    new_version_traffic: NodeTraffic | None = None
    on_deploy: Callable[[], None] | None = None

    def _maybe_fail(self, step: str) -> None:
        if step in self.fail_on:
            raise DeployError(f"{step} hook exited 1\nstderr: disk full on canary")

    def current_version(self, service: str) -> str | None:
        self.calls.append(("current_version", service))
        return self.production_version

    def deploy_canary(self, service: str, version: str) -> Node:
        self.calls.append(("deploy_canary", service, version))
        if self.on_deploy is not None:
            self.on_deploy()
        self._maybe_fail("deploy_canary")
        self.canary_version = version
        traffic = self.new_version_traffic or NodeTraffic(rps=20.0)
        traffic.started = self.fleet.elapsed()  # a fresh process counts from zero
        self.fleet.nodes["canary"] = traffic
        return self.fleet.node("canary", "canary")

    def control_nodes(self, service: str) -> list[Node]:
        return [self.fleet.node("prod-1", "production"), self.fleet.node("prod-2", "production")]

    def promote(self, service: str, version: str) -> None:
        self.calls.append(("promote", service, version))
        self._maybe_fail("promote")
        self.production_version = version

    def rollback_canary(self, service: str, previous_version: str | None) -> None:
        self.calls.append(("rollback_canary", service, previous_version or ""))
        self._maybe_fail("rollback_canary")
        self.canary_version = previous_version

    def steps(self) -> list[str]:
        return [c[0] for c in self.calls if c[0] != "current_version"]


class FakePeers:
    """The sentinel and postmortems as the gate sees them over HTTP."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.announcements: list[dict[str, Any]] = []
        self.reported: list[dict[str, Any]] = []
        self.down: set[str] = set()  # "sentinel.test", "postmortems.test"
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path, method = request.url.path, request.method
        if (method, path) == ("GET", "/api/alerts"):
            return httpx.Response(200, json=self.alerts)
        if (method, path) == ("POST", "/api/announcements"):
            self.announcements.append(json.loads(request.content))
            return httpx.Response(202, json={"notifications": 1})
        if (method, path) == ("GET", "/api/incidents"):
            service = request.url.params.get("service")
            return httpx.Response(
                200,
                json=[
                    i
                    for i in self.incidents
                    if i["service"] == service and i["status"] in ("open", "mitigated")
                ],
            )
        if (method, path) == ("POST", "/api/incidents"):
            body = json.loads(request.content)
            self.reported.append(body)
            return httpx.Response(201, json={"id": 700 + len(self.reported), **body})
        return httpx.Response(404, json={"detail": "not found"})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


CONFIG = """
seniors: [carol]
lock_minutes: 5
sampling_interval_seconds: 5
canary_deadline_seconds: 300
judge: {min_duration_s: 30, min_canary_requests: 300, min_control_requests: 300}
services:
  translator:
    deployer:
      type: hooks
      deploy_canary: "true"
      promote: "true"
      rollback: "true"
      canary: {name: canary, metrics_url: "http://canary.test/metrics"}
      production: [{name: prod-1, metrics_url: "http://prod-1.test/metrics"}]
  billing:
    deployer:
      type: hooks
      deploy_canary: "true"
      promote: "true"
      rollback: "true"
      canary: {name: canary, metrics_url: "http://canary.test/metrics"}
      production: [{name: prod-1, metrics_url: "http://prod-1.test/metrics"}]
"""


def gate_config(text: str = CONFIG) -> GateConfig:
    return parse_config(text, "gate.yaml")


def forced_judge(decision: str, after_samples: int = 3) -> Callable[..., Verdict]:
    """The real judge's evidence with a decision forced after a few samples."""

    def fake(data: JudgeInput, config: JudgeConfig, *, final: bool = False) -> Verdict:
        verdict = judge(data, config, final=final)
        if len(data.canary) >= after_samples:
            return verdict.model_copy(update={"decision": decision, "reason": f"forced {decision}"})
        return verdict.model_copy(update={"decision": None})

    return fake


@dataclass
class GateRig:
    gate: ReleaseGate
    deployer: FakeDeployer
    fleet: FakeFleet
    peers: FakePeers
    clock: FakeClock


def make_rig(
    db: Database,
    clock: FakeClock,
    *,
    config: GateConfig | None = None,
    judge_fn: Callable[..., Verdict] | None = None,
    peers_configured: bool = True,
    owner: str | None = None,
    heartbeat_seconds: float | None = None,
) -> GateRig:
    fleet = FakeFleet(clock)
    deployer = FakeDeployer(fleet)
    peers = FakePeers()
    transport = peers.transport()
    sentinel = SENTINEL if peers_configured else None
    postmortems = POSTMORTEMS if peers_configured else None
    gate = ReleaseGate(
        db,
        config or gate_config(),
        clock=clock,
        deployer_for=lambda _service: deployer,
        guards=Guards(sentinel_url=sentinel, postmortems_url=postmortems, transport=transport),
        announcer=Announcer(clock, sentinel_url=sentinel, transport=transport),
        incidents=IncidentReporter(postmortems_url=postmortems, transport=transport),
        judge_fn=judge_fn,
        wait=lambda seconds: clock.advance(seconds=seconds),
        sampling_transport=fleet.transport(),
        owner=owner,
        heartbeat_seconds=heartbeat_seconds,
    )
    return GateRig(gate, deployer, fleet, peers, clock)
