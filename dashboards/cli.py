"""``dashboards export``: Grafana dashboards, Prometheus rules (with their promtool
tests) and an Alertmanager configuration, generated from the signal catalogue."""

from __future__ import annotations

from pathlib import Path

import click

from dashboards.export import KINDS, export, load_tunings


@click.group()
def main() -> None:
    """Dashboards and rules made from the sentinel's signal catalogue."""


@main.command("export")
@click.argument("kinds", nargs=-1, type=click.Choice([*KINDS, "all"]))
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory."
)
@click.option(
    "--catalogue",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Signal catalogue (default: SENTINEL_CATALOGUE, else the built-in one).",
)
@click.option(
    "--sentinel-url",
    help="Where people and Alertmanager reach the sentinel (default: SENTINEL_PUBLIC_URL).",
)
@click.option(
    "--sentinel-database-url",
    help="Read applied tunings from here (default: SENTINEL_DATABASE_URL).",
)
@click.option("--no-tunings", is_flag=True, help="Catalogue thresholds only.")
@click.option(
    "--token-file",
    help="File holding SENTINEL_API_TOKEN, for Alertmanager's bearer token to the webhook.",
)
def export_command(
    kinds: tuple[str, ...],
    out: Path,
    catalogue: Path | None,
    sentinel_url: str | None,
    sentinel_database_url: str | None,
    no_tunings: bool,
    token_file: str | None,
) -> None:
    """Write KINDS (grafana, rules, alertmanager; default all) under OUT:
    grafana/vigil-SERVICE.json, prometheus/vigil-rules.yml and its promtool test,
    alertmanager/alertmanager.yml."""
    from common.yaml_config import ConfigError
    from sentinel.catalogue import load_catalogue
    from sentinel.settings import SentinelSettings

    settings = SentinelSettings()
    chosen = KINDS if not kinds or "all" in kinds else tuple(k for k in KINDS if k in kinds)
    try:
        signals = load_catalogue(catalogue or settings.catalogue)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    tunings: dict = {}
    if not no_tunings and set(chosen) & {"grafana", "rules"}:
        tunings, note = load_tunings(sentinel_database_url or settings.database_url)
        click.echo(note, err=True)
    result = export(
        signals,
        out,
        chosen,
        sentinel_url=(sentinel_url or settings.public_url).rstrip("/"),
        tunings=tunings,
        token_file=token_file,
    )
    for path in result.files:
        click.echo(str(path))
    for note in result.notes:
        click.echo(note, err=True)


if __name__ == "__main__":
    main()


@main.command("serve")
@click.option("--host", default=None, help="Default: CONSOLE_HOST (127.0.0.1).")
@click.option("--port", default=None, type=int, help="Default: CONSOLE_PORT (8400).")
def serve_command(host: str | None, port: int | None) -> None:
    """Serve the web console over the platform's records (settings from CONSOLE_*)."""
    import uvicorn

    from dashboards.console import ConsoleSettings, build_console

    settings = ConsoleSettings()
    uvicorn.run(
        build_console(settings), host=host or settings.host, port=port or settings.port
    )
