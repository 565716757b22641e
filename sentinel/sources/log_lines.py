"""``log`` signals: how many lines of given levels a service wrote to its log
file in the last window, one series per level.

Lines are in the platform's one-line format (``common.logs``)::

    2026-11-22T12:00:00.123Z ERROR translator.jobs.queue event=job.failed job_id=42

Each read takes the lines appended since the previous read (``LogTail``),
keeps the matching ones with their own timestamps, and counts those inside
``(now - window, now]``. A file that cannot be read is a no-data reading that
names the file and the reason, never a zero."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from common.logs import get_logger
from sentinel.sources.base import Reading, SeriesPoint, as_utc, labels_of
from sentinel.sources.log_tail import LogTail

log = get_logger(__name__)

_LINE = re.compile(r"^(\S+)\s+([A-Z]+)\s+(\S+)")
# Bounds memory when a service logs errors in a tight loop; the count then saturates.
MAX_REMEMBERED_LINES = 200_000


def parse_line(line: str) -> tuple[datetime | None, str, str] | None:
    """``(timestamp or None, level, logger)`` of a log line; None when the line
    is not in the platform's format (a stray print, a traceback fragment)."""
    match = _LINE.match(line)
    if not match:
        return None
    try:
        stamp: datetime | None = as_utc(datetime.fromisoformat(match[1]))
    except ValueError:
        stamp = None
    return stamp, match[2], match[3]


class LogLineSource:
    def __init__(
        self,
        path: Path,
        levels: Sequence[str],
        window: timedelta,
        *,
        loggers: Sequence[str] = (),
        name: str = "log",
        tail: LogTail | None = None,
    ) -> None:
        if not levels:
            raise ValueError("a log source needs at least one level")
        if window <= timedelta(0):
            raise ValueError(f"window must be positive, got {window}")
        self.path = Path(path)
        self.levels = tuple(dict.fromkeys(level.upper() for level in levels))
        self.window = window
        self.loggers = tuple(loggers)
        self.name = name
        self._tail = tail or LogTail(self.path)
        self._seen: deque[tuple[datetime, str]] = deque(maxlen=MAX_REMEMBERED_LINES)
        self._lock = threading.Lock()  # read() may be called from an API thread too

    def read(self, now: datetime) -> Reading:
        now = as_utc(now)
        with self._lock:
            try:
                lines = self._tail.read_lines()
            except OSError as exc:
                reason = f"cannot read log file {self.path}: {exc.strerror or exc}"
                log.warning("source.no_data", signal=self.name, source="log", reason=reason)
                return Reading.empty(now, reason)
            for line in lines:
                self._remember(line, now)
            counts = self._count(now)
        return Reading(
            now,
            tuple(
                SeriesPoint(labels_of({"level": level}), float(counts[level]))
                for level in self.levels
            ),
        )

    def close(self) -> None:
        self._tail.close()

    def _remember(self, line: str, now: datetime) -> None:
        parsed = parse_line(line)
        if parsed is None:
            return
        stamp, level, logger = parsed
        if level not in self.levels:
            return
        if self.loggers and not any(
            logger == prefix or logger.startswith(prefix + ".") for prefix in self.loggers
        ):
            return
        # A line without a readable time counts from when we read it.
        self._seen.append((stamp or now, level))

    def _count(self, now: datetime) -> dict[str, int]:
        start = now - self.window
        while self._seen and self._seen[0][0] <= start:
            self._seen.popleft()
        counts = dict.fromkeys(self.levels, 0)
        for stamp, level in self._seen:
            if start < stamp <= now:
                counts[level] += 1
        return counts
