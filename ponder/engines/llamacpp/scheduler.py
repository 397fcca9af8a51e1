"""The shared decode loop: one thread owns the llama.cpp context and steps every generation.

Like llama.cpp's server loop, one thread (started with the first generation) does all the
work on the context: it evaluates new prompts, and then, step after step, lets each
waiting generation apply its hooks and fill its slots, decodes the pending token of every
running sequence of every such generation in one ``llama_decode`` batch, and samples each
sequence from its row of the logits. Generations started from several threads (problems
solved concurrently) are thus decoded in the same batches.

A generation takes part in a step only while its consumer waits for its next event, so
hooks called between events take effect before its next token. Before stepping, the loop
gives other threads' generations a moment (``GATHER_S``) to come back for their next token
(their strategies take microseconds per event), so that one decode serves them all.

Other threads never touch the context: closing a generation, choosing a prompt holder for
a new one and clearing the prompt cache are handed to the loop, which runs them between
steps while the caller waits. A Ctrl-C reaches only the consumer's thread, never a decode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ponder.engines.llamacpp.capi import Context
from ponder.engines.llamacpp.generation import LlamaCppGeneration, Seq
from ponder.engines.llamacpp.slots import KVSlots
from ponder.errors import EngineError
from ponder.events import EngineEvent

GATHER_S = 0.005
"""How long a step waits for other threads' generations to come back for their next token."""
IDLE_WAIT_S = 0.05
"""How long the loop waits before trying again when no waiting sequence found a free slot."""

T = TypeVar("T")


@dataclass
class _Call(Generic[T]):
    """Work another thread hands to the loop, and its outcome."""

    fn: Callable[[], T]
    done: bool = False
    value: T | None = None
    error: BaseException | None = None


@dataclass
class _Rows:
    """The outputs of one decode: (generation, sequence, batch output) in batch order."""

    items: list[tuple[LlamaCppGeneration, Seq, int]] = field(default_factory=list)

    def by_generation(self) -> Iterator[tuple[LlamaCppGeneration, list[tuple[Seq, int]]]]:
        """Each generation's (contiguous) rows."""
        i = 0
        while i < len(self.items):
            gen = self.items[i][0]
            j = i
            while j < len(self.items) and self.items[j][0] is gen:
                j += 1
            yield gen, [(s, out) for _, s, out in self.items[i:j]]
            i = j


class Scheduler:
    """Runs the generations of one context on one thread; see the module docstring."""

    def __init__(self, ctx: Context, slots: KVSlots, n_batch: int) -> None:
        self.ctx = ctx
        self.slots = slots
        self.n_batch = n_batch
        self.generations: list[LlamaCppGeneration] = []
        self._cond = threading.Condition()
        self._calls: list[_Call[Any]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    # ---- the consumers' side

    def open(self, prompt: list[int],
             make: Callable[[int], LlamaCppGeneration]) -> LlamaCppGeneration:
        """Close the calling thread's open generations, wait for a free prompt holder and
        register the generation `make(holder)` builds."""
        with self._cond:
            self._start_thread()
            me = threading.get_ident()
            own = [g for g in self.generations if g.owner == me]
            if own:
                self._call(lambda: self._shut(own))
            target = prompt[:-1]
            while (holder := self._call(lambda: self.slots.pick_holder(target))) is None:
                self._cond.wait()
            gen = make(holder)
            self.generations.append(gen)
            self._cond.notify_all()
            return gen

    def next_event(self, gen: LlamaCppGeneration) -> EngineEvent:
        """The next event of `gen`, waiting for the loop to step it when it has none."""
        with self._cond:
            while True:
                if gen.events:
                    gen.waiting = False
                    return gen.events.popleft()
                if gen.error is not None:
                    gen.waiting = False
                    raise gen.error
                if gen.finished:
                    gen.waiting = False
                    raise StopIteration
                if not gen.waiting:
                    gen.waiting = True
                    self._cond.notify_all()
                self._cond.wait()

    def close(self, gen: LlamaCppGeneration) -> None:
        with self._cond:
            if gen.closed:
                return
            if gen.released:  # finished: closing it touches nothing of the context
                self._shut([gen])
            else:
                self._call(lambda: self._shut([gen]))

    def reset_cache(self) -> None:
        """Close the calling thread's generations and forget the kept prompts."""
        with self._cond:
            me = threading.get_ident()
            own = [g for g in self.generations if g.owner == me]

            def reset() -> None:
                self._shut(own)
                self.slots.clear_free_holders()

            self._call(reset)

    def shutdown(self) -> None:
        """Close every generation and stop the loop."""
        with self._cond:
            self._call(lambda: self._shut(list(self.generations)))
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    # ---- calls run on the loop's thread

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop's thread between steps and return its value (lock held).
        Without a running loop (stopped, or never started) the caller owns the context."""
        if self._thread is None or not self._thread.is_alive():
            return fn()
        call: _Call[T] = _Call(fn)
        self._calls.append(call)
        self._cond.notify_all()
        while not call.done:
            self._cond.wait()
        if call.error is not None:
            raise call.error
        return call.value  # type: ignore[return-value]

    def _run_calls(self) -> None:
        calls, self._calls = self._calls, []
        for call in calls:
            try:
                call.value = call.fn()
            except BaseException as err:  # handed back to the calling thread
                call.error = err
            call.done = True
        if calls:
            self._cond.notify_all()

    def _shut(self, gens: list[LlamaCppGeneration]) -> None:
        for gen in gens:
            gen.shut(self.slots)
        self.generations = [g for g in self.generations if not g.closed]
        self._cond.notify_all()

    # ---- the loop

    def _start_thread(self) -> None:
        if self._thread is None and not self._stopping:
            self._thread = threading.Thread(target=self._loop, name="ponder-llama-step",
                                            daemon=True)
            self._thread.start()

    def _ready(self) -> list[LlamaCppGeneration]:
        return [g for g in self.generations if g.waiting and not g.events and not g.finished]

    def _loop(self) -> None:
        with self._cond:
            while True:
                self._run_calls()
                if self._stopping:
                    return
                if not self._ready():
                    self._cond.wait()
                    continue
                self._gather()
                group = self._ready()
                if self._calls or not group:
                    continue
                progressed = self._step_unlocked(group)
                if not progressed:
                    self._cond.wait(IDLE_WAIT_S)  # no free slot: wait until one is freed

    def _gather(self) -> None:
        """Give other threads' generations a moment to come back for their next token."""
        deadline = time.monotonic() + GATHER_S
        while not (self._calls or self._stopping):
            busy = [g for g in self.generations
                    if not g.finished and not (g.waiting and not g.events)]
            left = deadline - time.monotonic()
            if not busy or left <= 0:
                return
            self._cond.wait(left)

    def _step_unlocked(self, group: list[LlamaCppGeneration]) -> bool:
        """One step for `group` with the lock released meanwhile; publishes its events."""
        self._cond.release()
        try:
            progressed = self._step(group)
        except BaseException as err:
            error = err if isinstance(err, Exception) else EngineError(
                "a shared decoding step failed")
            for g in group:
                g.error = error
            progressed = True
        finally:
            self._cond.acquire()
        for g in group:
            g.publish()
        self.generations = [g for g in self.generations if not g.released]
        self._cond.notify_all()
        return progressed

    def _step(self, group: list[LlamaCppGeneration]) -> bool:
        """Evaluate new prompts, prepare each generation, decode all their pending tokens,
        sample every sequence, finish the generations that are done. Returns whether
        anything happened. `step_s` counts the step after the prompts."""
        for g in group:
            if not g.prefilled:
                self._prefill(g)
        t0 = time.perf_counter()
        work = [(g, s) for g in group for s in g.prepare(self.slots)]
        if work:
            self._decode_and_sample(work)
        served = [g for g in group if g.active]
        if len(served) > 1:
            for g in served:
                g.stats.shared_steps += 1
        spent = time.perf_counter() - t0
        for g in group:
            g.stats.step_s += spent
            g.end_step(self.slots)
        return bool(work) or any(g.has_news for g in group)

    def _prefill(self, gen: LlamaCppGeneration) -> None:
        t0 = time.perf_counter()
        done = self.slots.prefill(gen.prompt, gen.holder, self.n_batch)
        gen.prefilled = True
        stats = gen.stats
        stats.prompt_reused = done.reused
        stats.prompt_evaluated += done.evaluated
        stats.prompt_evals = int(done.evaluated > 0)
        stats.prefill_s = time.perf_counter() - t0

    def _decode_and_sample(self, work: list[tuple[LlamaCppGeneration, Seq]]) -> None:
        """Decode every active sequence's pending tokens (one batch, split only if it
        overflows n_batch), then sample one token per sequence."""
        batch, cap = self.ctx.batch, self.n_batch
        n = 0
        rows = _Rows()
        for g, s in work:
            pending = s.tokens[s.n_kv :]
            while pending:
                if n == cap:
                    self._decode_timed(n, work)
                    self._sample_rows(rows)
                    n, rows = 0, _Rows()
                take = pending[: cap - n]
                pending = pending[len(take) :]
                batch.put(n, take, g.base + s.n_kv, s.slot or 0, last_logits=not pending)
                s.n_kv += len(take)
                n += len(take)
                if not pending:
                    rows.items.append((g, s, n - 1))
        if n:
            self._decode_timed(n, work)
            self._sample_rows(rows)

    def _decode_timed(self, n_tokens: int, work: list[tuple[LlamaCppGeneration, Seq]]) -> None:
        t0 = time.perf_counter()
        self.ctx.decode(n_tokens)
        spent = time.perf_counter() - t0
        for g in dict.fromkeys(g for g, _ in work):
            g.stats.decode_s += spent

    def _sample_rows(self, rows: _Rows) -> None:
        """Hand each generation its rows of the logits."""
        logits = self.ctx.logits(len(rows.items))
        row = 0
        for gen, mine in rows.by_generation():
            gen.sample(logits[row : row + len(mine)], mine)
            row += len(mine)
