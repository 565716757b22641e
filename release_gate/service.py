"""The release, step by step (DESIGN: lock → deploy canary → judge → promote |
roll back → record, announce):

    admit      guards (open incidents, critical alerts), then in one transaction
               the service's lock and the freezes; refused → exit 2, nothing deployed
    canary     announce "started", deploy the new version to the canary node
    judge      every N seconds read the canary's and the control's counters and
               ask the judge, until it decides or the deadline passes
    finish     promote (0), roll back (1, and a "bad release" incident) or put the
               canary back as inconclusive (3); the lock turns into the author's
               cooldown; announce the outcome

Every step is written to the database when it happens, so a gate killed at any
point leaves a release that ``recovery`` finds and puts right."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from common.clock import Clock
from common.db_clock import database_now
from common.logs import get_logger, log_context
from release_gate import freezes, locks
from release_gate.announce import AnnouncementRecord, Announcer, Severity
from release_gate.config import GateConfig, UnknownService
from release_gate.db import Database
from release_gate.deployers.base import Deployer, DeployError, Node
from release_gate.guards import GuardReport, Guards
from release_gate.heartbeat import OwnerHeartbeat
from release_gate.incidents import IncidentReporter
from release_gate.judge import JudgeConfig, JudgeInput, Verdict
from release_gate.models import Override, Release, ReleaseStatus, ReleaseStep
from release_gate.receipts import (
    EXIT_INCONCLUSIVE,
    EXIT_INFRASTRUCTURE,
    EXIT_PROMOTED,
    EXIT_REFUSED,
    EXIT_ROLLED_BACK,
    Receipt,
)
from release_gate.sampling import Counts, SamplingError, SideTracker, read_metrics, read_promql

log = get_logger(__name__)

OVERRIDE_HINT = "Override with a reason (--override REASON; override_reason over HTTP)."
JudgeFn = Callable[..., Verdict]  # judge(data, config, *, final) -> Verdict
DeployerFactory = Callable[[str], Deployer]


class GateError(RuntimeError):
    """A call the gate cannot even start (unknown service, empty author...): exit 4."""


@dataclass(frozen=True)
class DeployRequest:
    service: str
    version: str
    author: str
    override_reason: str | None = None

    def validate(self) -> None:
        for name in ("service", "version", "author"):
            if not getattr(self, name).strip():
                raise GateError(f"{name} must not be empty")
        if self.override_reason is not None and not self.override_reason.strip():
            raise GateError("an override needs a reason")


def default_judge() -> JudgeFn:
    from release_gate.judge import judge

    return judge


def process_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class ReleaseGate:
    def __init__(
        self,
        db: Database,
        config: GateConfig,
        *,
        clock: Clock,
        deployer_for: DeployerFactory,
        guards: Guards,
        announcer: Announcer,
        incidents: IncidentReporter,
        judge_fn: JudgeFn | None = None,
        wait: Callable[[float], None] = time.sleep,
        sampling_transport: httpx.BaseTransport | None = None,
        stale_after_seconds: float = 30.0,
        owner: str | None = None,
        heartbeat_seconds: float | None = 5.0,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.deployer_for = deployer_for
        self.guards = guards
        self.announcer = announcer
        self.incidents = incidents
        self.judge_fn = judge_fn or default_judge()
        self.wait = wait
        self.sampling_transport = sampling_transport
        self.stale_after_seconds = stale_after_seconds
        self.owner = owner or process_owner()
        # None: no heartbeat thread (tests standing in for a gate that died).
        self.heartbeat = (
            OwnerHeartbeat(db, self.owner, heartbeat_seconds) if heartbeat_seconds else None
        )

    def keep_beating(self) -> None:
        """This process owns a release in flight now: make sure its heartbeat runs."""
        if self.heartbeat is not None:
            self.heartbeat.kick()

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()

    # -- the whole release -------------------------------------------------------

    def deploy(self, request: DeployRequest) -> Receipt:
        release_id, admitted = self.admit(request)
        if not admitted:
            return self.receipt(release_id)
        return self.run(release_id)

    # -- admit: guards, lock, freezes ----------------------------------------------

    def admit(self, request: DeployRequest) -> tuple[int, bool]:
        """Record the attempt; True if it may go ahead (it then holds the lock)."""
        request.validate()
        try:
            self.config.service(request.service)
        except UnknownService as exc:
            raise GateError(str(exc)) from exc
        # A gate killed mid-release of this service is put right first.
        from release_gate.recovery import recover_abandoned

        try:
            recover_abandoned(self, service=request.service)
        except DeployError as exc:
            raise GateError(
                f"an abandoned release of {request.service} could not be put right, "
                f"so nothing new is deployed (run `release-gate recover`): {exc}"
            ) from exc

        report = self.guards.check(request.service)
        now = self.clock.now()
        locks.ensure_lock_row(self.db, request.service, now)
        deadline = self.config.canary_deadline_seconds
        lock_minutes = self.config.lock_minutes_for(request.service)
        with self.db.session() as session:
            lock = locks.lock_for_update(session, request.service)
            lock_check = locks.check(
                lock, request.author, self.config.seniors_for(request.service), now
            )
            frozen = freezes.active_freezes(session, request.service, now)
            blockers, hard = _blockers(lock_check, frozen, report)
            admission = {
                "lock": lock_check.lock.model_dump(mode="json"),
                "exemption": lock_check.exemption,
                "freezes": [f.model_dump(mode="json") for f in frozen],
                "guards": report.model_dump(mode="json"),
            }
            refused = hard or (bool(blockers) and request.override_reason is None)
            release = Release(
                service=request.service,
                version=request.version,
                author=request.author,
                status=ReleaseStatus.refused if refused else ReleaseStatus.started,
                override_reason=request.override_reason,
                admission=admission,
                owner=None if refused else self.owner,
                started_at=now,
                heartbeat_at=now,
                owner_heartbeat_at=None if refused else database_now(session),
                announcements=[],
            )
            session.add(release)
            session.flush()
            if refused:
                only_unreachable = all(b["kind"] == "guard_unreachable" for b in blockers)
                release.decision = "refused"
                release.exit_code = EXIT_INFRASTRUCTURE if only_unreachable else EXIT_REFUSED
                release.finished_at = now
                release.refusal = {
                    "reasons": [b["message"] for b in blockers],
                    "blockers": blockers,
                    "hint": "" if hard else OVERRIDE_HINT,
                }
                session.add(
                    ReleaseStep(
                        release_id=release.id, step="refused", at=now, detail={"blockers": blockers}
                    )
                )
            else:
                locks.hold(
                    lock,
                    release_id=release.id,
                    author=request.author,
                    version=request.version,
                    now=now,
                    expected_until=now + timedelta(seconds=deadline, minutes=lock_minutes),
                )
                if blockers:
                    session.add(
                        Override(
                            release_id=release.id,
                            service=request.service,
                            author=request.author,
                            reason=request.override_reason or "",
                            at=now,
                            overridden=blockers,
                        )
                    )
                session.add(
                    ReleaseStep(
                        release_id=release.id,
                        step="locked",
                        at=now,
                        detail={
                            "exemption": lock_check.exemption,
                            "overridden": [b["kind"] for b in blockers],
                        },
                    )
                )
            release_id = release.id
        if not refused:
            self.keep_beating()
        with log_context(release_id=release_id, service=request.service):
            if refused:
                log.warning(
                    "release.refused",
                    version=request.version,
                    author=request.author,
                    reasons="; ".join(b["message"] for b in blockers),
                )
            else:
                log.info(
                    "release.admitted",
                    version=request.version,
                    author=request.author,
                    exemption=lock_check.exemption,
                    overridden=",".join(b["kind"] for b in blockers) or None,
                )
                if blockers:
                    self._announce(
                        release_id,
                        "override",
                        f"{request.service} {request.version} by {request.author}: OVERRIDE",
                        f"{request.author} overrode: "
                        + "; ".join(b["message"] for b in blockers)
                        + f". Reason: {request.override_reason}",
                        severity="warning",
                    )
        return release_id, not refused

    # -- run: canary, judge, finish ----------------------------------------------------

    def run(self, release_id: int) -> Receipt:
        release = self._load(release_id)
        service, version = release.service, release.version
        with log_context(release_id=release_id, service=service):
            deployer: Deployer | None = None
            canary_touched = False
            try:
                deployer = self.deployer_for(service)
                previous = deployer.current_version(service)
                self._update(
                    release_id, "previous_version", {"version": previous}, previous_version=previous
                )
                self._announce(
                    release_id,
                    "started",
                    self._title(release, previous),
                    f"Release {release_id}: {version} goes to the canary node; "
                    f"production stays on {previous or 'nothing yet'} until the judge decides.",
                )
                canary_touched = True  # from here a rollback is due whatever happens
                node = deployer.deploy_canary(service, version)
                controls = deployer.control_nodes(service)
                canary_at = self.clock.now()
                self._update(
                    release_id,
                    "canary_deployed",
                    {"node": node.name, "control": [c.name for c in controls]},
                    status=ReleaseStatus.canary,
                    canary_started_at=canary_at,
                    canary_node={"name": node.name, "metrics_url": node.metrics_url},
                )
                log.info("release.canary", version=version, node=node.name)
                verdict = self._judge(release_id, service, node, controls, canary_at)
                return self._finish(release_id, deployer, verdict, previous)
            except DeployError as exc:
                return self._fail(release_id, deployer, canary_touched, str(exc))
            except Exception as exc:
                log.exception("release.error", error=str(exc))
                return self._fail(
                    release_id, deployer, canary_touched, f"{type(exc).__name__}: {exc}"
                )
            except BaseException:
                # Interrupted (Ctrl-C, SIGTERM): put the canary back before leaving.
                self._abort(release_id, deployer, canary_touched, "the gate was interrupted")
                raise

    def _judge(
        self,
        release_id: int,
        service: str,
        canary: Node,
        controls: Sequence[Node],
        canary_at: datetime,
    ) -> Verdict:
        judge_config = self.config.judge_config()
        deadline = self.config.canary_deadline_seconds
        interval = self.config.sampling_interval_seconds
        promql = self.config.service(service).promql
        canary_side = SideTracker(["canary"])
        control_side = SideTracker(["control"] if promql else [c.name for c in controls])
        data: dict[str, list[Any]] = {"canary": [], "control": []}
        dumped: dict[str, list[Any]] = {"canary": [], "control": []}  # each sample once
        failures = 0
        last_error: str | None = None
        with httpx.Client(timeout=5.0, transport=self.sampling_transport) as client:
            while True:
                t = (self.clock.now() - canary_at).total_seconds()
                final = t >= deadline
                try:
                    canary_counts, control_counts = self._read(client, promql, canary, controls)
                except SamplingError as exc:
                    failures += 1
                    last_error = str(exc)
                    log.warning("release.sample_failed", t=round(t, 1), error=last_error)
                    self._update(release_id, "sample_failed", {"t": t, "error": last_error})
                    verdict = None
                else:
                    data["canary"].append(canary_side.update(t, {"canary": canary_counts}))
                    data["control"].append(control_side.update(t, control_counts))
                    for side in ("canary", "control"):
                        dumped[side].append(data[side][-1].model_dump(mode="json"))
                    verdict = self.judge_fn(
                        JudgeInput(canary=data["canary"], control=data["control"]),
                        judge_config,
                        final=final,
                    )
                    self._update(
                        release_id,
                        None,
                        None,
                        # Fresh lists, so the JSON column sees the change.
                        samples={side: list(rows) for side, rows in dumped.items()},
                        verdict=verdict.model_dump(mode="json"),
                    )
                    if verdict.decision is not None:
                        return verdict
                if final:
                    if verdict is not None:
                        return verdict.model_copy(update={"decision": "inconclusive"})
                    return self._no_data_verdict(judge_config, t, failures, last_error)
                self.wait(interval)

    def _no_data_verdict(
        self, config: JudgeConfig, t: float, failures: int, last_error: str | None
    ) -> Verdict:
        """The deadline passed without a single reading: inconclusive, never a promote."""
        empty = self.judge_fn(JudgeInput(canary=[], control=[]), config, final=True)
        reason = f"no counters could be read in {t:.0f} s ({failures} failed reads: {last_error})"
        return empty.model_copy(update={"decision": "inconclusive", "reason": reason})

    def _read(
        self,
        client: httpx.Client,
        promql: Any,
        canary: Node,
        controls: Sequence[Node],
    ) -> tuple[Counts, dict[str, Counts]]:
        if promql is not None:
            return (
                read_promql(promql.url, promql.canary, client),
                {"control": read_promql(promql.url, promql.control, client)},
            )
        return (
            read_metrics(canary.metrics_url, client),
            {c.name: read_metrics(c.metrics_url, client) for c in controls},
        )

    def _finish(
        self, release_id: int, deployer: Deployer, verdict: Verdict, previous: str | None
    ) -> Receipt:
        release = self._load(release_id)
        service, version = release.service, release.version
        decided = self.clock.now()
        self._update(
            release_id,
            "decided",
            {"decision": verdict.decision, "reason": verdict.reason, "t": verdict.decided_at},
            decision=verdict.decision,
            decided_at=decided,
            verdict=verdict.model_dump(mode="json"),
        )
        log.info("release.decided", decision=verdict.decision, reason=verdict.reason)
        self._announce(
            release_id,
            "canary",
            self._title(release, previous),
            f"Canary verdict: {verdict.decision}. {verdict.reason}",
            severity="info" if verdict.decision == "promote" else "warning",
        )
        if verdict.decision == "promote":
            self._update(release_id, "promoting", {}, status=ReleaseStatus.promoting)
            deployer.promote(service, version)
            return self._close(
                release_id,
                ReleaseStatus.promoted,
                EXIT_PROMOTED,
                "promoted",
                f"{service} {version} is in production.",
                "info",
            )
        deployer.rollback_canary(service, previous)
        rolled_back = self.clock.now()
        if verdict.decision == "rollback":
            self._update(release_id, "rolled_back", {"to": previous}, rolled_back_at=rolled_back)
            incident = self.incidents.bad_release(
                release_id=release_id,
                service=service,
                version=version,
                author=release.author,
                reason=verdict.reason,
                started_at=release.canary_started_at,
                rolled_back_at=rolled_back,
            )
            self._update(release_id, "incident", incident, incident=incident)
            return self._close(
                release_id,
                ReleaseStatus.rolled_back,
                EXIT_ROLLED_BACK,
                "rolled_back",
                f"The canary was put back on {previous or 'the previous version'}: "
                f"{verdict.reason}",
                "warning",
            )
        self._update(release_id, "canary_reverted", {"to": previous}, rolled_back_at=rolled_back)
        return self._close(
            release_id,
            ReleaseStatus.inconclusive,
            EXIT_INCONCLUSIVE,
            "inconclusive",
            f"Not enough evidence; the canary was put back on "
            f"{previous or 'the previous version'}: {verdict.reason}",
            "warning",
        )

    def _close(
        self,
        release_id: int,
        status: ReleaseStatus,
        exit_code: int,
        state: str,
        text: str,
        severity: Severity,
        error: str | None = None,
        cooldown: bool = True,
    ) -> Receipt:
        """The release is over: record it, start the author's cooldown, announce."""
        now = self.clock.now()
        release = self._load(release_id)
        with self.db.session() as session:
            row = session.get(Release, release_id)
            assert row is not None
            row.status = status
            row.exit_code = exit_code
            row.finished_at = now
            row.heartbeat_at = now
            if error is not None:
                row.error = error
            session.add(
                ReleaseStep(
                    release_id=release_id,
                    step=status.value,
                    at=now,
                    detail={"exit_code": exit_code},
                )
            )
            if cooldown:
                locks.cool_down(
                    session,
                    row.service,
                    release_id,
                    now,
                    self.config.lock_minutes_for(row.service),
                )
            else:
                locks.free(session, row.service, release_id, now)
        log.info("release.finished", status=status.value, exit_code=exit_code)
        self._announce(
            release_id, state, self._title(release, release.previous_version), text, severity
        )
        return self.receipt(release_id)

    def _fail(
        self, release_id: int, deployer: Deployer | None, canary_touched: bool, error: str
    ) -> Receipt:
        release = self._load(release_id)
        log.error("release.failed", error=error)
        if canary_touched and deployer is not None:
            try:
                deployer.rollback_canary(release.service, release.previous_version)
                self._update(
                    release_id,
                    "canary_reverted",
                    {"to": release.previous_version},
                    rolled_back_at=self.clock.now(),
                )
            except Exception as exc:  # keep the first error; say the rollback failed too
                error += f"; putting the canary back failed too: {exc}"
                log.error("release.rollback_failed", error=str(exc))
        return self._close(
            release_id,
            ReleaseStatus.failed,
            EXIT_INFRASTRUCTURE,
            "failed",
            f"Infrastructure error, production left on "
            f"{release.previous_version or 'the previous version'}: {error}",
            "warning",
            error=error,
            cooldown=canary_touched,
        )

    def _abort(
        self, release_id: int, deployer: Deployer | None, canary_touched: bool, why: str
    ) -> None:
        release = self._load(release_id)
        if canary_touched and deployer is not None:
            try:
                deployer.rollback_canary(release.service, release.previous_version)
            except Exception as exc:
                why += f"; putting the canary back failed: {exc}"
        self._close(
            release_id,
            ReleaseStatus.aborted,
            EXIT_INFRASTRUCTURE,
            "aborted",
            f"Aborted: {why}.",
            "warning",
            error=why,
            cooldown=canary_touched,
        )

    # -- records ------------------------------------------------------------------------

    def receipt(self, release_id: int) -> Receipt:
        return Receipt.of(self._load(release_id))

    def _load(self, release_id: int) -> Release:
        with self.db.sessions() as session:
            release = session.get(Release, release_id)
            if release is None:
                raise GateError(f"no release {release_id}")
            return release

    def _update(
        self, release_id: int, step: str | None, detail: dict[str, Any] | None, **fields: Any
    ) -> None:
        """Write what just happened (and a heartbeat) before doing anything else."""
        now = self.clock.now()
        with self.db.session() as session:
            release = session.get(Release, release_id)
            assert release is not None
            for name, value in fields.items():
                setattr(release, name, value)
            release.heartbeat_at = now
            if step is not None:
                session.add(
                    ReleaseStep(release_id=release_id, step=step, at=now, detail=detail or {})
                )

    def _title(self, release: Release, previous: str | None) -> str:
        arrow = f"{previous} → " if previous else ""
        return f"{release.service} {arrow}{release.version} by {release.author}"

    def _announce(
        self, release_id: int, state: str, title: str, text: str, severity: Severity = "info"
    ) -> AnnouncementRecord:
        release = self._load(release_id)
        record = self.announcer.announce(
            key=f"release:{release_id}",
            state=state,
            title=title,
            text=text,
            severity=severity,
            labels={"service": release.service, "release_id": str(release_id)},
        )
        with self.db.session() as session:
            row = session.get(Release, release_id)
            assert row is not None
            # A new list, so SQLAlchemy sees the JSON column change.
            row.announcements = [*(row.announcements or []), record.model_dump(mode="json")]
        return record


def _blockers(
    lock_check: locks.LockCheck, frozen: list[freezes.FreezeInfo], report: GuardReport
) -> tuple[list[dict[str, Any]], bool]:
    """What stands in the way, and whether any of it cannot be overridden."""
    blockers: list[dict[str, Any]] = []
    hard = False
    if lock_check.blocked:
        blockers.append(
            {
                "kind": "lock",
                "message": lock_check.message(),
                "lock": lock_check.lock.model_dump(mode="json"),
            }
        )
        hard = not lock_check.overridable
    for freeze in frozen:
        blockers.append({"kind": "freeze", "message": freeze.describe(), "freeze_id": freeze.id})
    for incident in report.incidents:
        message = report.incident_reason(incident)
        blockers.append({"kind": "incident", "message": message, "incident_id": incident.get("id")})
    for alert in report.critical_alerts:
        message = report.alert_reason(alert)
        blockers.append({"kind": "alert", "message": message, "alert_id": alert.get("id")})
    for problem in report.unreachable:
        blockers.append(
            {"kind": "guard_unreachable", "message": f"cannot check for incidents: {problem}"}
        )
    return blockers, hard
