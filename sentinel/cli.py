"""The ``sentinel`` command."""

from __future__ import annotations

import sys

import click

from common.logs import configure_logging
from common.yaml_config import ConfigError
from sentinel.alerting.cli import register as register_alerting_commands
from sentinel.settings import SentinelSettings
from sentinel.sources.config import SourceConfigError


def _sentinel(migrate: bool = True):  # type: ignore[no-untyped-def]
    from sentinel.service import build_sentinel

    settings = SentinelSettings()
    configure_logging(settings.log_level)
    try:
        return build_sentinel(settings, migrate=migrate)
    except (ConfigError, SourceConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(help="Sentinel: business signals into alerts.")
def main() -> None:
    pass


register_alerting_commands(main)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the API and, while this replica holds the lease, the evaluation loop."""
    import uvicorn

    from common.identity import open_store
    from sentinel.api import create_app

    app = create_app(_sentinel(), identity=open_store(announce=True))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


@main.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def check(path: str | None) -> None:
    """Validate a signal catalogue (default: SENTINEL_CATALOGUE)."""
    from sentinel.catalogue import load_catalogue

    target = path or str(SentinelSettings().catalogue)
    try:
        catalogue = load_catalogue(target)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    for spec in catalogue.signals:
        click.echo(f"{spec.name:<36} {spec.kind:<12} {spec.source.type:<7} {spec.severity}")
    click.echo(f"{target}: {len(catalogue.signals)} signals, valid")


@main.command()
@click.option(
    "--csv",
    "csv_file",
    required=True,
    type=click.File("r"),
    help="CSV with header timestamp,value ('-' for standard input).",
)
@click.option("--signal-kind", default=None, help="level, count, ratio, error_ratio or queue.")
@click.option("--detector", default=None, help="Detector name (default: the product's default).")
@click.option(
    "--flap-minutes",
    default=None,
    type=float,
    help="A re-fire this soon after an alert resolved is the same alert, not a new page "
    "(default: the alerting's default flap_minutes, 15; 0: every firing episode pages).",
)
def backtest(  # type: ignore[no-untyped-def]
    csv_file, signal_kind: str | None, detector: str | None, flap_minutes: float | None
) -> None:
    """Replay a recorded series through a detector, causally, in file order; CSV on stdout
    (timestamp,value,score,firing,alert). Exit 0, or 1 on bad input (naming the line)."""
    from sentinel.detectors.backtest import DEFAULT_FLAP_MINUTES, BacktestError, backtest_csv

    try:
        backtest_csv(
            csv_file,
            sys.stdout,
            signal_kind=signal_kind,
            detector=detector,
            flap_minutes=DEFAULT_FLAP_MINUTES if flap_minutes is None else flap_minutes,
            notices=sys.stderr,
        )
    except (BacktestError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("backfill")
@click.argument("signal")
@click.option("--days", default=30.0, show_default=True, type=float)
@click.option(
    "--step",
    "step_seconds",
    default=None,
    type=float,
    help="Seconds between samples (default: the signal's interval).",
)
def backfill_cmd(signal: str, days: float, step_seconds: float | None) -> None:
    """Fill a signal's history from the business tables' timestamps."""
    from datetime import timedelta

    from sentinel.operations import backfill_signal
    from sentinel.sources.base import BackfillUnsupported

    sentinel = _sentinel()
    try:
        count = backfill_signal(
            sentinel, signal, days, timedelta(seconds=step_seconds) if step_seconds else None
        )
    except (KeyError, BackfillUnsupported, ValueError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from exc
    finally:
        sentinel.close()
    click.echo(f"{signal}: stored {count} samples over {days:g} days")


def _parse_budget(text: str) -> float:
    """'1/week', '2/day', '0.5' (per week)."""
    amount, _, per = text.partition("/")
    try:
        value = float(amount)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a number per week, e.g. 1/week") from None
    factor = {"": 1, "week": 1, "w": 1, "day": 7, "d": 7}.get(per.strip().lower())
    if factor is None:
        raise click.BadParameter(f"{text!r}: the period is week or day")
    return value * factor


def _parse_incident(text: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    try:
        start, end = (datetime.fromisoformat(p.strip()) for p in text.split("/"))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use START/END in ISO 8601") from None
    return tuple(x if x.tzinfo else x.replace(tzinfo=UTC) for x in (start, end))


@main.command("tune")
@click.argument("signal")
@click.option("--days", default=30.0, show_default=True, type=float, help="How far back to replay.")
@click.option(
    "--budget",
    default="1/week",
    show_default=True,
    help="False alerts allowed outside known incidents, e.g. 1/week.",
)
@click.option(
    "--incident",
    "incidents",
    multiple=True,
    help="A known incident START/END (ISO 8601), to be caught. Repeatable.",
)
@click.option(
    "--chart-dir", default="var/charts", show_default=True, type=click.Path(file_okay=False)
)
@click.option("--propose", is_flag=True, help="Record as a proposal instead of applying it.")
def tune_cmd(
    signal: str, days: float, budget: str, incidents: tuple[str, ...], chart_dir: str, propose: bool
) -> None:
    """Choose a signal's threshold from its history and show what it would have done."""
    from datetime import UTC, datetime
    from pathlib import Path

    from sentinel.operations import tune_signal

    budget_per_week = _parse_budget(budget)
    spans = [_parse_incident(i) for i in incidents]
    sentinel = _sentinel()
    try:
        tuned = tune_signal(
            sentinel,
            signal,
            days,
            budget_per_week,
            spans,
            Path(chart_dir),
            apply=not propose,
            by="cli",
        )
    except (KeyError, LookupError, ValueError) as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from exc
    finally:
        sentinel.close()
    for item in tuned:
        r = item.result
        click.echo(f"== {signal}{'{' + item.series + '}' if item.series else ''}")
        click.echo(f"   detector: {r.spec.kind} {r.spec.params} for_samples={r.spec.for_samples}")
        click.echo(
            f"   replayed {r.provenance.samples} samples, "
            f"{r.provenance.weeks_judged:.1f} weeks judged; budget "
            f"{budget_per_week:g}/week"
        )
        click.echo(
            f"   would-be alerts: {r.backtest.alerts_total} "
            f"({r.backtest.alerts_outside_incidents} outside incidents, "
            f"{r.backtest.false_alerts_per_week:.2f}/week); incidents caught "
            f"{r.backtest.incidents_caught}/{len(r.incidents)}"
        )
        for alert in r.alerts[:20]:
            when = datetime.fromtimestamp(alert.start, UTC).strftime("%Y-%m-%d %H:%M")
            tag = "incident" if alert.inside_incident else "false"
            click.echo(f"     {when} UTC  peak {alert.peak_value}  ({tag})")
        for note in r.notes:
            click.echo(f"   note: {note}")
        status = "proposed" if propose else "applied"
        click.echo(f"   {status} as tuning #{item.tuning_id}; chart: {item.chart}")


@main.group("tunings")
def tunings_group() -> None:
    """Tuned thresholds: list them, accept or reject the re-tune's proposals."""


@tunings_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include superseded and rejected ones.")
def tunings_list(show_all: bool) -> None:
    from sqlalchemy import select

    from sentinel.models import Tuning, TuningStatus

    sentinel = _sentinel()
    with sentinel.db.session() as s:
        query = select(Tuning).order_by(Tuning.signal, Tuning.series, Tuning.id)
        if not show_all:
            query = query.where(Tuning.status.in_([TuningStatus.applied, TuningStatus.proposed]))
        for t in s.scalars(query):
            fpw = t.provenance.get("false_alerts_per_week", "?")
            series = "{" + t.series + "}" if t.series else ""
            click.echo(
                f"#{t.id:<5} {t.status.value:<10} {t.signal}{series}"
                f"  {t.spec.get('kind')} {t.spec.get('params')}  ~{fpw} false/week"
                f"  {t.created_at:%Y-%m-%d}"
            )
    sentinel.close()


BY_HELP = "Who decided; default: the account of VIGIL_TOKEN (which it must name), else 'cli'."


@tunings_group.command("accept")
@click.argument("tuning_id", type=int)
@click.option("--by", default=None, help=BY_HELP)
def tunings_accept(tuning_id: int, by: str | None) -> None:
    _decide(tuning_id, True, by)


@tunings_group.command("reject")
@click.argument("tuning_id", type=int)
@click.option("--by", default=None, help=BY_HELP)
def tunings_reject(tuning_id: int, by: str | None) -> None:
    _decide(tuning_id, False, by)


def _decide(tuning_id: int, accept: bool, by: str | None) -> None:
    from common.identity import Role
    from common.identity.actor import cli_actor
    from sentinel import tunings

    by = cli_actor(by, Role.responder, fallback="cli")
    sentinel = _sentinel()
    try:
        row = tunings.decide(sentinel.db, tuning_id, accept, by, sentinel.clock.now())
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        sentinel.close()
    click.echo(f"tuning #{row.id} for {row.signal} {row.status.value}")


if __name__ == "__main__":
    main()
