"""The ``translator`` command: serve the API, run workers, and the ops
procedures of seed 000 (retry a file, reset stuck jobs, backups, reports)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta

import click

from common.logs import configure_logging, get_logger
from common.yaml_config import ConfigError
from translator.settings import TranslatorSettings

log = get_logger(__name__)


def _services(migrate: bool = True):  # type: ignore[no-untyped-def]
    from translator.services import build_services

    settings = TranslatorSettings()
    configure_logging(settings.log_level, file=settings.log_file)
    try:
        return build_services(settings, migrate=migrate)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(help="The document-translation service.")
def main() -> None:
    pass


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    "worker_threads",
    type=int,
    default=None,
    help="Worker threads in this process (default: TRANSLATOR_WORKERS).",
)
def serve(host: str, port: int, worker_threads: int | None) -> None:
    """Run the API with its workers and scheduler (database migrated first)."""
    import uvicorn

    from common.identity import open_store
    from translator.app import create_app

    services = _services()
    if worker_threads is not None:
        services.workers.size = worker_threads
    app = create_app(services, identity=open_store(announce=True))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


@main.command()
@click.option(
    "--threads", type=int, default=None, help="Worker threads (default: TRANSLATOR_WORKERS)."
)
def worker(threads: int | None) -> None:
    """Run queue workers only, without the API (scale out on one database)."""
    import signal
    import threading

    services = _services()
    if threads is not None:
        services.workers.size = threads
    services.workers.start()
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    services.workers.stop()


@main.command()
def migrate() -> None:
    """Create the database or bring it to the latest schema."""
    services = _services()
    click.echo(
        f"database at {services.db.engine.url.render_as_string(hide_password=True)} "
        "is at the latest schema"
    )


@main.command("create-user")
@click.argument("email")
@click.option("--name", default="")
@click.option("--admin", is_flag=True, help="Give the user the admin role.")
def create_user_cmd(email: str, name: str, admin: bool) -> None:
    """Create a user and print its API token (shown once)."""
    from translator.accounts.models import UserRole
    from translator.accounts.service import create_user
    from translator.errors import TranslatorError

    services = _services()
    try:
        with services.db.session() as s:
            user, token = create_user(
                s, email, services.clock.now(), name, UserRole.admin if admin else UserRole.user
            )
    except TranslatorError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(json.dumps({"id": user.id, "email": user.email, "api_token": token}))


@main.command("retry-file")
@click.argument("file_id", type=int)
@click.option("--provider", default=None, help="Provider for the new job (default: the file's).")
def retry_file_cmd(file_id: int, provider: str | None) -> None:
    """Reset a file and queue a new translation ahead of normal work (seed 000 §8.2)."""
    from translator.errors import TranslatorError
    from translator.jobs.service import retry_file

    services = _services()
    try:
        with services.db.session() as s:
            job = retry_file(s, services.storage, file_id, services.clock.now(), provider)
    except TranslatorError as exc:
        raise click.ClickException(exc.detail) from exc
    click.echo(f"file {file_id} queued for retry as job {job.id}")


@main.command("reset-stuck")
@click.option(
    "--older-than",
    "older_than",
    default=60,
    show_default=True,
    type=int,
    help="Minutes a job must have been processing to count as stuck.",
)
def reset_stuck(older_than: int) -> None:
    """Put jobs stuck in processing back in the queue (seed 000 §7.2)."""
    from translator.ops.maintenance import check_and_fix_stuck_jobs

    services = _services()
    report = check_and_fix_stuck_jobs(
        services, services.clock.now(), stuck_after=timedelta(minutes=older_than)
    )
    click.echo(
        f"requeued {report.jobs_requeued}, failed {report.jobs_failed}, "
        f"files fixed {report.files_fixed}"
    )


@main.command("check-files")
@click.option(
    "--limit", default=50, show_default=True, type=int, help="Paths to list of each kind."
)
def check_files_cmd(limit: int) -> None:
    """List rows whose file is missing and files no row points to (seed 000 §7.3)."""
    from translator.files.consistency import check_files

    services = _services()
    with services.db.session() as s:
        check = check_files(s, services.storage, services.clock.now())
    click.echo(
        f"{check.rows} rows, {check.files_on_disk} files {services.storage.describe()}: "
        f"{len(check.missing)} missing, {len(check.orphaned)} orphaned"
    )
    for missing in check.missing[:limit]:
        click.echo(f"missing  file_id={missing.file_id} {missing.which} {missing.path}")
    for path in check.orphaned[:limit]:
        click.echo(f"orphaned {path}")
    # The same summary in the log, where the log signals and a grep find it.
    report = log.warning if check.missing or check.orphaned else log.info
    report(
        "files.checked", rows=check.rows, missing=len(check.missing),
        orphaned=len(check.orphaned),
    )  # fmt: skip


@main.command("run-job")
@click.argument(
    "name",
    type=click.Choice(
        ["check_stuck_jobs", "cleanup_expired_temp_files", "process_recurring_subscriptions"]
    ),
)
def run_job(name: str) -> None:
    """Run one scheduled maintenance job now (ignores the once-per-slot guard)."""
    from translator.ops.scheduler import JOBS

    services = _services()
    job = next(j for j in JOBS if j.name == name)
    click.echo(f"{name}: {job.run(services, services.clock.now())}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--duration", default=0.0, type=float, help="Seconds to run; 0 runs until Ctrl-C.")
@click.option(
    "--history-days",
    default=14,
    show_default=True,
    type=int,
    help="Days of backdated payments and jobs to seed (once per database).",
)
def demo(host: str, port: int, duration: float, history_days: int) -> None:
    """Serve the translator with seeded users, history and live traffic."""
    from translator.demo import run_demo

    run_demo(_services(), host, port, duration, history_days)


def _register_optional() -> None:
    from translator.llm.cli import diagnose
    from translator.ops.cli import backup, report, restore

    main.add_command(diagnose)
    main.add_command(backup)
    main.add_command(restore)
    main.add_command(report)


_register_optional()

if __name__ == "__main__":
    sys.exit(main())
