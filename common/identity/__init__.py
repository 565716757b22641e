"""The platform's identities: people and service accounts with a role each,
their API tokens (hashed at rest, shown once), and the audit of what they
changed. One store for every service (``VIGIL_IDENTITY_DATABASE_URL``); it
imports no component.

A service: ``attach(app, open_store(), "sentinel")`` once, then
``Depends(require(Role.responder))`` on a route."""

from common.identity.http import (
    Admin,
    ReleaseManager,
    Responder,
    Viewer,
    acting_as,
    attach,
    calendar_reader,
    identify,
    parse_bearer,
    require,
)
from common.identity.models import AccountKind, Role
from common.identity.settings import IdentitySettings
from common.identity.store import IdentityError, IdentityStore, Principal, open_store

__all__ = [
    "AccountKind",
    "Admin",
    "IdentityError",
    "IdentitySettings",
    "IdentityStore",
    "Principal",
    "ReleaseManager",
    "Responder",
    "Role",
    "Viewer",
    "acting_as",
    "attach",
    "calendar_reader",
    "identify",
    "open_store",
    "parse_bearer",
    "require",
]
