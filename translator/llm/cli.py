"""``translator diagnose``: is every configured LLM provider answering?"""

from __future__ import annotations

import json

import click

from common.clock import SystemClock
from translator.llm.diagnose import ProviderCheck, check_providers
from translator.llm.registry import ProviderRegistry
from translator.settings import TranslatorSettings


def format_table(checks: list[ProviderCheck], default: str) -> str:
    headers = ("PROVIDER", "STATUS", "LATENCY", "BREAKER", "DETAIL")
    rows = [
        (
            check.name + (" (default)" if check.name == default else ""),
            "ok" if check.ok else "FAILED",
            f"{check.latency_ms:.0f} ms",
            check.breaker_state,
            check.detail,
        )
        for check in checks
    ]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers) - 1)]
    lines = [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in [headers, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


@click.command("diagnose")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def diagnose(as_json: bool) -> None:
    """Send a one-word translation to every LLM provider; exit 1 if any fails."""
    try:
        registry = ProviderRegistry.from_settings(TranslatorSettings(), SystemClock())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        checks = check_providers(registry)
    finally:
        registry.close()
    if as_json:
        click.echo(json.dumps([c.model_dump() for c in checks], ensure_ascii=False, indent=2))
    else:
        click.echo(format_table(checks, registry.default))
    if not all(check.ok for check in checks):
        raise click.exceptions.Exit(1)
