"""In-process llama.cpp engine with true parallel (batched) decoding.

One llama.cpp context holds ``n_slots`` sequence slots plus *prompt holder* sequences.
A request evaluates its prompt once into its holder (all but the last prompt token; a
prefix kept by any holder, such as the previous request's or a shared system prompt, is
reused), then every sequence that takes a slot copies the holder's KV
(``llama_memory_seq_cp``, no recomputation: with a unified KV cache the cells are shared).
Each step decodes the pending token of every live sequence in one ``llama_decode`` batch
and samples each sequence with its own sampler chain (seeded ``seed + index``). A sequence
that finishes frees its slot at once, and the next waiting sequence (``n > n_slots``, a
fork, or another request's) starts in the following step.

Several requests (generations started from several threads) share the slots: a step
serves every generation whose consumer is waiting for its next event, so problems solved
concurrently are decoded in the same batches.

Positions: a holder keeps ``prompt[:-1]`` at positions ``0..base-1`` (``base`` =
prompt length - 1). A sequence's own tokens (``_Seq.tokens``) start with the prompt's last
token at position ``base``; ``tokens[:n_kv]`` are in its KV, the rest are decoded next step.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from ponder.engines.base import Message, Sampling
from ponder.errors import ContextOverflowError, EngineError, InputError, ModelFileError
from ponder.events import EngineEvent, FinishReason, SequenceDone, TokenEvent

DEFAULT_CTX = 4096
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Flash attention on CPU: measured with benchmarks/parallel.py (see
# benchmarks/results/parallel-qwen0.5b.txt); batched decode is faster with it on.
DEFAULT_FLASH_ATTN = True
# KV cache element types (K and V alike); q8_0 halves the cache and needs flash attention.
KV_TYPES = {"f16": llama_cpp.GGML_TYPE_F16, "q8_0": llama_cpp.GGML_TYPE_Q8_0}
# Shared steps: how long a step waits for other threads' generations to come back for
# their next token, and how long a generation with no free slot waits before trying again.
GATHER_S = 0.005
IDLE_WAIT_S = 0.05

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]

_LOG_CALLBACK: Any = None  # keeps the ctypes callback alive while llama.cpp holds it
_BACKEND_READY = False


# --------------------------------------------------------------------------- helpers


def free_cores() -> int:
    """CPU cores this process may use that are not busy right now (at least 1).

    Busy = CPU time used by other processes over a short window (/proc/stat minus this
    process's own share), so a neighbour's build or model run lowers the thread count while
    the 1-minute load average of work that already ended does not.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, round(cores - _busy_cpus())))


def _read_cpu_times() -> tuple[int, int]:
    """(total, idle) jiffies of the whole machine."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def _busy_cpus(interval: float = 0.3) -> float:
    """How many CPUs other processes keep busy, measured over `interval` seconds."""
    try:
        total0, idle0 = _read_cpu_times()
        own0 = time.process_time()
        wall0 = time.perf_counter()
        time.sleep(interval)
        total1, idle1 = _read_cpu_times()
        own = (time.process_time() - own0) / max(time.perf_counter() - wall0, 1e-6)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    elapsed = total1 - total0
    if elapsed <= 0:
        return 0.0
    busy = (1.0 - (idle1 - idle0) / elapsed) * (os.cpu_count() or 1)
    return max(0.0, busy - own)


def _configure_logging(verbose: bool) -> None:
    """Silence llama.cpp's stderr logging unless `verbose`."""
    global _LOG_CALLBACK
    if verbose:  # llama-cpp-python's own callback, printing everything
        from llama_cpp import _logger

        _logger.set_verbose(True)
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        return

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def _quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    _LOG_CALLBACK = _quiet
    llama_cpp.llama_log_set(_quiet, ctypes.c_void_p(0))


def _backend_init() -> None:
    global _BACKEND_READY
    if not _BACKEND_READY:
        llama_cpp.llama_backend_init()
        _BACKEND_READY = True


def _kv_type(name: str, flash_attn: bool) -> str:
    """Validate a KV cache type; llama.cpp needs flash attention for a quantized V cache."""
    key = name.lower()
    if key not in KV_TYPES:
        raise InputError(f"unknown KV cache type {name!r}", f"choose from {', '.join(KV_TYPES)}")
    if key != "f16" and not flash_attn:
        raise InputError(f"a {key} KV cache needs flash attention", "turn flash attention on")
    return key


def _check_gguf(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as err:
        raise ModelFileError(f"cannot read model file {path}: {err.strerror}") from err
    if magic != b"GGUF":
        raise ModelFileError(f"{path.name} is not a GGUF model file", "re-download it")


def _read_metadata(model: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    size = 4096
    buf = ctypes.create_string_buffer(size)
    for i in range(llama_cpp.llama_model_meta_count(model)):
        key = _meta_string(llama_cpp.llama_model_meta_key_by_index, model, i, buf)
        out[key] = _meta_string(llama_cpp.llama_model_meta_val_str_by_index, model, i, buf)
    return out


def _meta_string(fn: Any, model: Any, i: int, buf: Any) -> str:
    n = fn(model, i, buf, len(buf))
    if n >= len(buf):
        buf = ctypes.create_string_buffer(n + 1)
        n = fn(model, i, buf, len(buf))
    return bytes(buf.raw[: max(n, 0)]).decode("utf-8", errors="replace")


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _holdback(text: str, stops: Sequence[str], floor: int) -> int:
    """Length of the longest suffix of `text[floor:]` that could start a stop string."""
    best = 0
    room = len(text) - floor
    for stop in stops:
        for k in range(min(len(stop) - 1, room), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best


# --------------------------------------------------------------------------- state


@dataclass
class GenerationStats:
    """Counters of one generation (the benchmark reads them)."""

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
class _Seq:
    index: int
    seed: int
    tokens: list[int]
    decoder: codecs.IncrementalDecoder
    parent: _Seq | None = None
    n_kv: int = 0
    slot: int | None = None
    sampler: Any = None
    text: str = ""
    emitted: int = 0
    scan_from: int = 0
    sampled: int = 0
    done: FinishReason | None = None
    abort_reason: FinishReason | None = None
    injections: list[str] = field(default_factory=list)


def _new_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


# --------------------------------------------------------------------------- generation


class LlamaCppGeneration:
    """A running batched generation; see :class:`ponder.engines.base.Generation`.

    Its events are produced by the engine's shared steps (:meth:`LlamaCppEngine._step`),
    which may decode the sequences of several generations (from several threads) at once.
    A generation takes part in a step only while its consumer waits for an event, so hooks
    called between events take effect before its next token, as with one generation.
    """

    def __init__(
        self,
        engine: LlamaCppEngine,
        prompt_tokens: list[int],
        sampling: Sampling,
        n: int,
        budget: int | None,
        holder: int,
    ) -> None:
        self._engine = engine
        self._prompt = prompt_tokens
        self._base = len(prompt_tokens) - 1
        self._sampling = sampling
        self._budget = budget
        self._holder = holder
        self._owner = threading.get_ident()
        self._used = 0
        self._closed = False
        self._released = False
        self._prefilled = False
        self._done = False  # every sequence has finished: no more events after the queue
        self._waiting = False  # the consumer is blocked in __next__
        self._error: BaseException | None = None
        self._queue: deque[EngineEvent] = deque()
        self._active: list[_Seq] = []
        self._retired: list[_Seq] = []
        self._seqs: list[_Seq] = [
            _Seq(i, sampling.seed + i, [prompt_tokens[-1]], _new_decoder()) for i in range(n)
        ]
        self.stats = GenerationStats(prompt_tokens=len(prompt_tokens))

    # ---- iteration and hooks

    def __iter__(self) -> Iterator[EngineEvent]:
        return self

    def __next__(self) -> EngineEvent:
        return self._engine._next_event(self)

    def _find(self, seq: int) -> _Seq:
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

    def _fork_one(self, parent: _Seq) -> _Seq:
        index = len(self._seqs)
        decoder = _new_decoder()
        decoder.setstate(parent.decoder.getstate())
        child = _Seq(
            index,
            self._sampling.seed + index,
            list(parent.tokens),
            decoder,
            parent=parent,
            text=parent.text,
            emitted=parent.emitted,
            scan_from=parent.scan_from,
            sampled=parent.sampled,
            injections=list(parent.injections),
        )
        self._seqs.append(child)
        return child

    def close(self) -> None:
        if not self._closed:
            self._engine._close_generation(self)

    # ---- one step (called by the engine, which owns the context meanwhile)

    def _prepare(self) -> None:
        """Everything before the decode: hooks, slots and the budget; sets `_active`."""
        put = self._queue.extend
        put(self._finish_aborted())
        put(self._apply_injections())
        put(self._finish_exhausted())
        self._fill_slots()
        active = [s for s in self._seqs if s.slot is not None and s.done is None]
        put(self._enforce_budget(active))
        self._active = [s for s in active if s.done is None]
        if self._active:
            self.stats.steps += 1

    def _end_step(self) -> None:
        """After the decode: a generation whose sequences have all finished lets go of its
        slots and prompt holder at once."""
        self._active = []
        if not any(s.done is None for s in self._seqs):
            self._done = True
            self._release()

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
        is released in front of the first injected event (its tokens were counted)."""
        for s in self._seqs:
            if s.done is not None or not s.injections:
                continue
            rest = s.text[s.emitted :]
            s.decoder.reset()
            for text in s.injections:
                ids = self._engine._tokenize(text, add_special=False)
                s.tokens.extend(ids)
                s.text += text
                self.stats.injected += len(ids)
                token = ids[-1] if ids else -1
                yield TokenEvent(s.index, rest + text, token=token, injected=True)
                rest = ""
            s.injections.clear()
            s.emitted = s.scan_from = len(s.text)
            if self._base + len(s.tokens) > self._engine.context_length:
                yield from self._finish(s, "length")

    def _enforce_budget(self, active: list[_Seq]) -> Iterator[EngineEvent]:
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

    def _fill_slots(self) -> None:
        engine = self._engine
        waiting = [s for s in self._seqs if s.done is None and s.slot is None]
        while waiting and engine._free_slots:
            self._assign(waiting.pop(0), engine._take_slot())
        for s in list(waiting):
            if self._take_over(s):
                waiting.remove(s)
        for old in self._retired:
            if old.slot is not None:
                engine._give_slot(old.slot)
                old.slot = None
        self._retired.clear()
        while waiting and engine._free_slots:
            self._assign(waiting.pop(0), engine._take_slot())

    def _assign(self, s: _Seq, slot: int) -> None:
        """Give `s` a free slot, copying its KV from its parent's slot or the holder."""
        mem = self._engine._mem
        parent = s.parent
        if parent is not None and parent.slot is not None and parent.n_kv > 0:
            s.n_kv = min(parent.n_kv, len(s.tokens) - 1)
            llama_cpp.llama_memory_seq_cp(mem, parent.slot, slot, -1, self._base + s.n_kv)
        else:
            s.n_kv = 0
            llama_cpp.llama_memory_seq_cp(mem, self._holder, slot, -1, -1)
        self._start_seq(s, slot)

    def _take_over(self, s: _Seq) -> bool:
        """A fork child inherits its finished parent's slot, truncated to the fork point."""
        parent = s.parent
        if parent is None or parent not in self._retired or parent.slot is None:
            return False
        slot, parent.slot = parent.slot, None
        self._retired.remove(parent)
        s.n_kv = min(parent.n_kv, len(s.tokens) - 1)
        llama_cpp.llama_memory_seq_rm(self._engine._mem, slot, self._base + s.n_kv, -1)
        self._start_seq(s, slot)
        return True

    def _start_seq(self, s: _Seq, slot: int) -> None:
        s.slot = slot
        sampling = self._sampling
        if sampling.greedy_first and s.index == 0:
            sampling = sampling.with_(temperature=0.0)
        s.sampler = self._engine._make_sampler(sampling, s.seed)
        self.stats.seq_start_tokens += len(s.tokens) - s.n_kv

    # ---- sampling (rows of the engine's shared decode)

    def _sample(self, logits: FloatArray, outputs: list[tuple[_Seq, int]]) -> None:
        """Sample each of `outputs` (sequence, batch index) from its row of `logits`."""
        engine = self._engine
        k = self._sampling.top_logprobs
        lse, top_ids, top_lp = _logprob_table(logits, k, engine._scratch)
        for row, (s, batch_idx) in enumerate(outputs):
            if s.done is not None:
                continue
            if s.abort_reason is not None:
                self._queue.extend(self._finish(s, s.abort_reason))
                continue
            t0 = time.perf_counter()
            tok = llama_cpp.llama_sampler_sample(s.sampler, engine._ctx, batch_idx)
            self.stats.sample_s += time.perf_counter() - t0
            logprob = float(logits[row, tok] - lse[row])
            top = engine._top_pieces(top_ids[row], top_lp[row]) if k else None
            self._queue.extend(self._accept(s, tok, logprob, top))

    def _accept(
        self,
        s: _Seq,
        tok: int,
        logprob: float,
        top: tuple[tuple[str, float], ...] | None,
    ) -> Iterator[EngineEvent]:
        s.tokens.append(tok)
        s.sampled += 1
        self._used += 1
        self.stats.sampled += 1
        reason = self._reason_after(s, tok)
        text = self._release_text(s, final=reason is not None)
        yield TokenEvent(s.index, text, token=tok, logprob=logprob, top_logprobs=top)
        if reason is not None:
            yield from self._finish(s, reason)

    def _reason_after(self, s: _Seq, tok: int) -> FinishReason | None:
        """Add the sampled token's text; why the sequence ends with it, if it does."""
        if self._engine._is_eog(tok):
            return "eos"
        if self._add_text(s, s.decoder.decode(self._engine._piece(tok))):
            return "stop"
        out_of_room = self._base + len(s.tokens) > self._engine.context_length
        if s.sampled >= self._sampling.max_tokens or out_of_room:
            return "length"
        return None

    def _add_text(self, s: _Seq, new: str) -> bool:
        """Append decoded text; on a stop string cut the text there and return True."""
        if not new:
            return False
        stops = self._sampling.stop
        start = len(s.text)
        s.text += new
        if not stops:
            return False
        longest = max(len(x) for x in stops)
        scan = max(s.scan_from, start - longest + 1, 0)
        cuts = [i for i in (s.text.find(x, scan) for x in stops if x) if i >= 0]
        if not cuts:
            return False
        s.text = s.text[: min(cuts)]
        return True

    def _release_text(self, s: _Seq, final: bool) -> str:
        """Text that can be streamed now: all of it when final, else what cannot be the
        beginning of a stop string."""
        end = len(s.text)
        if not final and self._sampling.stop:
            end -= _holdback(s.text, self._sampling.stop, max(s.scan_from, s.emitted))
        out = s.text[s.emitted : end] if end > s.emitted else ""
        s.emitted = max(s.emitted, end)
        return out

    def _finish(self, s: _Seq, reason: FinishReason) -> Iterator[EngineEvent]:
        """End `s`. Text still held back (an unfinished stop-string prefix, only possible when
        it ends without a token of its own: abort, budget, ...) is dropped, so the streamed
        text always equals the final text."""
        s.text = s.text[: s.emitted]
        s.done = reason
        s.injections.clear()
        self._free_sampler(s)
        if s.slot is not None:
            self._retired.append(s)
        yield SequenceDone(s.index, reason, s.text, s.sampled)

    # ---- teardown (the engine owns the context when these run)

    def _free_sampler(self, s: _Seq) -> None:
        if s.sampler is not None:
            llama_cpp.llama_sampler_free(s.sampler)
            s.sampler = None

    def _release(self) -> None:
        """Free samplers, slots and the holder; the holder keeps the prompt for prefix reuse."""
        if self._released:
            return
        self._released = True
        for s in self._seqs:
            self._free_sampler(s)
            if s.slot is not None:
                self._engine._give_slot(s.slot)
                s.slot = None
        self._retired.clear()
        self._engine._give_holder(self._holder)


def _logprob_table(
    logits: FloatArray, k: int, scratch: FloatArray
) -> tuple[FloatArray, IntArray, FloatArray]:
    """Row-wise log-sum-exp and (when k > 0) the top-k tokens and logprobs, best first.

    Vectorised over the (rows, n_vocab) logits; `scratch` is a preallocated buffer of at
    least that shape (no per-step allocation of a vocab-sized array).
    """
    rows = len(logits)
    peak = logits.max(axis=1, keepdims=True)
    buf = scratch[:rows]
    np.subtract(logits, peak, out=buf)
    np.exp(buf, out=buf)
    lse: FloatArray = peak[:, 0] + np.log(buf.sum(axis=1))
    if k <= 0:
        return lse, np.empty((rows, 0), np.int64), np.empty((rows, 0), np.float32)
    k = min(k, logits.shape[1])
    ids = np.empty((rows, k), np.int64)
    for r in range(rows):
        ids[r] = _top_k(logits[r], float(peak[r, 0]), k)
    lps: FloatArray = np.take_along_axis(logits, ids, axis=1) - lse[:, None]
    return lse, ids, lps


def _top_k(row: FloatArray, peak: float, k: int) -> IntArray:
    """Ids of the k largest logits, best first. Looks among the logits within 12 nats of the
    peak first (a few hundred at most, usually), falling back to the whole row."""
    cand = np.flatnonzero(row >= peak - 12.0)
    if len(cand) < k:
        cand = np.arange(len(row))
    part = cand[np.argpartition(row[cand], len(cand) - k)[len(cand) - k :]]
    order = np.argsort(-row[part], kind="stable")
    out: IntArray = part[order].astype(np.int64)
    return out


# --------------------------------------------------------------------------- batch


class _Batch:
    """A reusable llama_batch with numpy views on its arrays (one seq id per token)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.raw = llama_cpp.llama_batch_init(capacity, 0, 1)
        self.token = np.ctypeslib.as_array(self.raw.token, shape=(capacity,))
        self.pos = np.ctypeslib.as_array(self.raw.pos, shape=(capacity,))
        self.n_seq_id = np.ctypeslib.as_array(self.raw.n_seq_id, shape=(capacity,))
        self.logits = np.ctypeslib.as_array(self.raw.logits, shape=(capacity,))
        self.n_seq_id[:] = 1
        self._seq_ptr = self.raw.seq_id
        self._seq_of = np.full(capacity, -1, dtype=np.int64)
        self._freed = False

    def put(self, at: int, tokens: Sequence[int], pos0: int, seq: int, last_logits: bool) -> None:
        end = at + len(tokens)
        self.token[at:end] = tokens
        self.pos[at:end] = np.arange(pos0, pos0 + len(tokens))
        self.logits[at:end] = 0
        if last_logits:
            self.logits[end - 1] = 1
        for i in np.flatnonzero(self._seq_of[at:end] != seq):
            self._seq_ptr[at + int(i)][0] = seq
        self._seq_of[at:end] = seq

    def free(self) -> None:
        if not self._freed:
            self._freed = True
            llama_cpp.llama_batch_free(self.raw)


# --------------------------------------------------------------------------- engine


class LlamaCppEngine:
    """A GGUF model loaded in-process, decoding up to `n_slots` sequences per batch.

    `n_ctx` is the context of one request (prompt plus the longest sequence); the KV cache
    holds `n_ctx * (n_slots + 1)` cells (`kv_size` overrides it) shared by all sequences:
    one request's worth per slot, plus room for a prompt kept for prefix reuse.

    Thread-safe: generations started from several threads share the slots, and each step
    decodes the sequences of every generation whose consumer is waiting in one batch.
    Starting a generation closes the ones still open in the calling thread.
    """

    thread_safe = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int | None = None,
        n_slots: int = 8,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        gpu_layers: int = 0,
        flash_attn: bool | None = None,
        kv_size: int | None = None,
        n_batch: int = 512,
        n_ubatch: int | None = None,
        kv_type: str = "f16",
        verbose: bool = False,
    ) -> None:
        if n_slots < 1:
            raise InputError(f"n_slots must be at least 1, got {n_slots}")
        self.path = Path(model_path)
        _check_gguf(self.path)
        _configure_logging(verbose)
        _backend_init()
        self.n_slots = n_slots
        self.n_threads = n_threads or free_cores()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.flash_attn = DEFAULT_FLASH_ATTN if flash_attn is None else flash_attn
        self.kv_type = _kv_type(kv_type, self.flash_attn)
        self._n_ubatch = n_ubatch
        self._model: Any = None
        self._ctx: Any = None
        self._batch: _Batch | None = None
        self._cond = threading.Condition()
        self._stepping = False  # a thread is running a step: it owns the context
        self._pending = 0  # threads waiting for the context between steps (start, close)
        self._gens: list[LlamaCppGeneration] = []
        self._free_slots: list[int] = list(range(n_slots))
        # Prompt holders: sequence ids after the slots, one per open generation plus one
        # kept for prefix reuse. Each remembers the tokens in its KV.
        self._holder_tokens: dict[int, list[int]] = {
            h: [] for h in range(n_slots, 2 * n_slots + 1)
        }
        self._free_holders: list[int] = list(self._holder_tokens)
        self._pieces: dict[int, bytes] = {}
        self._piece_texts: dict[int, str] = {}
        self._eog: dict[int, bool] = {}
        self._piece_buf = ctypes.create_string_buffer(256)
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="ponder-llama-decode")
        self.last_stats: GenerationStats | None = None
        self._chat_formatter: Jinja2ChatFormatter | None = None
        self._load_model(gpu_layers)
        try:
            self.metadata = _read_metadata(self._model)
            train = int(llama_cpp.llama_model_n_ctx_train(self._model))
            self._n_ctx = n_ctx or (min(train, DEFAULT_CTX) if train > 0 else DEFAULT_CTX)
            self.n_batch = max(n_batch, n_slots)
            self.kv_size = kv_size or self._n_ctx * (n_slots + 1)
            self._create_context()
        except BaseException:
            self.close()
            raise

    # ---- loading

    def _load_model(self, gpu_layers: int) -> None:
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = gpu_layers
        model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), params)
        if not model:
            raise ModelFileError(
                f"llama.cpp could not load {self.path.name}",
                "the file is truncated, corrupted or of an unsupported architecture",
            )
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))

    def _context_params(self) -> Any:
        p = llama_cpp.llama_context_default_params()
        p.n_ctx = self.kv_size
        p.n_batch = self.n_batch
        p.n_ubatch = min(self.n_batch, self._n_ubatch or 512)
        p.type_k = p.type_v = KV_TYPES[self.kv_type]
        p.n_seq_max = len(self._holder_tokens) + self.n_slots
        p.n_threads = self.n_threads
        p.n_threads_batch = self.n_threads_batch
        p.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if self.flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        p.no_perf = True
        if hasattr(p, "kv_unified"):
            p.kv_unified = True
        if hasattr(p, "swa_full"):
            p.swa_full = True
        return p

    def _create_context(self) -> None:
        ctx = llama_cpp.llama_init_from_model(self._model, self._context_params())
        if not ctx:
            raise EngineError(
                f"llama.cpp could not create a context of {self.kv_size} tokens",
                "lower --ctx or --slots",
            )
        self._ctx = ctx
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._batch = _Batch(self.n_batch)
        self._scratch: FloatArray = np.empty((self.n_slots, self.n_vocab), np.float32)

    # ---- Engine protocol

    @property
    def model_name(self) -> str:
        return self.metadata.get("general.name") or self.path.stem

    @property
    def context_length(self) -> int:
        return self._n_ctx

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        chat: list[Any] = [dict(m) for m in messages]
        try:
            prompt: str = self._formatter()(messages=chat).prompt
        except Exception as err:  # jinja2 errors, raise_exception() in the template
            raise EngineError(f"the model's chat template failed: {err}") from err
        return prompt

    def _formatter(self) -> Jinja2ChatFormatter:
        """The GGUF's own chat template (ChatML when it has none), built once."""
        if self._chat_formatter is None:
            template = self.metadata.get("tokenizer.chat_template") or CHATML_TEMPLATE
            self._chat_formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._special_text(llama_cpp.llama_vocab_eos(self._vocab)),
                bos_token=self._special_text(llama_cpp.llama_vocab_bos(self._vocab)),
                add_generation_prompt=True,
            )
        return self._chat_formatter

    def count_tokens(self, text: str) -> int:
        return len(self._tokenize(text, add_special=False))

    def start(
        self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
    ) -> LlamaCppGeneration:
        self._require_open()
        tokens = self._check_request(prompt, sampling, n, budget)
        with self._cond:
            self._close_own_locked()
            while not self._free_holders:
                self._cond.wait()
                self._wait_idle()
            holder = self._pick_holder(tokens[:-1])
            gen = LlamaCppGeneration(self, tokens, sampling, n, budget, holder)
            self._gens.append(gen)
            self.last_stats = gen.stats
            self._cond.notify_all()
        return gen

    def reset_cache(self) -> None:
        """Forget the kept prompt KV (the next request evaluates its whole prompt)."""
        self._require_open()
        with self._cond:
            self._close_own_locked()
            for h in self._free_holders:
                self._clear_holder(h)

    def close(self) -> None:
        with self._cond:
            self._wait_idle()
            for gen in list(self._gens):
                self._close_locked(gen)
        self._decoder.shutdown(wait=True)
        for s in self._pieces, self._piece_texts:
            s.clear()
        if self._batch is not None:
            self._batch.free()
            self._batch = None
        if self._ctx is not None:
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if self._model is not None:
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> LlamaCppEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- request validation

    def _check_request(
        self, prompt: str, sampling: Sampling, n: int, budget: int | None
    ) -> list[int]:
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        if budget is not None and budget < 0:
            raise InputError(f"budget must not be negative, got {budget}")
        if sampling.top_logprobs < 0:
            raise InputError(f"top_logprobs must not be negative, got {sampling.top_logprobs}")
        tokens = self._tokenize_prompt(prompt)
        if not tokens:
            raise InputError("the prompt is empty")
        ctx = self._n_ctx
        if len(tokens) >= ctx:
            raise ContextOverflowError(
                f"prompt is {len(tokens)} tokens; the context holds {ctx}",
                "shorten the input or raise --ctx",
            )
        if len(tokens) + sampling.max_tokens > ctx:
            raise ContextOverflowError(
                f"prompt ({len(tokens)} tokens) + max_tokens ({sampling.max_tokens}) "
                f"exceeds the context of {ctx} tokens",
                "lower max_tokens or raise --ctx",
            )
        return tokens

    # ---- tokens

    def _tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    def _tokenize_prompt(self, prompt: str) -> list[int]:
        """Tokenize a rendered prompt, adding BOS only if the template did not."""
        tokens = self._tokenize(prompt, add_special=True)
        bos = llama_cpp.llama_vocab_bos(self._vocab)
        if len(tokens) >= 2 and tokens[0] == bos and tokens[1] == bos:
            tokens = tokens[1:]
        return tokens

    def _piece(self, tok: int) -> bytes:
        piece = self._pieces.get(tok)
        if piece is None:
            buf = self._piece_buf
            n = llama_cpp.llama_token_to_piece(self._vocab, tok, buf, len(buf), 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, tok, buf, len(buf), 0, True)
            piece = bytes(buf.raw[:n])
            self._pieces[tok] = piece
        return piece

    def _special_text(self, tok: int) -> str:
        return self._piece(tok).decode("utf-8", errors="replace") if tok >= 0 else ""

    def _piece_text(self, tok: int) -> str:
        text = self._piece_texts.get(tok)
        if text is None:
            text = self._piece(tok).decode("utf-8", errors="replace")
            self._piece_texts[tok] = text
        return text

    def _top_pieces(self, ids: IntArray, lps: FloatArray) -> tuple[tuple[str, float], ...]:
        return tuple(
            (self._piece_text(t), lp) for t, lp in zip(ids.tolist(), lps.tolist(), strict=True)
        )

    def _is_eog(self, tok: int) -> bool:
        eog = self._eog.get(tok)
        if eog is None:
            eog = bool(llama_cpp.llama_vocab_is_eog(self._vocab, tok))
            self._eog[tok] = eog
        return eog

    # ---- decoding primitives used by generations

    def _require_open(self) -> None:
        if self._ctx is None:
            raise EngineError("the llama.cpp engine is closed")

    def _decode(self, n_tokens: int) -> None:
        assert self._batch is not None
        self._batch.raw.n_tokens = n_tokens
        ret = self._on_decoder(llama_cpp.llama_decode, self._ctx, self._batch.raw)
        if ret == 1:
            raise EngineError(
                "llama.cpp's KV cache is full", "lower the number of parallel sequences"
            )
        if ret != 0:
            raise EngineError(f"llama_decode failed with status {ret}")

    def _on_decoder(self, fn: Callable[..., int], *args: Any) -> int:
        """Run `fn` on the engine's one decode thread and wait for it.

        llama.cpp computes with OpenMP, which keeps a team of spinning worker threads per
        calling thread: decoding from several threads (one per problem) would leave the
        previous caller's team spinning on the cores the next decode needs. A Ctrl-C while
        waiting is raised only after the call has returned, as with a direct call, so the
        context is never touched while it decodes.
        """
        future = self._decoder.submit(fn, *args)
        try:
            return future.result()
        finally:
            while not future.done():
                with contextlib.suppress(KeyboardInterrupt):
                    futures.wait([future])

    def _logits(self, n_rows: int) -> FloatArray:
        ptr = llama_cpp.llama_get_logits(self._ctx)
        arr: FloatArray = np.ctypeslib.as_array(ptr, shape=(n_rows, self.n_vocab))
        return arr

    def _prefill(self, tokens: list[int], holder: int, stats: GenerationStats) -> None:
        """Evaluate `tokens[:-1]` into `holder`, reusing the longest prefix any holder has
        (its own from an earlier request, or another one's, e.g. a shared system prompt)."""
        assert self._batch is not None
        t0 = time.perf_counter()
        target = tokens[:-1]
        own = self._holder_tokens[holder]
        common = _common_prefix(own, target)
        source, best = holder, common
        for other, kept in self._holder_tokens.items():
            shared = _common_prefix(kept, target) if other != holder else 0
            if shared > best:
                source, best = other, shared
        if source != holder:
            llama_cpp.llama_memory_seq_rm(self._mem, holder, -1, -1)
            llama_cpp.llama_memory_seq_cp(self._mem, source, holder, 0, best)
            own[:] = target[:best]
            common = best
        else:
            llama_cpp.llama_memory_seq_rm(self._mem, holder, common, -1)
            del own[common:]
        stats.prompt_reused = common
        for start in range(common, len(target), self.n_batch):
            chunk = target[start : start + self.n_batch]
            self._batch.put(0, chunk, start, holder, last_logits=False)
            self._decode(len(chunk))
            own.extend(chunk)
            stats.prompt_evaluated += len(chunk)
        stats.prompt_evals = int(len(target) > common)
        stats.prefill_s = time.perf_counter() - t0

    def _make_sampler(self, sampling: Sampling, seed: int) -> Any:
        params = llama_cpp.llama_sampler_chain_default_params()
        params.no_perf = True
        chain = llama_cpp.llama_sampler_chain_init(params)
        add = llama_cpp.llama_sampler_chain_add
        if sampling.temperature <= 0:
            add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        if sampling.top_k > 0:
            add(chain, llama_cpp.llama_sampler_init_top_k(sampling.top_k))
        if 0.0 < sampling.top_p < 1.0:
            add(chain, llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1))
        if sampling.min_p > 0.0:
            add(chain, llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1))
        add(chain, llama_cpp.llama_sampler_init_temp(sampling.temperature))
        add(chain, llama_cpp.llama_sampler_init_dist(seed & 0xFFFFFFFF))
        return chain

    # ---- slots and holders (touched only by the thread that owns the context)

    def _take_slot(self) -> int:
        return self._free_slots.pop(0)

    def _give_slot(self, slot: int) -> None:
        llama_cpp.llama_memory_seq_rm(self._mem, slot, -1, -1)
        self._free_slots.append(slot)
        self._free_slots.sort()

    def _pick_holder(self, target: list[int]) -> int:
        """The free holder whose kept prompt shares the longest prefix with `target`."""
        best = max(self._free_holders,
                   key=lambda h: _common_prefix(self._holder_tokens[h], target))
        self._free_holders.remove(best)
        return best

    def _give_holder(self, holder: int) -> None:
        """Return `holder`, keeping its prompt; other free holders are cleared, so at most
        one kept prompt occupies the KV cache beyond the open generations."""
        for h in self._free_holders:
            self._clear_holder(h)
        self._free_holders.append(holder)

    def _clear_holder(self, holder: int) -> None:
        if self._holder_tokens[holder] and self._ctx is not None:
            llama_cpp.llama_memory_seq_rm(self._mem, holder, -1, -1)
        self._holder_tokens[holder].clear()

    # ---- shared steps

    def _next_event(self, gen: LlamaCppGeneration) -> EngineEvent:
        """The next event of `gen`; when it has none queued, run a step (or wait for the
        step another thread is running)."""
        with self._cond:
            while True:
                if gen._queue:
                    gen._waiting = False
                    return gen._queue.popleft()
                if gen._error is not None:
                    gen._waiting = False
                    raise gen._error
                if gen._done:
                    gen._waiting = False
                    raise StopIteration
                if not gen._waiting:
                    gen._waiting = True
                    self._cond.notify_all()
                if self._stepping:
                    self._cond.wait()
                    continue
                self._gather()
                if not self._stepping:
                    self._run_step(gen)

    def _gather(self) -> None:
        """Give other threads' generations a moment to come back for their next token, so
        that one decode serves them all (their strategies take microseconds per event)."""
        deadline = time.monotonic() + GATHER_S
        while not self._stepping:
            busy = [g for g in self._gens if not g._done and not (g._waiting and not g._queue)]
            left = deadline - time.monotonic()
            if not (busy or self._pending) or left <= 0:
                return
            self._cond.wait(left)

    def _run_step(self, gen: LlamaCppGeneration) -> None:
        """One step for every waiting generation, with the lock released meanwhile."""
        group = [g for g in self._gens if g._waiting and not g._queue and not g._done]
        self._stepping = True
        self._cond.release()
        try:
            progressed = self._step(group)
        except BaseException as err:
            for g in group:
                if g is not gen:
                    g._error = err if isinstance(err, Exception) else EngineError(
                        "a shared decoding step was interrupted")
            raise
        finally:
            self._cond.acquire()
            self._stepping = False
            self._gens = [g for g in self._gens if not g._released]
            self._cond.notify_all()
        if not progressed and not gen._queue and not gen._done:
            self._cond.wait(IDLE_WAIT_S)  # no free slot: wait until a generation frees one

    def _step(self, group: list[LlamaCppGeneration]) -> bool:
        """Evaluate new prompts, prepare each generation, decode all their pending tokens,
        sample every sequence, finish the generations that are done. Returns whether
        anything happened. `step_s` counts the step after the prompts."""
        for g in group:
            if not g._prefilled:
                self._prefill(g._prompt, g._holder, g.stats)
                g._prefilled = True
        t0 = time.perf_counter()
        for g in group:
            g._prepare()
        work = [(g, s) for g in group for s in g._active]
        if work:
            self._decode_and_sample(work)
        served = [g for g in group if g._active]
        if len(served) > 1:
            for g in served:
                g.stats.shared_steps += 1
        progressed = bool(work) or any(g._queue for g in group)
        spent = time.perf_counter() - t0
        for g in group:
            g.stats.step_s += spent
            g._end_step()
        return progressed

    def _decode_and_sample(self, work: list[tuple[LlamaCppGeneration, _Seq]]) -> None:
        """Decode every active sequence's pending tokens (one batch, split only if it
        overflows n_batch), then sample one token per sequence."""
        assert self._batch is not None
        batch, cap = self._batch, self.n_batch
        n = 0
        outputs: list[tuple[LlamaCppGeneration, _Seq, int]] = []
        for g, s in work:
            pending = s.tokens[s.n_kv :]
            while pending:
                if n == cap:
                    self._decode_timed(n, work)
                    self._sample_rows(outputs)
                    n, outputs = 0, []
                take = pending[: cap - n]
                pending = pending[len(take) :]
                batch.put(n, take, g._base + s.n_kv, s.slot or 0, last_logits=not pending)
                s.n_kv += len(take)
                n += len(take)
                if not pending:
                    outputs.append((g, s, n - 1))
        if n:
            self._decode_timed(n, work)
            self._sample_rows(outputs)

    def _decode_timed(self, n_tokens: int, work: list[tuple[LlamaCppGeneration, _Seq]]) -> None:
        t0 = time.perf_counter()
        self._decode(n_tokens)
        spent = time.perf_counter() - t0
        for g in dict.fromkeys(g for g, _ in work):
            g.stats.decode_s += spent

    def _sample_rows(self, outputs: list[tuple[LlamaCppGeneration, _Seq, int]]) -> None:
        """Hand each generation its (contiguous) rows of the logits."""
        logits = self._logits(len(outputs))
        row = 0
        for gen, items in itertools.groupby(outputs, key=lambda o: o[0]):
            mine = [(s, idx) for _, s, idx in items]
            gen._sample(logits[row : row + len(mine)], mine)
            row += len(mine)

    # ---- closing generations

    def _wait_idle(self) -> None:
        """Wait (lock held) until no step runs; steps let waiting threads in first."""
        if not self._stepping:
            return
        self._pending += 1
        try:
            while self._stepping:
                self._cond.wait()
        finally:
            self._pending -= 1
            self._cond.notify_all()

    def _close_generation(self, gen: LlamaCppGeneration) -> None:
        with self._cond:
            self._wait_idle()
            self._close_locked(gen)

    def _close_own_locked(self) -> None:
        """Close the generations the calling thread still has open."""
        self._wait_idle()
        me = threading.get_ident()
        for gen in [g for g in self._gens if g._owner == me]:
            self._close_locked(gen)

    def _close_locked(self, gen: LlamaCppGeneration) -> None:
        gen._closed = True
        gen._done = True
        gen._queue.clear()
        if self._ctx is not None:
            gen._release()
        if gen in self._gens:
            self._gens.remove(gen)
        self._cond.notify_all()
