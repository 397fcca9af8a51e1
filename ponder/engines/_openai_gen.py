"""One streaming generation against an OpenAI-compatible server.

Every sequence runs as a series of streaming requests on the engine's thread pool; the
threads only parse chunks and put messages on this generation's queue. The iterator (the
caller's thread) applies them: it emits events, honours abort/inject/fork at once (tokens
of a superseded request are dropped), and schedules the next requests.

Budget: each request reserves `max_tokens` from the budget while it runs and is charged
the tokens it actually returned when it ends, so the requests in flight can never sample
more than what is left. A sequence whose request ran out of its share continues from its
text with a new request (completions mode) once budget frees up; when none is left it
finishes with reason "budget". Broken streams are resumed the same way, with backoff.

Stop strings: the server cuts at the first four itself; every one is also looked for here
(more than four, or a server that ignores them, or one spanning a resumed request), and
text that could begin one is held back until decided, so that the streamed text always
equals the final text.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from ponder.engines._http import RemoteClient
from ponder.engines._openai_stream import (
    ChunkMessage,
    ChunkParser,
    Closed,
    End,
    Piece,
    stream_request,
)
from ponder.engines.base import Sampling
from ponder.errors import EngineError, PonderError, RemoteError
from ponder.events import EngineEvent, FinishReason, SequenceDone, TokenEvent
from ponder.textmatch import HoldBack


class Backend(Protocol):
    """What a generation needs of its engine (:class:`ponder.engines.openai.OpenAIEngine`):
    the connection, the request format and a pool to run requests on."""

    @property
    def client(self) -> RemoteClient: ...

    @property
    def mode(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def context_length(self) -> int: ...

    @property
    def supports_continuation(self) -> bool: ...

    def count_tokens(self, text: str) -> int: ...

    def request_body(self, prompt: str, text: str, sampling: Sampling, *, max_tokens: int,
                     n: int = 1, logprobs: int = 0, seed: int | None = None
                     ) -> dict[str, Any]: ...

    def submit(self, fn: Callable[[], None]) -> Future[None]: ...

    def mark_no_server_n(self) -> None: ...




@dataclass
class _Request:
    rid: int
    seqs: list[int]
    grant: int
    resumed: bool
    cancel: threading.Event = field(default_factory=threading.Event)
    received: dict[int, int] = field(default_factory=dict)
    ended: set[int] = field(default_factory=set)

    @property
    def reserved(self) -> int:
        return self.grant * len(self.seqs)

    def charge(self, usage: int | None) -> int:
        got = sum(self.received.values())
        return min(self.reserved, max(got, usage or 0))


@dataclass
class _Seq:
    index: int
    stops: HoldBack
    text: str = ""  # streamed; `stops.held` follows it
    late: str = ""  # held-back text released when the sequence ends
    sampled: int = 0
    extra: int = 0  # prompt tokens beyond the original prompt (injected text)
    done: FinishReason | None = None
    request: _Request | None = None
    waiting: bool = True
    limited: bool = False  # its request's max_tokens was cut to its budget share
    more: bool = False  # its request used its whole share: continue
    failures: int = 0
    delay: float = 0.0
    injections: list[str] = field(default_factory=list)


def _finish_reason(reason: str, stop_reason: object, stops: tuple[str, ...]) -> FinishReason:
    """OpenAI's "stop" covers both the end token and a stop string."""
    if reason != "stop":
        return "stop" if reason in ("tool_calls", "function_call") else "abort"
    if isinstance(stop_reason, str):
        return "stop"
    if stop_reason is None and stops:
        return "stop"
    return "eos"


class OpenAIGeneration:
    """A running generation: a plain iterator of engine events plus control hooks."""

    def __init__(self, engine: Backend, prompt: str, prompt_tokens: int,
                 sampling: Sampling, n: int, budget: int | None, *, logprobs: int,
                 together: bool) -> None:
        self._engine = engine
        self._prompt = prompt
        self._prompt_tokens = prompt_tokens
        self._sampling = sampling
        self._budget = budget
        self._logprobs = logprobs
        self._seqs = [_Seq(i, HoldBack(sampling.stop)) for i in range(n)]
        self._queue: queue.Queue[ChunkMessage] = queue.Queue()
        self._requests: dict[int, _Request] = {}
        self._ids = itertools.count()
        self._charged = 0
        self._finished: deque[int] = deque()
        self._reported: set[int] = set()
        self._closed = False
        if together:
            self._start_together()

    # -- control hooks --------------------------------------------------------------------

    def _find(self, seq: int) -> _Seq:
        if not 0 <= seq < len(self._seqs):
            raise EngineError(f"no sequence {seq} in this generation")
        return self._seqs[seq]

    def abort(self, seq: int, reason: FinishReason = "abort") -> None:
        s = self._find(seq)
        if s.done is None:
            self._detach(s)
            s.injections.clear()
            s.stops.drop()
            self._finish(s, reason)

    def inject(self, seq: int, text: str) -> None:
        s = self._find(seq)
        if s.done is None:
            self._detach(s)
            s.injections.append(text)

    def fork(self, seq: int, k: int) -> list[int]:
        parent = self._find(seq)
        if parent.done is not None:
            raise EngineError(f"cannot fork finished sequence {seq}")
        new = []
        for _ in range(k):
            child = _Seq(len(self._seqs), parent.stops.copy(), text=parent.text,
                         sampled=parent.sampled, extra=parent.extra)
            self._seqs.append(child)
            new.append(child.index)
        return new

    def close(self) -> None:
        self._closed = True
        for req in self._requests.values():
            req.cancel.set()

    # -- the event loop -------------------------------------------------------------------

    def __iter__(self) -> Iterator[EngineEvent]:
        try:
            while not self._closed:
                yield from self._ready()
                if len(self._reported) == len(self._seqs):
                    return
                self._schedule()
                yield from self._ready()
                if len(self._reported) == len(self._seqs):
                    return
                if not self._requests:
                    raise EngineError("internal: generation stalled with nothing in flight")
                yield from self._handle(self._queue.get())
        except BaseException:
            self.close()
            raise

    def _ready(self) -> Iterator[EngineEvent]:
        """Injected text and finished sequences, in the order the caller caused them."""
        for s in self._seqs:
            if s.injections and s.done is None:
                rest = s.stops.flush()
                for text in s.injections:
                    s.text += rest + text
                    s.extra += self._engine.count_tokens(text)
                    yield TokenEvent(s.index, rest + text, injected=True)
                    rest = ""
                s.injections.clear()
                s.waiting, s.failures = True, 0
        while self._finished:
            s = self._seqs[self._finished.popleft()]
            if s.index not in self._reported and s.done is not None:
                self._reported.add(s.index)
                if s.late:  # model text held back as a possible stop string
                    yield TokenEvent(s.index, s.late, injected=True)
                yield SequenceDone(s.index, s.done, s.text, s.sampled)

    def _handle(self, msg: ChunkMessage) -> Iterator[EngineEvent]:
        req = self._requests.get(msg.rid)
        if req is None:
            return
        if isinstance(msg, Piece):
            yield from self._on_piece(req, msg)
        elif isinstance(msg, End):
            self._on_end(req, msg)
        else:
            self._on_closed(req, msg)

    def _live(self, req: _Request, choice: int) -> _Seq | None:
        """The sequence a choice of `req` feeds, if that request still feeds it."""
        if not 0 <= choice < len(req.seqs):
            return None
        s = self._seqs[req.seqs[choice]]
        return s if s.request is req and s.done is None and choice not in req.ended else None

    def _on_piece(self, req: _Request, msg: Piece) -> Iterator[EngineEvent]:
        if not msg.synthetic:
            req.received[msg.choice] = req.received.get(msg.choice, 0) + 1
        s = self._live(req, msg.choice)
        if s is None or req.received.get(msg.choice, 0) > req.grant:
            return
        if msg.synthetic:  # reasoning tags: not searched for stop strings
            text = s.stops.flush() + msg.text
            s.text += text
            yield TokenEvent(s.index, text, injected=True)
            return
        s.sampled += 1
        found = s.stops.feed(msg.text)
        s.text += found.text
        yield TokenEvent(s.index, found.text, logprob=msg.logprob, top_logprobs=msg.top)
        if found.pattern is not None:
            self._detach(s)
            self._finish(s, "stop")

    def _on_end(self, req: _Request, msg: End) -> None:
        s = self._live(req, msg.choice)
        req.ended.add(msg.choice)
        if s is None:
            return
        if msg.reason != "length":
            self._finish(s, _finish_reason(msg.reason, msg.stop_reason, self._sampling.stop))
        elif req.received.get(msg.choice, 0) >= req.grant and s.limited:
            if self._engine.supports_continuation:
                s.more = True
            else:
                self._finish(s, "budget")
        else:
            self._finish(s, "length")

    def _on_closed(self, req: _Request, msg: Closed) -> None:
        del self._requests[req.rid]
        self._charged += req.charge(msg.usage)
        if msg.error is not None and not msg.dropped:
            raise self._fatal(req, msg.error)
        if len(req.seqs) > 1 and msg.error is None and not req.cancel.is_set() and not any(
                req.received.get(c) or c in req.ended for c in range(1, len(req.seqs))):
            self._engine.mark_no_server_n()  # the server ignored n: one request per sequence
        for choice, index in enumerate(req.seqs):
            s = self._seqs[index]
            if s.request is not req:
                continue
            s.request = None
            if s.done is None:
                self._after_request(s, req, choice, msg.error)

    def _after_request(self, s: _Seq, req: _Request, choice: int,
                       error: PonderError | None) -> None:
        if s.more:
            s.more, s.waiting, s.failures = False, True, 0
            return
        got = req.received.get(choice, 0)
        if got and not self._engine.supports_continuation:
            raise RemoteError(
                f"the stream from {self._engine.client.display_url} broke after {got} tokens, "
                "and chat completions cannot resume it",
                "a server with raw completions and a chat template can (see [openai] "
                "chat_template)")
        s.failures = 0 if got else s.failures + 1
        policy = self._engine.client.retry
        if s.failures >= policy.attempts:
            raise error or RemoteError(
                f"the server at {self._engine.client.display_url} keeps ending streams "
                f"without finishing them ({s.failures} times)")
        s.waiting, s.delay = True, policy.delay(s.failures) if s.failures else 0.0

    def _fatal(self, req: _Request, error: PonderError) -> PonderError:
        if req.resumed and isinstance(error, RemoteError):
            return RemoteError(f"lost the server mid-stream and could not resume: "
                               f"{error.message}", error.hint)
        return error

    def _finish(self, s: _Seq, reason: FinishReason) -> None:
        """End `s`; text still held back is model text (not a stop string): released."""
        if s.done is None:
            s.late = s.stops.flush()
            s.text += s.late
            s.done = reason
            s.waiting = False
            self._finished.append(s.index)

    def _detach(self, s: _Seq) -> None:
        """Stop feeding `s` from its request; cancel the request once it feeds nothing."""
        req, s.request = s.request, None
        s.waiting, s.more = False, False
        if req is not None and all(self._seqs[i].request is not req for i in req.seqs):
            req.cancel.set()

    # -- scheduling -----------------------------------------------------------------------

    def _need(self, s: _Seq) -> int:
        room = self._engine.context_length - self._prompt_tokens - s.extra - s.sampled
        return min(self._sampling.max_tokens - s.sampled, room)

    def _available(self) -> int | None:
        if self._budget is None:
            return None
        reserved = sum(r.reserved for r in self._requests.values())
        return self._budget - self._charged - reserved

    def _start_together(self) -> None:
        """All n sequences in one request, when the server samples n choices itself."""
        need = self._need(self._seqs[0])
        available = self._available()
        share = need if available is None else min(need, available // len(self._seqs))
        if share >= 1:
            self._launch(self._seqs, share, limited=share < need)

    def _schedule(self) -> None:
        waiting = [s for s in self._seqs if s.waiting and s.done is None and not s.injections]
        for s in waiting:
            if self._need(s) <= 0:
                self._finish(s, "length")
        waiting = [s for s in waiting if s.done is None]
        if not waiting:
            return
        available = self._available()
        if available is None:
            for s in waiting:
                self._launch([s], self._need(s), limited=False)
            return
        if available <= 0:
            if not self._requests:
                for s in waiting:
                    self._finish(s, "budget")
            return
        share = math.ceil(available / len(waiting))
        for s in waiting:
            grant = min(self._need(s), share, available)
            if grant <= 0:
                break
            self._launch([s], grant, limited=grant < self._need(s))
            available -= grant

    def _launch(self, seqs: list[_Seq], grant: int, *, limited: bool) -> None:
        first = seqs[0]
        sofar = first.text + first.stops.held
        req = _Request(next(self._ids), [s.index for s in seqs], grant, resumed=bool(sofar))
        self._requests[req.rid] = req
        for s in seqs:
            s.request, s.waiting, s.limited = req, False, limited
        seed = self._sampling.seed + (0 if len(seqs) > 1 else first.index)
        body = self._engine.request_body(self._prompt, sofar, self._sampling,
                                         max_tokens=grant, n=len(seqs),
                                         logprobs=self._logprobs, seed=seed)
        delay, first.delay = first.delay, 0.0
        parser = ChunkParser(req.rid, self._engine.mode == "chat", self._sampling.top_logprobs)
        client, path = self._engine.client, self._engine.path
        self._engine.submit(lambda: stream_request(client, path, body, req.rid, req.cancel,
                                                   parser, self._queue, delay))
