"""Who acts through a command-line tool that writes a service's database
directly (acknowledging a page, a silence, a freeze): the account of
``VIGIL_TOKEN`` when one is set, as ``release-gate deploy`` takes its author,
so the record names a platform identity rather than free text. ``--by``, if
given too, must name that account (nobody acts as someone else). Without a
token the operator's ``--by`` is recorded as before: whoever reaches the
database directly is trusted with it."""

from __future__ import annotations

import os

import click

from common.identity.models import Role
from common.identity.store import open_store


def cli_actor(claimed: str | None, role: Role, fallback: str | None = None) -> str:
    """The name to record for a command that needs ``role``; ``claimed`` is its
    ``--by``; ``fallback``: what a command without a token nor ``--by`` records
    (None: one of the two is required)."""
    claimed = claimed.strip() if claimed and claimed.strip() else None
    token = os.environ.get("VIGIL_TOKEN", "").strip()
    if not token:
        if claimed is None and fallback is None:
            raise click.UsageError("give --by NAME, or set VIGIL_TOKEN to your platform token")
        return claimed or fallback or ""
    store = None
    try:
        store = open_store()
        caller = store.authenticate(token)
    except Exception as exc:  # noqa: BLE001 - e.g. the store's database is down
        raise click.ClickException(f"identity store: {exc}") from exc
    finally:
        if store is not None:
            store.dispose()
    if caller is None:
        raise click.ClickException("VIGIL_TOKEN is not a live platform token")
    if not caller.may(role):
        raise click.ClickException(
            f"{caller.name} is a {caller.role.value}; this needs {role.value}"
        )
    if claimed is not None and claimed != caller.name:
        raise click.ClickException(f"--by {claimed} is not VIGIL_TOKEN's account ({caller.name})")
    return caller.name
