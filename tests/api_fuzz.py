"""Schemathesis against an app in-process: every operation of its OpenAPI schema
gets generated requests (valid and invalid ones), sent with a valid token, and
every 5xx is collected with what reproduces it.

    stats = fuzz_app(app, {"Authorization": "Bearer t"}, max_examples=50)
    assert stats.server_errors == []
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

# Examples per operation and generation mode in the suite's fuzz tests.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@dataclass
class FuzzStats:
    operations: int = 0
    cases: int = 0
    server_errors: list[str] = field(default_factory=list)

    def line(self, service: str) -> str:
        return (
            f"{service}: {self.operations} operations, {self.cases} cases, "
            f"{len(self.server_errors)} server errors"
        )


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
) -> FuzzStats:
    """Up to ``max_examples`` cases per operation and generation mode; ``skip`` lists
    "METHOD /path" operations left out."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    stats = FuzzStats()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in skip:
            continue
        stats.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # Nothing to make invalid in an operation without parameters.
            with contextlib.suppress(Unsatisfiable):
                _fuzz_operation(operation, label, mode, headers, max_examples, stats)
    return stats


def _fuzz_operation(
    operation: Any,
    label: str,
    mode: GenerationMode,
    headers: dict[str, str],
    max_examples: int,
    stats: FuzzStats,
) -> None:
    reported: set[str] = set()  # one example per operation, mode and status

    def report(status: int, case: Any, text: str) -> None:
        if str(status) not in reported:
            reported.add(str(status))
            stats.server_errors.append(f"{label}: " + _describe(case, status, text))

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
            report(500, case, f"unhandled {type(exc).__name__}: {exc}")
            return
        if response.status_code >= 500:
            report(response.status_code, case, response.text)

    run()
