"""A fake engine that replays queued outputs, for fast deterministic tests.

Queue outputs with :meth:`ScriptedEngine.enqueue`; every new sequence (from `start`, a
`fork`, or the continuation after an `inject`) takes the next queued script. Text is split
into word-sized tokens. Stop strings (held back while undecided, so the streamed text
always equals the final text), max tokens, budgets, aborts, injections and forks behave as
the real engines do, so strategies can be tested without a model.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ponder.engines.base import Sampling
from ponder.errors import ContextOverflowError, EngineError, InputError
from ponder.events import EngineEvent, FinishReason, Message, SequenceDone, TokenEvent
from ponder.textmatch import HoldBack

_TOKEN_RE = re.compile(r"\s*\S+|\s+")


def split_tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


def _alternatives(logprob: float, k: int) -> tuple[tuple[str, float], ...]:
    """k alternative tokens sharing the probability the sampled token leaves, so that a
    lower `logprob` means a flatter top-k (less confident), as with a real model."""
    rest = max(1e-9, 1.0 - math.exp(logprob)) / max(k, 1)
    return tuple((f"<alt{i}>", math.log(rest)) for i in range(k))


@dataclass(frozen=True)
class Script:
    """One queued output. `logprob` is reported for every token (confidence tests).

    `tokens` replays the output cut as a real tokenizer cut it (tags split across tokens);
    by default the text is split into word-sized tokens.
    """

    text: str
    logprob: float = -0.1
    tokens: tuple[str, ...] | None = None

    def pieces(self) -> deque[str]:
        return deque(split_tokens(self.text) if self.tokens is None else self.tokens)


@dataclass
class _Seq:
    index: int
    pending: deque[str]
    logprob: float
    stops: HoldBack
    text: str = ""
    sampled: int = 0
    injections: list[str] = field(default_factory=list)
    done: FinishReason | None = None


class ScriptedGeneration:
    def __init__(self, engine: ScriptedEngine, sampling: Sampling, n: int, budget: int | None):
        self._engine = engine
        self._sampling = sampling
        self._budget = budget
        self._used = 0
        self._seqs: list[_Seq] = [self._new_seq(i, "", HoldBack(sampling.stop))
                                  for i in range(n)]
        self._closed = False

    def _new_seq(self, index: int, text: str, stops: HoldBack) -> _Seq:
        script = self._engine.next_script()
        tokens = script.pieces() if script else deque[str]()
        return _Seq(index=index, pending=tokens, logprob=script.logprob if script else 0.0,
                    stops=stops, text=text)

    def _find(self, seq: int) -> _Seq:
        if not 0 <= seq < len(self._seqs):
            raise EngineError(f"no sequence {seq} in this generation")
        return self._seqs[seq]

    def abort(self, seq: int, reason: FinishReason = "abort") -> None:
        s = self._find(seq)
        if s.done is None:
            s.done = reason
            s.pending.clear()
            s.injections.clear()
            self._engine.aborted.append(seq)

    def inject(self, seq: int, text: str) -> None:
        s = self._find(seq)
        if s.done is None:
            s.injections.append(text)

    def fork(self, seq: int, k: int) -> list[int]:
        parent = self._find(seq)
        if parent.done is not None:
            raise EngineError(f"cannot fork finished sequence {seq}")
        new = []
        for _ in range(k):
            child = self._new_seq(len(self._seqs), parent.text, parent.stops.copy())
            child.sampled = parent.sampled
            self._seqs.append(child)
            new.append(child.index)
        return new

    def close(self) -> None:
        self._closed = True

    def __iter__(self) -> Iterator[EngineEvent]:
        reported: set[int] = set()
        while not self._closed:
            live = [s for s in self._seqs if s.index not in reported]
            if not live:
                return
            for s in live:
                yield from self._step(s)
                if s.done is not None and s.index not in reported:
                    reported.add(s.index)
                    yield SequenceDone(s.index, s.done, s.text, s.sampled)

    def _step(self, s: _Seq) -> Iterator[EngineEvent]:
        if s.done is not None:
            return
        if s.injections:
            yield from self._inject(s)
        if not s.pending:
            self._end(s, "eos")
        elif s.sampled >= self._sampling.max_tokens:
            self._end(s, "length")
        elif self._budget is not None and self._used >= self._budget:
            self._end(s, "budget")
        else:
            yield self._token(s)

    def _inject(self, s: _Seq) -> Iterator[EngineEvent]:
        """Injected text, after any held-back text; then the next script continues."""
        rest = s.stops.flush()
        for text in s.injections:
            s.text += rest + text
            yield TokenEvent(s.index, rest + text, injected=True)
            rest = ""
        s.injections.clear()
        script = self._engine.next_script()
        s.pending = script.pieces() if script else deque()
        if script:
            s.logprob = script.logprob

    def _token(self, s: _Seq) -> TokenEvent:
        """The next scripted token. Its text is cut at a stop string, and what could begin
        one is held back until decided: released when the script runs out (nothing sampled
        can follow) or the sequence ends with this token."""
        piece = s.pending.popleft()
        s.sampled += 1
        self._used += 1
        self._engine.tokens_generated += 1
        found = s.stops.feed(piece)
        text = found.text
        if found.pattern is not None:
            s.pending.clear()
            s.done = "stop"
        elif s.sampled >= self._sampling.max_tokens and s.pending:
            s.done = "length"
        if s.done is not None or not s.pending:
            text += s.stops.flush()
        s.text += text
        top = None
        if self._sampling.top_logprobs:
            top = ((piece, s.logprob), *_alternatives(s.logprob, self._sampling.top_logprobs - 1))
        return TokenEvent(s.index, text, token=hash(piece) & 0xFFFF, logprob=s.logprob,
                          top_logprobs=top)

    @staticmethod
    def _end(s: _Seq, reason: FinishReason) -> None:
        """End `s` without a token of its own; text still held back is dropped."""
        s.stops.drop()
        s.done = reason


class ScriptedEngine:
    """Replays queued outputs. Records every prompt it was given in `prompts`.

    Not thread-safe (one queue of scripts); subclasses that are may say so. `fingerprint`
    stands for a model file's sha256 (the run log keys its cache and chains on it); without
    one, runs are logged but never answered from the log.
    """

    thread_safe = False
    fingerprint: str | None = None

    def __init__(
        self,
        outputs: Sequence[str | Script] = (),
        *,
        model_name: str = "scripted",
        context_length: int = 4096,
        opens_think: bool = False,
        capacity: int = 8,
    ) -> None:
        self._queue: deque[Script] = deque()
        self._model_name = model_name
        self._context_length = context_length
        self.opens_think = opens_think
        self.capacity = capacity
        self.prompts: list[str] = []
        self.aborted: list[int] = []
        self.tokens_generated = 0
        self.enqueue(*outputs)

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def context_length(self) -> int:
        return self._context_length

    def enqueue(self, *outputs: str | Script) -> ScriptedEngine:
        for out in outputs:
            self._queue.append(out if isinstance(out, Script) else Script(out))
        return self

    def next_script(self) -> Script | None:
        """The next queued output (None when the queue is empty)."""
        return self._queue.popleft() if self._queue else None

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        body = "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages)
        return body + "<|assistant|>\n" + ("<think>\n" if self.opens_think else "")

    def count_tokens(self, text: str) -> int:
        return len(split_tokens(text))

    def start(
        self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
    ) -> ScriptedGeneration:
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens >= self._context_length:
            raise ContextOverflowError(
                f"prompt is {prompt_tokens} tokens; the context holds {self._context_length}"
            )
        self.prompts.append(prompt)
        return ScriptedGeneration(self, sampling, n, budget)

    def close(self) -> None:
        self._queue.clear()
