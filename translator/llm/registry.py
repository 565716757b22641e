"""Builds every configured provider, each wrapped in retries and its own breaker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from common.clock import Clock
from translator.llm.base import LLMProvider
from translator.llm.breaker import CircuitBreaker, StateChangeCallback
from translator.llm.exceptions import UnknownProviderError
from translator.llm.offline import OfflineProvider
from translator.llm.openai_compat import OpenAICompatibleProvider
from translator.llm.resilient import CallCallback, ResilientProvider
from translator.settings import TranslatorSettings

OFFLINE = "offline"


class ProviderConfig(BaseModel):
    """One entry of ``TRANSLATOR_PROVIDERS``."""

    # Unknown keys are refused: a typo such as "apikey" would otherwise silently send no key.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    base_url: str = Field(min_length=1)
    api_key: str = ""
    model: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == OFFLINE:
            raise ValueError(f"{OFFLINE!r} is the built-in provider and cannot be redefined")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


def parse_provider_configs(raw: str) -> list[ProviderConfig]:
    """Parse ``settings.providers``; every problem is a ValueError naming entry and field.

    Messages never echo the submitted values, which may contain API keys.
    """
    if not raw.strip():
        return []
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"TRANSLATOR_PROVIDERS is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    if not isinstance(data, list):
        raise ValueError(
            f"TRANSLATOR_PROVIDERS must be a JSON list of objects, got {type(data).__name__}"
        )
    configs: list[ProviderConfig] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        label = f"entry {index}"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']!r})"
        if not isinstance(entry, dict):
            raise ValueError(
                f"TRANSLATOR_PROVIDERS {label}: must be an object, got {type(entry).__name__}"
            )
        try:
            config = ProviderConfig.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}"
                for err in exc.errors(include_input=False, include_url=False)
            )
            raise ValueError(f"TRANSLATOR_PROVIDERS {label}: {problems}") from None
        if config.name in seen:
            raise ValueError(f"TRANSLATOR_PROVIDERS {label}: name: duplicate provider name")
        seen.add(config.name)
        configs.append(config)
    return configs


class ProviderRegistry:
    """Named providers, ready to call. ``"offline"`` is always present."""

    def __init__(self, providers: Mapping[str, ResilientProvider], default: str) -> None:
        if OFFLINE not in providers:
            raise ValueError(f"the registry must contain the {OFFLINE!r} provider")
        self._providers = dict(providers)
        if default not in self._providers:
            raise ValueError(
                f"default provider {default!r} is not configured; "
                f"known providers: {', '.join(self.names())}"
            )
        self._default = default

    @classmethod
    def from_settings(
        cls,
        settings: TranslatorSettings,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        on_call: CallCallback | None = None,
        on_breaker_change: StateChangeCallback | None = None,
        decorate: Callable[[LLMProvider], LLMProvider] | None = None,
    ) -> ProviderRegistry:
        """``decorate`` wraps each bare provider inside the retries and the breaker
        (fault injection uses it, so injected failures look like real ones)."""
        configs = parse_provider_configs(settings.providers)
        known = [OFFLINE, *(c.name for c in configs)]
        # Checked before any HTTP client exists, so a bad default leaks nothing.
        if settings.default_provider not in known:
            raise ValueError(
                f"TRANSLATOR_DEFAULT_PROVIDER {settings.default_provider!r} is not configured; "
                f"known providers: {', '.join(known)}"
            )

        def wrap(provider: LLMProvider) -> ResilientProvider:
            breaker = CircuitBreaker(
                provider.name,
                failure_threshold=settings.breaker_failure_threshold,
                cooldown_seconds=settings.breaker_cooldown_seconds,
                clock=clock,
                on_state_change=on_breaker_change,
            )
            return ResilientProvider(
                decorate(provider) if decorate is not None else provider,
                breaker,
                max_attempts=settings.llm_max_attempts,
                backoff_seconds=settings.llm_backoff_seconds,
                sleep=sleep,
                on_call=on_call,
            )

        providers = {OFFLINE: wrap(OfflineProvider(settings.offline_delay_ms, sleep=sleep))}
        for config in configs:
            providers[config.name] = wrap(
                OpenAICompatibleProvider(
                    config.name,
                    config.base_url,
                    config.api_key,
                    config.model,
                    timeout=settings.llm_timeout_seconds,
                )
            )
        return cls(providers, default=settings.default_provider)

    @property
    def default(self) -> str:
        """Name of the provider used when a job does not ask for one."""
        return self._default

    def get(self, name: str) -> ResilientProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise UnknownProviderError(name, self.names()) from None

    def names(self) -> list[str]:
        """Offline first, then the configured ones in configuration order."""
        return list(self._providers)

    def __contains__(self, name: object) -> bool:
        return name in self._providers

    def breaker_states(self) -> dict[str, str]:
        return {name: p.breaker.state for name, p in self._providers.items()}

    def close(self) -> None:
        """Release HTTP connection pools."""
        for resilient in self._providers.values():
            close = getattr(resilient.provider, "close", None)
            if close is not None:
                close()
