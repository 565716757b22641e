"""Schemathesis against an app in-process: every operation of its OpenAPI schema
gets generated requests (valid and invalid ones), sent with a valid token, and
every response is held to schemathesis' checks: no server error, a status code,
content type, headers and body the schema declares, invalid input refused and
valid input accepted. Each failure is collected with what reproduces it.

    stats = fuzz_app(app, {"Authorization": "Bearer t"}, max_examples=50)
    assert stats.server_errors == [] and stats.failures == []
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.core.failures import Failure
from schemathesis.generation import GenerationMode

# Examples per operation and generation mode in the suite's fuzz tests.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@dataclass
class FuzzStats:
    operations: int = 0
    cases: int = 0
    server_errors: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # schema checks, one per kind

    def line(self, service: str) -> str:
        return (
            f"{service}: {self.operations} operations, {self.cases} cases, "
            f"{len(self.server_errors)} server errors, {len(self.failures)} check failures"
        )


def checks_for(label: str, excluded: dict[str, str]) -> list[Callable[..., Any]]:
    """Every check schemathesis has (``--checks all``) but those ``excluded`` for
    the operation ``label``: keys are a check's name (every operation) or a check's
    name, a space and an operation ("positive_data_acceptance POST /api/files"),
    each mapped to why the check does not apply there."""
    load_all_checks()
    known = {c.__name__ for c in CHECKS.get_all()}
    unknown = {key.split(" ", 1)[0] for key in excluded} - known
    if unknown:
        raise ValueError(f"no such schemathesis checks: {sorted(unknown)}")
    left_out = {key for key in excluded if " " not in key} | {
        key.split(" ", 1)[0] for key in excluded if key.split(" ", 1)[-1] == label
    }
    return [c for c in CHECKS.get_all() if c.__name__ not in left_out]


def _describe(case: Any, status: int, text: str) -> str:
    body = case.body if not isinstance(case.body, bytes | bytearray) else "<bytes>"
    try:
        shown = json.dumps(body, default=str)[:300]
    except (TypeError, ValueError):
        shown = repr(body)[:300]
    return (
        f"{status} {case.method} {case.formatted_path} query={case.query} body={shown} "
        f"-> {text[:200]}"
    )


def fuzz_app(
    app: Any,
    headers: dict[str, str],
    max_examples: int = 25,
    skip: tuple[str, ...] = (),
    excluded_checks: dict[str, str] | None = None,
    headers_for: dict[str, dict[str, str]] | None = None,
) -> FuzzStats:
    """Up to ``max_examples`` cases per operation and generation mode; ``skip`` lists
    "METHOD /path" operations left out; ``excluded_checks``: see ``checks_for``;
    ``headers_for``: other headers for some operations ("METHOD /path")."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Every API refuses NUL characters in any text (common.nul_guard), a rule
    # the schemas do not spell out string by string: valid cases carry none.
    schema.config.generation.update(allow_x00=False)
    stats = FuzzStats()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in skip:
            continue
        stats.operations += 1
        checks = checks_for(label, excluded_checks or {})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Nothing to make invalid in an operation without parameters.
            with contextlib.suppress(Unsatisfiable):
                sent = (headers_for or {}).get(label, headers)
                _fuzz_operation(operation, label, mode, sent, max_examples, checks, stats)
    return stats


def _fuzz_operation(
    operation: Any,
    label: str,
    mode: GenerationMode,
    headers: dict[str, str],
    max_examples: int,
    checks: list[Callable[..., Any]],
    stats: FuzzStats,
) -> None:
    reported: set[str] = set()  # one example per operation, mode and kind of failure

    def report(key: str, into: list[str], line: str) -> None:
        if key not in reported:
            reported.add(key)
            into.append(f"{label} [{mode.value}]: {line}")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        stats.cases += 1
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # noqa: BLE001 - an unhandled error is a 500
            report("500", stats.server_errors, _describe(case, 500, f"unhandled {exc!r}"))
            return
        if response.status_code >= 500:
            report(
                str(response.status_code),
                stats.server_errors,
                _describe(case, response.status_code, response.text),
            )
            return
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except BaseException as group:  # noqa: BLE001 - schemathesis' FailureGroup
            found = getattr(group, "exceptions", [group])
            if not all(isinstance(f, Failure) for f in found):
                raise
            for failure in found:
                title = failure.title
                report(
                    f"{title}/{response.status_code}",
                    stats.failures,
                    f"{title}: " + _describe(case, response.status_code, response.text),
                )

    run()
