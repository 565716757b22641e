"""``vigil-admin``: the platform's accounts and tokens, on the identity store
named by ``VIGIL_IDENTITY_DATABASE_URL`` (whoever can reach that database is an
administrator; over HTTP only an admin token could). A token is printed once,
when it is made."""

from __future__ import annotations

import json
import sys

import click

from common.identity.models import AccountKind, Role
from common.identity.store import IdentityError, IdentityStore, open_store

ROLES = click.Choice([r.value for r in Role])


def _store() -> IdentityStore:
    return open_store()


def _fail(exc: Exception) -> None:
    click.echo(f"vigil-admin: {exc}", err=True)
    sys.exit(1)


@click.group(help="Platform accounts, roles and API tokens (one store for every service).")
def main() -> None:
    pass


@main.command()
def bootstrap() -> None:
    """Create the first admin if the store has no account (as a service's first start
    does), printing its token once; with VIGIL_ADMIN_TOKEN set, that token is used."""
    open_store(announce=True)


@main.group()
def account() -> None:
    """People and service accounts."""


@account.command("create")
@click.argument("name")
@click.option("--role", type=ROLES, required=True)
@click.option("--service", "is_service", is_flag=True, help="A pipeline or a peer, not a person.")
@click.option("--label", default="", help="What the first token is for (e.g. the CI job).")
@click.option("--no-token", is_flag=True, help="Create the account without a token.")
def account_create(name: str, role: str, is_service: bool, label: str, no_token: bool) -> None:
    """Create account NAME and print its first token (shown this once)."""
    store = _store()
    kind = AccountKind.service if is_service else AccountKind.person
    try:
        store.create_account(name, Role(role), kind)
        if not no_token:
            click.echo(store.issue_token(name, label))
    except IdentityError as exc:
        _fail(exc)
    click.echo(f"created {kind.value} account {name} ({role})", err=True)


@account.command("list")
@click.option("--json", "as_json", is_flag=True)
def account_list(as_json: bool) -> None:
    rows = [
        {
            "name": a.name,
            "kind": a.kind.value,
            "role": a.role.value,
            "created_at": a.created_at.isoformat(),
            "disabled": a.disabled_at is not None,
        }
        for a in _store().accounts()
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        flag = "  DISABLED" if r["disabled"] else ""
        click.echo(f"{r['name']:<24} {r['kind']:<8} {r['role']:<16}{flag}")


@account.command("role")
@click.argument("name")
@click.argument("role", type=ROLES)
def account_role(name: str, role: str) -> None:
    """Give account NAME another role."""
    try:
        _store().set_role(name, Role(role))
    except IdentityError as exc:
        _fail(exc)


@account.command("disable")
@click.argument("name")
def account_disable(name: str) -> None:
    """Every token of NAME stops working at once."""
    try:
        _store().disable(name)
    except IdentityError as exc:
        _fail(exc)


@main.group()
def token() -> None:
    """API tokens: several per account, each revocable."""


@token.command("create")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
def token_create(name: str, label: str) -> None:
    """A new token for account NAME, printed once."""
    try:
        click.echo(_store().issue_token(name, label))
    except IdentityError as exc:
        _fail(exc)


@token.command("list")
@click.argument("name", required=False)
def token_list(name: str | None) -> None:
    """Tokens (their first characters only), of NAME or of everyone."""
    for t in _store().tokens(name):
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "live"
        click.echo(f"{t.id:>5}  {t.account:<24} {t.hint}…  {state:<24} {t.label}")


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Token TOKEN_ID stops working at once."""
    try:
        info = _store().revoke(token_id)
    except IdentityError as exc:
        _fail(exc)
    click.echo(f"revoked token {info.id} of {info.account}", err=True)


@main.command()
@click.option("--limit", default=50, show_default=True)
@click.option("--actor", default=None, help="Only this account's requests.")
def audit(limit: int, actor: str | None) -> None:
    """The latest state changes and refusals, across every service, newest first."""
    for r in _store().audit_trail(limit, actor):
        click.echo(
            f"{r.at:%Y-%m-%d %H:%M:%S}  {r.service:<12} {r.actor or '-':<20} "
            f"{r.method:<6} {r.path}  {r.status} {r.outcome}"
        )
