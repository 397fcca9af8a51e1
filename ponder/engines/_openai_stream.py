"""One streaming request to an OpenAI-compatible server, run on a request thread: its JSON
chunks parsed into messages for the generation (a token or a chunk's text, the end of a
choice), and always one last message when the request is over."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import httpx

from ponder.engines._http import RemoteClient
from ponder.engines._sse import MalformedEventError, StreamError
from ponder.errors import EngineError, PonderError, RemoteError
from ponder.thinking import THINK_CLOSE, THINK_OPEN

TopLogprobs = tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class Piece:
    """One token (or a chunk's text when the server gives no token breakdown)."""

    rid: int
    choice: int
    text: str
    logprob: float | None = None
    top: TopLogprobs | None = None
    synthetic: bool = False


@dataclass(frozen=True)
class End:
    rid: int
    choice: int
    reason: str
    stop_reason: object = None


@dataclass(frozen=True)
class Closed:
    """A request's thread is done; `error` is fatal unless `dropped`."""

    rid: int
    error: PonderError | None = None
    dropped: bool = False
    usage: int | None = None


ChunkMessage = Piece | End | Closed


class ChunkParser:
    """Turns one request's JSON chunks into messages (stateful for chat reasoning)."""

    def __init__(self, rid: int, chat: bool, top_k: int) -> None:
        self.rid = rid
        self.chat = chat
        self.top_k = top_k
        self.reasoning: set[int] = set()
        self.usage: int | None = None

    def __call__(self, chunk: dict[str, Any]) -> list[ChunkMessage]:
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage = usage["completion_tokens"]
        out: list[ChunkMessage] = []
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                out += self._choice(choice)
        return out

    def _choice(self, choice: dict[str, Any]) -> list[ChunkMessage]:
        index = choice.get("index", 0)
        index = index if isinstance(index, int) else 0
        out: list[ChunkMessage] = []
        if self.chat:
            out += self._chat_delta(index, choice)
        else:
            out += self._pieces(index, str(choice.get("text") or ""),
                                _completion_tokens(choice.get("logprobs")))
        reason = choice.get("finish_reason")
        if reason:
            out += self._close_reasoning(index)
            out.append(End(self.rid, index, str(reason), choice.get("stop_reason")))
        return out

    def _chat_delta(self, index: int, choice: dict[str, Any]) -> list[ChunkMessage]:
        delta = choice.get("delta") or {}
        out: list[ChunkMessage] = []
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            if index not in self.reasoning:
                self.reasoning.add(index)
                out.append(Piece(self.rid, index, THINK_OPEN + "\n", synthetic=True))
            out += self._pieces(index, str(thought), None)
        content = delta.get("content")
        if content:
            out += self._close_reasoning(index)
            out += self._pieces(index, str(content), _chat_tokens(choice.get("logprobs")))
        return out

    def _close_reasoning(self, index: int) -> list[ChunkMessage]:
        if index not in self.reasoning:
            return []
        self.reasoning.discard(index)
        return [Piece(self.rid, index, "\n" + THINK_CLOSE + "\n\n", synthetic=True)]

    def _pieces(self, index: int, text: str,
                tokens: list[tuple[str, float | None, TopLogprobs | None]] | None,
                ) -> list[ChunkMessage]:
        if not tokens:
            return [Piece(self.rid, index, text)] if text else []
        joined = "".join(t for t, _, _ in tokens) == text
        out: list[ChunkMessage] = []
        for i, (tok, logprob, top) in enumerate(tokens):
            piece = tok if joined else (text if i == 0 else "")
            top = top[: self.top_k] if top and self.top_k else None
            out.append(Piece(self.rid, index, piece, logprob, top))
        return out


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _completion_tokens(lp: object) -> list[tuple[str, float | None, TopLogprobs | None]] | None:
    if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list):
        return None
    tokens, values = lp["tokens"], lp.get("token_logprobs") or []
    tops = lp.get("top_logprobs") or []
    out = []
    for i, tok in enumerate(tokens):
        value = _float(values[i]) if i < len(values) else None
        top = tops[i] if i < len(tops) else None
        alts = tuple(sorted(((str(k), float(v)) for k, v in top.items()), key=lambda kv: -kv[1])
                     ) if isinstance(top, dict) else None
        out.append((str(tok), value, alts))
    return out


def _chat_tokens(lp: object) -> list[tuple[str, float | None, TopLogprobs | None]] | None:
    content = lp.get("content") if isinstance(lp, dict) else None
    if not isinstance(content, list):
        return None
    out = []
    for item in content:
        if not isinstance(item, dict):
            continue
        alts = tuple((str(a.get("token", "")), float(a.get("logprob", 0.0)))
                     for a in item.get("top_logprobs") or [] if isinstance(a, dict))
        out.append((str(item.get("token", "")), _float(item.get("logprob")), alts or None))
    return out


def stream_request(client: RemoteClient, path: str, body: dict[str, Any], rid: int,
                   cancel: threading.Event, parser: ChunkParser,
                   out: queue.Queue[ChunkMessage], delay: float) -> None:
    """Stream request `rid` into `out` (after `delay` seconds unless cancelled first);
    always ends with exactly one Closed message."""
    closed = Closed(rid)
    try:
        if delay and cancel.wait(delay):
            return
        with client.stream(path, body, cancel) as events:
            for chunk in events:
                for msg in parser(chunk):
                    out.put(msg)
                if cancel.is_set():
                    break
        closed = Closed(rid, usage=parser.usage)
    except PonderError as exc:
        closed = Closed(rid, exc)
    except MalformedEventError as exc:
        closed = Closed(rid, RemoteError(
            f"the server at {client.display_url} sent a {client.redact(str(exc))}"))
    except StreamError as exc:
        closed = Closed(rid, RemoteError(
            f"the server at {client.display_url} failed mid-stream: {client.redact(str(exc))}"))
    except httpx.HTTPError as exc:
        closed = Closed(rid, client.dropped_error(exc), dropped=True)
    except Exception as exc:  # never leave the generation waiting for this request
        closed = Closed(rid, EngineError(f"internal error in a request thread: "
                                         f"{type(exc).__name__}: {exc}"))
    finally:
        out.put(closed)
