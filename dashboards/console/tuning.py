"""A signal's tuning from its page: the chart's band and would-be alerts, and the three
things a responder does about a threshold (re-tune it on its history, accept or reject
what the re-tune proposes). Each calls the sentinel's own functions (`tune_history`,
`tunings.decide`: what `sentinel tune --propose` and `sentinel tunings accept|reject`
call) and is audited as done by the signed-in person "via console"."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from common.bounds import MAX_DB_ID
from common.identity import Principal, Role
from dashboards.console.auth import needs
from dashboards.console.overlay import SeriesOverlay, overlay
from dashboards.console.readers import SentinelReader
from sentinel import tunings
from sentinel.alerting.actions import audit
from sentinel.history import HistoryStore
from sentinel.models import Tuning, TuningStatus
from sentinel.operations import tune_history

VIA = "console"
MAX_DAYS = 35  # the raw history the sentinel keeps (raw_retention_days)
MAX_BUDGET = 100.0  # false alerts a week: past that a threshold is not being tuned


class TuningDesk:
    """The tuning actions on the sentinel's database, as `by`, audited."""

    def __init__(self, reader: SentinelReader) -> None:
        self.reader = reader
        self.db = reader.db

    def retune(
        self, name: str, days: float, budget_per_week: float, by: str, now: datetime
    ) -> list[int]:
        """Propose a tuning per series from the last `days` of history (never applied
        here: a person accepts it). KeyError: no such signal; LookupError: no history."""
        spec = self.reader.signal(name)
        tuned = tune_history(
            self.db, HistoryStore(self.db), spec, now, days, budget_per_week, apply=False, by=by
        )
        ids = [item.tuning_id for item in tuned]
        with self.db.session() as s:
            audit(
                s,
                "retune",
                VIA,
                now,
                actor=by,
                signal=name,
                days=days,
                budget_per_week=budget_per_week,
                tuning_ids=ids,
            )
        return ids

    def decide(self, name: str, tuning_id: int, accept: bool, by: str, now: datetime) -> Tuning:
        """Accept (it becomes the series' tuning) or reject (the applied one stays) a
        proposal of this signal. LookupError: no such tuning of this signal;
        ValueError: it is not (or no longer) a proposal."""
        with self.db.session() as s:
            found = s.get(Tuning, tuning_id)
            if found is None or found.signal != name:
                raise LookupError(f"no tuning {tuning_id} of {name}")
            if found.status != TuningStatus.proposed:
                raise ValueError(f"tuning {tuning_id} is {found.status.value}, not a proposal")
        row = tunings.decide(self.db, tuning_id, accept, by, now)
        with self.db.session() as s:
            kind = "tuning_accept" if accept else "tuning_reject"
            audit(s, kind, VIA, now, actor=by, signal=name, series=row.series, tuning_id=row.id)
        return row

    def overlay(
        self, name: str, series: list[str], since: datetime, until: datetime, slots: int
    ) -> dict[str, SeriesOverlay]:
        """The chart's band and would-be alerts of each series (see `overlay`)."""
        with self.db.session() as s:
            waiting = s.scalars(
                select(Tuning)
                .where(Tuning.signal == name, Tuning.status == TuningStatus.proposed)
                .order_by(Tuning.id)
            ).all()
        proposed = {t.series: t for t in waiting}  # the newest proposal of each series
        spec = self.reader.signal(name)
        applied = tunings.applied(self.db)
        return overlay(self.db, spec, series, applied, proposed, since, until, slots)


def chart_overlay(
    chart: dict[str, Any],
    found: dict[str, SeriesOverlay],
    labels: dict[str, str],
    since: datetime,
    slot_seconds: float,
) -> dict[str, Any]:
    """The chart with each series' band edges as columns on its time axis (`band`:
    their labels, columns, and which pair of them bounds which series), and the would-be
    alerts of the detector and of a proposal as (start, end, series) spans. Both sides
    put a point at the middle of its slot of `slot_seconds` from `since`."""
    times = chart["columns"][0]
    start = since.timestamp()

    def slot(t: float) -> int:
        return math.floor((t - start) / slot_seconds)

    index = {slot(t): i for i, t in enumerate(times)}
    band: dict[str, list[Any]] = {"labels": [], "columns": [], "pairs": []}
    for position, key in enumerate(chart["names"]):
        over = found.get(key)
        if over is None:
            continue
        edges: dict[str, int] = {}
        for edge, points in (("upper", over.upper), ("lower", over.lower)):
            col: list[float | None] = [None] * len(times)
            for t, value in points:
                i = index.get(slot(t))
                if i is not None:
                    col[i] = value
            if any(x is not None for x in col):
                edges[edge] = len(band["columns"])
                band["columns"].append(col)
                band["labels"].append(f"{labels[key]}: {edge}")
        if edges:
            # (upper, lower, the series it bounds): positions in band's columns
            band["pairs"].append([edges.get("upper"), edges.get("lower"), position])
    would = [[a, b, labels[k]] for k, o in found.items() for a, b in o.would_be]
    proposed = [[a, b, labels[k]] for k, o in found.items() for a, b in o.proposed]
    return chart | {
        "band": band,
        "would_be": sorted(would),
        "proposed": sorted(proposed),
        "has_proposal": any(o.has_proposal for o in found.values()),
    }


Page = Callable[..., HTMLResponse]


def form_number(text: str, what: str, low: float, high: float, strict_low: bool = False) -> float:
    """A number typed in a form, or a ValueError that says what was expected."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    above = value > low if strict_low else value >= low
    if not (math.isfinite(value) and above and value <= high):
        bound = f"more than {low:g}" if strict_low else f"at least {low:g}"
        raise ValueError(f"{what} must be a number, {bound} and at most {high:g} (got {text!r})")
    return value


def register_tuning(
    app: FastAPI, reader: SentinelReader, page: Page, clock: Callable[[], datetime]
) -> TuningDesk:
    """The re-tune, accept and reject routes of a signal's page (a responder's)."""
    desk = TuningDesk(reader)
    responder = Depends(needs(Role.responder))

    def back(name: str, done: str) -> Response:
        return RedirectResponse(f"/signals/{name}?done={quote(done)}#tuning", status_code=303)

    def refused(request: Request, name: str, message: str, status: int) -> HTMLResponse:
        return page(
            request,
            "problem.html",
            status,
            title=f"Could not re-tune {name}",
            message=message,
            back=f"/signals/{name}#tuning",
        )

    @app.post("/signals/{name}/retune", response_model=None)
    def retune(
        request: Request,
        name: str,
        days: str = Form("30"),
        budget: str = Form("1"),
        caller: Principal = responder,
    ) -> Response:
        """Propose a threshold per series from the signal's history (`sentinel tune
        NAME --days N --budget B/week --propose`)."""
        try:
            reader.signal(name)
        except KeyError:
            raise HTTPException(404, f"no signal {name!r}") from None
        try:
            day_count = form_number(days, "Days of history", 0, MAX_DAYS, strict_low=True)
            per_week = form_number(budget, "False alerts per week", 0, MAX_BUDGET)
        except ValueError as exc:
            return refused(request, name, str(exc), 400)
        try:
            ids = desk.retune(name, day_count, per_week, caller.name, clock())
        except LookupError as exc:
            return refused(request, name, str(exc.args[0] if exc.args else exc), 409)
        except ValueError as exc:
            return refused(request, name, str(exc), 400)
        return back(name, f"proposed {len(ids)} tuning{'s' if len(ids) != 1 else ''}")

    @app.post("/signals/{name}/tunings/{tuning_id}/{decision}")
    def decide(
        name: str,
        tuning_id: int = PathParam(ge=1, le=MAX_DB_ID),
        decision: Literal["accept", "reject"] = PathParam(),
        caller: Principal = responder,
    ) -> Response:
        """Accept or reject a proposal (`sentinel tunings accept|reject ID`)."""
        try:
            row = desk.decide(name, tuning_id, decision == "accept", caller.name, clock())
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return back(name, f"tuning {row.id} {row.status.value}")

    return desk
