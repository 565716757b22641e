"""Errors every provider raises, so callers never see httpx or vendor specifics.

Their messages reach users (a job's ``error_message``) and log lines, so they
carry a short ``code`` and a message of our own words only: never the
provider's URL, its response body (an upstream may echo the request, API key
included) or the key.

``retryable`` is what the retry loop looks at: it lives on the class for the
common case and can be overridden per instance (a 5xx response is worth another
try, a 400 about a malformed request is not).
"""

from __future__ import annotations

from datetime import datetime


class LLMError(Exception):
    """Base of every translation-provider failure."""

    retryable: bool = False
    code: str = "provider_error"

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class LLMConnectionError(LLMError):
    """The provider could not be reached (DNS, refused, reset)."""

    code = "provider_unreachable"

    retryable = True


class LLMAuthenticationError(LLMError):
    """401/403: the key is wrong or missing; retrying will not fix it."""

    code = "provider_auth_failed"

    retryable = False


class LLMRateLimitError(LLMError):
    """429: the provider asked us to slow down, possibly saying for how long."""

    code = "provider_rate_limited"

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.retry_after = retry_after


class LLMResponseError(LLMError):
    """An unusable answer: a 5xx (retryable) or a 4xx / malformed body (not)."""

    code = "provider_bad_response"

    retryable = False

    def __init__(
        self, message: str, *, status_code: int | None = None, retryable: bool | None = None
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.status_code = status_code


class LLMTimeoutError(LLMError):
    """The provider did not answer within the configured timeout."""

    code = "provider_timeout"

    retryable = True


class LLMCircuitOpenError(LLMError):
    """Refused locally because the provider's breaker is open; nothing was sent."""

    code = "provider_circuit_open"

    retryable = False

    def __init__(self, message: str, *, provider: str, open_until: datetime | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.open_until = open_until


class UnknownProviderError(LLMError, KeyError):
    """No provider of that name is configured. Also a KeyError, for mapping-style callers."""

    code = "unknown_provider"

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown LLM provider {name!r}; known providers: {', '.join(known)}")
        self.name = name
        self.known = known

    # KeyError.__str__ would repr() the message and add quotes around it.
    def __str__(self) -> str:
        return str(self.args[0])
