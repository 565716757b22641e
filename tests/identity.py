"""The platform identity the tests speak as, and helpers to speak as someone else.

``tests/conftest.py`` points every service at one identity store per test whose
first start makes the admin of ``ADMIN_TOKEN``, and makes every ``TestClient``
send that token. A test that needs another caller makes an account here."""

from __future__ import annotations

from common.identity import AccountKind, Role, open_store

ADMIN_TOKEN = "vgl_test-admin-token-0123456789"
ADMIN = "admin"  # the first start's account
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ANONYMOUS = {"Authorization": ""}  # a TestClient header that sends no token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def account(name: str, role: Role, kind: AccountKind = AccountKind.person) -> str:
    """Make account ``name`` in the test's store and return a token of it."""
    store = open_store()
    try:
        store.create_account(name, role, kind)
        return store.issue_token(name, "test")
    finally:
        store.dispose()
