"""Reading a multipart upload with its size limit enforced while it streams in.

A framework form parser spools the whole body to a temporary file before the
handler sees it, so a 3 GB upload is written to disk before a 100 MB limit can
answer. Here the body is parsed chunk by chunk as it arrives and kept in
memory only up to the limit: a declared Content-Length over the limit is
refused before a byte is read, and a body that passes the limit while
streaming is refused at that chunk. Nothing reaches the disk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from translator.errors import FileTooLarge, InvalidUpload

# Room for the multipart framing and the small form fields around the file.
ENVELOPE_BYTES = 64 * 1024
MAX_FIELD_BYTES = 1024
MAX_PARTS = 8


@dataclass
class ReadUpload:
    """The file part and the text fields of one multipart body."""

    filename: str | None = None
    data: bytes = b""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _Collector:
    """python-multipart's callbacks, keeping at most ``max_file_bytes`` of the file."""

    def __init__(self, max_file_bytes: int, too_large: str) -> None:
        self.max_file_bytes = max_file_bytes
        self.too_large = too_large
        self.parts: list[_Part] = []
        self._part = _Part()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""

    def on_part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise InvalidUpload(f"a multipart upload has at most {MAX_PARTS} parts")
        self._part = _Part()
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._part.name = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            self._part.filename = options[b"filename"].decode("utf-8", "replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        limit = self.max_file_bytes if part.filename is not None else MAX_FIELD_BYTES
        if len(part.data) + (end - start) > limit:
            if part.filename is not None:
                raise FileTooLarge(self.too_large)
            raise InvalidUpload(f"form field {part.name!r} is longer than {MAX_FIELD_BYTES} bytes")
        part.data += data[start:end]

    def on_part_end(self) -> None:
        self.parts.append(self._part)

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }


async def read_multipart(
    content_type: str | None,
    content_length: str | None,
    chunks: AsyncIterator[bytes],
    file_field: str,
    max_file_bytes: int,
    too_large: str,
) -> ReadUpload:
    """Parse the body; ``too_large`` is the 413's message when the file passes
    ``max_file_bytes``."""
    media_type, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise _missing(file_field, "send the file as multipart/form-data")
    max_body = max_file_bytes + ENVELOPE_BYTES
    if content_length and content_length.strip().isdigit() and int(content_length) > max_body:
        raise FileTooLarge(too_large)  # refused before a byte of the body is read

    collector = _Collector(max_file_bytes, too_large)
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > max_body:
                raise FileTooLarge(too_large)
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise InvalidUpload(f"malformed multipart body: {type(exc).__name__}") from None

    upload = ReadUpload()
    for part in collector.parts:
        if part.name == file_field and part.filename is not None:
            if upload.filename is not None:
                raise InvalidUpload(f"send one '{file_field}' part, not several")
            upload.filename, upload.data = part.filename, bytes(part.data)
        elif part.filename is None:
            upload.fields[part.name] = part.data.decode("utf-8", "replace")
    if upload.filename is None:
        raise _missing(file_field, f"the multipart body has no '{file_field}' file part")
    return upload


def _missing(file_field: str, message: str) -> RequestValidationError:
    """Answered like any other missing field: 422 naming it."""
    return RequestValidationError(
        [{"loc": ("body", file_field), "msg": message, "type": "missing"}]
    )
