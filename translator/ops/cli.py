"""``translator backup``, ``translator restore`` and ``translator report``
(seed 000 §4 and §9), registered on the main command in ``translator.cli``."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import click

from common.clock import SystemClock
from common.logs import configure_logging
from translator.settings import TranslatorSettings


def _settings() -> TranslatorSettings:
    settings = TranslatorSettings()
    configure_logging(settings.log_level, file=settings.log_file)
    return settings


@click.command("backup")
@click.option(
    "--dir",
    "backup_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the archives (default: TRANSLATOR_BACKUP_DIR).",
)
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Delete our backups older than this; 0 keeps all (default: "
    "TRANSLATOR_BACKUP_RETENTION_DAYS).",
)
def backup(backup_dir: Path | None, retention_days: int | None) -> None:
    """Back up the database and the stored files; print the archive paths."""
    from translator.ops.backup import BackupError, create_backup

    settings = _settings()
    try:
        result = create_backup(
            settings.database_url,
            settings.storage_dir,
            backup_dir or settings.backup_dir,
            SystemClock().now(),
            settings.backup_retention_days if retention_days is None else retention_days,
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in result.paths:
        click.echo(str(path))
    for path in result.removed:
        click.echo(f"removed old backup {path}", err=True)


@click.command("restore")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--files",
    "files_archive",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A files_backup_*.tar.gz to restore into TRANSLATOR_STORAGE_DIR as well.",
)
@click.option("--yes", is_flag=True, help="Confirm replacing the current data.")
def restore(archive: Path, files_archive: Path | None, yes: bool) -> None:
    """Replace the database (and with --files the stored files) with a backup,
    then migrate it to the current schema. Stop the API and workers first."""
    from translator.ops.backup import BackupError, restore_backup

    if not yes:
        raise click.ClickException(
            "restore replaces the current database"
            + (" and stored files" if files_archive else "")
            + "; stop the translator and re-run with --yes to confirm"
        )
    settings = _settings()
    try:
        result = restore_backup(archive, settings.database_url, settings.storage_dir, files_archive)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restored {archive} (schema {result.backup_revision}, now {result.revision})")
    if result.files_archive is not None:
        click.echo(
            f"restored {result.files_restored} files from {result.files_archive} "
            f"into {settings.storage_dir}"
        )


@click.command("report")
@click.argument("period", type=click.Choice(["daily", "weekly"]))
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The UTC day (daily) or last day of the week (weekly); default today.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the figures to this CSV file.",
)
def report(period: str, day: datetime | None, csv_path: Path | None) -> None:
    """Print the daily or weekly figures of seed 000 §9."""
    from sqlalchemy.exc import SQLAlchemyError

    from common.db import make_engine
    from translator.ops.report import daily_report, weekly_report

    settings = _settings()
    when: date | None = day.date() if day else None
    engine = make_engine(settings.database_url, read_only=True)
    try:
        if period == "daily":
            result = daily_report(engine, when, SystemClock())
        else:
            result = weekly_report(engine, when, SystemClock())
    except SQLAlchemyError as exc:
        first_line = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise click.ClickException(f"reading the database failed: {first_line}") from exc
    finally:
        engine.dispose()
    click.echo(result.render())
    if csv_path is not None:
        try:
            result.to_csv(csv_path)
        except OSError as exc:
            raise click.ClickException(f"writing {csv_path} failed: {exc}") from exc
        click.echo(f"\nwrote {csv_path}")
