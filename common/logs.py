"""One line per event, ``key=value`` pairs an on-call engineer can grep.

    2026-11-22T12:00:00.123Z INFO translator.jobs.queue event=job.claimed job_id=42 worker=w1

Context such as the request id lives in a contextvar and is added to every line
logged while it is set.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.secrets import redact

_EMPTY: dict[str, Any] = {}  # never mutated: log_context always sets a new dict
_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context")


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    token = _context.set({**_context.get(_EMPTY), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get(_EMPTY))


def _quote(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' "=\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        fields: dict[str, Any] = {"event": record.getMessage()}
        fields.update(getattr(record, "fields", {}))
        fields.update(getattr(record, "context", {}))
        line = f"{stamp}Z {record.levelname} {record.name} " + " ".join(
            f"{k}={_quote(v)}" for k, v in fields.items() if v is not None
        )
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return redact(line)  # whatever a field or a traceback quoted, no secret leaves


class EventLogger:
    """``log.info("job.claimed", job_id=1)`` writes ``event=job.claimed job_id=1``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, exc_info: Any = None, **fields: Any) -> None:
        if self._logger.isEnabledFor(level):
            context = _context.get(_EMPTY)
            extra = {"fields": fields, "context": context}
            self._logger.log(level, event, exc_info=exc_info, extra=extra)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, **fields)

    def error(self, event: str, exc_info: Any = None, **fields: Any) -> None:
        self._log(logging.ERROR, event, exc_info=exc_info, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, exc_info=True, **fields)

    def critical(self, event: str, exc_info: Any = None, **fields: Any) -> None:
        self._log(logging.CRITICAL, event, exc_info=exc_info, **fields)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)


def configure_logging(level: str = "INFO", stream: Any = None, file: Path | None = None) -> None:
    """Install the one-line formatter on the root logger (idempotent); with
    ``file``, lines also go to that file, for log readers such as the sentinel."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_vigil", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = [logging.StreamHandler(stream or sys.stderr)]
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        # Watched: after logrotate moves the file away, the next line opens a new one.
        handlers.append(logging.handlers.WatchedFileHandler(file, encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(LogfmtFormatter())
        handler._vigil = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for noisy in ("uvicorn.access", "apscheduler", "httpx", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
