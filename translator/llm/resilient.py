"""Retries and the circuit breaker around any provider.

One call = up to ``max_attempts`` attempts for retryable errors, and one
outcome for the breaker and the metrics. Counting attempts instead would open
the breaker three times faster than configured and make error rates depend on
the retry setting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from common.logs import get_logger
from translator.llm.base import LLMProvider
from translator.llm.breaker import CircuitBreaker
from translator.llm.exceptions import LLMCircuitOpenError, LLMError, LLMRateLimitError

log = get_logger(__name__)

CallOutcome = Literal["success", "error", "circuit_open"]
CallCallback = Callable[[str, str], None]

MAX_BACKOFF_SECONDS = 30.0


class ResilientProvider:
    """An :class:`LLMProvider` that retries, backs off and fails fast via its breaker."""

    def __init__(
        self,
        provider: LLMProvider,
        breaker: CircuitBreaker,
        max_attempts: int = 3,
        backoff_seconds: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        on_call: CallCallback | None = None,
        max_backoff_seconds: float = MAX_BACKOFF_SECONDS,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if backoff_seconds < 0:
            raise ValueError(f"backoff_seconds must be >= 0, got {backoff_seconds}")
        self.name = provider.name
        self.provider = provider
        self.breaker = breaker
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep
        self._on_call = on_call

    def __repr__(self) -> str:
        return f"ResilientProvider({self.provider!r}, breaker={self.breaker.state})"

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        try:
            ticket = self.breaker.before_call()
        except LLMCircuitOpenError:
            self._report("circuit_open")
            raise
        try:
            result = self._with_retries(text, source_lang, target_lang)
        except BaseException:
            # Any exception, even a bug in a provider, must settle a half-open trial,
            # or the breaker would wait for an outcome forever.
            self.breaker.record_failure(ticket)
            self._report("error")
            raise
        self.breaker.record_success(ticket)
        self._report("success")
        return result

    def delay_for(self, attempt: int, error: LLMError) -> float:
        """Exponential backoff, stretched to the server's Retry-After, never beyond the cap."""
        delay = self.backoff_seconds * 2 ** (attempt - 1)
        if isinstance(error, LLMRateLimitError) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return min(delay, self.max_backoff_seconds)

    def _with_retries(self, text: str, source_lang: str, target_lang: str) -> str:
        attempt = 1
        while True:
            try:
                return self.provider.translate(text, source_lang, target_lang)
            except LLMError as exc:
                if not exc.retryable or attempt >= self.max_attempts:
                    log.warning(
                        "llm.call.failed",
                        provider=self.name,
                        attempt=attempt,
                        error=type(exc).__name__,
                        retryable=exc.retryable,
                        detail=str(exc),
                    )
                    raise
                delay = self.delay_for(attempt, exc)
                log.info(
                    "llm.call.retry",
                    provider=self.name,
                    attempt=attempt,
                    error=type(exc).__name__,
                    delay_s=round(delay, 3),
                )
                self._sleep(delay)
                attempt += 1

    def _report(self, outcome: CallOutcome) -> None:
        if self._on_call is None:
            return
        # Metrics are best effort: a broken callback must not fail a translation.
        try:
            self._on_call(self.name, outcome)
        except Exception:
            log.exception("llm.call.callback_failed", provider=self.name, outcome=outcome)
