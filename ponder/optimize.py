"""`ponder models optimize`: requantize a verified model into the format that decodes fastest.

The copy is made by llama.cpp itself (``llama_model_quantize`` with ``allow_requantize``)
into ``<models_dir>/optimized/``; the original is only read. ``auto`` makes every candidate
format, runs the same short workload on the original and on each copy (:func:`measure`),
and keeps the fastest copy (decode tokens/s: one sequence, then four side by side) that
passes the accuracy check; when the original is fastest, no copy is kept.

The accuracy check is cheap on purpose (it guards against a broken or badly degraded copy,
not against a small loss; ``benchmarks/formats.py`` measures that on GSM8K): a handful of
fixed arithmetic questions answered greedily. A copy passes when it answers at least as many
as the original, less one (a single greedy flip is within noise).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ponder.catalog import format_key, format_label
from ponder.copies import (
    CopyRecord,
    copies_dir,
    copy_file_name,
    read_record,
    remove_record,
    write_record,
)
from ponder.errors import InputError
from ponder.registry import COPY_FORMATS, ModelEntry
from ponder.requantize import quantize

CHECKS: tuple[tuple[str, str], ...] = (
    ("What is 17 + 25?", "42"),
    ("What is 9 * 8?", "72"),
    ("What is 100 - 37?", "63"),
    ("What is 144 / 12?", "12"),
    ("What is 15 * 4 + 3?", "63"),
    ("What is 250 + 175?", "425"),
    ("What is 7 * 7 - 9?", "40"),
    ("What is 1000 - 1?", "999"),
)
"""Questions every candidate answers greedily (the accuracy check)."""
CHECK_SYSTEM = "Answer with the number only."
SPEED_PROMPT = "Write a short story about a lighthouse keeper."
SPEED_SEQUENCES = 4
SPEED_TOKENS = 40
AUTO_FORMATS = ("Q4_0", "IQ4_NL_MIX", "Q8_0")
"""The formats ``auto`` tries: it chooses speed. On Qwen2.5-Coder-0.5B, Q4_0 and IQ4_NL_MIX
each cost about 5 points of greedy GSM8K accuracy (benchmarks/results/formats-4bit-qwen0.5b.txt),
a loss the short check cannot see; the pure formats (the output layer in 4 bits too) lost as
much or more and are made only when asked for by name."""

ALLOWED_MISSES = 1
"""How many fewer checks than the original a copy may answer right and still pass."""


@dataclass(frozen=True)
class Measurement:
    """One file's run of the fixed workload: the checks, then a batched generation."""

    format: str
    seconds: float
    tokens: int
    correct: int
    total: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


Measure = Callable[[Path, str, int | None], Measurement]


def normalize_format(name: str) -> str:
    """'q4_0' -> 'Q4_0', 'q4_0-pure' -> 'Q4_0_PURE'; 'auto' stays; else an InputError."""
    upper = format_key(name)
    if upper == "AUTO":
        return "auto"
    if upper not in COPY_FORMATS:
        choices = ", ".join(format_label(f) for f in COPY_FORMATS)
        raise InputError(f"unknown format {name!r}", f"choose from {choices} or auto")
    return upper


# --------------------------------------------------------------------------- making copies


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def make_copy(
    entry: ModelEntry,
    original: Path,
    fmt: str,
    threads: int | None = None,
    measurements: dict[str, Any] | None = None,
) -> CopyRecord:
    """Requantize ``original`` to ``fmt``, record the copy as the model's format."""
    dst = copies_dir() / copy_file_name(entry, fmt)
    quantize(original, dst, fmt, threads)
    return _record(entry, original, dst, fmt, measurements)


def _record(
    entry: ModelEntry, original: Path, dst: Path, fmt: str, measurements: dict[str, Any] | None
) -> CopyRecord:
    """Record ``dst`` as the model's format; a copy it replaces is deleted."""
    record = CopyRecord(
        model=entry.id,
        format=fmt,
        path=str(dst),
        sha256=sha256_of(dst),
        size=dst.stat().st_size,
        origin="quantized",
        source_sha256=entry.sha256 or sha256_of(original),
        created=_now(),
        measurements=measurements or {},
    )
    _replace_record(record)
    return record


def record_download(entry: ModelEntry, variant: ModelEntry, path: Path) -> CopyRecord:
    """Record a pulled published variant as the format the model runs in."""
    record = CopyRecord(
        model=entry.id,
        format=variant.quant,
        path=str(path),
        sha256=variant.sha256 or sha256_of(path),
        size=path.stat().st_size,
        origin="download",
        created=_now(),
    )
    _replace_record(record)
    return record


def _replace_record(record: CopyRecord) -> None:
    """Write ``record``; a copy ponder made that it replaces is deleted."""
    previous = read_record(record.model)
    write_record(record)
    if previous is not None and previous.origin == "quantized" and previous.file != record.file:
        previous.file.unlink(missing_ok=True)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- auto


def measure(path: Path, fmt: str, threads: int | None = None) -> Measurement:
    """Answer the checks greedily, then time decoding: one sequence, then a small batch."""
    from ponder.answers import equivalent, extract_answer
    from ponder.engines.base import Sampling, generate
    from ponder.engines.llamacpp import LlamaCppEngine

    greedy = Sampling(temperature=0.0, max_tokens=8)
    sampled = Sampling(temperature=0.7, seed=0, max_tokens=SPEED_TOKENS)
    with LlamaCppEngine(path, n_ctx=512, n_slots=SPEED_SEQUENCES, n_threads=threads) as engine:
        correct = 0
        for question, expected in CHECKS:
            prompt = engine.chat_prompt(
                [{"role": "system", "content": CHECK_SYSTEM}, {"role": "user", "content": question}]
            )
            (out,) = generate(engine, prompt, greedy)
            correct += equivalent(extract_answer(out.text), expected)
        prompt = engine.chat_prompt([{"role": "user", "content": SPEED_PROMPT}])
        generate(engine, prompt, sampled.with_(max_tokens=2))  # prompt cached: decode is timed
        started = time.perf_counter()
        tokens = sum(o.tokens for n in (1, SPEED_SEQUENCES) for o in generate(
            engine, prompt, sampled, n=n))
        seconds = time.perf_counter() - started
    return Measurement(fmt, seconds, tokens, correct, len(CHECKS))


def passes(candidate: Measurement, original: Measurement) -> bool:
    return candidate.correct >= original.correct - ALLOWED_MISSES


@dataclass(frozen=True)
class AutoResult:
    """What `auto` measured and kept (``kept`` None: the original stays the fastest)."""

    original: Measurement
    candidates: tuple[Measurement, ...]
    kept: CopyRecord | None


def auto(
    entry: ModelEntry,
    original: Path,
    threads: int | None = None,
    formats: Sequence[str] = AUTO_FORMATS,
    measure_fn: Measure | None = None,
    report: Callable[[Measurement], None] = lambda m: None,
) -> AutoResult:
    """Make each candidate copy, measure it against the original, keep the best passing one."""
    measure_fn = measure_fn or measure
    base = measure_fn(original, entry.quant, threads)
    report(base)
    results: list[Measurement] = []
    scratch = copies_dir() / ".auto"
    try:
        for fmt in formats:
            path = scratch / copy_file_name(entry, fmt)
            quantize(original, path, fmt, threads)
            results.append(measure_fn(path, fmt, threads))
            report(results[-1])
        best = _fastest([m for m in results if passes(m, base)], base)
        if best is None:
            remove_record(entry.id)
            return AutoResult(base, tuple(results), None)
        dst = copies_dir() / copy_file_name(entry, best.format)
        os.replace(scratch / dst.name, dst)
        notes = {"auto": [asdict(m) for m in (base, *results)]}
        return AutoResult(base, tuple(results), _record(entry, original, dst, best.format, notes))
    finally:
        with contextlib.suppress(OSError):
            for leftover in scratch.glob("*"):
                leftover.unlink()
            scratch.rmdir()


def _fastest(candidates: list[Measurement], base: Measurement) -> Measurement | None:
    """The passing candidate with the highest tokens/s, if it beats the original."""
    best = max(candidates, key=lambda m: m.tokens_per_s, default=None)
    return best if best is not None and best.tokens_per_s > base.tokens_per_s else None
