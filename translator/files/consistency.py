"""Stored documents against the ``files`` table (seed 000 §7.3), on either storage
backend (``translator.files.storage``).

- *missing*: a row whose original or translated document is not stored (the
  user's download fails);
- *orphaned*: a stored document that no row points to (storage filled by leftovers
  of crashed uploads or half-done deletions).

A document younger than ``grace`` is not called an orphan: an upload writes its
document before the row that names it is committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from translator.files.models import File
from translator.files.storage import FileStorage

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
    files_on_disk: int  # documents stored, whichever the backend
    missing: list[MissingFile] = field(default_factory=list)
    orphaned: list[Path] = field(default_factory=list)


def check_files(
    session: Session, storage: FileStorage, now: datetime, grace: timedelta = DEFAULT_GRACE
) -> FileCheck:
    stored = {obj.key: obj.modified_at for obj in storage.inventory()}
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
            key = storage.normalise(path)
            known.add(key)
            # A row may name a document outside what the inventory covers (a storage
            # directory moved since): ask the storage before calling it missing.
            if key not in stored and not storage.exists(path):
                missing.append(MissingFile(file_id, path, which))
    newest = now - grace
    orphaned = [
        Path(key)
        for key, modified_at in stored.items()
        # younger: being written, or its row is not committed yet
        if key not in known and modified_at <= newest
    ]
    return FileCheck(now, rows, len(stored), missing, sorted(orphaned))
