"""A postmortem as Markdown: to paste into a wiki or a chat, or to keep in git."""

from __future__ import annotations

from datetime import datetime, timedelta

from postmortems.forms import NARRATIVE_FIELDS
from postmortems.models import CLASS_TITLES, IncidentClass
from postmortems.schemas import IncidentDetail


def _at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    delta = timedelta(seconds=round(seconds))
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 48:
        return f"{hours // 24} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _text(value: str | None) -> str:
    return value.strip() if value and value.strip() else "_not filled_"


def render(i: IncidentDetail) -> str:
    cls = CLASS_TITLES.get(IncidentClass(i.incident_class), i.incident_class)
    if i.class_reason:
        cls += f" ({i.class_reason})"
    lines = [
        f"# Incident #{i.id}: {i.title}",
        "",
        f"- **Severity:** {i.severity}",
        f"- **Status:** {i.status}",
        f"- **Service:** {i.service}",
        f"- **Class:** {cls}",
        f"- **On call:** {i.on_call or '—'}; **lead:** {i.lead or '—'}",
        f"- **Started:** {_at(i.started_at)} (first anomalous sample)",
        f"- **Detected:** {_at(i.detected_at)}; **acknowledged:** {_at(i.acknowledged_at)}"
        + (f" by {i.acknowledged_by}" if i.acknowledged_by else ""),
        f"- **Mitigated:** {_at(i.mitigated_at)}; **resolved:** {_at(i.resolved_at)}",
        f"- **Passive phase:** {duration(i.passive_seconds)}; "
        f"**active phase:** {duration(i.active_seconds)}",
    ]
    sla = i.sla
    breaches = [
        name
        for name, hit in (
            ("response", sla.response_breached),
            ("resolution", sla.resolution_breached),
        )
        if hit
    ]
    lines.append(
        f"- **SLA** ({sla.targets or i.severity}): "
        + (f"breached ({', '.join(breaches)})" if breaches else "met")
    )
    if i.release_id:
        lines.append(f"- **Release:** {i.release_id}; rolled back {_at(i.rolled_back_at)}")
    pm = i.postmortem
    lines += ["", "## Postmortem", ""]
    if pm is None:
        lines.append("_Not filled yet._")
    else:
        if not pm.complete:
            lines += ["> Draft: the postmortem is not complete yet.", ""]
        for name, title in NARRATIVE_FIELDS.items():
            lines += [f"### {title}", "", _text(getattr(pm, name)), ""]
        if pm.dependency:
            lines += [f"**Dependency:** {pm.dependency}", ""]
        if pm.lessons:
            lines += ["### Do's and don'ts", ""]
            lines += [
                f"- **{'Do' if lesson['kind'] == 'do' else 'Don’t'}:** {lesson['text']}"
                for lesson in pm.lessons
            ]
            lines.append("")
    lines += ["## Action items", ""]
    if not i.actions:
        lines.append("_None._")
    else:
        lines += [
            "| # | action | type | owner | due | status | detector |",
            "|---|---|---|---|---|---|---|",
        ]
        for a in i.actions:
            kind = f"{a.kind} / {a.category}" if a.category else a.kind
            detector = _replay(a.signal, a.replay)
            lines.append(
                f"| {a.id} | {_cell(a.title)} | {kind} | {_cell(a.owner)} "
                f"| {a.due_date.isoformat()} | {a.status} | {detector} |"
            )
    lines += ["", "## Timeline", ""]
    if not i.timeline:
        lines.append("_Empty._")
    for t in i.timeline:
        flag = " **(suspect)**" if t.suspect else ""
        lines.append(f"- `{_at(t.at)}` {t.kind}: {t.text}{flag}")
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _replay(signal: str | None, replay: dict | None) -> str:  # type: ignore[type-arg]
    if not signal:
        return ""
    if not replay:
        return f"`{signal}` (not replayed)"
    if replay.get("error"):
        return f"`{signal}`: replay failed: {_cell(str(replay['error']))}"
    if replay.get("would_have_fired"):
        lead = replay.get("lead_seconds")
        when = f", {duration(lead)} before detection" if lead and lead > 0 else ""
        return f"`{signal}`: would have fired{when}"
    return f"`{signal}`: would not have fired"
