"""The identity store itself: the first start's admin, tokens hashed at rest
and shown once, revocation, roles, and the strict bearer header."""

from __future__ import annotations

import hashlib
import threading

import pytest
from fastapi import HTTPException
from pydantic import SecretStr
from sqlalchemy import text

from common.identity import IdentityError, IdentitySettings, Role, open_store, parse_bearer
from common.identity.models import AccountKind


@pytest.fixture
def settings(database_url: str, platform_identity: str) -> IdentitySettings:
    """The test's store, without an admin token in the environment."""
    return IdentitySettings(identity_database_url=platform_identity, admin_token=None)


def test_the_first_start_prints_a_random_admin_token_once_and_keeps_only_its_hash(
    settings: IdentitySettings, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(settings, announce=True)
    printed = capsys.readouterr().err
    (token,) = [line.strip() for line in printed.splitlines() if line.strip().startswith("vgl_")]
    assert store.authenticate(token).name == "admin"  # type: ignore[union-attr]
    assert store.authenticate(token).role is Role.admin  # type: ignore[union-attr]
    with store.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT token_hash, hint FROM identity_tokens")).all()
    assert rows == [(hashlib.sha256(token.encode()).hexdigest(), token[:8])]
    store.dispose()

    again = open_store(settings, announce=True)  # a second start, or another service's
    assert capsys.readouterr().err == ""
    assert [a.name for a in again.accounts()] == ["admin"]
    again.dispose()


def test_an_admin_token_from_the_environment_is_used_and_never_printed(
    settings: IdentitySettings, capsys: pytest.CaptureFixture[str]
) -> None:
    given = "vgl_from-the-operators-vault-0001"
    store = open_store(settings.model_copy(update={"admin_token": SecretStr(given)}), announce=True)
    assert capsys.readouterr().err == ""
    assert store.authenticate(given).name == "admin"  # type: ignore[union-attr]
    with pytest.raises(IdentityError, match="shorter than 20"):
        store.bootstrap("short")
    store.dispose()


def test_services_starting_at_once_make_one_admin(settings: IdentitySettings) -> None:
    store = open_store(settings)
    made: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: made.append(store.bootstrap(None))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([m for m in made if m]) == 1
    assert [(a.name, a.role) for a in store.accounts()] == [("admin", Role.admin)]
    store.dispose()


def test_revoked_tokens_and_disabled_accounts_stop_at_once(settings: IdentitySettings) -> None:
    store = open_store(settings)
    store.create_account("ci-translator", Role.release_manager, AccountKind.service)
    first = store.issue_token("ci-translator", "pipeline")
    second = store.issue_token("ci-translator", "spare")
    assert first != second
    caller = store.authenticate(first)
    assert caller is not None and caller.may(Role.responder) and not caller.may(Role.admin)
    store.revoke(caller.token_id)
    assert store.authenticate(first) is None
    assert store.authenticate(second) is not None
    store.disable("ci-translator")
    assert store.authenticate(second) is None
    with pytest.raises(IdentityError, match="already exists"):
        store.create_account("ci-translator", Role.viewer)
    with pytest.raises(IdentityError, match="no account"):
        store.issue_token("nobody")
    store.dispose()


@pytest.mark.parametrize(
    ("header", "token"),
    [(None, None), ("Bearer abc", "abc"), ("bearer abc", "abc")],
)
def test_the_bearer_header_is_read_strictly(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


@pytest.mark.parametrize(
    "header", ["abc", "Token abc", "Bearer", "Bearer ", "Bearer a b", "Basic YTpi", ""]
)
def test_anything_else_is_refused(header: str) -> None:
    with pytest.raises(HTTPException) as refused:
        parse_bearer(header)
    assert refused.value.status_code == 401


def test_roles_are_ordered() -> None:
    assert [r.value for r in Role] == ["viewer", "responder", "release_manager", "admin"]
    assert Role.admin.allows(Role.release_manager) and not Role.responder.allows(
        Role.release_manager
    )
