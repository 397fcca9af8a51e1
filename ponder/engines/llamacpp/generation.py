"""One request's sequences on the llama.cpp engine: hooks, slots, budget, text and events.

A generation is driven from two sides. Its consumer iterates it and calls the hooks
(abort, inject, fork) between events; the scheduler (:mod:`.scheduler`) runs the shared
steps, calling :meth:`LlamaCppGeneration.prepare` before a decode,
:meth:`~LlamaCppGeneration.sample` with the generation's rows of the logits after it, and
:meth:`~LlamaCppGeneration.end_step`. Events made in a step are handed to the consumer in
one go by :meth:`~LlamaCppGeneration.publish`, under the scheduler's lock.

Positions: the holder keeps ``prompt[:-1]`` at positions ``0..base-1`` (``base`` = prompt
length - 1). A sequence's own tokens (``Seq.tokens``) start with the prompt's last token at
position ``base``; ``tokens[:n_kv]`` are in its KV, the rest are decoded next step.

At about 400 lines this stays one module: it is one class, the state machine of a
request's sequences, and its hooks, step calls and finishing all work on the same
private state (the sequences, outbox and budget); ``Seq`` and ``GenerationStats`` are
the records it keeps.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ponder.engines.base import Sampling
from ponder.engines.llamacpp.capi import Context, FloatArray, Model, free_sampler, make_sampler
from ponder.engines.llamacpp.logprobs import logprob_table
from ponder.engines.llamacpp.slots import KVSlots, SeqState
from ponder.errors import EngineError, InputError
from ponder.events import EngineEvent, FinishReason, SequenceDone, TokenEvent
from ponder.textmatch import HoldBack


@dataclass
class GenerationStats:
    """Counters of one generation (the benchmarks read them)."""

    prompt_tokens: int = 0
    prompt_reused: int = 0  # prompt tokens whose KV was reused from the previous request
    prompt_evaluated: int = 0  # prompt tokens decoded into the holder
    prompt_evals: int = 0  # holder prefills (1 per request, 0 when fully reused)
    seq_start_tokens: int = 0  # last prompt token / recomputed fork tokens decoded per seq
    steps: int = 0
    shared_steps: int = 0  # steps whose batch also decoded other generations' sequences
    sampled: int = 0
    injected: int = 0
    decode_s: float = 0.0
    sample_s: float = 0.0
    step_s: float = 0.0
    prefill_s: float = 0.0


@dataclass(eq=False)  # identity comparison: `in` / `remove` on lists of sequences
class Seq:
    """One sequence: its tokens, its text (streamed; `stops` holds back what could begin a
    stop string), its slot and sampler, and how it stands."""

    index: int
    seed: int
    tokens: list[int]
    decoder: codecs.IncrementalDecoder
    stops: HoldBack
    parent: Seq | None = None
    n_kv: int = 0
    slot: int | None = None
    sampler: Any = None
    state: SeqState = SeqState.WAITING
    text: str = ""
    sampled: int = 0
    done: FinishReason | None = None
    abort_reason: FinishReason | None = None
    injections: list[str] = field(default_factory=list)


def _new_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


class Host(Protocol):
    """What a generation asks of the scheduler that runs it."""

    def next_event(self, gen: LlamaCppGeneration) -> EngineEvent: ...

    def close(self, gen: LlamaCppGeneration) -> None: ...


class LlamaCppGeneration:
    """A running batched generation; see :class:`ponder.engines.base.Generation`.

    Its events are produced by the scheduler's shared steps, which may decode the sequences
    of several generations (from several threads) at once. A generation takes part in a
    step only while its consumer waits for an event, so hooks called between events take
    effect before its next token, as with one generation.
    """

    def __init__(
        self,
        host: Host,
        model: Model,
        ctx: Context,
        n_ctx: int,
        prompt_tokens: list[int],
        sampling: Sampling,
        n: int,
        budget: int | None,
        holder: int,
    ) -> None:
        self._host = host
        self._model = model
        self._ctx = ctx
        self._n_ctx = n_ctx
        self._sampling = sampling
        self._budget = budget
        self._used = 0
        self._outbox: list[EngineEvent] = []  # events of the running step
        self._settled = False  # every sequence finished in a step
        self._seqs: list[Seq] = [
            Seq(i, sampling.seed + i, [prompt_tokens[-1]], _new_decoder(),
                HoldBack(sampling.stop))
            for i in range(n)
        ]
        # Read and written by the scheduler, under its lock unless it says otherwise.
        self.prompt = prompt_tokens
        self.base = len(prompt_tokens) - 1
        self.holder = holder
        self.owner = threading.get_ident()
        self.stats = GenerationStats(prompt_tokens=len(prompt_tokens))
        self.prefilled = False
        self.events: deque[EngineEvent] = deque()  # published, not yet consumed
        self.waiting = False  # the consumer is blocked waiting for an event
        self.finished = False  # no more events after `events`
        self.error: BaseException | None = None
        self.closed = False
        self.released = False
        self.active: list[Seq] = []  # the sequences decoded in the running step

    # ---- iteration and hooks (the consumer's thread)

    def __iter__(self) -> Iterator[EngineEvent]:
        return self

    def __next__(self) -> EngineEvent:
        return self._host.next_event(self)

    def _find(self, seq: int) -> Seq:
        if not 0 <= seq < len(self._seqs):
            raise EngineError(f"no sequence {seq} in this generation")
        return self._seqs[seq]

    def abort(self, seq: int, reason: FinishReason = "abort") -> None:
        s = self._find(seq)
        if s.done is None and s.abort_reason is None:
            s.abort_reason = reason

    def inject(self, seq: int, text: str) -> None:
        s = self._find(seq)
        if s.done is None and s.abort_reason is None and text:
            s.injections.append(text)

    def fork(self, seq: int, k: int) -> list[int]:
        parent = self._find(seq)
        if parent.done is not None or parent.abort_reason is not None:
            raise EngineError(f"cannot fork finished sequence {seq}")
        if k < 0:
            raise InputError(f"fork needs k >= 0, got {k}")
        return [self._fork_one(parent).index for _ in range(k)]

    def _fork_one(self, parent: Seq) -> Seq:
        index = len(self._seqs)
        decoder = _new_decoder()
        decoder.setstate(parent.decoder.getstate())
        child = Seq(
            index,
            self._sampling.seed + index,
            list(parent.tokens),
            decoder,
            parent.stops.copy(),
            parent=parent,
            text=parent.text,
            sampled=parent.sampled,
            injections=list(parent.injections),
        )
        self._seqs.append(child)
        return child

    def close(self) -> None:
        if not self.closed:
            self._host.close(self)

    # ---- one step (the scheduler's thread, which owns the context meanwhile)

    def prepare(self, slots: KVSlots) -> list[Seq]:
        """Everything before the decode: hooks, slots and the budget. Returns (and keeps in
        `active`) the sequences to decode."""
        put = self._outbox.extend
        put(self._finish_aborted())
        put(self._apply_injections())
        put(self._finish_exhausted())
        self._fill_slots(slots)
        running = [s for s in self._seqs if s.state is SeqState.RUNNING]
        put(self._enforce_budget())
        self.active = [s for s in running if s.done is None]
        if self.active:
            self.stats.steps += 1
        return self.active

    def sample(self, logits: FloatArray, rows: list[tuple[Seq, int]]) -> None:
        """Sample each of `rows` (sequence, batch output) from its row of `logits`."""
        k = self._sampling.top_logprobs
        lse, top_ids, top_lp = logprob_table(logits, k, self._ctx.scratch)
        for row, (s, output) in enumerate(rows):
            if s.done is not None:
                continue
            if s.abort_reason is not None:
                self._outbox.extend(self._finish(s, s.abort_reason))
                continue
            t0 = time.perf_counter()
            tok = self._ctx.sample(s.sampler, output)
            self.stats.sample_s += time.perf_counter() - t0
            logprob = float(logits[row, tok] - lse[row])
            top = self._model.top_pieces(top_ids[row], top_lp[row]) if k else None
            self._outbox.extend(self._accept(s, tok, logprob, top))

    def end_step(self, slots: KVSlots) -> None:
        """After the decode: a generation whose sequences have all finished lets go of its
        slots and prompt holder at once."""
        self.active = []
        if not any(s.done is None for s in self._seqs):
            self._settled = True
            self.release(slots)

    @property
    def has_news(self) -> bool:
        """Whether the running step made events."""
        return bool(self._outbox)

    def publish(self) -> None:
        """Hand the step's events to the consumer (under the scheduler's lock)."""
        self.events.extend(self._outbox)
        self._outbox.clear()
        self.finished = self.finished or self._settled

    def shut(self, slots: KVSlots) -> None:
        """Close: no more events; slots, samplers and holder are released."""
        self.closed = self.finished = True
        self.events.clear()
        self._outbox.clear()
        self.release(slots)

    def release(self, slots: KVSlots) -> None:
        """Free samplers, slots and the holder; the holder keeps the prompt for prefix reuse."""
        if self.released:
            return
        self.released = True
        for s in self._seqs:
            self._free_sampler(s)
            if s.slot is not None:
                slots.give_slot(s.slot)
                s.slot = None
            if s.state is not SeqState.WAITING:
                s.state = SeqState.DONE
        slots.give_holder(self.holder)

    # ---- hooks, applied at the start of a step

    def _finish_aborted(self) -> Iterator[EngineEvent]:
        for s in self._seqs:
            if s.done is None and s.abort_reason is not None:
                yield from self._finish(s, s.abort_reason)

    def _finish_exhausted(self) -> Iterator[EngineEvent]:
        """Sequences that may not sample any more (max_tokens reached, e.g. by a fork)."""
        for s in self._seqs:
            if s.done is None and s.sampled >= self._sampling.max_tokens:
                yield from self._finish(s, "length")

    def _apply_injections(self) -> Iterator[EngineEvent]:
        """Queue injected text for decoding. Text held back as a possible stop-string start
        is released in front of the first injected event (its tokens were counted); stop
        strings are looked for in what the model writes after it."""
        for s in self._seqs:
            if s.done is not None or not s.injections:
                continue
            rest = s.stops.flush()
            s.decoder.reset()
            for text in s.injections:
                ids = self._model.tokenize(text, add_special=False)
                s.tokens.extend(ids)
                s.text += rest + text
                self.stats.injected += len(ids)
                token = ids[-1] if ids else -1
                yield TokenEvent(s.index, rest + text, token=token, injected=True)
                rest = ""
            s.injections.clear()
            if self.base + len(s.tokens) > self._n_ctx:
                yield from self._finish(s, "length")

    def _enforce_budget(self) -> Iterator[EngineEvent]:
        """Live sequences beyond the remaining budget (in index order) finish "budget"."""
        if self._budget is None:
            return
        remaining = self._budget - self._used
        live = [s for s in self._seqs if s.done is None]
        if remaining >= len(live):
            return
        keep = {s.index for s in live[: max(remaining, 0)]}
        for s in live:
            if s.index not in keep:
                yield from self._finish(s, "budget")

    # ---- slots

    def _fill_slots(self, slots: KVSlots) -> None:
        """Waiting sequences take free slots; a fork child may take over its finished
        parent's slot; the other finished sequences' slots are freed for the rest."""
        waiting = [s for s in self._seqs if s.state is SeqState.WAITING]
        while waiting and slots.free_slots:
            self._assign(slots, waiting.pop(0), slots.take_slot())
        for s in list(waiting):
            if self._take_over(slots, s):
                waiting.remove(s)
        for old in self._seqs:
            if old.state is SeqState.RETIRED:
                assert old.slot is not None
                slots.give_slot(old.slot)
                old.slot, old.state = None, SeqState.DONE
        while waiting and slots.free_slots:
            self._assign(slots, waiting.pop(0), slots.take_slot())

    def _assign(self, slots: KVSlots, s: Seq, slot: int) -> None:
        """Give `s` a free slot, copying its KV from its parent's slot or the holder."""
        parent = s.parent
        if parent is not None and parent.slot is not None and parent.n_kv > 0:
            s.n_kv = min(parent.n_kv, len(s.tokens) - 1)
            slots.copy(parent.slot, slot, self.base + s.n_kv)
        else:
            s.n_kv = 0
            slots.copy(self.holder, slot)
        self._start_seq(s, slot)

    def _take_over(self, slots: KVSlots, s: Seq) -> bool:
        """A fork child inherits its finished parent's slot, truncated to the fork point."""
        parent = s.parent
        if parent is None or parent.state is not SeqState.RETIRED or parent.slot is None:
            return False
        slot, parent.slot, parent.state = parent.slot, None, SeqState.DONE
        s.n_kv = min(parent.n_kv, len(s.tokens) - 1)
        slots.truncate(slot, self.base + s.n_kv)
        self._start_seq(s, slot)
        return True

    def _start_seq(self, s: Seq, slot: int) -> None:
        s.slot, s.state = slot, SeqState.RUNNING
        sampling = self._sampling
        if sampling.greedy_first and s.index == 0:
            sampling = sampling.with_(temperature=0.0)
        s.sampler = make_sampler(sampling, s.seed)
        self.stats.seq_start_tokens += len(s.tokens) - s.n_kv

    # ---- tokens and text

    def _accept(
        self,
        s: Seq,
        tok: int,
        logprob: float,
        top: tuple[tuple[str, float], ...] | None,
    ) -> Iterator[EngineEvent]:
        s.tokens.append(tok)
        s.sampled += 1
        self._used += 1
        self.stats.sampled += 1
        reason, text = self._advance(s, tok)
        s.text += text
        yield TokenEvent(s.index, text, token=tok, logprob=logprob, top_logprobs=top)
        if reason is not None:
            yield from self._finish(s, reason)

    def _advance(self, s: Seq, tok: int) -> tuple[FinishReason | None, str]:
        """Why the sequence ends with the sampled token, if it does, and the text it can
        stream now: all of it when it ends, else what cannot begin a stop string (the text
        is cut where a stop string begins)."""
        if self._model.is_eog(tok):
            return "eos", s.stops.flush()
        found = s.stops.feed(s.decoder.decode(self._model.piece(tok)))
        if found.pattern is not None:
            return "stop", found.text
        out_of_room = self.base + len(s.tokens) > self._n_ctx
        if s.sampled >= self._sampling.max_tokens or out_of_room:
            return "length", found.text + s.stops.flush()
        return None, found.text

    def _finish(self, s: Seq, reason: FinishReason) -> Iterator[EngineEvent]:
        """End `s`. Text still held back (an unfinished stop-string prefix, only possible when
        it ends without a token of its own: abort, budget, ...) is dropped, so the streamed
        text always equals the final text. Its slot is kept until the next step (RETIRED),
        where a fork child may take it over."""
        s.stops.drop()
        s.done = reason
        s.state = SeqState.RETIRED if s.slot is not None else SeqState.DONE
        s.injections.clear()
        self._free_sampler(s)
        yield SequenceDone(s.index, reason, s.text, s.sampled)

    @staticmethod
    def _free_sampler(s: Seq) -> None:
        if s.sampler is not None:
            free_sampler(s.sampler)
            s.sampler = None
