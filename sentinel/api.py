"""The sentinel's HTTP API: signals with their state and history, alerts,
the push endpoint, health and the sentinel's own metrics. Every replica
answers from the database, so a standby shows what the leader recorded."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from common.api_docs import serve_docs_offline
from common.bounds import DbId, Timestamp
from common.http_errors import answer_invalid_requests, declare_errors, errors
from common.identity import IdentityStore, Role, attach, require
from common.logs import get_logger
from common.nul_guard import RefuseNulMiddleware
from sentinel import maintenance, tunings
from sentinel.alerting.receiver import AmPayload, receive
from sentinel.alerting.views import alerting_router
from sentinel.cadence import run_on_cadence
from sentinel.health import backlog_of, channel_states
from sentinel.health import check as health_check
from sentinel.history import parse_series_key
from sentinel.models import ACTIVE_STATES, Alert, AlertState, Sample, Tuning, TuningStatus
from sentinel.runbooks import RUNBOOK_PATH, render_runbook_page
from sentinel.service import Sentinel

log = get_logger("sentinel.http")


class AlertOut(BaseModel):
    id: int
    fingerprint: str
    signal: str
    labels: dict[str, str]
    severity: str
    state: str
    source: str
    summary: str
    value: float | None
    started_at: datetime
    firing_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime
    runbook: str | None

    @classmethod
    def of(cls, a: Alert) -> AlertOut:
        return cls.model_validate(a, from_attributes=True)


class TransitionOut(BaseModel):
    from_state: str | None
    to_state: str
    at: datetime
    value: float | None
    evidence: dict[str, Any]


class AlertDetail(AlertOut):
    evidence: dict[str, Any]
    transitions: list[TransitionOut]


class SeriesOut(BaseModel):
    series: str
    labels: dict[str, str]
    last_t: datetime | None
    last_value: float | None
    alert_state: str | None
    # "learned" or "prior", and since when; known on the replica that evaluates.
    judged_by: str | None = None
    judged_since: datetime | None = None


class SignalOut(BaseModel):
    name: str
    description: str
    kind: str
    severity: str
    labels: dict[str, str]
    unit: str
    interval_seconds: float
    source: str
    runbook: str
    series: list[SeriesOut]


class GraceOut(BaseModel):
    """The start-up grace: a source not up yet gets ``startup_grace_seconds`` from the
    sentinel's start to answer, then its signals ``warmup_seconds`` before judging."""

    startup_grace_seconds: float
    warmup_seconds: float
    sources: list[str]  # what the signal reads; a source alert on one mutes its no-data
    in_grace: bool
    reason: str | None
    until: datetime | None


class SignalDetail(SignalOut):
    detector: dict[str, Any] | None
    tuning: dict[str, Any] | None
    grace: GraceOut | None


class TuningOut(BaseModel):
    id: int
    signal: str
    series: str  # "" covers every series of the signal
    status: TuningStatus
    spec: dict[str, Any]
    provenance: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


class PushIn(BaseModel):
    value: float
    labels: dict[str, str] = {}
    volume: float | None = Field(default=None, ge=0)
    t: Timestamp | None = Field(default=None, description="defaults to the time of arrival")


def create_app(
    sentinel: Sentinel, run_loop: bool = True, identity: IdentityStore | None = None
) -> FastAPI:
    """``identity``: the platform's store (default: the one ``VIGIL_*`` names)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        loops = _start_loop(sentinel) if run_loop else None
        app.state.loops_started_at = sentinel.clock.now() if run_loop else None
        try:
            yield
        finally:
            if loops is not None:
                loops.shutdown()
            sentinel.stop_backfill()
            sentinel.step_down()

    app = FastAPI(title="Sentinel", lifespan=lifespan, docs_url=None, redoc_url=None)
    serve_docs_offline(app)
    app.add_middleware(RefuseNulMiddleware)
    app.state.sentinel = sentinel
    app.state.loops_started_at = None

    attach(app, identity, "sentinel")
    viewer = [Depends(require(Role.viewer))]
    # Pushed samples and Alertmanager's alerts page people: a responder's doing.
    responder = [Depends(require(Role.responder))]

    @app.get("/api/health", responses={503: {"description": "degraded, with the reasons"}})
    def health() -> JSONResponse:
        """200 ``healthy``, or 503 ``degraded`` with a reason per failing check:
        the database, the evaluation loop, the dispatcher and its channels."""
        evaluator = sentinel.evaluator
        found = health_check(sentinel, app.state.loops_started_at)
        body = {
            "status": found.status,
            "reasons": found.reasons,
            "replica": sentinel.replica,
            "leader": sentinel.is_leader,
            "signals": len(sentinel.catalogue.signals),
            "last_cycle_cpu_seconds": evaluator.cycle_seconds if evaluator else None,
            "channels": sentinel.channel_kinds,
            "checks": found.checks,
        }
        if found.reasons:
            log.warning("sentinel.degraded", reasons="; ".join(found.reasons))
        return JSONResponse(jsonable_encoder(body), status_code=503 if found.reasons else 200)

    @app.get("/api/signals", response_model=list[SignalOut], dependencies=viewer)
    def signals() -> list[SignalOut]:
        series = _series_overview(sentinel)
        return [
            _signal_out(sentinel, spec, series.get(spec.name, []))
            for spec in sentinel.catalogue.signals
        ]

    @app.get(
        "/api/signals/{name}",
        response_model=SignalDetail,
        dependencies=viewer,
        responses=errors(404),
    )
    def signal(name: str) -> SignalDetail:
        spec = _spec_or_404(sentinel, name)
        base = _signal_out(sentinel, spec, _series_overview(sentinel, name).get(name, []))
        with sentinel.db.session() as s:
            tuning = s.scalar(
                select(Tuning)
                .where(Tuning.signal == name, Tuning.status == TuningStatus.applied)
                .order_by(Tuning.id.desc())
                .limit(1)
            )
            tuning_out = (
                {"id": tuning.id, "spec": tuning.spec, "provenance": tuning.provenance}
                if tuning
                else None
            )
        detector = spec.effective_detector.model_dump(mode="json", exclude_none=True)
        health = sentinel.health
        grace = GraceOut(**health.describe_grace(name, sentinel.clock.now())) if health else None
        return SignalDetail(**base.model_dump(), detector=detector, tuning=tuning_out, grace=grace)

    @app.get(
        "/api/signals/{name}/tunings",
        response_model=list[TuningOut],
        dependencies=viewer,
        responses=errors(404),
    )
    def signal_tunings(name: str) -> list[TuningOut]:
        """The signal's tunings: proposals waiting for a person first (at most one a
        series), then the applied, superseded and rejected ones, newest first."""
        _spec_or_404(sentinel, name)
        rows = tunings.of_signal(sentinel.db, name)
        return [TuningOut.model_validate(r, from_attributes=True) for r in rows]

    @app.get("/api/signals/{name}/history", dependencies=viewer, responses=errors(404))
    def history(
        name: str,
        series: str | None = None,
        since: Timestamp | None = None,
        until: Timestamp | None = None,
    ) -> list[dict[str, Any]]:
        _spec_or_404(sentinel, name)
        rows = sentinel.history.load(name, series, since, until)
        return [
            {"series": r.series, "t": r.t, "value": r.value, "volume": r.volume}
            for r in rows[-5000:]
        ]

    @app.get(RUNBOOK_PATH, response_class=HTMLResponse, responses=errors(404))
    def runbook(signal: str) -> HTMLResponse:
        """The page an SMS links to: public like the rest of the read API, and
        small enough for a phone on a poor connection."""
        spec = _spec_or_404(sentinel, signal)
        with sentinel.db.session() as s:
            active = [
                (series, str(state), value, started)
                for series, state, value, started in s.execute(
                    select(Alert.series, Alert.state, Alert.value, Alert.started_at)
                    .where(Alert.signal == signal, Alert.state.in_(ACTIVE_STATES))
                    .order_by(Alert.started_at)
                    .limit(50)
                )
            ]
        return HTMLResponse(render_runbook_page(spec, active, f"/api/signals/{signal}"))

    @app.get("/api/alerts", response_model=list[AlertOut], dependencies=viewer)
    def alerts(
        state: Annotated[list[AlertState] | None, Query()] = None,
        signal: str | None = None,
        active: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    ) -> list[AlertOut]:
        query = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if active:
            query = query.where(Alert.state.in_(ACTIVE_STATES))
        if state:
            query = query.where(Alert.state.in_(state))
        if signal:
            query = query.where(Alert.signal == signal)
        with sentinel.db.session() as s:
            return [AlertOut.of(a) for a in s.scalars(query)]

    @app.get(
        "/api/alerts/{alert_id}",
        response_model=AlertDetail,
        dependencies=viewer,
        responses=errors(404),
    )
    def alert(alert_id: DbId) -> AlertDetail:
        with sentinel.db.session() as s:
            a = s.get(Alert, alert_id)
            if a is None:
                raise HTTPException(404, f"alert {alert_id} not found")
            return AlertDetail(
                **AlertOut.of(a).model_dump(),
                evidence=a.evidence,
                transitions=[
                    TransitionOut.model_validate(t, from_attributes=True) for t in a.transitions
                ],
            )

    @app.post(
        "/api/push/{name}",
        status_code=202,
        dependencies=responder,
        responses=errors(404, 409, 503),
    )
    def push(name: str, body: PushIn) -> dict[str, str]:
        spec = _spec_or_404(sentinel, name)
        if spec.source.type != "push":
            raise HTTPException(409, f"signal {name} reads from {spec.source.type}, not push")
        try:
            sentinel.push.push(
                name, body.value, body.labels, body.t or sentinel.clock.now(), body.volume
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        except SQLAlchemyError as exc:
            # 202 means stored: without the database the pusher must retry.
            log.warning("push.not_stored", signal=name, error=type(exc).__name__)
            raise HTTPException(
                503, "the value was not stored (database unavailable); retry"
            ) from exc
        return {"status": "accepted"}

    @app.post("/api/alertmanager/webhook", dependencies=responder)
    def alertmanager_webhook(payload: AmPayload) -> dict[str, int]:
        """Alertmanager's webhook_config (payload version 4) points here."""
        flap = timedelta(minutes=sentinel.alerting.flap_minutes)
        return receive(sentinel.db, payload, sentinel.clock.now(), flap_window=flap)

    app.include_router(alerting_router(sentinel))
    answer_invalid_requests(app)
    declare_errors(app)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(_render_metrics(sentinel), media_type="text/plain; version=0.0.4")

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("http.unhandled_error", exc_info=exc, error=type(exc).__name__)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)

    return app


def _spec_or_404(sentinel: Sentinel, name: str):  # type: ignore[no-untyped-def]
    try:
        return sentinel.catalogue.get(name)
    except KeyError as exc:
        raise HTTPException(404, str(exc.args[0])) from None


def _signal_out(sentinel: Sentinel, spec, series: list[SeriesOut]) -> SignalOut:  # type: ignore[no-untyped-def]
    return SignalOut(
        name=spec.name,
        description=spec.description,
        kind=spec.kind,
        severity=spec.severity,
        labels=spec.labels,
        unit=spec.unit,
        interval_seconds=spec.interval_seconds,
        source=spec.source.type,
        runbook=spec.runbook,
        series=series,
    )


def _series_overview(sentinel: Sentinel, signal: str | None = None) -> dict[str, list[SeriesOut]]:
    """The latest sample and active alert state of every series."""
    latest = (
        select(Sample.signal, Sample.series, func.max(Sample.t).label("t"))
        .where(Sample.resolution == "raw")
        .group_by(Sample.signal, Sample.series)
    )
    if signal is not None:
        latest = latest.where(Sample.signal == signal)
    latest = latest.subquery()
    query = (
        select(Sample.signal, Sample.series, Sample.t, Sample.value)
        .join(
            latest,
            (Sample.signal == latest.c.signal)
            & (Sample.series == latest.c.series)
            & (Sample.t == latest.c.t),
        )
        .where(Sample.resolution == "raw")
    )
    with sentinel.db.session() as s:
        rows = s.execute(query).all()
        states = {
            (sig, series): state
            for sig, series, state in s.execute(
                select(Alert.signal, Alert.series, Alert.state).where(
                    Alert.state.in_(ACTIVE_STATES)
                )
            )
        }
    judges = sentinel.evaluator.judges() if sentinel.evaluator is not None else {}
    out: dict[str, list[SeriesOut]] = {}
    for sig, series, t, value in sorted(rows):
        state = states.get((sig, series))
        by, since = judges.get((sig, series), (None, None))
        out.setdefault(sig, []).append(
            SeriesOut(
                series=series,
                labels=parse_series_key(series),
                last_t=t,
                last_value=value,
                alert_state=str(state) if state else None,
                judged_by=by,
                judged_since=since,
            )
        )
    return out


def _render_metrics(sentinel: Sentinel) -> bytes:
    registry = CollectorRegistry()

    class _Collector:
        def collect(self):  # type: ignore[no-untyped-def]
            leader = GaugeMetricFamily("sentinel_leader", "1 on the replica that evaluates.")
            leader.add_metric([], 1 if sentinel.is_leader else 0)
            yield leader
            evaluator = sentinel.evaluator
            cycle = GaugeMetricFamily(
                "sentinel_cycle_cpu_seconds", "CPU time of the last evaluation cycle."
            )
            cycle.add_metric([], evaluator.cycle_seconds if evaluator else 0)
            yield cycle
            active = GaugeMetricFamily(
                "sentinel_alerts",
                "Active alerts by state and severity.",
                labels=["state", "severity"],
            )
            with sentinel.db.session() as s:
                counts = s.execute(
                    select(Alert.state, Alert.severity, func.count())
                    .where(Alert.state.in_(ACTIVE_STATES))
                    .group_by(Alert.state, Alert.severity)
                ).all()
            for state, severity, n in counts:
                active.add_metric([str(state), severity], n)
            yield active
            yield from _delivery_metrics(sentinel)

    registry.register(_Collector())  # type: ignore[arg-type]
    return generate_latest(registry)


def _delivery_metrics(sentinel: Sentinel):  # type: ignore[no-untyped-def]
    now = sentinel.clock.now()
    failing = GaugeMetricFamily(
        "sentinel_channel_failing",
        "1 while a delivery channel keeps failing at its provider.",
        labels=["channel"],
    )
    failing_for = GaugeMetricFamily(
        "sentinel_channel_failing_seconds",
        "How long a delivery channel has been failing (0 when it is not).",
        labels=["channel"],
    )
    for c in channel_states(sentinel, now):
        failing.add_metric([c.channel], 1 if c.failing else 0)
        seconds = (now - c.failing_since).total_seconds() if c.failing_since else 0.0
        failing_for.add_metric([c.channel], seconds)
    yield failing
    yield failing_for
    backlog = backlog_of(sentinel, now)
    due = GaugeMetricFamily("sentinel_notifications_due", "Pages due now and not sent.")
    due.add_metric([], backlog.due)
    yield due
    oldest = GaugeMetricFamily(
        "sentinel_notifications_oldest_due_seconds", "How long the oldest due page has waited."
    )
    oldest.add_metric([], backlog.oldest_due_seconds or 0.0)
    yield oldest
    waiting = GaugeMetricFamily(
        "sentinel_notifications_waiting", "Pages not sent yet (due, or backing off)."
    )
    waiting.add_metric([], backlog.waiting)
    yield waiting
    if sentinel.last_cycle_ok_at is not None:
        cycle = GaugeMetricFamily(
            "sentinel_last_successful_cycle_timestamp_seconds",
            "When this replica's evaluation loop last completed a cycle.",
        )
        cycle.add_metric([], sentinel.last_cycle_ok_at.timestamp())
        yield cycle


class _Loops:
    """The evaluation loop and the dispatcher, each on a thread of its own, and
    the scheduler of the daily and weekly jobs."""

    def __init__(self, sentinel: Sentinel, scheduler: Any) -> None:
        self.sentinel, self.scheduler = sentinel, scheduler
        self.stop_evaluating = threading.Event()
        self.threads = [
            threading.Thread(
                target=run_on_cadence,
                args=(sentinel.run_cycle, sentinel.clock, self.stop_evaluating),
                name="sentinel-evaluate",
                daemon=True,
            ),
            threading.Thread(
                target=sentinel.dispatcher.serve,
                args=(sentinel.settings.tick_seconds,),
                name="sentinel-deliver",
                daemon=True,
            ),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        self.scheduler.start()

    def shutdown(self) -> None:
        self.stop_evaluating.set()
        self.sentinel.dispatcher.stop()
        for thread in self.threads:
            thread.join(30)
        self.scheduler.shutdown(wait=True)


def _start_loop(sentinel: Sentinel) -> _Loops:
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler()
    scheduler.add_job(
        _leader_only(sentinel, maintenance.apply_retention),
        "cron",
        hour=4,
        minute=10,
        id="retention",
        coalesce=True,
    )
    scheduler.add_job(
        _leader_only(sentinel, maintenance.propose_retunes),
        "cron",
        day_of_week="mon",
        hour=5,
        minute=0,
        id="retune",
        coalesce=True,
    )
    loops = _Loops(sentinel, scheduler)
    loops.start()
    return loops


def _leader_only(sentinel: Sentinel, job):  # type: ignore[no-untyped-def]
    def run() -> None:
        if not sentinel.is_leader:
            return
        try:
            job(sentinel)
        except Exception:
            log.exception("sentinel.job_failed", job=job.__name__)

    return run
