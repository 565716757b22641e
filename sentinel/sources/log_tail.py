"""Follow a growing log file the way ``tail -F`` does: each call returns the
complete lines written since the previous one.

The reader remembers its open file and offset. When the file is rotated (the
path now names another inode) it finishes the old file, then starts the new
one from its beginning; when the file is truncated in place (copytruncate) it
starts again from the top (noticed when the file is shorter than our offset:
lines written after a truncation that already reach past it are missed, as
with ``tail -F``). A line still being written (no newline yet) waits
for the next call."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

# On first open, look back at most this far: enough for any window we count,
# without reading a log of many gigabytes on start.
DEFAULT_BACKLOG_BYTES = 4 * 1024 * 1024
# A bound on one call's work; the rest is read on the next call.
DEFAULT_MAX_READ_BYTES = 16 * 1024 * 1024


class LogTail:
    def __init__(
        self,
        path: Path,
        *,
        backlog_bytes: int = DEFAULT_BACKLOG_BYTES,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
    ) -> None:
        self.path = Path(path)
        self.backlog_bytes = backlog_bytes
        self.max_read_bytes = max_read_bytes
        self._file: BinaryIO | None = None
        self._inode: tuple[int, int] | None = None  # (device, inode) of the open file
        self._partial = b""
        self._skip_first_line = False

    def read_lines(self) -> list[str]:
        """Complete lines appended since the last call. Raises ``OSError`` when
        the file cannot be opened (missing, a directory, no permission)."""
        if self._file is None:
            self._open(backlog=True)
        assert self._file is not None
        chunks = [self._file.read(self.max_read_bytes)]
        if len(chunks[0]) < self.max_read_bytes:
            # At the end of the open file: has the path moved on to another one?
            chunks.extend(self._follow_rotation())
        return self._split(b"".join(chunks))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # --- internals --------------------------------------------------------------

    def _open(self, *, backlog: bool) -> None:
        handle = open(self.path, "rb")  # noqa: SIM115 - kept open between calls
        try:
            info = os.fstat(handle.fileno())
            start = max(0, info.st_size - self.backlog_bytes) if backlog else 0
            handle.seek(start)
        except OSError:
            handle.close()
            raise
        self.close()
        self._file = handle
        self._inode = (info.st_dev, info.st_ino)
        self._partial = b""
        self._skip_first_line = start > 0  # we landed inside a line

    def _follow_rotation(self) -> list[bytes]:
        assert self._file is not None
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            return []  # moved away, the new file not created yet: keep the old one
        if (info.st_dev, info.st_ino) != self._inode:
            # Rotated: the old file is read to its end above; the new one from the top.
            leftover = self._partial
            self._open(backlog=False)
            self._partial = leftover + b"\n" if leftover else b""
            return [self._file.read(self.max_read_bytes)]
        if info.st_size < self._file.tell():
            # Truncated in place: everything in it now is new.
            self._file.seek(0)
            self._partial = b""
            self._skip_first_line = False
            return [self._file.read(self.max_read_bytes)]
        return []

    def _split(self, data: bytes) -> list[str]:
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        if self._skip_first_line and complete:
            complete = complete[1:]
            self._skip_first_line = False
        return [line.decode("utf-8", errors="replace") for line in complete if line.strip()]
