"""The one-line log format and how lines reach the stream and the log file:
at once, except per-request lines, which are flushed together shortly after."""

from __future__ import annotations

import io
import logging
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


def test_a_request_line_skips_the_record_only_when_no_other_handler_listens(
    restore_logging, monkeypatch
):
    """Alone with our handlers, a batched line is queued without a ``LogRecord`` and
    the flush thread writes it, with the context it was logged in; with another
    listener (a capture, as a test or a library adds) it takes the usual way. The
    text is the same either way."""
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if not getattr(h, "_vigil", False)]:
        root.removeHandler(handler)  # pytest's own capture; restore_logging puts it back
    made = []
    make_record = logging.Logger.makeRecord

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(args[4])
        return make_record(self, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", counted)
    fields = {"method": "GET", "path": "/a b", "status": 200, "ms": 1.5, "skipped": None}
    with log_context(request_id="r1"):
        log.info_batched("http.request", **fields)
    deadline = time.monotonic() + 100 * FLUSH_SECONDS
    while not stream.getvalue():
        assert time.monotonic() < deadline, "the queued line was never written"
        time.sleep(FLUSH_SECONDS / 5)
    assert made == []

    captured: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = captured.append  # type: ignore[method-assign]
    root.addHandler(capture)
    try:
        with log_context(request_id="r1"):
            log.info_batched("http.request", **fields)
    finally:
        root.removeHandler(capture)
    fast, usual = (line.split(" ", 1)[1] for line in stream.getvalue().splitlines())
    assert (
        fast
        == usual
        == (
            'INFO translator.test event=http.request method=GET path="/a b" status=200 ms=1.5'
            " request_id=r1"
        )
    )
    assert made == ["http.request"]
    assert captured[0].fields["path"] == "/a b" and captured[0].context == {"request_id": "r1"}


def test_queued_lines_come_before_a_line_written_at_once(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if not getattr(h, "_vigil", False)]:
        root.removeHandler(handler)
    for status in (200, 201):
        log.info_batched("http.request", status=status)
    log.error("http.unhandled_error", error="KeyError")
    assert [line.rsplit(" ", 1)[1] for line in stream.getvalue().splitlines()] == [
        "status=200",
        "status=201",
        "error=KeyError",
    ]


def test_queued_lines_go_to_a_new_file_after_logrotate_moves_the_old_one(tmp_path, restore_logging):
    path = tmp_path / "translator.log"
    configure_logging("INFO", stream=io.StringIO(), file=path)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if not getattr(h, "_vigil", False)]:
        root.removeHandler(handler)
    log.info_batched("http.request", status=200)
    for handler in root.handlers:
        handler.flush()
    path.rename(tmp_path / "translator.log.1")  # what logrotate does
    log.info_batched("http.request", status=201)
    deadline = time.monotonic() + 100 * FLUSH_SECONDS
    while len(_lines(path)) < 1:
        assert time.monotonic() < deadline, "the line after the move never reached a new file"
        time.sleep(FLUSH_SECONDS / 5)
    assert [line.rsplit(" ", 1)[1] for line in _lines(path)] == ["status=201"]
    assert _lines(tmp_path / "translator.log.1")[0].endswith("status=200")
