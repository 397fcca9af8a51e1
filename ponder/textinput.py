"""Text from users (arguments, files, stdin, batch lines): UTF-8 only, no control characters.

A question is refused with one line saying what is wrong and where: bytes that are not
UTF-8, a NUL or another control character (tab, newlines, vertical tab and form feed are
fine). Batch input is read leniently instead, so that one bad line becomes one error
record: undecodable bytes are kept as surrogate escapes, the lines that hold them (or
control characters) become error problems, and their text is written with U+FFFD in
place of the bad bytes.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ponder.errors import InputError

if TYPE_CHECKING:
    from ponder.problems import Problem

_BAD = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
BOM = "\ufeff"


def read_stdin() -> bytes:
    """All of stdin as bytes (text streams without a buffer are encoded back)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        data = buffer.read()
        return data if isinstance(data, bytes) else bytes(data)
    return sys.stdin.read().encode("utf-8", "surrogateescape")


def decode(data: bytes, where: str) -> str:
    """Strict UTF-8 (a leading BOM dropped); InputError naming the first bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at "
                         f"offset {exc.start})") from None
    check(text, where)
    return text


def lenient(data: bytes) -> str:
    """UTF-8 with undecodable bytes kept as surrogate escapes (see `flaw`)."""
    return data.decode("utf-8", "surrogateescape").removeprefix(BOM)


def flaw(text: str) -> str | None:
    """What makes `text` unusable ('is not UTF-8 text (...)', 'contains ...'), or None."""
    match = _BAD.search(text)
    if match is None:
        return None
    code, at = ord(match.group()), match.start()
    if 0xDC80 <= code <= 0xDCFF:
        return f"is not UTF-8 text (byte 0x{code - 0xDC00:02x} at character {at})"
    if 0xD800 <= code <= 0xDFFF:
        return f"is not valid Unicode (a lone surrogate U+{code:04X} at character {at})"
    return f"contains a control character (U+{code:04X} at character {at})"


def check(text: str, where: str) -> str:
    """`text` if it is clean; else InputError '<where> <flaw>'."""
    reason = flaw(text)
    if reason is not None:
        raise InputError(f"{where} {reason}", "pass plain UTF-8 text")
    return text


def scrub(text: str) -> str:
    """`text` fit to write as UTF-8: surrogates (bad bytes) become U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", text)


def screen(problems: Sequence[Problem], text: str, where: str) -> list[Problem]:
    """Problems whose text is not clean become error problems, written with U+FFFD.

    When no problem is usable and the input holds bytes that are not UTF-8 or NULs, the
    input is not a text file at all: InputError.
    """
    out = [_screen_one(p) for p in problems]
    binary = _binary_byte(text)
    if out and all(p.error is not None for p in out) and binary is not None:
        raise InputError(f"{where} is not UTF-8 text ({binary})",
                         "pass a .txt, .jsonl or .csv file of UTF-8 text")
    return out


def _screen_one(p: Problem) -> Problem:
    reason = None if p.error is not None else flaw(p.question)
    clean = dataclasses.replace(
        p, id=scrub(p.id), question=scrub(p.question),
        reference=None if p.reference is None else scrub(p.reference),
        error=None if p.error is None else scrub(p.error))
    if reason is None:
        return clean
    return dataclasses.replace(clean, error=f"line {p.line}: the problem {reason}")


def _binary_byte(text: str) -> str | None:
    """'byte 0xff at offset N' for the first undecodable byte or NUL, else None."""
    match = re.search("[\x00\udc80-\udcff]", text)
    if match is None:
        return None
    code = ord(match.group())
    byte = code - 0xDC00 if code else 0
    offset = len(text[: match.start()].encode("utf-8", "surrogateescape"))
    return f"byte 0x{byte:02x} at offset {offset}"
