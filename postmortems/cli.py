"""The ``postmortem`` command: the same service as the API and the web form,
on ``POSTMORTEM_DATABASE_URL``. ``--json`` prints what the API would answer.

Exit codes: 0 done; 1 refused (an incomplete form, an incident that cannot
close yet: every failing field is printed); 2 bad usage or input."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import yaml
from pydantic import BaseModel, ValidationError

from common.logs import configure_logging
from postmortems.settings import PostmortemSettings


def _service():  # type: ignore[no-untyped-def]
    from postmortems.service import build_service

    settings = PostmortemSettings()
    configure_logging(settings.log_level)
    return build_service(settings)


def _emit(value: Any, as_json: bool, human: str | None = None) -> None:
    if as_json or human is None:
        if isinstance(value, BaseModel):
            click.echo(value.model_dump_json(indent=2))
        else:
            click.echo(json.dumps(_jsonable(value), indent=2, default=str))
    else:
        click.echo(human)


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _refused(exc: Any) -> None:
    click.echo(f"error: {exc}", err=True)
    for e in exc.errors:
        click.echo(f"  {e.field}: {e.message}", err=True)
    sys.exit(1)


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _run(fn: Any) -> Any:
    """Call the service; refusals exit 1 with every field, bad input exits 2."""
    from postmortems.service import CloseRefused, FormInvalid, Invalid, NotFound

    try:
        return fn()
    except (FormInvalid, CloseRefused) as exc:
        _refused(exc)
    except Invalid as exc:
        _refused(exc)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group(help="Incidents and mandatory postmortems.")
def main() -> None:
    pass


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8300, show_default=True, type=int)
@click.option(
    "--watch/--no-watch",
    default=True,
    show_default=True,
    help="Open incidents from critical sentinel alerts and send reminders.",
)
@click.option("--interval", default=30.0, show_default=True, help="Seconds between passes.")
def serve(host: str, port: int, watch: bool, interval: float) -> None:
    """Run the API and the web form (and, by default, the watcher and reminders)."""
    import uvicorn

    from common.identity import open_store
    from postmortems.app import create_served_app

    service = _service()
    identity = open_store(announce=True)
    app = create_served_app(service, background=watch, interval=interval, identity=identity)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


@main.command("open")
@click.option("--title", required=True)
@click.option("--severity", required=True, type=click.Choice(["P0", "P1", "P2", "P3"]))
@click.option("--service", "service_name", required=True)
@click.option("--class", "incident_class", default="unclassified", show_default=True)
@click.option("--reason", default=None, help="Why, when the class is other.")
@click.option("--started-at", default=None, help="ISO time (default: first anomalous sample).")
@click.option("--detected-at", default=None, help="ISO time (default: now).")
@click.option("--on-call", default=None)
@click.option("--lead", default=None)
@click.option("--release-id", default=None)
@click.option("--alert", "alert_ids", multiple=True, type=int, help="Link a sentinel alert.")
@click.option(
    "--attach/--no-attach",
    default=False,
    show_default=True,
    help="Attach to an open incident of the same service instead.",
)
@click.option("--json", "as_json", is_flag=True)
def open_incident(as_json: bool, **o: Any) -> None:
    """Open an incident by hand."""
    from postmortems.schemas import IncidentIn

    service = _service()
    try:
        data = IncidentIn(
            title=o["title"],
            severity=o["severity"],
            service=o["service_name"],
            incident_class=o["incident_class"],
            class_reason=o["reason"],
            started_at=_time(o["started_at"]),
            detected_at=_time(o["detected_at"]),
            on_call=o["on_call"],
            lead=o["lead"],
            release_id=o["release_id"],
            alert_ids=list(o["alert_ids"]),
            source="cli",
            attach=o["attach"],
        )
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    result = _run(lambda: service.open(data, actor=o["lead"] or "cli"))
    i = result.incident
    verb = "opened" if result.created else "attached to"
    _emit(i, as_json, f"{verb} incident #{i.id} [{i.severity}] {i.title} ({i.service})")


@main.command("list")
@click.option("--open", "open_only", is_flag=True, help="Open and mitigated only.")
@click.option("--service", "service_name", default=None)
@click.option("--json", "as_json", is_flag=True)
def list_incidents(open_only: bool, service_name: str | None, as_json: bool) -> None:
    """List incidents, newest first."""
    from postmortems.markdown import duration

    items = _service().list(open_only=open_only, service=service_name)
    lines = [
        f"#{i.id:<5} {i.severity} {i.status:<9} {i.service:<14} {i.incident_class:<26} "
        f"passive {duration(i.passive_seconds):>12}  {i.title}"
        + ("  SLA BREACHED" if i.sla.response_breached or i.sla.resolution_breached else "")
        for i in items
    ]
    _emit(items, as_json, "\n".join(lines) or "no incidents")


@main.command()
@click.argument("incident_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def show(incident_id: int, as_json: bool) -> None:
    """One incident with its postmortem, actions, timeline and what blocks closing."""
    from postmortems import markdown

    detail = _run(lambda: _service().detail(incident_id))
    human = markdown.render(detail)
    if detail.close_problems and detail.status != "closed":
        human += "\nBefore it can close:\n" + "\n".join(
            f"  {p.field}: {p.message}" for p in detail.close_problems
        )
    _emit(detail, as_json, human)


@main.command()
@click.argument("incident_id", type=int)
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="YAML or JSON with the form's fields ('-' for standard input).",
)
@click.option("--root-cause", default=None)
@click.option("--resolution", default=None, help="How it was eliminated.")
@click.option("--business-impact", default=None)
@click.option("--conclusions", default=None)
@click.option("--release-id", default=None)
@click.option("--rolled-back-at", default=None)
@click.option("--dependency", default=None)
@click.option("--do", "dos", multiple=True, help="A do for the registry.")
@click.option("--dont", "donts", multiple=True, help="A don't for the registry.")
@click.option("--draft", is_flag=True, help="Store even if incomplete.")
@click.option("--json", "as_json", is_flag=True)
def fill(incident_id: int, path: str | None, draft: bool, as_json: bool, **o: Any) -> None:
    """Fill in the postmortem; refused (exit 1) naming every missing field."""
    from postmortems.forms import PostmortemForm

    values: dict[str, Any] = {}
    if path:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise click.UsageError(f"{path}: expected a mapping of form fields")
        values.update(loaded)
    for name in (
        "root_cause",
        "resolution",
        "business_impact",
        "conclusions",
        "release_id",
        "dependency",
    ):
        if o[name] is not None:
            values[name] = o[name]
    if o["rolled_back_at"]:
        values["rolled_back_at"] = _time(o["rolled_back_at"])
    lessons = list(values.get("lessons") or [])
    lessons += [{"kind": "do", "text": t} for t in o["dos"]]
    lessons += [{"kind": "dont", "text": t} for t in o["donts"]]
    values["lessons"] = lessons
    try:
        form = PostmortemForm.model_validate(values)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    detail = _run(lambda: _service().save_postmortem(incident_id, form, "cli", draft=draft))
    state = "complete" if detail.postmortem and detail.postmortem.complete else "draft"
    _emit(detail, as_json, f"postmortem of incident #{incident_id} saved ({state})")


@main.command()
@click.argument("incident_id", type=int)
@click.argument("change", type=click.Choice(["acknowledge", "mitigated", "resolved", "open"]))
@click.option("--at", default=None, help="ISO time (default: now).")
@click.option("--note", default=None)
@click.option("--json", "as_json", is_flag=True)
def status(incident_id: int, change: str, at: str | None, note: str | None, as_json: bool) -> None:
    """Acknowledge, mitigate, resolve or reopen an incident."""
    from postmortems.schemas import TransitionIn

    t = (
        TransitionIn(acknowledge=True, at=_time(at), note=note)
        if change == "acknowledge"
        else TransitionIn(status=change, at=_time(at), note=note)
    )
    detail = _run(lambda: _service().transition(incident_id, t, "cli"))
    _emit(detail, as_json, f"incident #{incident_id}: {detail.status}")


@main.command()
@click.argument("incident_id", type=int)
@click.option("--title", required=True)
@click.option("--kind", required=True, type=click.Choice(["detective", "preventive", "corrective"]))
@click.option("--owner", required=True)
@click.option("--due", "due_date", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--category", type=click.Choice(["sibling_scan", "runbook", "automation"]))
@click.option("--signal", default=None, help="Sentinel signal of a detective action.")
@click.option("--series", default=None)
@click.option("--json", "as_json", is_flag=True)
def action(incident_id: int, as_json: bool, due_date: datetime, **o: Any) -> None:
    """Add an action item (a detective one with --signal is replayed at once)."""
    from postmortems.schemas import ActionIn

    try:
        data = ActionIn(due_date=due_date.date(), **o)
    except ValidationError as exc:
        raise click.UsageError(str(exc)) from exc
    out = _run(lambda: _service().add_action(incident_id, data, "cli"))
    human = f"action #{out.id} added to incident #{incident_id}"
    if out.replay:
        human += "\nreplay: " + json.dumps(out.replay, default=str)
    _emit(out, as_json, human)


@main.command("action-status")
@click.argument("action_id", type=int)
@click.argument("new_status", type=click.Choice(["open", "in_progress", "done", "cancelled"]))
def action_status(action_id: int, new_status: str) -> None:
    """Set an action item's status."""
    from postmortems.schemas import ActionPatch

    out = _run(lambda: _service().update_action(action_id, ActionPatch(status=new_status), "cli"))
    click.echo(f"action #{out.id}: {out.status}")


@main.command()
@click.argument("incident_id", type=int)
@click.option("--draft", is_flag=True, help="Add what the sentinel and the gate recorded.")
@click.option("--at", default=None, help="ISO time of a manual entry.")
@click.option("--text", default=None, help="A manual entry.")
def timeline(incident_id: int, draft: bool, at: str | None, text: str | None) -> None:
    """Draft the timeline from recorded alerts, notifications and releases, or add an entry."""
    from postmortems.schemas import TimelineIn

    service = _service()
    if text:
        _run(
            lambda: service.add_timeline_entry(
                incident_id, TimelineIn(at=_time(at) or service.clock.now(), text=text), "cli"
            )
        )
    if draft:
        _run(lambda: service.draft_timeline(incident_id, "cli"))
    detail = _run(lambda: service.detail(incident_id))
    for t in detail.timeline:
        flag = "  << suspect" if t.suspect else ""
        click.echo(f"{t.at:%Y-%m-%d %H:%M:%S} {t.kind:<12} {t.text}{flag}")


@main.command()
@click.argument("incident_id", type=int)
@click.option("--json", "as_json", is_flag=True)
def close(incident_id: int, as_json: bool) -> None:
    """Close an incident: refused (exit 1) until the postmortem is complete."""
    detail = _run(lambda: _service().close(incident_id, "cli"))
    _emit(detail, as_json, f"incident #{incident_id} closed")


@main.command()
@click.option("--since", default=None, help="ISO date (default: 30 days ago).")
@click.option("--until", default=None, help="ISO date, exclusive (default: tomorrow).")
@click.option("--service", "service_name", default=None)
@click.option("--period", type=click.Choice(["day", "week", "month"]), default="week")
@click.option("--json", "as_json", is_flag=True)
def report(
    since: str | None, until: str | None, service_name: str | None, period: str, as_json: bool
) -> None:
    """Incidents by class, severity and service; phases; SLA; change-failure rate."""
    from postmortems import reports

    service = _service()
    end = _time(until) or datetime.combine(
        service.clock.now().date() + timedelta(days=1), datetime.min.time(), UTC
    )
    start = _time(since) or end - timedelta(days=30)
    result = reports.build(service, start, end, service=service_name, period=period)  # type: ignore[arg-type]
    _emit(result, as_json, reports.render_text(result))


@main.command()
@click.argument("incident_id", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None)
def export(incident_id: int, output: str | None) -> None:
    """The postmortem as Markdown."""
    from postmortems import markdown

    text = markdown.render(_run(lambda: _service().detail(incident_id)))
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--dry-run", is_flag=True, help="Print what is owed, send nothing.")
def remind(dry_run: bool) -> None:
    """Send the reminders owed now (postmortems due, action items overdue)."""
    from postmortems.app import default_sender
    from postmortems.reminders import Reminders

    service = _service()
    if dry_run:
        owed = Reminders(service, sender=lambda _m: 0).due()
        for m in owed:
            click.echo(f"{m.key}: {m.title} → {', '.join(m.to or ['announcement channels'])}")
        click.echo(f"{len(owed)} reminder(s) owed")
        return
    sent = Reminders(service, sender=default_sender(service)).run_once()
    for m in sent:
        click.echo(f"sent {m.key}: {m.title}")
    click.echo(f"{len(sent)} reminder(s) sent")


@main.command()
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--interval", default=30.0, show_default=True)
def watch(once: bool, interval: float) -> None:
    """Open incidents from critical (P0/P1) sentinel alerts and the gate's rollbacks;
    acknowledge incidents whose page was acknowledged."""
    from postmortems.app import Background

    service = _service()
    background = Background(service, interval=interval, reminders=False)
    if once:
        results = background.watcher.run_once()
        if background.releases is not None:
            results += background.releases.run_once()
        for r in results:
            verb = "opened" if r.created else "attached to"
            what = f"release {r.release_id}" if r.release_id else f"alert {r.alert_id}"
            click.echo(f"{what}: {verb} incident #{r.incident_id}")
        for ack in background.acks.run_once():
            click.echo(
                f"alert group {ack.group_id}: incident #{ack.incident_id} acknowledged "
                f"by {ack.acknowledged_by}"
            )
        return
    background.run_forever()


@main.command()
@click.argument("query", required=False)
@click.option("--kind", type=click.Choice(["do", "dont"]), default=None)
@click.option("--service", "service_name", default=None)
@click.option("--json", "as_json", is_flag=True)
def lessons(query: str | None, kind: str | None, service_name: str | None, as_json: bool) -> None:
    """Search the do's and don'ts registry."""
    from postmortems import lessons as registry

    found = registry.search(_service().db, query, kind=kind, service=service_name)
    lines = [
        f"{'DO   ' if item.kind == 'do' else 'DON’T'} {item.text}  (incident #{item.incident_id})"
        for item in found
    ]
    _emit(found, as_json, "\n".join(lines) or "nothing found")
