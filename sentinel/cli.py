"""The ``sentinel`` command."""

from __future__ import annotations

import sys

import click

from common.logs import configure_logging
from common.yaml_config import ConfigError
from sentinel.settings import SentinelSettings


def _sentinel(migrate: bool = True):  # type: ignore[no-untyped-def]
    from sentinel.service import build_sentinel

    settings = SentinelSettings()
    configure_logging(settings.log_level)
    try:
        return build_sentinel(settings, migrate=migrate)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(help="Sentinel: business signals into alerts.")
def main() -> None:
    pass


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the API and, while this replica holds the lease, the evaluation loop."""
    import uvicorn

    from sentinel.api import create_app

    uvicorn.run(create_app(_sentinel()), host=host, port=port, log_config=None, access_log=False)


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
    "csv_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="CSV with header timestamp,value ('-' for standard input).",
)
@click.option("--signal-kind", default=None, help="level, count, ratio, error_ratio or queue.")
@click.option("--detector", default=None, help="Detector name (default: the product's default).")
def backtest(csv_path: str, signal_kind: str | None, detector: str | None) -> None:
    """Replay a recorded series through a detector, causally; CSV on stdout."""
    from sentinel.detectors.backtest import BacktestError, backtest_csv

    try:
        with open(csv_path, newline="") as fh:
            backtest_csv(fh, sys.stdout, signal_kind=signal_kind, detector=detector)
    except BacktestError as exc:
        raise click.ClickException(str(exc)) from exc
