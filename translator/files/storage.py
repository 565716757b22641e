"""Files on disk. Writes go to a temporary name first and are renamed into
place, so a crash never leaves a half-written document under a real name."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path


class FileStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def new_path(self, now: datetime, ext: str) -> Path:
        return self.root / f"{now:%Y}" / f"{now:%m}" / f"{uuid.uuid4().hex}.{ext}"

    def translated_path(self, original: Path, lang: str, job_id: int) -> Path:
        return original.with_name(f"{original.stem}.job{job_id}.{lang}{original.suffix}")

    def write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def read(self, path: str | Path) -> bytes:
        return Path(path).read_bytes()

    def delete(self, path: str | Path | None) -> bool:
        if not path:
            return False
        try:
            Path(path).unlink()
            return True
        except FileNotFoundError:
            return False
