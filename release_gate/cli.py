"""The `release-gate` command. Its subcommands arrive with the component."""

import sys

import click

from common.bounds import MAX_FREEZE


@click.group(help="Release gate for CI: locks, canary, judge, rollback.")
def main() -> None:
    pass


@main.command()
@click.option(
    "--input",
    "input_file",
    required=True,
    type=click.File("r"),
    help='JSON {"canary": [samples], "control": [samples]} (\'-\' for standard input).',
)
@click.option(
    "--config",
    "config_file",
    default=None,
    type=click.File("r"),
    help="YAML or JSON judge settings (alpha, max_regression, ...); default: the product's.",
)
def judge(input_file, config_file) -> None:  # type: ignore[no-untyped-def]
    """Replay the judge on recorded counts; one JSON verdict on stdout.

    Exit 0 with the verdict (whatever it is); exit 2, with the reason on stderr and
    nothing on stdout, when the input or the settings are not valid."""
    from common.yaml_config import ConfigError, parse_yaml_model
    from release_gate.judge import JudgeConfig
    from release_gate.judge import judge as run_judge
    from release_gate.judge.reading import JudgeInputError, parse_judge_input

    try:
        config = (
            parse_yaml_model(config_file.read(), JudgeConfig, source=config_file.name)
            if config_file is not None
            else JudgeConfig()
        )
        data = parse_judge_input(input_file.read(), source=input_file.name)
    except (JudgeInputError, ConfigError) as exc:
        click.echo(f"release-gate judge: {exc}", err=True)
        sys.exit(2)
    except UnicodeDecodeError as exc:
        click.echo(f"release-gate judge: not UTF-8 text: {exc}", err=True)
        sys.exit(2)
    click.echo(run_judge(data, config, final=True).model_dump_json())


# -- releases ------------------------------------------------------------------------------


def _settings():  # type: ignore[no-untyped-def]
    import logging

    from common.logs import configure_logging
    from common.secrets import register_secrets, url_password
    from release_gate.settings import GateSettings

    settings = GateSettings()
    register_secrets(
        [
            settings.sentinel_token,
            settings.postmortems_token,
            url_password(settings.database_url),
        ]
    )
    configure_logging(settings.log_level)
    # CI reads stderr: the schema check on every call is not news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return settings


def _gate(settings):  # type: ignore[no-untyped-def]
    """The gate, or exit 4 with the configuration's problem (file:line: field: error)."""
    from common.yaml_config import ConfigError
    from release_gate.build import build_gate

    try:
        return build_gate(settings)
    except ConfigError as exc:
        click.echo(f"release-gate: {exc}", err=True)
        sys.exit(4)


def _database(settings):  # type: ignore[no-untyped-def]
    from release_gate.db import Database

    db = Database(settings.database_url)
    db.migrate()
    return db


def _releaser(claimed: str | None) -> str:
    """The account of VIGIL_TOKEN, if it may deploy; else exit 4 saying why."""
    import os

    from common.identity import Role, open_store

    token = os.environ.get("VIGIL_TOKEN", "").strip()
    if not token:
        click.echo(
            "release-gate deploy: set VIGIL_TOKEN to a release manager's platform token "
            "(vigil-admin token create ACCOUNT)",
            err=True,
        )
        sys.exit(4)
    try:
        caller = open_store().authenticate(token)
    except Exception as exc:  # noqa: BLE001 - e.g. the store's database is down: exit 4
        click.echo(f"release-gate deploy: identity store: {exc}", err=True)
        sys.exit(4)
    if caller is None:
        click.echo("release-gate deploy: VIGIL_TOKEN is not a live platform token", err=True)
        sys.exit(4)
    if not caller.may(Role.release_manager):
        click.echo(
            f"release-gate deploy: {caller.name} is a {caller.role.value}; "
            "deploying needs release_manager",
            err=True,
        )
        sys.exit(4)
    if claimed is not None and claimed != caller.name:
        click.echo(
            f"release-gate deploy: --author {claimed} is not VIGIL_TOKEN's account ({caller.name})",
            err=True,
        )
        sys.exit(4)
    return caller.name


def _actor(claimed: str | None) -> str:
    """Who freezes or lifts a freeze: a release manager, as over HTTP."""
    from common.identity import Role
    from common.identity.actor import cli_actor

    return cli_actor(claimed, Role.release_manager)


def _emit_receipt(receipt, receipt_file: str | None) -> None:  # type: ignore[no-untyped-def]
    text = receipt.model_dump_json(indent=2)
    if receipt_file:
        from pathlib import Path

        from common.files import write_atomic

        write_atomic(Path(receipt_file), text + "\n")
    else:
        click.echo(text)
    click.echo(receipt.summary, err=True)


@main.command()
@click.option("--service", required=True, help="A service of the gate's configuration.")
@click.option("--version", "version", required=True, help="The version to release.")
@click.option(
    "--author",
    default=None,
    help="Optional check: the account VIGIL_TOKEN belongs to (who releases is that account).",
)
@click.option(
    "--override",
    "override_reason",
    default=None,
    metavar="REASON",
    help="Release through a lock, a freeze or an incident; audited and announced.",
)
@click.option(
    "--receipt",
    "receipt_file",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write the JSON receipt here instead of standard output.",
)
def deploy(
    service: str,
    version: str,
    author: str | None,
    override_reason: str | None,
    receipt_file: str | None,
) -> None:
    """Release VERSION of SERVICE through the canary. Exit 0 promoted, 1 rolled
    back, 2 refused (nothing deployed), 3 inconclusive (old version left), 4
    infrastructure error or no release manager's token.

    Who releases (the lock's holder, exempt from its own cooldown) is the account
    of the platform token in VIGIL_TOKEN: CI deploys with a service account named
    after its pipeline (``vigil-admin account create ci-translator --service
    --role release_manager``)."""
    import signal

    from release_gate.service import DeployRequest, GateError

    settings = _settings()
    author = _releaser(author)
    gate = _gate(settings)

    def _interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGTERM (a cancelled CI job) rolls the canary back like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupted)
    request = DeployRequest(service, version, author, override_reason)
    try:
        release_id, admitted = gate.admit(request)
    except GateError as exc:
        click.echo(f"release-gate deploy: {exc}", err=True)
        sys.exit(4)
    except Exception as exc:  # e.g. the database is down: never exit 1 ("rolled back")
        click.echo(f"release-gate deploy: infrastructure error: {exc}", err=True)
        sys.exit(4)
    try:
        receipt = gate.run(release_id) if admitted else gate.receipt(release_id)
    except KeyboardInterrupt:
        receipt = gate.receipt(release_id)
    except Exception as exc:
        click.echo(f"release-gate deploy: infrastructure error: {exc}", err=True)
        sys.exit(4)
    _emit_receipt(receipt, receipt_file)
    sys.exit(receipt.exit_code if receipt.exit_code is not None else 4)


@main.command()
@click.option("--service", default=None, help="Only this service's releases.")
def recover(service: str | None) -> None:
    """Put right releases whose gate died: the canary goes back to the previous
    version (a release killed while promoting finishes its promotion)."""
    from release_gate.deployers.base import DeployError
    from release_gate.recovery import abandoned_releases, recover_release

    gate = _gate(_settings())
    abandoned = abandoned_releases(gate, service)
    if not abandoned:
        click.echo("no abandoned releases", err=True)
        return
    failed = 0
    for release in abandoned:
        try:
            receipt = recover_release(gate, release)
        except DeployError as exc:
            failed += 1
            click.echo(f"release {release.id}: recovery failed: {exc}", err=True)
            continue
        if receipt is not None:
            click.echo(receipt.model_dump_json())
            click.echo(receipt.summary, err=True)
    sys.exit(4 if failed else 0)


@main.command()
@click.option("--service", default=None)
@click.option(
    "--days", default=30.0, show_default=True, type=click.FloatRange(min=0, max=3660, min_open=True)
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def history(service: str | None, days: float, as_json: bool) -> None:
    """Releases of the last DAYS days and the change-failure rate."""
    import json
    from datetime import UTC, datetime, timedelta

    from release_gate.history import change_failure_rate, releases_between

    db = _database(_settings())
    end = datetime.now(UTC) + timedelta(seconds=1)
    start = end - timedelta(days=days)
    releases = releases_between(db, start, end, service)
    rate = change_failure_rate(db, start, end, service)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "releases": [r.model_dump(mode="json") for r in releases],
                    "change_failure_rate": rate.model_dump(mode="json"),
                }
            )
        )
        return
    for r in releases:
        when = r.started_at.strftime("%Y-%m-%d %H:%M")
        click.echo(
            f"{r.id:>5}  {when}  {r.service:<14} {r.version:<14} {r.author:<12} {r.status:<12}"
            + (f"  override: {r.override_reason}" if r.override_reason else "")
        )
    shown = "n/a" if rate.rate is None else f"{rate.rate:.1%}"
    click.echo(f"change-failure rate: {rate.failed}/{rate.releases} = {shown} over {days:g} days")


# -- locks and freezes -----------------------------------------------------------------------


@main.command()
@click.option("--reason", required=True)
@click.option(
    "--by", "created_by", default=None, help="Who freezes; default: VIGIL_TOKEN's account."
)
@click.option("--service", default=None, help="Default: every service.")
@click.option(
    "--minutes",
    default=None,
    type=click.FloatRange(min=0, max=MAX_FREEZE.total_seconds() / 60, min_open=True),
    help="How long (or --until).",
)
@click.option("--until", "until", default=None, help="ISO time the freeze ends (UTC if no zone).")
def freeze(
    reason: str,
    created_by: str | None,
    service: str | None,
    minutes: float | None,
    until: str | None,
) -> None:
    """Forbid releases until an expiry, with a reason."""
    from datetime import UTC, datetime, timedelta

    from common.clock import ensure_utc
    from release_gate.freezes import FreezeError, create_freeze

    now = datetime.now(UTC)
    if (minutes is None) == (until is None):
        raise click.UsageError("give exactly one of --minutes and --until")
    try:
        expires = (
            now + timedelta(minutes=minutes)
            if minutes is not None
            else ensure_utc(datetime.fromisoformat(until or ""))
        )
    except (ValueError, OverflowError) as exc:
        raise click.UsageError(f"--until: {exc}") from exc
    created_by = _actor(created_by)
    db = _database(_settings())
    try:
        with db.session() as session:
            info = create_freeze(
                session,
                service=service,
                reason=reason,
                created_by=created_by,
                expires_at=expires,
                now=now,
            )
    except FreezeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(info.model_dump_json())
    click.echo(info.describe(), err=True)


@main.command()
@click.argument("freeze_id", type=int)
@click.option(
    "--by", "lifted_by", default=None, help="Who lifts it; default: VIGIL_TOKEN's account."
)
def unfreeze(freeze_id: int, lifted_by: str | None) -> None:
    """Lift a freeze before it expires."""
    from datetime import UTC, datetime

    from release_gate.freezes import FreezeError, lift_freeze

    lifted_by = _actor(lifted_by)
    db = _database(_settings())
    try:
        with db.session() as session:
            info = lift_freeze(session, freeze_id, lifted_by, datetime.now(UTC))
    except FreezeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(info.model_dump_json())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def locks(as_json: bool) -> None:
    """Release locks and the freezes in force."""
    import json
    from datetime import UTC, datetime

    from release_gate.freezes import active_freezes
    from release_gate.locks import list_locks

    db = _database(_settings())
    now = datetime.now(UTC)
    with db.sessions() as session:
        held = list_locks(session, now, active_only=True)
        frozen = active_freezes(session, None, now)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "locks": [lock.model_dump(mode="json") for lock in held],
                    "freezes": [f.model_dump(mode="json") for f in frozen],
                }
            )
        )
        return
    for lock in held:
        until = lock.until.strftime("%Y-%m-%d %H:%M:%S UTC") if lock.until else "-"
        click.echo(
            f"{lock.service:<14} {lock.state:<10} {lock.holder or '-':<12} until {until}"
            f"  (release {lock.release_id}, {lock.version})"
        )
    for f in frozen:
        click.echo(f.describe())
    if not held and not frozen:
        click.echo("no locks, no freezes")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8200, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """The same over HTTP: POST /api/releases, GET /api/releases, locks, freezes."""
    import uvicorn

    from common.identity import open_store
    from release_gate.api import create_app

    settings = _settings()
    uvicorn.run(
        create_app(_gate(settings), identity=open_store(announce=True)),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
    )
