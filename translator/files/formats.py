"""Document formats: split a document into translatable blocks, and put
translated blocks back into a document of the same format.

Parsing is deterministic, so rendering re-parses the original and substitutes
the translations in order; nothing about the layout needs storing."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from translator.errors import InvalidUpload, UnsupportedFileType

SUPPORTED_FORMATS = ("txt", "md", "docx")
MB = 1024 * 1024


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extract: Callable[[bytes], list[str]]
    render: Callable[[bytes, list[str]], bytes]


def detect_format(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext not in SUPPORTED_FORMATS:
        raise UnsupportedFileType(
            f"unsupported file type {('.' + ext) if ext else '(no extension)'}; "
            f"supported: {', '.join('.' + f for f in SUPPORTED_FORMATS)}"
        )
    return ext


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidUpload(f"text file is not valid UTF-8 (byte {exc.start})") from exc


# --- plain text: paragraphs separated by blank lines -------------------------

_PARAGRAPH_BREAK = re.compile(r"(\n[ \t]*\n\s*)")


def _txt_segments(text: str) -> list[str]:
    # Alternating [paragraph, break, paragraph, break, ...]; breaks kept verbatim.
    return _PARAGRAPH_BREAK.split(text)


def _txt_extract(data: bytes) -> list[str]:
    segments = _txt_segments(_decode(data))
    return [s for s in segments[0::2] if s.strip()]


def _txt_render(data: bytes, translations: list[str]) -> bytes:
    segments = _txt_segments(_decode(data))
    it = iter(translations)
    out = [next(it) if i % 2 == 0 and seg.strip() else seg for i, seg in enumerate(segments)]
    return "".join(out).encode()


# --- markdown: line by line, markup kept, code left alone ---------------------

_MD_PREFIX = re.compile(r"^(\s*(?:#{1,6}\s+|>\s*|[-*+]\s+(?:\[[ xX]\]\s+)?|\d+[.)]\s+)*)(.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _md_lines(text: str) -> Iterator[tuple[str, str | None, str]]:
    """Yield (prefix, translatable text or None, line ending) for every line."""
    in_code = False
    for raw in text.splitlines(keepends=True):
        line = raw.rstrip("\r\n")
        ending = raw[len(line) :]
        if _FENCE.match(line):
            in_code = not in_code
            yield line, None, ending
            continue
        match = _MD_PREFIX.match(line)
        assert match is not None  # the pattern matches any line
        prefix, body = match.groups()
        if in_code or not body.strip() or re.fullmatch(r"[-=*_|: ]+", body):
            yield line, None, ending  # code, blank lines, rules and table separators
        else:
            yield prefix, body, ending


def _md_extract(data: bytes) -> list[str]:
    return [body for _, body, _ in _md_lines(_decode(data)) if body is not None]


def _md_render(data: bytes, translations: list[str]) -> bytes:
    it = iter(translations)
    out = []
    for prefix, body, ending in _md_lines(_decode(data)):
        out.append(prefix + (next(it) if body is not None else "") + ending)
    return "".join(out).encode()


# --- docx: paragraphs of the body and of table cells ---------------------------


# A .docx is a zip archive: its directory is checked before any XML is parsed, so
# a small file that inflates to gigabytes (a zip bomb) is refused in
# milliseconds. Python's zipfile never inflates an entry past the size the
# directory declares (a lie fails the CRC check), so the declared sizes bound
# the memory parsing can take.
DOCX_MAX_ENTRIES = 1000
DOCX_MAX_UNCOMPRESSED = 32 * 1024 * 1024
DOCX_MAX_RATIO = 100  # real documents inflate 5-20x; bombs thousands of times
_RATIO_CHECKED_FROM = 1024 * 1024  # tiny parts (styles, settings) may compress better


def check_docx_archive(data: bytes) -> None:
    """Refuse an archive whose entries would inflate beyond what a document needs."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InvalidUpload(f"corrupt .docx file: {exc}") from None
    if len(entries) > DOCX_MAX_ENTRIES:
        raise InvalidUpload(
            f".docx archive has {len(entries)} entries; at most {DOCX_MAX_ENTRIES} are accepted"
        )
    total = sum(entry.file_size for entry in entries)
    if total > DOCX_MAX_UNCOMPRESSED:
        raise InvalidUpload(
            f".docx archive inflates to {total / MB:.0f} MB; at most "
            f"{DOCX_MAX_UNCOMPRESSED // MB} MB are accepted"
        )
    for entry in entries:
        if entry.file_size >= _RATIO_CHECKED_FROM:
            ratio = entry.file_size / max(entry.compress_size, 1)
            if ratio > DOCX_MAX_RATIO:
                raise InvalidUpload(
                    f".docx entry {entry.filename[:80]!r} is compressed {ratio:.0f}:1; at most "
                    f"{DOCX_MAX_RATIO}:1 is accepted (a zip bomb?)"
                )


def _open_docx(data: bytes):  # type: ignore[no-untyped-def]
    import docx

    check_docx_archive(data)
    try:
        return docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InvalidUpload(f"corrupt .docx file: {exc}") from exc
    except Exception as exc:  # python-docx raises several lxml/opc errors on bad input
        raise InvalidUpload(f"corrupt .docx file: {type(exc).__name__}") from exc


def _docx_paragraphs(document):  # type: ignore[no-untyped-def]
    yield from document.paragraphs
    seen: set[object] = set()  # merged cells appear once per spanned grid cell
    for table in document.tables:
        for row in table.rows:
            for cell in row.cells:
                if cell._tc in seen:
                    continue
                seen.add(cell._tc)
                yield from cell.paragraphs


def _docx_extract(data: bytes) -> list[str]:
    return [p.text for p in _docx_paragraphs(_open_docx(data)) if p.text.strip()]


def _docx_render(data: bytes, translations: list[str]) -> bytes:
    document = _open_docx(data)
    it = iter(translations)
    for paragraph in _docx_paragraphs(document):
        if not paragraph.text.strip():
            continue
        text = next(it)
        runs = paragraph.runs
        if runs:
            # Keep the first run's formatting for the whole translated paragraph.
            runs[0].text = text
            for run in runs[1:]:
                run.text = ""
        else:
            paragraph.add_run(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


FORMATS: dict[str, Format] = {
    "txt": Format("txt", "text/plain; charset=utf-8", _txt_extract, _txt_render),
    "md": Format("md", "text/markdown; charset=utf-8", _md_extract, _md_render),
    "docx": Format(
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _docx_extract,
        _docx_render,
    ),
}
