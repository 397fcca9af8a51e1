"""Finding strings in text that arrives in pieces: stop strings and think tags.

An engine streams text token by token and must not stream the beginning of a stop string
before it knows whether the string completes; the thinking splitter must not show half a
tag. :class:`HoldBack` serves both: fed the text piece by piece, it finds the first of its
patterns and holds back a tail that could still be the beginning of one, so that what it
releases never has to be taken back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def find_first(text: str, patterns: Sequence[str], start: int = 0) -> tuple[int, str] | None:
    """(position, pattern) of the earliest occurrence of any pattern in `text[start:]`."""
    best: tuple[int, str] | None = None
    for pattern in patterns:
        at = text.find(pattern, start)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, pattern)
    return best


def partial_suffix(text: str, patterns: Sequence[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of some pattern."""
    best = 0
    for pattern in patterns:
        for k in range(min(len(pattern) - 1, len(text)), best, -1):
            if text.endswith(pattern[:k]):
                best = k
                break
    return best


@dataclass(frozen=True)
class Found:
    """What one piece of text released: the text up to a pattern, the pattern if one was
    found there, and the text after it (only then; it is not searched)."""

    text: str
    pattern: str | None = None
    rest: str = ""


class HoldBack:
    """A streaming search for the first of `patterns` (empty ones are ignored).

    :meth:`feed` adds a piece and returns the text that can be released now. Until a
    pattern is found, the released pieces and the text still `held` make up all the text
    fed. When the stream ends, the held text is released (:meth:`flush`) or dropped
    (:meth:`drop`): an unfinished pattern is not a match.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(p for p in patterns if p)
        self.held = ""

    def feed(self, text: str) -> Found:
        if not self.patterns:
            return Found(text)
        buf = self.held + text
        hit = find_first(buf, self.patterns)
        if hit is not None:
            at, pattern = hit
            self.held = ""
            return Found(buf[:at], pattern, buf[at + len(pattern) :])
        keep = partial_suffix(buf, self.patterns)
        self.held = buf[len(buf) - keep :]
        return Found(buf[: len(buf) - keep])

    def flush(self) -> str:
        """Release the held text (the stream ended, or text that is not searched follows)."""
        held, self.held = self.held, ""
        return held

    def drop(self) -> None:
        """Forget the held text."""
        self.held = ""

    def copy(self) -> HoldBack:
        twin = HoldBack(self.patterns)
        twin.held = self.held
        return twin
