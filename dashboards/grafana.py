"""A Grafana dashboard per service, one panel per signal of the catalogue.

Each dashboard imports as is (Dashboards → New → Import, or a provisioning
directory): its data sources are template variables, ``${DS_PROMETHEUS}`` for the
signals Prometheus also scrapes and ``${DS_SENTINEL}`` for the sentinel's own
PostgreSQL database, picked from the data sources of that Grafana.

- A signal with PromQL (``scrape``, ``promql`` sources) is drawn from Prometheus
  with the same expression the sentinel computes.
- A signal Prometheus cannot see (``sql``, ``log``, ``push``) is drawn from the
  samples the sentinel stored for it (its ``samples`` table): exactly what its
  detector judged. That needs the sentinel on PostgreSQL; Grafana has no
  built-in SQLite data source.

The fixed line that judges a signal (its threshold, its prior's while the
learned band cannot judge yet, a burn rate's error-ratio lines) is drawn on its
panel; alerts appear as annotations, from Prometheus' ``ALERTS`` series (the
generated rules) and from the sentinel's ``alerts`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dashboards.judges import Judge, judge_of
from dashboards.promql import GRAFANA_RATE_WINDOW, duration, query_for
from sentinel.catalogue import Catalogue, SignalSpec

SCHEMA_VERSION = 39  # Grafana 10.4 / 11
PROMETHEUS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SENTINEL_DB = {"type": "grafana-postgresql-datasource", "uid": "${DS_SENTINEL}"}
PANEL_WIDTH, PANEL_HEIGHT, COLUMNS = 12, 8, 2
UNITS = {"ratio": "percentunit", "s": "s", "": "short", "state": "none"}


def services(catalogue: Catalogue) -> list[str]:
    """The services the signals watch (their ``service`` routing label), in order."""
    return list(dict.fromkeys(s.labels["service"] for s in catalogue.signals))


def dashboard(
    catalogue: Catalogue,
    service: str,
    *,
    sentinel_url: str,
    tunings: Mapping[tuple[str, str], Any] | None = None,
) -> dict[str, Any]:
    signals = [s for s in catalogue.signals if s.labels["service"] == service]
    if not signals:
        raise ValueError(f"no signal of the catalogue watches service {service!r}")
    panels = [
        _panel(i, signal, judge_of(signal, tunings), sentinel_url)
        for i, signal in enumerate(signals)
    ]
    return {
        "id": None,
        "uid": f"vigil-{service}"[:40],
        "title": f"Vigil: {service}",
        "description": (
            f"The signals the sentinel watches on {service}, generated from its signal "
            "catalogue by `dashboards export grafana`: change the catalogue, not this file."
        ),
        "tags": ["vigil", "generated", service],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [
            {
                "title": "Sentinel: alerts",
                "type": "link",
                "url": f"{sentinel_url}/api/alerts?active=true",
                "targetBlank": True,
            }
        ],
        "templating": {"list": [_datasource_variable(*v) for v in _VARIABLES]},
        "annotations": {"list": _annotations(service)},
        "panels": panels,
    }


_VARIABLES = (
    ("DS_PROMETHEUS", "Prometheus", "prometheus"),
    ("DS_SENTINEL", "Sentinel database (PostgreSQL)", "grafana-postgresql-datasource"),
)


def _datasource_variable(name: str, label: str, plugin: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "datasource",
        "query": plugin,
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def _annotations(service: str) -> list[dict[str, Any]]:
    sentinel_alerts = (
        "SELECT firing_at AS time, COALESCE(resolved_at, NOW()) AS timeend,\n"
        "       summary AS text, signal || ',' || severity AS tags\n"
        "FROM alerts\n"
        "WHERE firing_at IS NOT NULL AND $__timeFilter(firing_at)\n"
        f"  AND labels::jsonb ->> 'service' = '{_sql_text(service)}'\n"
        "ORDER BY 1"
    )
    return [
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True,
            "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard",
        },
        {
            "name": "Prometheus alerts (generated rules)",
            "datasource": PROMETHEUS,
            "enable": True,
            "iconColor": "red",
            "expr": f'ALERTS{{alertstate="firing", source="vigil", service="{service}"}}',
            "step": "60s",
            "titleFormat": "{{alertname}}",
            "textFormat": "{{signal}} {{severity}}",
            "tagKeys": "signal,severity",
            "useValueForTime": False,
        },
        {
            "name": "Sentinel alerts",
            "datasource": SENTINEL_DB,
            "enable": True,
            "iconColor": "orange",
            "target": {
                "refId": "Anno",
                "editorMode": "code",
                "format": "table",
                "rawQuery": True,
                "rawSql": sentinel_alerts,
            },
        },
    ]


def _panel(index: int, signal: SignalSpec, judge: Judge, sentinel_url: str) -> dict[str, Any]:
    query = query_for(signal)
    if query is not None:
        datasource = PROMETHEUS
        targets = [
            {
                "refId": "A",
                "datasource": PROMETHEUS,
                "editorMode": "code",
                "expr": query.value(GRAFANA_RATE_WINDOW),
                "legendFormat": query.legend,
                "range": True,
            }
        ]
        for i, window in enumerate(judge.burn):
            for seconds in (window.long_seconds, window.short_seconds):
                targets.append(
                    {
                        "refId": f"W{i}{'L' if seconds == window.long_seconds else 'S'}",
                        "datasource": PROMETHEUS,
                        "editorMode": "code",
                        "expr": query.value(duration(seconds)),
                        "legendFormat": f"over {duration(seconds)}",
                        "range": True,
                    }
                )
        source_text = "Prometheus, the same expression the sentinel computes."
    else:
        datasource = SENTINEL_DB
        targets = [
            {
                "refId": "A",
                "datasource": SENTINEL_DB,
                "editorMode": "code",
                "format": "time_series",
                "rawQuery": True,
                "rawSql": _samples_sql(signal.name),
            }
        ]
        source_text = (
            f"the sentinel's stored samples (its {signal.source.type} source is not in Prometheus)."
        )
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": signal.name,
        "description": _description(signal, judge, source_text),
        "datasource": datasource,
        "gridPos": {
            "h": PANEL_HEIGHT,
            "w": PANEL_WIDTH,
            "x": (index % COLUMNS) * PANEL_WIDTH,
            "y": (index // COLUMNS) * PANEL_HEIGHT,
        },
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": UNITS.get(signal.unit, f"suffix: {signal.unit}"),
                "color": {"mode": "palette-classic"},
                "thresholds": _thresholds(judge),
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "spanNulls": False,
                    "showPoints": "never",
                    "thresholdsStyle": {"mode": "line+area" if judge.line or judge.burn else "off"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "links": [
            {
                "title": "Runbook",
                "url": f"{sentinel_url}/runbooks/{signal.name}",
                "targetBlank": True,
            },
            {
                "title": "Signal in the sentinel",
                "url": f"{sentinel_url}/api/signals/{signal.name}",
                "targetBlank": True,
            },
        ],
    }


def _thresholds(judge: Judge) -> dict[str, Any]:
    """Grafana's threshold steps: red past the line, on the side that pages."""
    if judge.burn:
        lines = sorted({round(w.error_ratio, 12) for w in judge.burn})
        steps = [{"color": "green", "value": None}]
        colours = ["orange", "red"]
        for i, value in enumerate(lines):
            steps.append({"color": colours[min(i, 1)] if len(lines) > 1 else "red", "value": value})
        return {"mode": "absolute", "steps": steps}
    if judge.line is None:
        return {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    if judge.line.direction == "above":
        steps = [{"color": "green", "value": None}, {"color": "red", "value": judge.line.value}]
    else:
        steps = [{"color": "red", "value": None}, {"color": "green", "value": judge.line.value}]
    return {"mode": "absolute", "steps": steps}


def _description(signal: SignalSpec, judge: Judge, source_text: str) -> str:
    parts = [signal.description, f"Data: {source_text}", f"Judged by: {judge.describe}."]
    if judge.line is not None:
        parts.append(f"The line: {judge.line.label}, {judge.line.direction} {judge.line.value:g}.")
    elif judge.burn:
        windows = "; ".join(
            f"{w.error_ratio:.4g} over {duration(w.long_seconds)} and {duration(w.short_seconds)}"
            for w in judge.burn
        )
        parts.append(f"The lines: error ratios that burn the SLO {judge.slo:g} budget: {windows}.")
    elif judge.fixed is not None and judge.fixed.kind == "share":
        p = judge.fixed.params
        parts.append(
            f"No line: its fixed guard is a share, {p['direction']} {p['threshold']:g} of at "
            f"least {p['min_volume']:g} (value / volume), not a level of the value drawn."
        )
    else:
        parts.append("No line: a learned band judges it; the sentinel's API shows the band.")
    if judge.series_tunings:
        parts.append(f"{judge.series_tunings} series have tunings of their own (not drawn).")
    return " ".join(parts)


def _samples_sql(signal: str) -> str:
    name = _sql_text(signal)
    return (
        'SELECT t AS "time",\n'
        f"       CASE WHEN series = '' THEN '{name}' ELSE series END AS metric,\n"
        "       value\n"
        "FROM samples\n"
        f"WHERE signal = '{name}' AND resolution = 'raw' AND $__timeFilter(t)\n"
        "ORDER BY 1"
    )


def _sql_text(text: str) -> str:
    return text.replace("'", "''")
