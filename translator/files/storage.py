"""Where uploaded documents and their translations are kept, behind one interface.

Rows in ``files`` name a document by a *key* (``files.file_path`` and
``files.translated_path``); the storage maps keys to bytes. Two backends:

* ``LocalDiskStorage`` (``TRANSLATOR_FILE_STORAGE=disk``, the default): files under
  ``TRANSLATOR_STORAGE_DIR``, the key is the file's path. One node only: another host
  cannot see this disk.
* ``DatabaseStorage`` (``TRANSLATOR_FILE_STORAGE=database``): the bytes in the
  translator's own database, in ``stored_files`` and ``file_chunks`` rows of at most
  ``CHUNK_BYTES`` each, so every node sharing the (PostgreSQL) database can serve and
  process every file. Keys start with ``db:``. PostgreSQL only.

Both write under all-or-nothing rules (a temporary name renamed into place, or one
transaction), and both read in chunks, so a download never holds a whole document.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from sqlalchemy import Connection, delete, func, insert, select, update

from common.clock import ensure_utc
from common.db import is_sqlite
from translator.db import Database
from translator.files.models import FileChunk, StoredFile

CHUNK_BYTES = 1024 * 1024
DATABASE_PREFIX = "db:"

Key = str | Path
Content = bytes | Iterable[bytes]


@dataclass(frozen=True)
class StoredObject:
    """One stored document, as the consistency check sees it."""

    key: str  # normalised (see ``FileStorage.normalise``)
    modified_at: datetime


@runtime_checkable
class FileStorage(Protocol):
    def new_path(self, now: datetime, ext: str) -> Path:
        """A fresh key for a document uploaded at ``now``."""
        ...

    def translated_path(self, original: Path, lang: str, job_id: int) -> Path:
        """The key of ``original``'s translation by job ``job_id``."""
        ...

    def write(self, key: Key, content: Content) -> None:
        """Store ``content`` (bytes, or chunks of it) under ``key``, all or nothing,
        replacing what was there."""
        ...

    def read(self, key: Key) -> bytes:
        """The whole document (the formats parse whole documents); FileNotFoundError."""
        ...

    def iter_chunks(self, key: Key) -> Iterator[bytes]:
        """The document in chunks of at most CHUNK_BYTES; FileNotFoundError before the
        first chunk when there is none."""
        ...

    def exists(self, key: Key) -> bool: ...

    def delete(self, key: Key | None) -> bool:
        """Remove the document; False when there was none."""
        ...

    def inventory(self) -> Iterator[StoredObject]:
        """Every stored document (for the consistency check)."""
        ...

    def normalise(self, key: Key) -> str:
        """The form ``inventory`` reports a key in (rows may hold other spellings)."""
        ...

    def describe(self) -> str:
        """Where the documents are, for people ("under var/files", "in the database")."""
        ...


def _chunks_of(content: Content, size: int) -> Iterator[bytes]:
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), size):
            yield bytes(view[start : start + size])
        return
    buffer = bytearray()
    for piece in content:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _dated_name(now: datetime, ext: str) -> str:
    return f"{now:%Y}/{now:%m}/{uuid.uuid4().hex}.{ext}"


def _translated_name(original: Path, lang: str, job_id: int) -> Path:
    return original.with_name(f"{original.stem}.job{job_id}.{lang}{original.suffix}")


class LocalDiskStorage:
    """Files on disk. Writes go to a temporary name first and are renamed into
    place, so a crash never leaves a half-written document under a real name."""

    def __init__(self, root: Path, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.root = Path(root)
        self.chunk_bytes = chunk_bytes

    def new_path(self, now: datetime, ext: str) -> Path:
        return self.root / _dated_name(now, ext)

    def translated_path(self, original: Path, lang: str, job_id: int) -> Path:
        return _translated_name(Path(original), lang, job_id)

    def write(self, key: Key, content: Content) -> None:
        path = Path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        try:
            with open(tmp, "wb") as fh:
                for chunk in _chunks_of(content, self.chunk_bytes):
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a stream that failed midway leaves nothing
            raise

    def read(self, key: Key) -> bytes:
        return Path(key).read_bytes()

    def iter_chunks(self, key: Key) -> Iterator[bytes]:
        fh = open(Path(key), "rb")  # noqa: SIM115 - FileNotFoundError before the first chunk
        return self._chunks(fh)

    def _chunks(self, fh: BinaryIO) -> Iterator[bytes]:
        with fh:
            while chunk := fh.read(self.chunk_bytes):
                yield chunk

    def exists(self, key: Key) -> bool:
        return os.path.isfile(key)

    def delete(self, key: Key | None) -> bool:
        if not key:
            return False
        try:
            Path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    def inventory(self) -> Iterator[StoredObject]:
        for directory, _dirs, names in os.walk(self.root):
            for name in names:
                path = Path(directory) / name
                try:
                    mtime = path.stat().st_mtime
                except FileNotFoundError:
                    continue  # deleted while we walked
                yield StoredObject(self.normalise(path), datetime.fromtimestamp(mtime, UTC))

    def normalise(self, key: Key) -> str:
        # Rows may hold relative paths (a relative storage_dir); compare absolute ones.
        return os.path.normpath(os.path.abspath(key))

    def describe(self) -> str:
        return f"under {self.root}"


class DatabaseStorage:
    """Documents in the translator's database, chunk by chunk.

    A write is one transaction on its own connection: the ``stored_files`` row and
    every chunk appear together at commit, or not at all. Reads fetch one chunk per
    query, so neither side ever holds more than a chunk of a document."""

    def __init__(self, db: Database, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.db = db
        self.chunk_bytes = chunk_bytes
        self._files = StoredFile.__table__
        self._chunks = FileChunk.__table__

    def new_path(self, now: datetime, ext: str) -> Path:
        return Path(DATABASE_PREFIX + _dated_name(now, ext))

    def translated_path(self, original: Path, lang: str, job_id: int) -> Path:
        return _translated_name(Path(original), lang, job_id)

    def _key(self, key: Key) -> str:
        key = str(key)
        if not key.startswith(DATABASE_PREFIX):
            raise FileNotFoundError(f"{key} is not a key of the database file storage")
        return key

    def write(self, key: Key, content: Content) -> None:
        name = self._key(key)
        files, chunks = self._files, self._chunks
        with self.db.engine.begin() as conn:
            conn.execute(delete(chunks).where(chunks.c.key == name))
            conn.execute(delete(files).where(files.c.key == name))
            conn.execute(
                insert(files).values(key=name, size_bytes=0, chunks=0, created_at=datetime.now(UTC))
            )
            size = count = 0
            for chunk in _chunks_of(content, self.chunk_bytes):
                conn.execute(insert(chunks).values(key=name, seq=count, data=chunk))
                size += len(chunk)
                count += 1
            conn.execute(
                update(files).where(files.c.key == name).values(size_bytes=size, chunks=count)
            )

    def read(self, key: Key) -> bytes:
        return b"".join(self.iter_chunks(key))

    def iter_chunks(self, key: Key) -> Iterator[bytes]:
        name = self._key(key)
        with self.db.engine.connect() as conn:
            count = conn.scalar(select(self._files.c.chunks).where(self._files.c.key == name))
        if count is None:
            raise FileNotFoundError(f"{name} is not in the database file storage")
        return self._fetch(name, count)

    def _fetch(self, name: str, count: int) -> Iterator[bytes]:
        # One short query per chunk: a slow client never holds a pooled connection.
        for seq in range(count):
            with self.db.engine.connect() as conn:
                data = self._chunk(conn, name, seq)
            if data is None:
                raise FileNotFoundError(f"{name} was deleted while it was read")
            yield bytes(data)

    def _chunk(self, conn: Connection, name: str, seq: int) -> bytes | None:
        if conn.dialect.driver == "psycopg":
            # bytea in binary: the text protocol's hex form triples the bytes on the wire
            # and costs more to decode than the query (bench/file_storage.py).
            raw = conn.connection.dbapi_connection
            with raw.cursor(binary=True) as cur:  # type: ignore[union-attr]
                cur.execute("SELECT data FROM file_chunks WHERE key = %s AND seq = %s", (name, seq))
                row = cur.fetchone()
            return None if row is None else row[0]
        chunks = self._chunks
        return conn.scalar(select(chunks.c.data).where(chunks.c.key == name, chunks.c.seq == seq))

    def exists(self, key: Key) -> bool:
        if not str(key).startswith(DATABASE_PREFIX):
            return False
        with self.db.engine.connect() as conn:
            return (
                conn.scalar(
                    select(func.count())
                    .select_from(self._files)
                    .where(self._files.c.key == str(key))
                )
                > 0
            )

    def delete(self, key: Key | None) -> bool:
        if not key or not str(key).startswith(DATABASE_PREFIX):
            return False
        with self.db.engine.begin() as conn:
            conn.execute(delete(self._chunks).where(self._chunks.c.key == str(key)))
            return (
                conn.execute(delete(self._files).where(self._files.c.key == str(key))).rowcount > 0
            )

    def inventory(self) -> Iterator[StoredObject]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(self._files.c.key, self._files.c.created_at)).all()
        for key, created_at in rows:
            yield StoredObject(key, ensure_utc(created_at))

    def normalise(self, key: Key) -> str:
        return str(key)

    def describe(self) -> str:
        return "in the database"


def build_storage(
    kind: str, root: Path, db: Database, chunk_bytes: int = CHUNK_BYTES
) -> FileStorage:
    """The backend ``TRANSLATOR_FILE_STORAGE`` names."""
    if kind == "disk":
        return LocalDiskStorage(root, chunk_bytes)
    if kind == "database":
        if is_sqlite(db.engine):
            # SQLite is one host's file, and its single writer would make a document's
            # write wait for the upload's own transaction: local disk is the way there.
            raise ValueError(
                "TRANSLATOR_FILE_STORAGE=database needs a PostgreSQL "
                "TRANSLATOR_DATABASE_URL; on SQLite use 'disk'"
            )
        return DatabaseStorage(db, chunk_bytes)
    raise ValueError(f"unknown file storage {kind!r}: use 'disk' or 'database'")
