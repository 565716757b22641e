"""Files on disk against the files table (seed 000 §7.3): missing documents and
orphaned files in a real storage directory, on /metrics and from
``translator check-files``."""

from __future__ import annotations

import os
import time
from pathlib import Path

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from sentinel.sources.log_lines import parse_line
from tests.helpers import add_user
from translator.cli import main
from translator.files.models import File

HOUR_AGO = time.time() - 3600


def _upload(api, headers, name: str) -> int:
    r = api.post("/api/files", headers=headers, files={"file": (name, b"Hello world.")})
    assert r.status_code == 201, r.text
    return r.json()["file"]["id"]


def inconsistent(get_metrics) -> dict[str, float]:
    """``translator_files_inconsistent`` by kind; {} until a check has finished."""
    for family in text_string_to_metric_families(get_metrics()):
        if family.name == "translator_files_inconsistent":
            return {s.labels["kind"]: s.value for s in family.samples}
    raise AssertionError("translator_files_inconsistent is not exported")


def wait_for_check(get_metrics, expected: dict[str, float], timeout: float = 10.0) -> None:
    """Scrape until the background check reports ``expected`` (bounded)."""
    deadline = time.monotonic() + timeout
    seen = inconsistent(get_metrics)
    while seen != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"files check still says {seen}, expected {expected}")
        time.sleep(0.05)
        seen = inconsistent(get_metrics)


def _inconsistent(api) -> dict[str, float]:
    return inconsistent(lambda: api.get("/metrics").text)


def _old_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"left behind")
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def _break_storage(api, svc) -> tuple[int, int, Path]:
    """One original deleted, one translation gone, one orphan: what the check must find."""
    _, h = add_user(svc, "a@example.com")
    deleted, translated, intact = (_upload(api, h, f"{n}.txt") for n in "abc")
    assert svc.workers.drain() == 3  # all three translated
    with svc.db.session() as s:
        Path(s.get(File, deleted).file_path).unlink()
        Path(s.get(File, translated).translated_path).unlink()
        assert Path(s.get(File, intact).translated_path).is_file()
    orphan = _old_file(svc.settings.storage_dir / "2026" / "01" / "crashed-upload.txt.part")
    return deleted, translated, orphan


def test_metrics_count_missing_and_orphaned_files(api, svc, clock):
    metrics = lambda: api.get("/metrics").text  # noqa: E731
    # The first scrape starts the first check: declared, no samples until it is done.
    assert _inconsistent(api) in ({}, {"missing": 0, "orphaned": 0})
    wait_for_check(metrics, {"missing": 0, "orphaned": 0})
    _break_storage(api, svc)
    # A file just written (its row may not be committed yet) is not an orphan.
    (svc.settings.storage_dir / "fresh.txt").write_bytes(b"being uploaded")

    # The last check is kept until the refresh period has passed...
    assert _inconsistent(api) == {"missing": 0, "orphaned": 0}
    clock.advance(seconds=svc.settings.files_check_seconds)
    # ...then the next scrape starts a new one and a later scrape has its answer.
    wait_for_check(metrics, {"missing": 2, "orphaned": 1})

    _old_file(svc.settings.storage_dir / "another-orphan.docx")
    clock.advance(seconds=svc.settings.files_check_seconds)
    wait_for_check(metrics, {"missing": 2, "orphaned": 2})


def test_check_files_command_lists_them_and_logs_to_the_log_file(
    api, svc, database_url, tmp_path, monkeypatch, restore_logging
):
    deleted, translated, orphan = _break_storage(api, svc)
    log_file = tmp_path / "log" / "translator.log"
    monkeypatch.setenv("TRANSLATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("TRANSLATOR_STORAGE_DIR", str(svc.settings.storage_dir))
    monkeypatch.setenv("TRANSLATOR_LOG_FILE", str(log_file))

    result = CliRunner().invoke(main, ["check-files"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(": 2 missing, 1 orphaned")
    assert lines[0].startswith("3 rows, ")
    assert any(f"file_id={deleted} original" in line for line in lines)
    assert any(f"file_id={translated} translated" in line for line in lines)
    assert f"orphaned {orphan}" in lines
    # TRANSLATOR_LOG_FILE: the command's own log lines went to the file too, in the
    # one-line format the sentinel's log source reads.
    logged = log_file.read_text().splitlines()
    assert logged and all(parse_line(line) for line in logged)
    assert any("event=files.checked" in line and "missing=2" in line for line in logged)
