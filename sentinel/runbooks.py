"""Each signal's runbook at a stable URL, as a page a phone shows well: what
the signal is, how bad it is, what to do, and what is firing on it now. A
page links here instead of carrying the runbook's text."""

from __future__ import annotations

from datetime import datetime
from html import escape
from urllib.parse import quote

from sentinel.catalogue.models import SignalSpec
from sentinel.history import parse_series_key

RUNBOOK_PATH = "/runbooks/{signal}"


def runbook_path(signal: str) -> str:
    return RUNBOOK_PATH.format(signal=quote(signal, safe=""))


def runbook_url(public_url: str, signal: str) -> str:
    """Where a person who got a page opens the signal's runbook."""
    return public_url.rstrip("/") + runbook_path(signal)


_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,sans-serif;margin:0 auto;max-width:44rem;
padding:1rem;color:#1b1b1b;background:#fff}
h1{font-size:1.3rem;margin:.2rem 0 .6rem;word-break:break-all}
.sev{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;font-weight:600;
background:#eee}
.P0{background:#b00020;color:#fff}.P1{background:#e65100;color:#fff}.P2{background:#f9a825}
.runbook{white-space:pre-wrap;background:#f6f6f6;border-left:4px solid #888;
padding:.6rem .8rem;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #ddd;overflow-wrap:anywhere}
dt{font-weight:600}dd{margin:0 0 .4rem 0}
"""


def render_runbook_page(
    spec: SignalSpec,
    active: list[tuple[str, str, float | None, datetime]],
    json_path: str,
) -> str:
    """The page: ``active`` is (series, state, value, since) of the signal's
    alerts that are open now. No script and nothing loaded from elsewhere."""
    labels = ", ".join(f"{k}={v}" for k, v in sorted(spec.labels.items()))
    unit = spec.unit or "-"
    runbook = (
        f'<div class="runbook">{escape(spec.runbook.strip())}</div>'
        if spec.runbook.strip()
        else "<p><em>No runbook is written for this signal yet.</em></p>"
    )
    if active:
        rows = "".join(
            f"<tr><td>{escape(_series(series) or '(all)')}</td><td>{escape(state)}</td>"
            f"<td>{escape(_value(value))}</td><td>{since:%Y-%m-%d %H:%M} UTC</td></tr>"
            for series, state, value, since in active
        )
        now = (
            "<h2>Open alerts</h2><table><tr><th>series</th><th>state</th><th>value</th>"
            f"<th>since</th></tr>{rows}</table>"
        )
    else:
        now = "<h2>Open alerts</h2><p>None.</p>"
    name = escape(spec.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Runbook: {name}</title><style>{_STYLE}</style></head>
<body>
<p><span class="sev {escape(spec.severity.value)}">{escape(spec.severity.value)}</span></p>
<h1>{name}</h1>
<p>{escape(spec.description)}</p>
<h2>Runbook</h2>
{runbook}
{now}
<h2>Signal</h2>
<dl><dt>kind</dt><dd>{escape(str(spec.kind))}</dd><dt>unit</dt><dd>{escape(unit)}</dd>
<dt>every</dt><dd>{spec.interval_seconds:g} s</dd><dt>labels</dt><dd>{escape(labels)}</dd></dl>
<p><a href="{escape(json_path)}">The signal as JSON</a> (series, detector, tuning)</p>
</body></html>
"""


def _series(key: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in parse_series_key(key).items())


def _value(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"
