"""Files on disk against the ``files`` table (seed 000 §7.3).

- *missing*: a row whose original or translated document is not on disk (the
  user's download fails);
- *orphaned*: a file under the storage directory that no row points to (disk
  filled by leftovers of crashed uploads or half-done deletions).

A file younger than ``grace`` is not called an orphan: an upload writes its
document before the row that names it is committed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from translator.files.models import File

DEFAULT_GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class MissingFile:
    file_id: int
    path: str
    which: str  # "original" or "translated"


@dataclass(frozen=True)
class FileCheck:
    checked_at: datetime
    rows: int
    files_on_disk: int
    missing: list[MissingFile] = field(default_factory=list)
    orphaned: list[Path] = field(default_factory=list)


def _key(path: str | Path) -> str:
    # Rows may hold relative paths (a relative storage_dir); compare absolute ones.
    return os.path.normpath(os.path.abspath(path))


def check_files(
    session: Session, storage_root: Path, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> FileCheck:
    known: set[str] = set()
    missing: list[MissingFile] = []
    rows = 0
    for file_id, original, translated in session.execute(
        select(File.id, File.file_path, File.translated_path).order_by(File.id)
    ):
        rows += 1
        for which, path in (("original", original), ("translated", translated)):
            if not path:
                continue
            known.add(_key(path))
            if not os.path.isfile(path):
                missing.append(MissingFile(file_id, path, which))
    orphaned: list[Path] = []
    on_disk = 0
    newest = (now - grace).timestamp()
    root = Path(storage_root)
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            on_disk += 1
            if _key(path) in known:
                continue
            try:
                if path.stat().st_mtime > newest:
                    continue  # being written, or its row is not committed yet
            except FileNotFoundError:
                continue  # deleted while we walked
            orphaned.append(path)
    return FileCheck(now, rows, on_disk, missing, sorted(orphaned))
