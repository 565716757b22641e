"""How the demo tells its story: one short line per step, stamped with the time
since the demo started, so a newcomer can follow what happens and when."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Narrator:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self._lock = threading.Lock()  # the story and the releases speak from two threads

    def say(self, tag: str, text: str) -> None:
        minutes, seconds = divmod(int(time.monotonic() - self.started), 60)
        with self._lock:
            print(f"[{minutes:02d}:{seconds:02d}] {tag:<10} {text}", file=self.stream, flush=True)
