"""The generated Grafana dashboards, checked the way Grafana reads them: the
dashboard model, every panel's place and threshold, every query. PromQL targets
are parsed by promtool; SQL targets run against a real sentinel database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from dashboards.grafana import SCHEMA_VERSION, dashboard, services
from dashboards.judges import judge_of
from dashboards.promql import query_for
from sentinel.catalogue import Catalogue
from tests.dashboards.conftest import SENTINEL, promtool

VARIABLES = {"DS_PROMETHEUS": "prometheus", "DS_SENTINEL": "grafana-postgresql-datasource"}


def _boards(out: Path) -> dict[str, dict[str, Any]]:
    return {
        path.stem.removeprefix("vigil-"): json.loads(path.read_text())
        for path in sorted((out / "grafana").glob("*.json"))
    }


def _panels(boards: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [panel for board in boards.values() for panel in board["panels"]]


def test_one_dashboard_per_service_with_one_panel_per_signal(
    catalogue: Catalogue, exported: Path
) -> None:
    boards = _boards(exported)
    assert sorted(boards) == sorted(services(catalogue)) == ["host", "translator"]
    for service, board in boards.items():
        expected = [s.name for s in catalogue.signals if s.labels["service"] == service]
        assert [p["title"] for p in board["panels"]] == expected


def test_dashboards_are_importable_models(exported: Path) -> None:
    for service, board in _boards(exported).items():
        assert board["schemaVersion"] == SCHEMA_VERSION
        assert board["id"] is None  # Grafana assigns it on import
        assert board["uid"] == f"vigil-{service}" and len(board["uid"]) <= 40
        assert board["title"] and board["time"] == {"from": "now-6h", "to": "now"}
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert {n: v["query"] for n, v in variables.items()} == VARIABLES
        assert all(v["type"] == "datasource" for v in variables.values())
        annotations = board["annotations"]["list"]
        assert annotations[0]["builtIn"] == 1
        prometheus, sentinel = annotations[1], annotations[2]
        assert prometheus["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert f'service="{service}"' in prometheus["expr"]
        assert prometheus["expr"].startswith("ALERTS{")
        assert sentinel["datasource"]["uid"] == "${DS_SENTINEL}"
        assert "FROM alerts" in sentinel["target"]["rawSql"]


def test_every_panel_has_a_place_a_data_source_and_targets(exported: Path) -> None:
    for board in _boards(exported).values():
        ids, cells = set(), set()
        for panel in board["panels"]:
            assert panel["type"] == "timeseries"
            assert panel["id"] not in ids
            ids.add(panel["id"])
            grid = panel["gridPos"]
            assert (
                grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
            )
            covered = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not covered & cells, f"{panel['title']} overlaps another panel"
            cells |= covered
            uid = panel["datasource"]["uid"]
            assert uid in ("${DS_PROMETHEUS}", "${DS_SENTINEL}")
            assert panel["targets"], panel["title"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids)
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"]
                if uid == "${DS_PROMETHEUS}":
                    assert target["expr"].strip()
                else:
                    assert target["rawSql"].strip() and target["format"] == "time_series"
            titles = [link["title"] for link in panel["links"]]
            assert titles == ["Runbook", "Signal in the sentinel"]
            assert panel["links"][0]["url"] == f"{SENTINEL}/runbooks/{panel['title']}"


def test_prometheus_panels_query_what_the_signal_reads_and_promtool_parses_them(
    catalogue: Catalogue, exported: Path, tmp_path: Path
) -> None:
    records = []
    for panel in _panels(_boards(exported)):
        signal = catalogue.get(panel["title"])
        if query_for(signal) is None:
            assert panel["datasource"]["uid"] == "${DS_SENTINEL}"
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        main = panel["targets"][0]["expr"]
        for selector in (signal.source.selector, getattr(signal.source, "denominator", None)):
            if selector is not None:
                assert selector.metric in main
                for matcher in selector.matchers:
                    assert matcher.describe() in main
        for label in signal.source.by:
            assert label in main and f"{{{{{label}}}}}" in panel["targets"][0]["legendFormat"]
        for i, target in enumerate(panel["targets"]):
            # Grafana substitutes $__rate_interval; promtool needs a duration there.
            expr = target["expr"].replace("$__rate_interval", "1m")
            records.append({"record": f"vigil:panel_{panel['id']}_{i}:check", "expr": expr})
    assert len(records) >= 11
    path = tmp_path / "panel-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": records}]}))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_thresholds_are_the_lines_that_judge(catalogue: Catalogue, exported: Path) -> None:
    panels = {p["title"]: p for p in _panels(_boards(exported))}

    def steps(name: str) -> list[dict[str, Any]]:
        return panels[name]["fieldConfig"]["defaults"]["thresholds"]["steps"]

    def style(name: str) -> str:
        return panels[name]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"]

    # Fixed thresholds: red from the line up.
    assert steps("llm.breaker_open") == [
        {"color": "green", "value": None},
        {"color": "red", "value": 1.5},
    ]
    # A learned band's prior, and a prior below which it pages.
    assert steps("queue.lag_seconds")[1] == {"color": "red", "value": 600.0}
    assert steps("payments.attempts") == [
        {"color": "red", "value": None},
        {"color": "green", "value": 0.5},
    ]
    assert "prior" in panels["queue.lag_seconds"]["description"]
    # The burn rate's error-ratio lines, and its windows as targets.
    assert [s["value"] for s in steps("http.error_ratio")[1:]] == [0.006, 0.0144]
    assert {t["legendFormat"] for t in panels["http.error_ratio"]["targets"][1:]} == {
        "over 1h",
        "over 5m",
        "over 6h",
        "over 30m",
    }
    # A share's threshold is not a level of the count drawn: no line, said why.
    assert len(steps("payments.failed")) == 1 and style("payments.failed") == "off"
    assert "share" in panels["payments.failed"]["description"]
    for signal in catalogue.signals:
        judge = judge_of(signal)
        if judge.line is not None:
            assert style(signal.name) == "line+area"
            assert judge.line.value in [s["value"] for s in steps(signal.name)]
    # Units Grafana knows.
    assert panels["http.error_ratio"]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert panels["queue.lag_seconds"]["fieldConfig"]["defaults"]["unit"] == "s"


def test_an_applied_tuning_moves_the_line(catalogue: Catalogue) -> None:
    tuned = {
        ("llm.breaker_open", ""): SimpleNamespace(
            id=3, spec={"kind": "static", "params": {"threshold": 0.5}}
        ),
        ("payments.failed", 'method="wallet"'): SimpleNamespace(
            id=4, spec={"kind": "static", "params": {"threshold": 9}}
        ),
    }
    board = dashboard(catalogue, "translator", sentinel_url=SENTINEL, tunings=tuned)
    panels = {p["title"]: p for p in board["panels"]}
    breaker = panels["llm.breaker_open"]
    assert breaker["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 0.5
    assert "tuning #3" in breaker["description"]
    assert "1 series have tunings of their own" in panels["payments.failed"]["description"]


def _grafana_macros(sql: str, start: datetime, end: datetime) -> str:
    """What Grafana's SQL data sources do to ``$__timeFilter(column)`` before running."""
    return re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} BETWEEN '{start:%Y-%m-%d %H:%M:%S}' AND '{end:%Y-%m-%d %H:%M:%S}'",
        sql,
    )


def test_sql_panels_read_the_sentinels_stored_samples(
    catalogue: Catalogue, exported: Path, sentinel_url: str
) -> None:
    from sentinel.db import Database
    from sentinel.history import HistoryStore, Row

    db = Database(sentinel_url)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    try:
        HistoryStore(db).append(
            [
                Row("payments.failed", 'method="wallet"', now - timedelta(minutes=5), 6.0, 9.0),
                Row("payments.failed", 'method="card"', now - timedelta(minutes=5), 0.0, 20.0),
                Row("queue.depth", "", now - timedelta(minutes=1), 42.0),
                Row("queue.depth", "", now - timedelta(days=3), 7.0),  # outside the range
            ]
        )
        panels = {p["title"]: p for p in _panels(_boards(exported))}
        sql_panels = [p for p in panels.values() if p["datasource"]["uid"] == "${DS_SENTINEL}"]
        assert {p["title"] for p in sql_panels} == {
            s.name for s in catalogue.signals if query_for(s) is None
        }
        with db.engine.connect() as conn:
            for panel in sql_panels:  # every one runs
                sql = _grafana_macros(panel["targets"][0]["rawSql"], now - timedelta(hours=1), now)
                conn.execute(text(sql)).all()

            def rows(name: str) -> list[tuple[Any, ...]]:
                sql = _grafana_macros(
                    panels[name]["targets"][0]["rawSql"], now - timedelta(hours=1), now
                )
                return [tuple(r)[1:] for r in conn.execute(text(sql)).all()]

            assert sorted(rows("payments.failed")) == [
                ('method="card"', 0.0),
                ('method="wallet"', 6.0),
            ]
            assert rows("queue.depth") == [("queue.depth", 42.0)]
    finally:
        db.dispose()


def test_sentinel_alert_annotations_run_on_postgresql(exported: Path, sentinel_url: str) -> None:
    if not sentinel_url.startswith("postgresql"):
        pytest.skip("the annotation query reads the labels as jsonb: PostgreSQL only")
    from sentinel.db import Database
    from sentinel.models import Alert, AlertState

    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    db = Database(sentinel_url)
    try:
        with db.session() as s:
            for service, signal in (("translator", "queue.depth"), ("host", "host.cpu_busy_ratio")):
                s.add(
                    Alert(
                        fingerprint=signal,
                        signal=signal,
                        series="",
                        labels={"service": service, "team": "platform"},
                        severity="P2",
                        state=AlertState.firing,
                        summary=f"{signal} firing",
                        value=1.0,
                        evidence={},
                        started_at=now - timedelta(minutes=10),
                        firing_at=now - timedelta(minutes=9),
                        updated_at=now,
                    )
                )
        board = _boards(exported)["translator"]
        sql = _grafana_macros(
            board["annotations"]["list"][2]["target"]["rawSql"], now - timedelta(hours=1), now
        )
        with db.engine.connect() as conn:
            found = conn.execute(text(sql)).mappings().all()
        assert [(r["text"], r["tags"]) for r in found] == [("queue.depth firing", "queue.depth,P2")]
    finally:
        db.dispose()
