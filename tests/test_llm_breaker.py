"""The circuit breaker on its own, and wrapped around a provider talking to a real server."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from common.clock import FakeClock
from tests.fakes.openai_server import FakeOpenAIServer, Reply
from translator.llm import (
    STATE_VALUES,
    CircuitBreaker,
    LLMCircuitOpenError,
    LLMResponseError,
    OpenAICompatibleProvider,
    ProviderRegistry,
    ResilientProvider,
)
from translator.settings import TranslatorSettings

COOLDOWN = 30.0


@pytest.fixture
def changes() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, changes: list[tuple[str, str]]) -> CircuitBreaker:
    return CircuitBreaker(
        "p",
        failure_threshold=3,
        cooldown_seconds=COOLDOWN,
        clock=clock,
        on_state_change=lambda name, state: changes.append((name, state)),
    )


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.record_failure(breaker.before_call())


def trip(breaker: CircuitBreaker) -> None:
    fail(breaker, breaker.failure_threshold)
    assert breaker.state == "open"


# -- state machine -----------------------------------------------------------------------


def test_starts_closed(breaker: CircuitBreaker) -> None:
    assert breaker.state == "closed"
    assert breaker.state_value == 0
    assert breaker.open_until is None
    breaker.before_call()


def test_opens_after_threshold_consecutive_failures(
    breaker: CircuitBreaker, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    fail(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"
    assert breaker.state_value == 2
    assert breaker.open_until == clock.now() + timedelta(seconds=COOLDOWN)
    assert changes == [("p", "open")]


def test_a_success_resets_the_failure_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record_success(breaker.before_call())
    fail(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.consecutive_failures == 2


def test_open_fails_fast_and_says_until_when(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    until = clock.now() + timedelta(seconds=COOLDOWN)
    clock.advance(seconds=COOLDOWN - 1)
    expected = re.escape(f"open until {until.isoformat()}")
    with pytest.raises(LLMCircuitOpenError, match=expected) as caught:
        breaker.before_call()
    assert caught.value.provider == "p"
    assert caught.value.open_until == until
    assert caught.value.retryable is False


def test_half_open_after_cooldown_lets_exactly_one_trial_through(
    breaker: CircuitBreaker, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    trip(breaker)
    clock.advance(seconds=COOLDOWN)
    assert breaker.state == "half_open"
    assert breaker.state_value == 1
    breaker.before_call()  # the trial
    with pytest.raises(LLMCircuitOpenError, match="trial call is still running"):
        breaker.before_call()
    assert changes == [("p", "open"), ("p", "half_open")]


def test_trial_success_closes(
    breaker: CircuitBreaker, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    trip(breaker)
    clock.advance(seconds=COOLDOWN)
    breaker.record_success(breaker.before_call())
    assert breaker.state == "closed"
    assert breaker.consecutive_failures == 0
    breaker.before_call()
    breaker.before_call()
    assert changes == [("p", "open"), ("p", "half_open"), ("p", "closed")]


def test_trial_failure_reopens_for_another_cooldown(
    breaker: CircuitBreaker, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    trip(breaker)
    clock.advance(seconds=COOLDOWN + 5)
    breaker.record_failure(breaker.before_call())
    assert breaker.state == "open"
    assert breaker.open_until == clock.now() + timedelta(seconds=COOLDOWN)
    clock.advance(seconds=COOLDOWN - 1)
    with pytest.raises(LLMCircuitOpenError):
        breaker.before_call()
    clock.advance(seconds=1)
    breaker.before_call()
    assert changes == [("p", "open"), ("p", "half_open"), ("p", "open"), ("p", "half_open")]


def test_late_outcomes_from_before_the_breaker_opened_are_ignored(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    slow = breaker.before_call()  # admitted while closed, answers much later
    trip(breaker)
    breaker.record_success(slow)  # while open: ignored
    assert breaker.state == "open"
    clock.advance(seconds=COOLDOWN)
    trial = breaker.before_call()
    breaker.record_success(slow)  # while half-open: not the trial, ignored
    assert breaker.state == "half_open"
    breaker.record_failure(trial)
    assert breaker.state == "open"


def test_concurrent_callers_get_one_trial(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(seconds=COOLDOWN)
    admitted: list[int] = []
    refused: list[LLMCircuitOpenError] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def caller() -> None:
        start.wait()
        try:
            ticket = breaker.before_call()
        except LLMCircuitOpenError as exc:
            with lock:
                refused.append(exc)
        else:
            with lock:
                admitted.append(ticket)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(admitted) == 1
    assert len(refused) == 15


def test_concurrent_failures_open_exactly_once(
    clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    breaker = CircuitBreaker(
        "p", 50, COOLDOWN, clock, on_state_change=lambda n, s: changes.append((n, s))
    )

    def worker() -> None:
        for _ in range(20):
            with contextlib.suppress(LLMCircuitOpenError):
                breaker.record_failure(breaker.before_call())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert breaker.state == "open"
    assert changes == [("p", "open")]


def test_state_changes_are_logged(
    breaker: CircuitBreaker, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="translator.llm.breaker")
    trip(breaker)
    clock.advance(seconds=COOLDOWN)
    breaker.record_success(breaker.before_call())
    events = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("WARNING", "llm.breaker.opened") in events
    assert ("INFO", "llm.breaker.half_open") in events
    assert ("INFO", "llm.breaker.closed") in events
    opened = next(r for r in caplog.records if r.getMessage() == "llm.breaker.opened")
    assert opened.fields["provider"] == "p"  # type: ignore[attr-defined]
    assert opened.fields["failures"] == 3  # type: ignore[attr-defined]


def test_a_broken_state_callback_does_not_break_the_breaker(clock: FakeClock) -> None:
    def explode(name: str, state: str) -> None:
        raise RuntimeError("gauge down")

    breaker = CircuitBreaker("p", 1, COOLDOWN, clock, on_state_change=explode)
    fail(breaker)
    assert breaker.state == "open"


def test_callback_may_read_the_state(clock: FakeClock) -> None:
    seen: list[int] = []
    breaker: CircuitBreaker

    def gauge(name: str, state: str) -> None:
        seen.append(breaker.state_value)

    breaker = CircuitBreaker("p", 1, COOLDOWN, clock, on_state_change=gauge)
    fail(breaker)
    assert seen == [STATE_VALUES["open"]]


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, -1.0)])
def test_rejects_nonsense_settings(clock: FakeClock, threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("p", threshold, cooldown, clock)


# -- breaker around a real provider ------------------------------------------------------


def wrapped(
    server: FakeOpenAIServer,
    clock: FakeClock,
    calls: list[tuple[str, str]],
    changes: list[tuple[str, str]],
    max_attempts: int = 2,
) -> ResilientProvider:
    provider = OpenAICompatibleProvider("fake", server.base_url, "k", "m", timeout=0.2)
    breaker = CircuitBreaker(
        "fake", 3, COOLDOWN, clock, on_state_change=lambda n, s: changes.append((n, s))
    )
    return ResilientProvider(
        provider,
        breaker,
        max_attempts=max_attempts,
        backoff_seconds=1.0,
        sleep=lambda _: None,
        on_call=lambda n, o: calls.append((n, o)),
    )


def test_breaker_opens_then_fails_fast_without_contacting_the_server(
    server: FakeOpenAIServer, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    server.default = Reply.server_error()
    calls: list[tuple[str, str]] = []
    provider = wrapped(server, clock, calls, changes, max_attempts=2)

    for _ in range(3):
        with pytest.raises(LLMResponseError):
            provider.translate("Hello", "en", "ru")
    assert server.request_count == 6  # 3 calls x 2 attempts: the breaker counts calls
    assert provider.breaker.state == "open"

    for _ in range(5):
        with pytest.raises(LLMCircuitOpenError):
            provider.translate("Hello", "en", "ru")
    assert server.request_count == 6
    assert calls == [("fake", "error")] * 3 + [("fake", "circuit_open")] * 5
    assert changes == [("fake", "open")]


def test_half_open_trial_success_closes(
    server: FakeOpenAIServer, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    server.default = Reply.server_error()
    calls: list[tuple[str, str]] = []
    provider = wrapped(server, clock, calls, changes, max_attempts=1)
    for _ in range(3):
        with pytest.raises(LLMResponseError):
            provider.translate("Hello", "en", "ru")

    server.default = Reply.ok("Привет")
    clock.advance(seconds=COOLDOWN)
    assert provider.translate("Hello", "en", "ru") == "Привет"
    assert server.request_count == 4
    assert provider.breaker.state == "closed"
    assert changes == [("fake", "open"), ("fake", "half_open"), ("fake", "closed")]
    assert calls[-1] == ("fake", "success")


def test_half_open_trial_failure_reopens(
    server: FakeOpenAIServer, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    server.default = Reply.server_error()
    calls: list[tuple[str, str]] = []
    provider = wrapped(server, clock, calls, changes, max_attempts=1)
    for _ in range(3):
        with pytest.raises(LLMResponseError):
            provider.translate("Hello", "en", "ru")

    clock.advance(seconds=COOLDOWN)
    with pytest.raises(LLMResponseError):
        provider.translate("Hello", "en", "ru")  # the trial reaches the server and fails
    assert server.request_count == 4
    with pytest.raises(LLMCircuitOpenError):
        provider.translate("Hello", "en", "ru")
    assert server.request_count == 4
    assert changes == [("fake", "open"), ("fake", "half_open"), ("fake", "open")]


def test_only_one_trial_reaches_the_server_while_half_open(
    server: FakeOpenAIServer, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    calls: list[tuple[str, str]] = []
    provider = wrapped(server, clock, calls, changes, max_attempts=1)
    trip(provider.breaker)
    clock.advance(seconds=COOLDOWN)
    # A slow-but-successful trial, while another caller tries its luck.
    server.script(Reply.ok("Привет", delay=0.1))
    trial = threading.Thread(target=provider.translate, args=("Hello", "en", "ru"))
    trial.start()
    while server.request_count == 0:
        threading.Event().wait(0.005)
    with pytest.raises(LLMCircuitOpenError, match="trial"):
        provider.translate("Hello", "en", "ru")
    trial.join(timeout=5)
    assert server.request_count == 1
    assert provider.breaker.state == "closed"
    assert sorted(calls) == [("fake", "circuit_open"), ("fake", "success")]


def test_registry_wires_breakers_and_callbacks(
    server: FakeOpenAIServer, clock: FakeClock, changes: list[tuple[str, str]]
) -> None:
    server.default = Reply.unauthorized()
    calls: list[tuple[str, str]] = []
    settings = TranslatorSettings(
        providers=f'[{{"name": "remote", "base_url": "{server.base_url}", "model": "m"}}]',
        breaker_failure_threshold=2,
        breaker_cooldown_seconds=COOLDOWN,
        llm_timeout_seconds=0.2,
    )
    registry = ProviderRegistry.from_settings(
        settings,
        clock,
        sleep=lambda _: None,
        on_call=lambda n, o: calls.append((n, o)),
        on_breaker_change=lambda n, s: changes.append((n, s)),
    )
    try:
        remote = registry.get("remote")
        for _ in range(2):
            with pytest.raises(Exception, match="HTTP 401"):
                remote.translate("Hello", "en", "ru")
        assert registry.breaker_states() == {"offline": "closed", "remote": "open"}
        with pytest.raises(LLMCircuitOpenError):
            remote.translate("Hello", "en", "ru")
        registry.get("offline").translate("Hello", "en", "ru")
        assert server.request_count == 2  # authentication errors are never retried
        assert calls == [
            ("remote", "error"),
            ("remote", "error"),
            ("remote", "circuit_open"),
            ("offline", "success"),
        ]
        assert changes == [("remote", "open")]
        clock.advance(seconds=COOLDOWN)
        assert registry.breaker_states()["remote"] == "half_open"
    finally:
        registry.close()
