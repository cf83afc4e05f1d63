"""Set the /Title of a PDF that Chromium printed, so a reader shows a real title.

Chromium takes the PDF title from the page it printed (kaleido's page is called
"Kaleido-fier"), and a PDF without one shows as "untitled". :func:`set_pdf_title` rewrites
the document-information dictionary's /Title and shifts the cross-reference table by the
change in length, so the file stays a valid classic-xref PDF (what Chromium's Skia writes).
A PDF of another shape gets an incremental update with a new information dictionary.
"""

from __future__ import annotations

import re

_TRAILER_INFO = re.compile(rb"trailer\s*<<.*?/Info\s+(\d+)\s+(\d+)\s+R", re.S)
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_XREF_ENTRY = re.compile(rb"(\d{10}) (\d{5}) ([nf])")
_STRING = rb"\((?:\\.|[^\\()])*\)|<[0-9A-Fa-f\s]*>"


def pdf_string(text: str) -> bytes:
    """``text`` as a PDF string: literal for ASCII, UTF-16BE hex with a byte-order mark otherwise."""
    text = re.sub(r"[\x00-\x1f]+", " ", str(text)).strip()
    if text.isascii():
        return b"(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode() + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def pdf_title(data: bytes) -> str | None:
    """The /Title of the document-information dictionary (None when absent); for tests and checks."""
    found = _info_span(data)
    if found is None:
        return None
    start, end = found
    match = re.search(rb"/Title\s*(" + _STRING + rb")", data[start:end])
    if not match:
        return None
    raw = match.group(1)
    if raw.startswith(b"<"):
        hexed = re.sub(rb"\s", b"", raw[1:-1]).decode()
        body = bytes.fromhex(hexed)
        return body[2:].decode("utf-16-be") if body.startswith(b"\xfe\xff") else body.decode("latin-1")
    return re.sub(rb"\\(.)", rb"\1", raw[1:-1]).decode("latin-1")


def _info_span(data: bytes) -> tuple[int, int] | None:
    """(start, end) of the information dictionary's object body (the last trailer's /Info)."""
    trailers = list(_TRAILER_INFO.finditer(data))
    if not trailers:
        return None
    num, gen = trailers[-1].group(1), trailers[-1].group(2)
    starts = list(re.finditer(rb"(?<![0-9])" + num + rb"\s+" + gen + rb"\s+obj", data))
    if not starts:
        return None
    start = starts[-1].end()
    end = data.find(b"endobj", start)
    return (start, end) if end > 0 else None


def set_pdf_title(data: bytes, title: str) -> bytes:
    """A copy of the PDF ``data`` whose information dictionary has ``/Title title``."""
    rewritten = _rewrite_in_place(data, pdf_string(title))
    return rewritten if rewritten is not None else _append_info(data, pdf_string(title))


def _rewrite_in_place(data: bytes, value: bytes) -> bytes | None:
    """Replace /Title in a classic-xref PDF and shift the offsets after it (None if not that shape)."""
    span, tail = _info_span(data), _STARTXREF.search(data)
    if span is None or tail is None or len(list(re.finditer(rb"\bxref\b", data))) != 1:
        return None  # incremental updates or xref streams: leave the structure alone
    start, end = span
    body = data[start:end]
    match = re.search(rb"/Title\s*(?:" + _STRING + rb")", body)
    if match:
        new_body = body[:match.start()] + b"/Title " + value + body[match.end():]
    else:
        opening = body.find(b"<<")
        if opening < 0:
            return None
        new_body = body[:opening + 2] + b"/Title " + value + b"\n" + body[opening + 2:]
    delta = len(new_body) - len(body)
    xref_at = int(tail.group(1))
    if data[xref_at:xref_at + 4] != b"xref" or xref_at < end:
        return None
    table_end = data.find(b"trailer", xref_at)

    def shift(entry: re.Match) -> bytes:
        offset, gen, kind = int(entry.group(1)), entry.group(2), entry.group(3)
        if kind == b"n" and offset > start:
            offset += delta
        return b"%010d %s %s" % (offset, gen, kind)

    table = _XREF_ENTRY.sub(shift, data[xref_at:table_end])
    out = data[:start] + new_body + data[end:xref_at] + table + data[table_end:tail.start()]
    return out + b"startxref\n%d\n%%%%EOF\n" % (xref_at + delta)


def _append_info(data: bytes, value: bytes) -> bytes:
    """An incremental update adding a new information dictionary with the title."""
    sizes = re.findall(rb"/Size\s+(\d+)", data)
    root = re.findall(rb"/Root\s+(\d+\s+\d+\s+R)", data)
    tail = re.findall(rb"startxref\s+(\d+)", data)
    if not sizes or not root or not tail:
        return data  # not a PDF this module understands: keep it as it is
    num = int(sizes[-1])
    body = data if data.endswith(b"\n") else data + b"\n"
    at = len(body)
    obj = b"%d 0 obj\n<</Title %s>>\nendobj\n" % (num, value)
    xref = b"xref\n%d 1\n%010d 00000 n \n" % (num, at)
    trailer = (b"trailer\n<</Size %d /Root %s /Info %d 0 R /Prev %s>>\nstartxref\n%d\n%%%%EOF\n"
               % (num + 1, root[-1], num, tail[-1], at + len(obj)))
    return body + obj + xref + trailer
