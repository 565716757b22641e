"""The ``log`` source: lines of given levels in a log file over a window, read
incrementally across rotation and truncation, from a real translator's log."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.clock import FakeClock
from common.logs import get_logger
from sentinel.sources import LogLineSource, LogTail, SourceConfigError, SourceContext
from sentinel.sources.config import build_source, parse_source_config
from translator.files.models import File, FileStatus

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _line(at: datetime, level: str, logger: str = "translator.app", event: str = "x") -> str:
    return f"{at:%Y-%m-%dT%H:%M:%S.000}Z {level} {logger} event={event}\n"


def _append(path: Path, *lines: str) -> None:
    with path.open("a") as fh:
        fh.write("".join(lines))


def _counts(reading) -> dict[str, float]:
    assert reading.ok, reading.no_data
    return {dict(p.labels)["level"]: p.value for p in reading.points}


def _source(path: Path, **options) -> LogLineSource:
    options.setdefault("levels", ["ERROR", "CRITICAL"])
    options.setdefault("window", timedelta(minutes=5))
    return LogLineSource(path, **options)


# --- reading the file --------------------------------------------------------------


def test_tail_returns_each_complete_line_once_and_waits_for_the_rest(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("one\ntwo\nthr")
    tail = LogTail(path)
    assert tail.read_lines() == ["one", "two"]
    assert tail.read_lines() == []
    _append(path, "ee\nfour\n")
    assert tail.read_lines() == ["three", "four"]


def test_tail_follows_rotation_and_truncation(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("a\n")
    tail = LogTail(path)
    assert tail.read_lines() == ["a"]

    _append(path, "b\n")  # written just before logrotate moves the file
    path.rename(tmp_path / "app.log.1")
    path.write_text("c\n")
    assert tail.read_lines() == ["b", "c"]  # the old file's end, then the new file

    _append(path, "a longer line before the copy\n")
    assert tail.read_lines() == ["a longer line before the copy"]
    path.write_text("d\n")  # copytruncate: emptied in place, then written again
    assert tail.read_lines() == ["d"]


def test_tail_looks_back_only_a_bounded_backlog_on_first_open(tmp_path):
    path = tmp_path / "big.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = LogTail(path, backlog_bytes=40)
    lines = tail.read_lines()
    assert lines[-1] == "line 999"
    assert 0 < len(lines) <= 5 and all(line.startswith("line ") for line in lines)


# --- counting ------------------------------------------------------------------------


def test_counts_levels_in_the_window_and_forgets_older_lines(tmp_path):
    path = tmp_path / "translator.log"
    _append(
        path,
        _line(T0 - timedelta(minutes=10), "ERROR"),  # before the window
        _line(T0 - timedelta(minutes=2), "ERROR"),
        _line(T0 - timedelta(minutes=1), "INFO"),
        _line(T0 - timedelta(minutes=1), "ERROR", logger="sentinel.engine"),
        "a stray line that is not an event\n",
        _line(T0 - timedelta(seconds=30), "CRITICAL"),
    )
    source = _source(path, loggers=["translator"])
    assert _counts(source.read(T0)) == {"ERROR": 1, "CRITICAL": 1}

    _append(path, _line(T0 + timedelta(minutes=1), "ERROR", logger="translator.jobs.queue"))
    assert _counts(source.read(T0 + timedelta(minutes=1))) == {"ERROR": 2, "CRITICAL": 1}
    # Five minutes on, only the last line is still inside the window.
    assert _counts(source.read(T0 + timedelta(minutes=4.5))) == {"ERROR": 1, "CRITICAL": 0}
    assert _counts(source.read(T0 + timedelta(minutes=7))) == {"ERROR": 0, "CRITICAL": 0}


def test_a_quiet_log_is_zero_not_no_data(tmp_path):
    path = tmp_path / "translator.log"
    path.write_text(_line(T0, "INFO"))
    assert _counts(_source(path).read(T0)) == {"ERROR": 0, "CRITICAL": 0}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "No such file or directory"),
        (lambda p: p.mkdir(), "Is a directory"),
    ],
)
def test_an_unreadable_log_is_no_data_naming_file_and_reason(tmp_path, make, reason):
    path = tmp_path / "translator.log"
    make(path)
    reading = _source(path).read(T0)
    assert not reading.ok and reading.points == ()
    assert reading.no_data == f"cannot read log file {path}: {reason}"


def test_a_file_that_appears_later_is_read_from_then_on(tmp_path):
    path = tmp_path / "translator.log"
    source = _source(path)
    assert not source.read(T0).ok
    _append(path, _line(T0, "ERROR"))
    assert _counts(source.read(T0 + timedelta(seconds=15))) == {"ERROR": 1, "CRITICAL": 0}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_no_data(tmp_path):
    path = tmp_path / "translator.log"
    path.write_text(_line(T0, "ERROR"))
    path.chmod(0)
    assert _source(path).read(T0).no_data == f"cannot read log file {path}: Permission denied"


# --- a real translator's log file --------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    # The log's lines carry the OS clock's time; the window is judged against it.
    return FakeClock(datetime.now(UTC))


def lose_translation(node, tmp_path: Path) -> int:
    """Upload a file and mark it translated to a file that is not on disk: its
    download then fails and the translator logs an ERROR line."""
    response = node.post("/api/files", files={"file": ("a.txt", b"Hello there.", "text/plain")})
    assert response.status_code == 201, response.text
    file_id = response.json()["file"]["id"]
    with node.services.db.session() as s:
        row = s.get(File, file_id)
        row.status = FileStatus.ready
        row.translated_path = str(tmp_path / "files" / "gone.ru.txt")
    return file_id


def test_counts_the_error_lines_a_live_translator_writes(
    translator_node, translator_log, clock, tmp_path
):
    source = build_source(
        parse_source_config({"type": "log", "loggers": ["translator"], "window_seconds": 300}),
        SourceContext(translator_log_file=translator_log),
        signal="logs.error_lines",
    )
    with translator_node() as node:
        file_id = lose_translation(node, tmp_path)
        assert _counts(source.read(datetime.now(UTC))) == {"ERROR": 0, "CRITICAL": 0}
        for _ in range(3):
            assert node.get(f"/api/files/{file_id}/download").status_code == 404
        get_logger("translator.jobs.worker").critical("worker.pool_lost", workers=0)
        get_logger("sentinel.engine").error("not.the.translator")  # another component's line
    counts = _counts(source.read(datetime.now(UTC)))
    assert counts == {"ERROR": 3, "CRITICAL": 1}
    assert translator_log.read_text().count("event=file.translation_missing") == 3


def test_log_source_configuration_is_checked():
    def error(config: dict) -> str:
        with pytest.raises(ValidationError) as info:
            parse_source_config({"type": "log", **config})
        return str(info.value)

    assert "levels" in error({"levels": ["ERROR", "ERROR"]})
    assert "levels" in error({"levels": ["FATAL"]})
    assert "levels" in error({"levels": []})
    assert "not a logger name" in error({"loggers": ["translator..jobs"]})
    assert "window_seconds" in error({"window_seconds": 0})
    assert "unknown" in error({"file": "x.log"}).lower() or "extra" in error({"file": "x.log"})
    config = parse_source_config({"type": "log"})
    assert config.levels == ["ERROR", "CRITICAL"]
    with pytest.raises(SourceConfigError, match="translator_log_file"):
        build_source(config, SourceContext(), signal="logs.error_lines")
