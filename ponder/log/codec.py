"""A chain's token stream as stored in the log: JSON, zlib-compressed.

Each token is `[text, logprob, top, injected]` with `top` a list of `[text, logprob]`
pairs (or null). Floats keep their full precision so that a replayed chain's confidence
is the one the live chain had.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from ponder.events import TokenEvent


def encode(events: Sequence[TokenEvent]) -> bytes:
    rows = [[e.text, e.logprob, [list(p) for p in e.top_logprobs]
             if e.top_logprobs is not None else None, int(e.injected)] for e in events]
    return zlib.compress(json.dumps(rows, ensure_ascii=False,
                                    separators=(",", ":")).encode("utf-8"), 6)


def decode(blob: bytes) -> tuple[TokenEvent, ...]:
    """The stored stream; ValueError when it is damaged."""
    try:
        rows: list[list[Any]] = json.loads(zlib.decompress(blob).decode("utf-8"))
        return _events(rows)
    except (zlib.error, TypeError, KeyError) as exc:
        raise ValueError(f"damaged chain stream: {exc}") from None


def _events(rows: list[list[Any]]) -> tuple[TokenEvent, ...]:
    return tuple(
        TokenEvent(0, str(text), logprob=None if lp is None else float(lp),
                   top_logprobs=None if top is None else tuple((str(t), float(p))
                                                               for t, p in top),
                   injected=bool(injected))
        for text, lp, top, injected in rows
    )
