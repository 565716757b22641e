"""Providers, retries, the registry and diagnosis, against a real local HTTP server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from click.testing import CliRunner

from common.clock import FakeClock
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from translator.llm import (
    CircuitBreaker,
    LLMAuthenticationError,
    LLMConnectionError,
    LLMError,
    LLMProvider,
    LLMRateLimitError,
    LLMResponseError,
    LLMTimeoutError,
    OfflineProvider,
    OpenAICompatibleProvider,
    ProviderRegistry,
    ResilientProvider,
    UnknownProviderError,
    check_providers,
)
from translator.llm.cli import diagnose
from translator.llm.openai_compat import parse_retry_after
from translator.llm.registry import parse_provider_configs
from translator.settings import TranslatorSettings

TIMEOUT = 0.2


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def make_provider(
    server: FakeOpenAIServer, api_key: str = "sk-test", timeout: float = TIMEOUT
) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        "fake", server.base_url, api_key=api_key, model="fake-model", timeout=timeout
    )


def resilient(
    provider: LLMProvider,
    sleeps: list[float],
    max_attempts: int = 3,
    threshold: int = 100,
    calls: list[tuple[str, str]] | None = None,
) -> ResilientProvider:
    breaker = CircuitBreaker(provider.name, threshold, 30, FakeClock())
    return ResilientProvider(
        provider,
        breaker,
        max_attempts=max_attempts,
        backoff_seconds=1.0,
        sleep=sleeps.append,
        on_call=None if calls is None else lambda name, outcome: calls.append((name, outcome)),
    )


def settings(**overrides: object) -> TranslatorSettings:
    values: dict[str, object] = {
        "llm_timeout_seconds": TIMEOUT,
        "llm_max_attempts": 3,
        "llm_backoff_seconds": 0.5,
        "breaker_failure_threshold": 3,
        "breaker_cooldown_seconds": 30,
    }
    values.update(overrides)
    return TranslatorSettings(**values)  # type: ignore[arg-type]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- offline -----------------------------------------------------------------------------


def test_offline_is_labelled_and_uses_the_glossary() -> None:
    offline = OfflineProvider()
    assert offline.name == "offline"
    assert offline.translate("Hello, world!", "en", "ru") == "[offline en→ru] Привет, мир!"
    assert offline.translate("Hello, world!", "auto", "de") == "[offline auto→de] Hallo, Welt!"


def test_offline_keeps_case_punctuation_and_whitespace() -> None:
    text = "  Good morning,\tcat!\n\nThe dog (and the CAT) ...  "
    out = OfflineProvider().translate(text, "en", "ru")
    assert out == "[offline en→ru]   Хороший утро,\tкот!\n\nThe собака (и the КОТ) ...  "


def test_offline_passes_unknown_words_and_languages_through() -> None:
    offline = OfflineProvider()
    assert offline.translate("Zebra quux", "en", "ru") == "[offline en→ru] Zebra quux"
    # No glossary for French, nor from German: labelled, otherwise untouched.
    assert offline.translate("Hello", "en", "fr") == "[offline en→fr] Hello"
    assert offline.translate("Hallo Welt", "de", "ru") == "[offline de→ru] Hallo Welt"
    # Region subtags do not stop the glossary.
    assert offline.translate("hello", "en-US", "ru-RU") == "[offline en-US→ru-RU] привет"


def test_offline_is_deterministic() -> None:
    text = "One cat, two dogs and three books."
    results = {OfflineProvider().translate(text, "en", "de") for _ in range(5)}
    assert results == {"[offline en→de] Eins Katze, zwei dogs und drei books."}


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_offline_returns_blank_text_unchanged(text: str) -> None:
    assert OfflineProvider().translate(text, "en", "ru") == text


def test_offline_delay_uses_the_injected_sleep() -> None:
    sleeps: list[float] = []
    offline = OfflineProvider(delay_ms=250, sleep=sleeps.append)
    offline.translate("Hello", "en", "ru")
    offline.translate("", "en", "ru")  # blank text costs nothing
    assert sleeps == [0.25]
    assert OfflineProvider().translate("Hello", "en", "ru")  # zero delay: no sleep needed


def test_providers_satisfy_the_protocol(server: FakeOpenAIServer) -> None:
    assert isinstance(OfflineProvider(), LLMProvider)
    assert isinstance(make_provider(server), LLMProvider)
    assert isinstance(resilient(OfflineProvider(), []), LLMProvider)


# -- OpenAI-compatible -------------------------------------------------------------------


def test_success_sends_an_openai_chat_completion(server: FakeOpenAIServer) -> None:
    server.script(Reply.ok("Привет, мир!"))
    provider = make_provider(server)

    assert provider.translate("Hello, world!", "en", "ru") == "Привет, мир!"

    [request] = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert body["model"] == "fake-model"
    assert body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system"
    assert "'ru'" in system["content"] and "translation only" in system["content"]
    assert user == {"role": "user", "content": "Hello, world!"}


def test_no_authorization_header_without_a_key(server: FakeOpenAIServer) -> None:
    # LM Studio and other local servers run without a key.
    make_provider(server, api_key="").translate("Hello", "auto", "de")
    [request] = server.requests
    assert "authorization" not in request.headers
    assert "Detect the source language" in request.json["messages"][0]["content"]


def test_base_url_trailing_slash_and_surrounding_whitespace(server: FakeOpenAIServer) -> None:
    server.script(Reply.ok("\nПривет\n\n"))
    provider = OpenAICompatibleProvider("fake", server.base_url + "/", "", "m", TIMEOUT)
    assert provider.translate("  Hello\n", "en", "ru") == "  Привет\n"
    assert server.requests[0].path == "/v1/chat/completions"


def test_blank_text_is_not_sent(server: FakeOpenAIServer) -> None:
    assert make_provider(server).translate("  \n", "en", "ru") == "  \n"
    assert server.request_count == 0


def test_injected_client_is_used_and_not_closed(server: FakeOpenAIServer) -> None:
    with httpx.Client() as client:
        provider = OpenAICompatibleProvider("fake", server.base_url, "k", "m", TIMEOUT, client)
        provider.translate("Hello", "en", "ru")
        provider.close()
        assert not client.is_closed


@pytest.mark.parametrize(
    ("reply", "error", "retryable"),
    [
        (Reply.unauthorized(), LLMAuthenticationError, False),
        (Reply.error(403, "forbidden"), LLMAuthenticationError, False),
        (Reply.server_error(500), LLMResponseError, True),
        (Reply.server_error(503), LLMResponseError, True),
        (Reply.error(400, "bad_request"), LLMResponseError, False),
        (Reply.error(404, "model_not_found"), LLMResponseError, False),
        (Reply.malformed(), LLMResponseError, False),
        (Reply.no_choices(), LLMResponseError, False),
        (Reply.ok(""), LLMResponseError, False),
    ],
)
def test_http_errors_are_mapped(
    server: FakeOpenAIServer, reply: Reply, error: type[LLMError], retryable: bool
) -> None:
    server.script(reply)
    with pytest.raises(error) as caught:
        make_provider(server).translate("Hello", "en", "ru")
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert "fake" in str(caught.value)
    assert "sk-test" not in str(caught.value)


def test_response_error_carries_status_code(server: FakeOpenAIServer) -> None:
    server.script(Reply.server_error(502))
    with pytest.raises(LLMResponseError) as caught:
        make_provider(server).translate("Hello", "en", "ru")
    assert caught.value.status_code == 502


@pytest.mark.parametrize(("header", "expected"), [("2", 2.0), ("0.5", 0.5), (None, None)])
def test_rate_limit_parses_retry_after(
    server: FakeOpenAIServer, header: str | None, expected: float | None
) -> None:
    server.script(Reply.rate_limited(retry_after=header))
    with pytest.raises(LLMRateLimitError) as caught:
        make_provider(server).translate("Hello", "en", "ru")
    assert caught.value.retryable is True
    assert caught.value.retry_after == expected


def test_retry_after_http_date_and_garbage() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 05 Jan 2026 12:00:07 GMT", now) == 7.0
    assert parse_retry_after("Mon, 05 Jan 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("", now) is None


def test_timeout_is_mapped(server: FakeOpenAIServer) -> None:
    server.script(Reply.slow(delay=2.0))
    with pytest.raises(LLMTimeoutError) as caught:
        make_provider(server, timeout=TIMEOUT).translate("Hello", "en", "ru")
    assert caught.value.retryable is True


def test_connection_refused_is_mapped() -> None:
    provider = OpenAICompatibleProvider(
        "gone", f"http://127.0.0.1:{unused_port()}/v1", "", "m", TIMEOUT
    )
    with pytest.raises(LLMConnectionError) as caught:
        provider.translate("Hello", "en", "ru")
    assert caught.value.retryable is True


def test_bad_scheme_is_a_non_retryable_connection_error() -> None:
    provider = OpenAICompatibleProvider("typo", "htp://example.invalid/v1", "", "m", TIMEOUT)
    with pytest.raises(LLMConnectionError) as caught:
        provider.translate("Hello", "en", "ru")
    assert caught.value.retryable is False


def test_repr_hides_the_key(server: FakeOpenAIServer) -> None:
    assert "sk-test" not in repr(make_provider(server))


# -- retries -----------------------------------------------------------------------------


def test_retries_then_succeeds_with_exponential_backoff(server: FakeOpenAIServer) -> None:
    server.script(Reply.server_error(), Reply.server_error(), Reply.ok("Привет"))
    sleeps: list[float] = []
    calls: list[tuple[str, str]] = []
    provider = resilient(make_provider(server), sleeps, max_attempts=3, calls=calls)

    assert provider.translate("Hello", "en", "ru") == "Привет"
    assert server.request_count == 3
    assert sleeps == [1.0, 2.0]
    assert calls == [("fake", "success")]
    assert provider.breaker.consecutive_failures == 0


def test_rate_limit_retry_after_stretches_the_backoff_up_to_the_cap(
    server: FakeOpenAIServer,
) -> None:
    server.script(
        Reply.rate_limited("5"), Reply.rate_limited("0"), Reply.rate_limited("120"), Reply.ok("ok")
    )
    sleeps: list[float] = []
    provider = resilient(make_provider(server), sleeps, max_attempts=4)
    assert provider.translate("Hello", "en", "ru") == "ok"
    # max(backoff, Retry-After), never beyond 30 s.
    assert sleeps == [5.0, 2.0, 30.0]


def test_backoff_is_capped() -> None:
    sleeps: list[float] = []
    provider = resilient(OfflineProvider(), sleeps)
    assert provider.delay_for(1, LLMTimeoutError("x")) == 1.0
    assert provider.delay_for(3, LLMTimeoutError("x")) == 4.0
    assert provider.delay_for(10, LLMTimeoutError("x")) == 30.0


@pytest.mark.parametrize(
    "reply", [Reply.unauthorized(), Reply.error(400, "bad"), Reply.malformed()]
)
def test_non_retryable_errors_are_not_retried(server: FakeOpenAIServer, reply: Reply) -> None:
    server.script(reply)
    sleeps: list[float] = []
    calls: list[tuple[str, str]] = []
    provider = resilient(make_provider(server), sleeps, calls=calls)
    with pytest.raises(LLMError):
        provider.translate("Hello", "en", "ru")
    assert server.request_count == 1
    assert sleeps == []
    assert calls == [("fake", "error")]


def test_retries_exhausted_raise_the_last_error(server: FakeOpenAIServer) -> None:
    server.default = Reply.server_error(503)
    sleeps: list[float] = []
    calls: list[tuple[str, str]] = []
    provider = resilient(make_provider(server), sleeps, max_attempts=3, calls=calls)
    with pytest.raises(LLMResponseError) as caught:
        provider.translate("Hello", "en", "ru")
    assert caught.value.status_code == 503
    assert server.request_count == 3
    assert sleeps == [1.0, 2.0]
    # One call, one outcome: the breaker counts calls, not attempts.
    assert calls == [("fake", "error")]
    assert provider.breaker.consecutive_failures == 1


def test_timeouts_are_retried(server: FakeOpenAIServer) -> None:
    server.script(Reply.slow(delay=2.0), Reply.ok("Привет"))
    sleeps: list[float] = []
    provider = resilient(make_provider(server), sleeps)
    assert provider.translate("Hello", "en", "ru") == "Привет"
    assert sleeps == [1.0]


def test_unexpected_exceptions_count_as_errors() -> None:
    class Broken:
        name = "broken"

        def translate(self, text: str, source_lang: str, target_lang: str) -> str:
            raise RuntimeError("bug")

    sleeps: list[float] = []
    calls: list[tuple[str, str]] = []
    provider = resilient(Broken(), sleeps, calls=calls)
    with pytest.raises(RuntimeError):
        provider.translate("Hello", "en", "ru")
    assert sleeps == []  # not an LLMError: never retried
    assert calls == [("broken", "error")]
    assert provider.breaker.consecutive_failures == 1


def test_a_broken_on_call_callback_does_not_fail_the_call() -> None:
    def explode(name: str, outcome: str) -> None:
        raise RuntimeError("metrics down")

    breaker = CircuitBreaker("offline", 3, 30, FakeClock())
    provider = ResilientProvider(OfflineProvider(), breaker, on_call=explode)
    assert provider.translate("Hello", "en", "ru") == "[offline en→ru] Привет"


# -- registry ----------------------------------------------------------------------------


def test_registry_defaults_to_offline_only() -> None:
    sleeps: list[float] = []
    registry = ProviderRegistry.from_settings(
        settings(offline_delay_ms=10), FakeClock(), sleep=sleeps.append
    )
    assert registry.names() == ["offline"]
    assert registry.default == "offline"
    assert registry.breaker_states() == {"offline": "closed"}
    offline = registry.get("offline")
    assert isinstance(offline, ResilientProvider)
    assert offline.translate("Hello", "en", "ru") == "[offline en→ru] Привет"
    assert sleeps == [0.01]


def test_registry_builds_configured_providers(server: FakeOpenAIServer) -> None:
    calls: list[tuple[str, str]] = []
    providers = json.dumps(
        [
            {"name": "deepseek", "base_url": server.base_url, "api_key": "sk-ds", "model": "ds"},
            {"name": "lmstudio", "base_url": server.base_url, "model": "local"},
        ]
    )
    registry = ProviderRegistry.from_settings(
        settings(providers=providers, default_provider="deepseek"),
        FakeClock(),
        sleep=lambda _: None,
        on_call=lambda name, outcome: calls.append((name, outcome)),
    )
    try:
        assert registry.names() == ["offline", "deepseek", "lmstudio"]
        assert registry.default == "deepseek"
        assert "lmstudio" in registry
        assert registry.get("deepseek").translate("Hello", "en", "ru") == "translated"
        assert registry.get("lmstudio").translate("Hello", "en", "ru") == "translated"
        first, second = server.requests
        assert first.headers["authorization"] == "Bearer sk-ds"
        assert first.json["model"] == "ds"
        assert "authorization" not in second.headers
        assert second.json["model"] == "local"
        assert calls == [("deepseek", "success"), ("lmstudio", "success")]
    finally:
        registry.close()


def test_registry_unknown_provider_lists_known_names() -> None:
    registry = ProviderRegistry.from_settings(settings(), FakeClock())
    with pytest.raises(UnknownProviderError, match="known providers: offline") as caught:
        registry.get("openai")
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, LLMError)


def test_registry_rejects_an_unknown_default() -> None:
    with pytest.raises(ValueError, match="'deepseek' is not configured.*offline"):
        ProviderRegistry.from_settings(settings(default_provider="deepseek"), FakeClock())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"name": "x"}', "must be a JSON list"),
        ('["x"]', "entry 0: must be an object"),
        ('[{"name": "a", "base_url": "http://h/v1"}]', r"entry 0 \('a'\): model: Field required"),
        ('[{"base_url": "http://h/v1", "model": "m"}]', "entry 0: name: Field required"),
        ('[{"name": "a", "base_url": "ftp://h", "model": "m"}]', "base_url: .*http://"),
        ('[{"name": "a", "base_url": "http://h", "model": "m", "apikey": "sk-secret"}]', "apikey"),
        ('[{"name": "offline", "base_url": "http://h", "model": "m"}]', "built-in"),
        ('[{"name": "a b", "base_url": "http://h", "model": "m"}]', "name: String should match"),
        (
            '[{"name": "a", "base_url": "http://h", "model": "m"},'
            ' {"name": "a", "base_url": "http://h", "model": "m"}]',
            r"entry 1 \('a'\): name: duplicate",
        ),
    ],
)
def test_registry_config_errors_name_the_entry_and_field(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        ProviderRegistry.from_settings(settings(providers=raw), FakeClock())
    assert "sk-secret" not in str(caught.value)


def test_blank_providers_setting_means_none() -> None:
    assert parse_provider_configs("  ") == []
    assert parse_provider_configs("[]") == []


# -- diagnosis ---------------------------------------------------------------------------


def diagnose_registry(server: FakeOpenAIServer) -> ProviderRegistry:
    providers = json.dumps(
        [
            {"name": "good", "base_url": server.base_url, "model": "m"},
            {"name": "gone", "base_url": f"http://127.0.0.1:{unused_port()}/v1", "model": "m"},
        ]
    )
    return ProviderRegistry.from_settings(
        settings(providers=providers), FakeClock(), sleep=lambda _: None
    )


def test_check_providers_reports_each_provider(server: FakeOpenAIServer) -> None:
    server.default = Reply.ok("Привет")
    registry = diagnose_registry(server)
    try:
        checks = check_providers(registry)
    finally:
        registry.close()

    assert [c.name for c in checks] == ["offline", "good", "gone"]
    offline, good, gone = checks
    assert offline.ok and "Привет" in offline.detail and offline.breaker_state == "closed"
    assert good.ok and good.detail == "'Hello' → 'Привет'"
    assert good.latency_ms >= 0
    assert not gone.ok and gone.detail.startswith("LLMConnectionError")
    assert server.requests[0].json["messages"][1]["content"] == "Hello"
    assert "'ru'" in server.requests[0].json["messages"][0]["content"]


def test_check_providers_bypasses_retries_and_the_breaker(server: FakeOpenAIServer) -> None:
    server.default = Reply.server_error()
    registry = diagnose_registry(server)
    try:
        checks = check_providers(registry)
    finally:
        registry.close()
    good = checks[1]
    assert not good.ok and "HTTP 500" in good.detail
    assert server.request_count == 1  # one probe, no retries
    assert registry.get("good").breaker.consecutive_failures == 0


def test_diagnose_command(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATOR_LLM_TIMEOUT_SECONDS", str(TIMEOUT))
    monkeypatch.setenv(
        "TRANSLATOR_PROVIDERS",
        json.dumps([{"name": "good", "base_url": server.base_url, "model": "m"}]),
    )
    runner = CliRunner()

    table = runner.invoke(diagnose, [])
    assert table.exit_code == 0, table.output
    assert "PROVIDER" in table.output and "offline (default)" in table.output

    as_json = runner.invoke(diagnose, ["--json"])
    assert as_json.exit_code == 0, as_json.output
    assert [c["ok"] for c in json.loads(as_json.output)] == [True, True]

    server.default = Reply.unauthorized()
    failed = runner.invoke(diagnose, ["--json"])
    assert failed.exit_code == 1
    assert json.loads(failed.output)[1]["detail"].startswith("LLMAuthenticationError")


def test_diagnose_command_reports_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATOR_PROVIDERS", "[1]")
    result = CliRunner().invoke(diagnose, [])
    assert result.exit_code == 1
    assert "entry 0: must be an object" in result.output
