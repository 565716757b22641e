"""Where the platform's identities live, read by every service from the same
``VIGIL_*`` variables (one store, whichever component is asking)."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="ignore")

    # One database for the whole platform: point every service at the same URL
    # (in production the PostgreSQL database the components share).
    identity_database_url: str = "sqlite:///var/identity.db"
    # The first start's admin token. Unset: a random one is made and printed once.
    admin_token: SecretStr | None = None
