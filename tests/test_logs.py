"""The one-line log format and how lines reach the stream and the log file:
at once, except per-request lines, which are flushed together shortly after."""

from __future__ import annotations

import io
import time
from pathlib import Path

from common.logs import FLUSH_SECONDS, configure_logging, get_logger, log_context

log = get_logger("translator.test")


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_lines_are_written_at_once_and_alike_to_stream_and_file(tmp_path, restore_logging):
    stream, path = io.StringIO(), tmp_path / "translator.log"
    configure_logging("INFO", stream=stream, file=path)
    with log_context(request_id="r1"):
        log.info("job.done", job_id=7, note="two words", skipped=None, ms=1.5)
    (line,) = _lines(path)  # read straight away: no flush to wait for
    assert stream.getvalue() == line + "\n"
    assert line.endswith(
        ' INFO translator.test event=job.done job_id=7 note="two words" ms=1.5 request_id=r1'
    )
    assert line[:24].count("-") == 2 and line[23] == "Z"  # 2026-11-22T12:00:00.123Z


def test_request_lines_are_flushed_together_shortly_after(tmp_path, restore_logging):
    path = tmp_path / "translator.log"
    configure_logging("INFO", stream=io.StringIO(), file=path)
    log.info_batched("http.request", status=200)
    log.info_batched("http.request", status=201)
    deadline = time.monotonic() + 100 * FLUSH_SECONDS
    while len(_lines(path)) < 2:
        assert time.monotonic() < deadline, "batched lines never reached the file"
        time.sleep(FLUSH_SECONDS / 5)
    assert [line.rsplit(" ", 1)[1] for line in _lines(path)] == ["status=200", "status=201"]


def test_a_line_written_at_once_takes_the_batched_ones_before_it(tmp_path, restore_logging):
    path = tmp_path / "translator.log"
    configure_logging("INFO", stream=io.StringIO(), file=path)
    log.info_batched("http.request", status=500)
    log.error("http.unhandled_error", error="KeyError")
    events = [line.split(" event=")[1].split(" ")[0] for line in _lines(path)]
    assert events == ["http.request", "http.unhandled_error"]
