"""The ``postmortem`` command: open, fill (refused naming fields, exit 1), act,
resolve, close, export, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from postmortems.cli import main


@pytest.fixture
def run(pm_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("POSTMORTEM_DATABASE_URL", pm_url)
    monkeypatch.setenv("POSTMORTEM_SENTINEL_DATABASE_URL", f"sqlite:///{tmp_path / 's.db'}")
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]  # noqa: A002
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_an_incident_from_open_to_closed(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    opened = run(
        "open",
        "--title",
        "Queue stuck",
        "--severity",
        "P2",
        "--service",
        "translator",
        "--class",
        "latent_bug",
        "--json",
    )
    assert opened.exit_code == 0, opened.output
    iid = json.loads(opened.stdout)["id"]

    refused = run("fill", str(iid), "--root-cause", "TBD", "--resolution", "n/a")
    assert refused.exit_code == 1
    for field in ("root_cause", "resolution", "business_impact", "conclusions"):
        assert f"{field}:" in refused.output

    form = tmp_path / "pm.yaml"
    form.write_text(
        yaml.safe_dump(
            {
                "root_cause": "A 32-bit auto increment overflowed after two billion jobs.",
                "resolution": "Migrated the column to 64 bits during a short maintenance window.",
                "business_impact": "No uploads were accepted for 40 minutes on a weekday.",
                "conclusions": "Every id column is 64-bit; a scan finds the remaining ones.",
                "lessons": [
                    {"kind": "dont", "text": "Never create 32-bit auto increment columns."}
                ],
            }
        )
    )
    assert run("fill", str(iid), "--file", str(form)).exit_code == 0
    assert (
        run(
            "action",
            str(iid),
            "--title",
            "Scan every table for 32-bit ids",
            "--kind",
            "preventive",
            "--category",
            "sibling_scan",
            "--owner",
            "bob",
            "--due",
            "2026-02-01",
        ).exit_code
        == 0
    )

    blocked = run("close", str(iid))
    assert blocked.exit_code == 1 and "status: resolve the incident first" in blocked.output
    assert run("status", str(iid), "resolved").exit_code == 0
    closed = run("close", str(iid))
    assert closed.exit_code == 0, closed.output

    exported = run("export", str(iid))
    assert "32-bit auto increment overflowed" in exported.output
    assert "Never create 32-bit" in run("lessons", "32-bit").output
    listed = run("list", "--json")
    assert json.loads(listed.stdout)[0]["status"] == "closed"
    report = run("report", "--since", "2020-01-01", "--until", "2100-01-01", "--json")
    assert json.loads(report.stdout)["by_class"] == {"latent_bug": 1}


def test_bad_input_is_a_usage_error(run) -> None:  # type: ignore[no-untyped-def]
    result = run("open", "--title", "x", "--severity", "P1", "--service", "s")
    assert result.exit_code == 2
    assert "title" in result.output
