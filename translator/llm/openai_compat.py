"""Any server speaking OpenAI chat completions: OpenAI, DeepSeek, LM Studio, vLLM...

They differ only in base URL, model name and whether a key is needed, so one
class covers them. Every failure leaves here as an :class:`LLMError` subclass.
"""

from __future__ import annotations

import functools
import json
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from translator.llm.exceptions import (
    LLMAuthenticationError,
    LLMConnectionError,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
)


def system_prompt(source_lang: str, target_lang: str) -> str:
    source = (
        "Detect the source language of the user's text"
        if source_lang.strip().lower() == "auto"
        else f"The user's text is in the language with code {source_lang!r}"
    )
    return (
        "You are a translation engine. "
        f"{source}. Translate it into the language with code {target_lang!r}. "
        "Reply with the translation only: no explanations, no notes, no quotes. "
        "Keep line breaks, numbers, URLs and placeholders exactly as they are."
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date; anything else is ignored."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@functools.cache
def _shared_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~50 ms per client; one context serves them all.
    return httpx.create_ssl_context()


class OpenAICompatibleProvider:
    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        model: str,
        timeout: float,
        client: httpx.Client | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self._api_key = api_key
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, verify=_shared_ssl_context())

    def __repr__(self) -> str:
        # Never show the key, even in a debugger or a traceback.
        return f"OpenAICompatibleProvider(name={self.name!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        # Local servers such as LM Studio need no key; an empty Bearer would confuse some.
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def translate(self, text: str, source_lang: str, target_lang: str) -> str:
        # Paying for a round trip to translate whitespace is pointless.
        if not text.strip():
            return text
        payload = {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": system_prompt(source_lang, target_lang)},
                {"role": "user", "content": text},
            ],
        }
        url = f"{self.base_url}/chat/completions"
        try:
            response = self._client.post(
                url, json=payload, headers=self._headers(), timeout=self.timeout
            )
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(
                f"{self.name}: no answer within {self.timeout}s ({type(exc).__name__})"
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            # A base_url typo will not heal itself; do not burn retries on it.
            raise LLMConnectionError(
                f"{self.name}: the configured base_url is not http(s)", retryable=False
            ) from exc
        except httpx.TransportError as exc:
            # The exception's text may name the internal host: the type is enough.
            raise LLMConnectionError(
                f"{self.name}: cannot reach the provider ({type(exc).__name__})"
            ) from exc
        return self._read(response, text)

    def _read(self, response: httpx.Response, text: str) -> str:
        status = response.status_code
        if status in (401, 403):
            raise LLMAuthenticationError(
                f"{self.name}: the provider refused our key (HTTP {status})"
            )
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise LLMRateLimitError(
                f"{self.name}: rate limited (HTTP 429, retry_after={retry_after})",
                retry_after=retry_after,
            )
        if status >= 500:
            raise LLMResponseError(
                f"{self.name}: the provider failed (HTTP {status})",
                status_code=status,
                retryable=True,
            )
        if status >= 400 or status < 200:
            raise LLMResponseError(
                f"{self.name}: the provider refused the request (HTTP {status})",
                status_code=status,
                retryable=False,
            )
        content = _content(response)
        if content is None or not content.strip():
            raise LLMResponseError(
                f"{self.name}: the answer has no usable choices[0].message.content",
                status_code=status,
                retryable=False,
            )
        # Models add or drop surrounding newlines at will; the document keeps the original's.
        leading = text[: len(text) - len(text.lstrip())]
        trailing = text[len(text.rstrip()) :]
        return leading + content.strip() + trailing


def _content(response: httpx.Response) -> str | None:
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
