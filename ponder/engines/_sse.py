"""Server-sent events as OpenAI-compatible servers stream them, as JSON objects.

httpx-sse parses the event stream (fields, comments, multi-line data, line endings) and
checks that the response is one; this module adds what OpenAI-style streams mean: a
`[DONE]` payload ends the stream (`SSEStream.done` tells whether the server said it: a
stream that just stops was dropped), an ``{"error": ...}`` payload, which several servers
send instead of a chunk, raises :class:`StreamError`, and a payload that is not a JSON
object, or a response that is not an event stream at all, raises
:class:`MalformedEventError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

DONE_MARK = "[DONE]"


class MalformedEventError(Exception):
    """The server sent an event whose data is not a JSON object, or no event stream."""


class StreamError(Exception):
    """The server reported an error inside the stream."""


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
    """Iterate JSON chunks from server-sent events; `done` is True once `[DONE]` was seen."""

    def __init__(self, events: Iterable[ServerSentEvent]) -> None:
        self._events = events
        self.done = False
        self.chunks = 0

    @classmethod
    def of(cls, response: httpx.Response) -> SSEStream:
        """The stream of a streaming HTTP response."""
        return cls(EventSource(response).iter_sse())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            for event in self._events:
                if event.data.strip() == DONE_MARK:
                    self.done = True
                    return
                if event.data:
                    yield self._decode(event.data)
        except SSEError as exc:  # not an event stream (its content type)
            raise MalformedEventError(f"response that is not an event stream "
                                      f"({error_text(str(exc))})") from None

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
