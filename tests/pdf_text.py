"""Just enough PDF reading for tests: the strings drawn on the pages, without a PDF library.

reportlab writes text as `(...) Tj` inside (Flate-compressed) content streams; Latin fonts
carry bytes, the CID font STSong-Light carries UCS-2 big-endian.  Both are decoded.
"""

from __future__ import annotations

import base64
import re
import zlib

_STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.S)
_TJ = re.compile(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f", b"(": b"(", b")": b")", b"\\": b"\\"}


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"\\":
            nxt = raw[i + 1:i + 2]
            if nxt in _ESCAPES:
                out += _ESCAPES[nxt]
                i += 2
                continue
            octal = re.match(rb"[0-7]{1,3}", raw[i + 1:i + 4])
            if octal:
                out.append(int(octal.group(0), 8) & 0xFF)
                i += 1 + len(octal.group(0))
                continue
            i += 1
            continue
        out += c
        i += 1
    return bytes(out)


def pdf_strings(data: bytes) -> list[str]:
    """Every drawn string, in drawing order."""
    found: list[str] = []
    for match in _STREAM.finditer(data):
        body = match.group(1).strip()
        if body.endswith(b"~>"):  # reportlab's ASCII85 wrapper around Flate
            try:
                body = base64.a85decode(body[:-2].replace(b"\n", b""))
            except ValueError:
                continue
        try:
            body = zlib.decompress(body)
        except zlib.error:
            pass
        for text in _TJ.finditer(body):
            raw = _unescape(text.group(1))
            if len(raw) % 2 == 0 and (raw[:1] == b"\x00" or any(b > 0x7F for b in raw)):
                try:
                    found.append(raw.decode("utf-16-be"))
                    continue
                except UnicodeDecodeError:
                    pass
            found.append(raw.decode("latin-1"))
    return found


def pdf_text(data: bytes) -> str:
    return "\n".join(pdf_strings(data))
