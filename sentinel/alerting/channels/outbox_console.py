"""The channel used when no provider is configured: print and keep what would have been sent."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sentinel.alerting.channels.base import DeliveryResult, Message


class ConsoleChannel:
    name = "console"

    def __init__(self, stream: TextIO, path: Path | None = None) -> None:
        self._stream = stream
        self._path = path
        # Several workers may share one channel; JSON lines must not interleave.
        self._lock = threading.Lock()

    def send(self, message: Message) -> DeliveryResult:
        line = (
            f"[{message.severity}] {message.state} to={message.recipient} "
            f"id={message.notification_id} {message.text}"
        )
        record = {"at": datetime.now(UTC).isoformat(), **dataclasses.asdict(message)}
        with self._lock:
            # One message, one printed line; " | " keeps a Slack message's lines apart.
            print(" | ".join(line.splitlines()), file=self._stream, flush=True)
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                with self._path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return DeliveryResult.success(f"console-{message.notification_id}", status="sent")
