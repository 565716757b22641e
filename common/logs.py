"""One line per event, ``key=value`` pairs an on-call engineer can grep.

    2026-11-22T12:00:00.123Z INFO translator.jobs.queue event=job.claimed job_id=42 worker=w1

Context such as the request id lives in a contextvar and is added to every line
logged while it is set.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import logging
import logging.handlers
import re
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.secrets import redact

_EMPTY: dict[str, Any] = {}  # never mutated: log_context always sets a new dict
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context")


class log_context:  # noqa: N801 - used as ``with log_context(...)``, like a function
    """Add ``fields`` to every line logged inside the ``with`` block (per task/thread)."""

    __slots__ = ("_fields", "_token")

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(_EMPTY), **self._fields})

    def __exit__(self, *_exc: object) -> None:
        _context.reset(self._token)


def current_context() -> dict[str, Any]:
    return dict(_context.get(_EMPTY))


def push_context(key: str, value: Any) -> tuple[contextvars.Token[dict[str, Any]], dict[str, Any]]:
    """``log_context(key=value)`` without the ``with`` block, for a caller on a hot
    path: the token to give ``pop_context`` and the context now set."""
    outer = _context.get(None)
    context = {key: value} if not outer else {**outer, key: value}
    return _context.set(context), context


pop_context = _context.reset


_NEEDS_QUOTES = re.compile(r'[ "=\n\t]')


def _quote(value: Any) -> str:
    if type(value) is int or type(value) is float:
        return str(value)
    text = str(value)
    if text == "" or _NEEDS_QUOTES.search(text):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


# "route=/api/plans": most fields repeat from line to line, so their text is kept
# (bounded: emptied when full, as paths with ids in them fill it). Keyed by type too,
# as 1 == True; context fields (a request id) rarely repeat and are not kept.
_pairs: dict[tuple[str, type, Any], str] = {}
_PAIRS_KEPT = 4096
_KEPT_TYPES = (str, int)


def _new_pair(key: str, value: Any) -> str:
    if len(_pairs) >= _PAIRS_KEPT:
        _pairs.clear()
    pair = _pairs[(key, type(value), value)] = f"{key}={_quote(value)}"
    return pair


def format_line(
    created: float, level: str, name: str, event: str, fields: dict, context: dict
) -> str:
    """A line's text, as the handlers write it (secrets redacted)."""
    return redact(_text(created, level, name, event, fields, context))


def _text(created: float, level: str, name: str, event: str, fields: dict, context: dict) -> str:
    """``<time> <LEVEL> <logger> event=<event> k=v ...``: the fields, then the context;
    fields that are ``None`` are left out."""
    parts = [_time(created), level, name]
    pairs = _pairs
    if context.keys() & fields.keys():  # the context's value wins, in the field's place
        fields, context = {**fields, **context}, _EMPTY
    for key, value in (("event", event), *fields.items()):
        kind = type(value)
        if kind in _KEPT_TYPES:
            parts.append(pairs.get((key, kind, value)) or _new_pair(key, value))
        elif value is not None:
            parts.append(f"{key}={_quote(value)}")
    for key, value in context.items():
        if value is not None:
            parts.append(f"{key}={_quote(value)}")
    return " ".join(parts)


_stamp: tuple[int, str] = (-1, "")  # (second, its text), replaced as one object
_MILLIS = tuple(f".{n:03d}Z" for n in range(1000))


def _time(created: float) -> str:
    """``2026-11-22T12:00:00.123Z``; the part up to the second is built once a second."""
    global _stamp
    second = int(created)
    cached_second, text = _stamp
    if second != cached_second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _stamp = (second, text)
    return text + _MILLIS[int((created - second) * 1000)]


# The pieces of a line, for a caller that makes a line of fixed shape in one format
# call (the request line): the same text as ``_text`` makes of it.
timestamp = _time
quote = _quote


class LogfmtFormatter(logging.Formatter):
    """Formats a record once, however many handlers write it."""

    def format(self, record: logging.LogRecord) -> str:
        line = getattr(record, "_logfmt", None)
        if line is not None:
            return line
        line = _text(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "fields", _EMPTY),
            getattr(record, "context", _EMPTY),
        )
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        line = redact(line)  # whatever a field or a traceback quoted, no secret leaves
        record._logfmt = line  # type: ignore[attr-defined]
        return line


class EventLogger:
    """``log.info("job.claimed", job_id=1)`` writes ``event=job.claimed job_id=1``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger = logging.getLogger(name)

    def _log(
        self, level: int, event: str, exc_info: Any, fields: dict[str, Any], batched: bool = False
    ) -> None:
        logger = self._logger
        if not logger.isEnabledFor(level):
            return
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
        # The record is made here rather than by ``Logger.log``, whose search of the
        # stack for the caller costs more than the rest: the caller is two frames up
        # (its ``log.info(...)`` call, then this).
        caller = sys._getframe(2)
        record = logger.makeRecord(
            logger.name,
            level,
            caller.f_code.co_filename,
            caller.f_lineno,
            event,
            (),
            exc_info,
            func=caller.f_code.co_name,
            extra={"fields": fields, "context": _context.get(_EMPTY), "batched": batched},
        )
        logger.handle(record)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, None, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, None, fields)

    def info_batched(self, event: str, **fields: Any) -> None:
        """An INFO line for one-per-request lines: written and flushed with others
        within ``FLUSH_SECONDS`` (or with the next line written at once, so order is
        kept), and the request pays for neither the system call nor, when only this
        module's line handlers would write it (as ``configure_logging`` sets up), the
        formatting: the line's parts are queued and ``_flusher``'s thread turns them
        into the same text. Any other listener (a test's capture, a library's
        handler, a filter) gets the usual record at once."""
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handlers = _line_handlers_only(logger, logging.INFO)
        if handlers is None:
            self._log(logging.INFO, event, None, fields, batched=True)
            return
        line = _LaterLine((time.time(), "INFO", logger.name, event, fields, _context.get(_EMPTY)))
        for handler in handlers:
            handler.write_later(line)

    def line_handlers(self) -> list[_BatchesLines] | None:
        """For a caller that queues its own INFO lines (objects with ``text()`` and
        ``parts``, as ``_LaterLine``) with ``write_later``: the handlers to queue
        them to; ``[]`` when INFO is off; ``None`` when a record must be made
        (``info_batched`` then)."""
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return []
        return _line_handlers_only(logger, logging.INFO)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, None, fields)

    def error(self, event: str, exc_info: Any = None, **fields: Any) -> None:
        self._log(logging.ERROR, event, exc_info, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, True, fields)

    def critical(self, event: str, exc_info: Any = None, **fields: Any) -> None:
        self._log(logging.CRITICAL, event, exc_info, fields)


FLUSH_SECONDS = 0.05


class _Flusher:
    """Flushes, from a thread of its own, the handlers that wrote batched lines."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: set[logging.Handler] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def due(self, handler: logging.Handler) -> None:
        if handler in self._pending:  # the common case: already due, no lock
            return
        with self._lock:
            self._pending.add(handler)
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-flush", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.interval)  # one write for the lines of the interval
            with self._lock:
                handlers, self._pending = self._pending, set()
                self._wake.clear()
            for handler in handlers:
                with contextlib.suppress(Exception):  # closed meanwhile
                    handler.flush()


_flusher = _Flusher(FLUSH_SECONDS)


class _LaterLine:
    """A batched line's parts (time, level, logger, event, fields, context), made
    into text once, by whichever handler writes it first."""

    __slots__ = ("parts", "line")

    def __init__(self, parts: tuple) -> None:
        self.parts = parts
        self.line: str | None = None

    def text(self) -> str:
        if self.line is None:
            self.line = format_line(*self.parts)
        return self.line


class _BatchesLines(logging.StreamHandler):  # type: ignore[type-arg]
    """Flushes after every line, except batched ones, which ``_flusher`` flushes;
    queued batched lines are written first, whatever writes next."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._later: collections.deque[_LaterLine] = collections.deque()

    def emit(self, record: logging.LogRecord) -> None:
        if self._later:
            self._write_later()
        if not getattr(record, "batched", False):
            super().emit(record)
            return
        try:
            self._write(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_later(self, line: _LaterLine) -> None:
        """Queues a batched line (no lock: a deque's append is atomic)."""
        self._later.append(line)
        _flusher.due(self)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._later:
                self._write_later()
            super().flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the stream may be closed already
            self.flush()
        super().close()

    def _write_later(self) -> None:
        """Writes the queued lines; the caller holds the lock."""
        later = self._later
        with contextlib.suppress(Exception):  # a failed reopen shows as the write's error
            self._before_write()  # once for the lot: a file check per line is a syscall each
        while later:
            line = later.popleft()
            try:
                self.stream.write(line.text() + self.terminator)
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"msg": repr(line.parts)}))

    def _write(self, line: str) -> None:
        self._before_write()
        self.stream.write(line + self.terminator)
        _flusher.due(self)

    def _before_write(self) -> None:
        pass


def _line_handlers_only(logger: logging.Logger, level: int) -> list[_BatchesLines] | None:
    """The handlers a record of ``logger`` at ``level`` would reach, when every
    handler on the way is a line handler of this module with our formatter and no
    filter (nor has ``logger`` one); otherwise ``None``. Walked per line, as
    ``Logger.callHandlers`` does: handlers come and go (a test's log capture)."""
    if logger.filters:
        return None
    found: list[_BatchesLines] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                not isinstance(handler, _BatchesLines)
                or handler.filters
                or type(handler.formatter) is not LogfmtFormatter
            ):
                return None
            if level >= handler.level:
                found.append(handler)
        if not current.propagate:
            break
        current = current.parent  # type: ignore[assignment]
    return found or None  # none: ``logging``'s last resort decides


class LineStreamHandler(_BatchesLines):
    pass


class LineFileHandler(_BatchesLines, logging.handlers.WatchedFileHandler):
    """Watched: after logrotate moves the file away, the next line opens a new one."""

    def _before_write(self) -> None:
        self.reopenIfNeeded()


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)


def configure_logging(level: str = "INFO", stream: Any = None, file: Path | None = None) -> None:
    """Install the one-line formatter on the root logger (idempotent); with
    ``file``, lines also go to that file, for log readers such as the sentinel."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    # Our lines show none of these: records need not look them up.
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    for handler in list(root.handlers):
        if getattr(handler, "_vigil", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [LineStreamHandler(stream or sys.stderr)]
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(LineFileHandler(file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(LogfmtFormatter())
        handler._vigil = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for noisy in ("uvicorn.access", "apscheduler", "httpx", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
