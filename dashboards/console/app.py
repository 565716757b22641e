"""The console's web app: server-rendered pages over what the sentinel recorded. Every
asset (stylesheet, chart library, script) is served from this package: the pages work
with no network beyond the platform."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from common.identity import IdentityStore, Principal, Role, attach, identify
from dashboards.console.action_items import register_action_items
from dashboards.console.actions import SentinelActions
from dashboards.console.auth import COOKIE, NotSignedIn, needs, safe_target
from dashboards.console.charts import sparkline, uplot_columns
from dashboards.console.incidents import register_incidents
from dashboards.console.oncall import register_oncall
from dashboards.console.readers import SPARK_HOURS, SentinelReader
from dashboards.console.releases import ReleaseReader, canary_chart
from dashboards.console.tuning import chart_overlay, register_tuning
from postmortems.schemas import IncidentOut
from postmortems.service import Postmortems
from release_gate.models import IN_FLIGHT
from sentinel.detectors import DetectorSpec
from sentinel.history import parse_series_key

IN_FLIGHT_STATES = [str(s) for s in IN_FLIGHT]
HERE = Path(__file__).parent
RANGES = (1, 6, 24, 72)  # hours the signal chart offers
CHART_SLOTS = 720  # the chart shows each series as the means of this many slots


def _at(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _local(value: datetime, zone: str) -> str:
    """A shift's edge in its schedule's own zone, as the rota is written."""
    return value.astimezone(ZoneInfo(zone)).strftime("%a %d %b %H:%M")


def _num(value: float | None, unit: str = "") -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if unit == "ratio":
        return f"{value:.2%}"
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def _series(key: str) -> str:
    """A series key (`method="wallet",route="/api"`) as people write it: method=wallet, ..."""
    return ", ".join(f"{k}={v}" for k, v in parse_series_key(key).items())


def _limit(spec: Any) -> str:
    """A fixed detector's threshold, as the host page shows it beside the value."""
    detector = spec.effective_detector
    threshold = detector.params.get("threshold") if detector.kind == "static" else None
    return "" if threshold is None else "limit " + _num(threshold, spec.unit)


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["at"] = _at
    templates.env.filters["num"] = _num
    templates.env.filters["local"] = _local
    templates.env.filters["limit"] = _limit
    templates.env.filters["series"] = _series
    templates.env.globals["sparkline"] = sparkline
    templates.env.globals["Role"] = Role
    return templates


def create_console(
    reader: SentinelReader,
    identity: IdentityStore,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    gate: ReleaseReader | None = None,
    incidents: Callable[[], list[IncidentOut]] | None = None,
    postmortems_url: str | None = None,
    postmortems: Postmortems | None = None,
    sentinel_url: str = "http://127.0.0.1:8100",
    translator_db: Engine | None = None,
) -> FastAPI:
    """The console over the sentinel's records; the gate's releases and postmortems'
    open incidents are shown when their readers are given. Every page wants a viewer's
    platform token (`identity`), acting on a page a responder's."""
    app = FastAPI(title="Vigil console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    attach(app, identity, "console", whoami=False)
    templates = _templates()
    actions = SentinelActions(reader.db)
    viewer = Depends(needs(Role.viewer))
    responder = Depends(needs(Role.responder))

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(_: Request, exc: NotSignedIn) -> Response:
        return exc.response

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = getattr(request.state, "identity_principal", None)
        return templates.TemplateResponse(
            request, name, {"now": clock(), "user": user, **context}, status_code=status
        )

    tuning = register_tuning(app, reader, page, clock)
    register_oncall(app, reader, page, clock, identity, sentinel_url)

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
        return page(request, "login.html", next=safe_target(next))

    @app.post("/login")
    def login(
        request: Request,
        token: str = Form(""),
        next: str = Form("/"),  # noqa: A002
    ) -> Response:
        target = safe_target(next)
        if identify(request, token.strip()) is None:
            return page(request, "login.html", 403, next=target, error="That token is not valid.")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict")
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse, dependencies=[viewer])
    def home(request: Request) -> HTMLResponse:
        now = clock()
        return page(
            request,
            "home.html",
            active=reader.active_alerts(),
            on_call=reader.on_call(now),
            signals=reader.signals(now),
            spark_hours=SPARK_HOURS,
            releases=gate.recent(5) if gate is not None else None,
            in_flight=IN_FLIGHT_STATES,
            incidents=incidents() if incidents is not None else None,
            postmortems_url=postmortems_url,
        )

    @app.get("/signals/{name}", response_class=HTMLResponse, dependencies=[viewer])
    def signal(
        request: Request, name: str, hours: int = Query(6, ge=1, le=24 * 35)
    ) -> HTMLResponse:
        try:
            spec = reader.signal(name)
        except KeyError:
            raise HTTPException(404, f"no signal {name!r}") from None
        now = clock()
        since = now - timedelta(hours=hours)
        points = reader.averages(since, now, CHART_SLOTS, signal=name)
        names, columns = uplot_columns({series: pts for (_, series), pts in points.items()})
        labels = {n: _series(n) or name for n in names}
        alerts = reader.alerts_of(name, since)
        firing = [
            [
                max(a.firing_at, since).timestamp(),
                (a.resolved_at or now).timestamp(),
            ]
            for a in alerts
            if a.firing_at is not None
        ]
        chart = {
            "signal": name,
            "unit": spec.unit,
            "names": names,
            "labels": [labels[n] for n in names],
            "columns": columns,
            "shade": firing,
        }
        # the detector's band and its tuning's would-be alerts over the same slots
        found = tuning.overlay(name, names, since, now, CHART_SLOTS)
        chart = chart_overlay(chart, found, labels, since, hours * 3600 / CHART_SLOTS)
        return page(
            request,
            "signal.html",
            spec=spec,
            hours=hours,
            ranges=RANGES,
            chart=chart,
            points=len(columns[0]),
            slot=_duration(hours * 3600 / CHART_SLOTS),
            alerts=alerts,
            tunings=[(t, _spec_text(t.spec)) for t in reader.tunings_of(name)],
        )

    @app.get("/hosts", response_class=HTMLResponse, dependencies=[viewer])
    def hosts(request: Request) -> HTMLResponse:
        """CPU, memory and disk of every node (seed 004's resource thresholds), from the
        host signals of the catalogue, grouped by the host they were read from."""
        by_host: dict[str, list[tuple[Any, Any]]] = {}
        for view in reader.signals(clock()):
            if view.spec.labels.get("service") != "host":
                continue
            for series in view.series:
                host = series.labels.get("instance", "?")
                by_host.setdefault(host, []).append((view.spec, series))
        return page(request, "hosts.html", hosts=sorted(by_host.items()), spark_hours=SPARK_HOURS)

    @app.get("/releases", response_class=HTMLResponse, dependencies=[viewer])
    def releases(request: Request) -> HTMLResponse:
        return page(
            request,
            "releases.html",
            releases=gate.recent(100) if gate is not None else None,
            in_flight=IN_FLIGHT_STATES,
        )

    @app.get("/releases/{release_id}", response_class=HTMLResponse, dependencies=[viewer])
    def release(request: Request, release_id: int = PathParam(ge=1, le=2**63 - 1)) -> HTMLResponse:
        receipt = gate.receipt(release_id) if gate is not None else None
        if receipt is None:
            raise HTTPException(404, f"no release {release_id}")
        chart = canary_chart(receipt)
        if chart is not None:
            chart |= {"time": False, "x_label": "seconds of canary", "unit": "error rate"}
            if chart["decided_at"] is not None:
                chart["marks"] = [[chart["decided_at"], f"judge: {receipt.decision}"]]
        return page(request, "release.html", r=receipt, chart=chart)

    @app.get("/alerts", response_class=HTMLResponse, dependencies=[viewer])
    def alerts(request: Request) -> HTMLResponse:
        return page(request, "alerts.html", alerts=reader.recent_alerts(200))

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse, dependencies=[viewer])
    def alert(request: Request, alert_id: int = PathParam(ge=1, le=2**63 - 1)) -> HTMLResponse:
        found = reader.alert(alert_id)
        if found is None:
            raise HTTPException(404, f"no alert {alert_id}")
        group = reader.group(found.group_id) if found.group_id is not None else None
        deliveries = reader.deliveries(group.id) if group is not None else []
        return page(
            request,
            "alert.html",
            alert=found,
            group=group,
            deliveries=deliveries,
            done=request.query_params.get("done"),
        )

    @app.post("/alerts/{alert_id}/{action}")
    def act(
        alert_id: int = PathParam(ge=1, le=2**63 - 1),
        action: Literal["acknowledge", "resolve", "silence"] = PathParam(),
        minutes: float = Form(30, gt=0, le=7 * 24 * 60),
        caller: Principal = responder,
    ) -> Response:
        """Act on the page of an alert as the signed-in responder: the sentinel's own
        action, recorded and audited under their account, "via console"."""
        try:
            actions.act_on_alert(alert_id, action, caller.name, clock(), minutes)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return RedirectResponse(f"/alerts/{alert_id}?done={action}", status_code=303)

    register_incidents(
        app,
        templates,
        page,
        sentinel=reader,
        gate=gate,
        postmortems=postmortems,
        translator_db=translator_db,
        clock=clock,
        postmortems_url=postmortems_url,
    )
    register_action_items(app, page, postmortems, clock)
    return app


def _spec_text(spec: dict[str, Any]) -> str:
    """A stored detector spec as the catalogue and the CLI write it."""
    try:
        return DetectorSpec.model_validate(spec).describe()
    except ValueError:
        return str(spec)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
