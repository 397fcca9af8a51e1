"""Server-sent events as OpenAI-compatible servers stream them: lines in, JSON objects out.

Only the `data:` field matters; comments (`: ping`) and other fields are skipped, and a
`[DONE]` payload ends the stream. `SSEStream.done` tells whether the server said `[DONE]`
(a stream that just stops was dropped). An ``{"error": ...}`` payload, which several
servers send instead of a chunk, raises :class:`StreamError`; a payload that is not a JSON
object raises :class:`MalformedEventError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

DONE_MARK = "[DONE]"


class MalformedEventError(Exception):
    """The server sent an event whose data is not a JSON object."""


class StreamError(Exception):
    """The server reported an error inside the stream."""


def iter_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each event; an event ends at a blank line (or at the end)."""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


def error_text(payload: object) -> str:
    """A one-line description of an error payload (`{"error": {"message": ...}}` and kin)."""
    if isinstance(payload, dict):
        for key in ("error", "detail", "message"):
            if key in payload:
                return error_text(payload[key])
    if isinstance(payload, list) and payload:
        return error_text(payload[0])
    text = str(payload).strip().splitlines()
    return text[0][:200] if text else "no details"


class SSEStream:
    """Iterate JSON chunks from SSE lines; `done` is True once `[DONE]` was seen."""

    def __init__(self, lines: Iterable[str]) -> None:
        self._lines = lines
        self.done = False
        self.chunks = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for data in iter_data(self._lines):
            if data.strip() == DONE_MARK:
                self.done = True
                return
            yield self._decode(data)

    def _decode(self, data: str) -> dict[str, Any]:
        try:
            obj = json.loads(data)
        except json.JSONDecodeError:
            raise MalformedEventError(f"malformed event: {data[:60]!r}") from None
        if not isinstance(obj, dict):
            raise MalformedEventError(f"malformed event: {data[:60]!r}")
        if obj.get("error") is not None and "choices" not in obj:
            raise StreamError(error_text(obj))
        self.chunks += 1
        return obj
