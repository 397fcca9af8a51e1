"""Many problems in one run: input formats, per-problem records, resumable JSON Lines output.

Problems come from a ``.txt`` file (one per line, or blocks separated by blank lines), a
``.jsonl`` file or a ``.csv`` file with a header. Lines that cannot be used (malformed JSON,
a wrong number of CSV fields, an empty question) become problems that carry an ``error``;
they are written as error records instead of stopping the run.

Each finished problem is one JSON object, written and flushed at once. ``--resume`` reads
the output back: complete records are kept, a truncated last line (from a crash) and
records of problems that were interrupted are dropped (the file is rewritten atomically),
and the kept ids are skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from ponder.answers import equivalent
from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.errors import InputError, PonderError
from ponder.events import Result, StrategyEvent
from ponder.runner import Plan, drive, make_task, result_record, run_plan
from ponder.strategies.base import Clock

if TYPE_CHECKING:
    from ponder.log.session import Binding

FORMATS = ("txt", "jsonl", "csv")
_SUFFIXES = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".csv": "csv"}
DEFAULT_FIELD = "question"
REFERENCE_FIELD = "answer"
ID_FIELD = "id"
Record = dict[str, Any]


@dataclass(frozen=True)
class Problem:
    """One question to solve. `error` says why it cannot be run (it becomes an error record)."""

    id: str
    question: str
    reference: str | None = None
    error: str | None = None
    line: int = 0


# ---------------------------------------------------------------------------------------
# Reading problems


def read_source(source: Path) -> str:
    """The text of `source` ('-' is stdin), with a clear error when it cannot be read."""
    try:
        if str(source) == "-":
            return sys.stdin.read()
        return source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"cannot read {source}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def detect_format(source: Path, text: str, fmt: str | None = None) -> str:
    """The format named by --format, the file suffix, or (stdin) the first line's shape."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format '{fmt}'", f"choose from {', '.join(FORMATS)}")
        return fmt
    if str(source) == "-":
        first = next((line for line in text.split("\n") if line.strip()), "")
        return "jsonl" if first.lstrip().startswith("{") else "txt"
    suffix = source.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise InputError(f"unknown format for {source.name}",
                     "use a .txt, .jsonl or .csv file, or --format txt|jsonl|csv")


def load_problems(
    source: Path,
    *,
    fmt: str | None = None,
    field: str | None = None,
    blocks: bool = False,
) -> list[Problem]:
    """Read and parse every problem of `source`; raises InputError for unusable input."""
    text = read_source(source)
    kind = detect_format(source, text, fmt)
    if blocks and kind != "txt":
        raise InputError("--blocks applies to .txt input only")
    if field is not None and kind == "txt":
        raise InputError("--field applies to .jsonl and .csv input only")
    if kind == "txt":
        problems = parse_txt(text, blocks=blocks)
    elif kind == "jsonl":
        problems = parse_jsonl(text, field or DEFAULT_FIELD)
    else:
        problems = parse_csv(text, field or DEFAULT_FIELD)
    if not problems:
        raise InputError(f"no problems in {'stdin' if str(source) == '-' else source}")
    return mark_duplicates(problems)


def parse_txt(text: str, *, blocks: bool = False) -> list[Problem]:
    """One problem per non-blank line, or per block of lines between blank lines."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not blocks:
        return [Problem(str(n), line.strip(), line=n)
                for n, line in enumerate(lines, 1) if line.strip()]
    problems: list[Problem] = []
    start, current = 0, []
    for n, line in enumerate([*lines, ""], 1):
        if line.strip():
            start = start or n
            current.append(line.rstrip())
        elif current:
            problems.append(Problem(str(start), "\n".join(current).strip(), line=start))
            start, current = 0, []
    return problems


def parse_jsonl(text: str, question_field: str = DEFAULT_FIELD) -> list[Problem]:
    """One JSON object per line; a line that is not one becomes an error problem."""
    problems: list[Problem] = []
    found = False
    keys: dict[str, None] = {}
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(_broken(n, f"line {n}: malformed JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            problems.append(_broken(n, f"line {n}: not a JSON object"))
            continue
        found = found or question_field in obj
        keys.update(dict.fromkeys(obj))
        problems.append(from_fields(obj, question_field, n))
    if problems and not found:
        _no_field(question_field, list(keys), "line")
    return problems


def parse_csv(text: str, question_field: str = DEFAULT_FIELD) -> list[Problem]:
    """A CSV file with a header row; rows with the wrong number of fields become errors."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _csv_header(reader)
    if header is None:
        return []
    if question_field not in header:
        _no_field(question_field, header, "column")
    problems: list[Problem] = []
    for n, row, error in _csv_rows(reader):
        if error is not None:
            problems.append(_broken(n, f"line {n}: {error}"))
        elif len(row) != len(header):
            problems.append(_broken(n, f"line {n}: expected {len(header)} fields, "
                                       f"found {len(row)}"))
        else:
            problems.append(from_fields(dict(zip(header, row, strict=True)), question_field, n))
    return problems


def _csv_header(reader: Iterator[list[str]]) -> list[str] | None:
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row]
    except csv.Error as exc:
        raise InputError(f"the CSV header cannot be read: {exc}") from None
    return None


def _csv_rows(reader: Any) -> Iterator[tuple[int, list[str], str | None]]:
    """(first line number, fields, parse error) for each non-blank row."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, [], str(exc)
            continue
        if any(cell.strip() for cell in row):
            yield start, row, None


def from_fields(row: Mapping[str, Any], question_field: str, n: int) -> Problem:
    """A problem from one object or CSV row: question, optional reference answer and id."""
    pid = _text(row.get(ID_FIELD)) or str(n)
    reference = _text(row.get(REFERENCE_FIELD))
    value = row.get(question_field)
    if value is None:
        return Problem(pid, "", reference, f"line {n}: no '{question_field}' field", n)
    if not isinstance(value, str):
        return Problem(pid, "", reference, f"line {n}: '{question_field}' is not text", n)
    if not value.strip():
        return Problem(pid, "", reference, f"line {n}: empty problem", n)
    return Problem(pid, value.strip(), reference, None, n)


def _text(value: Any) -> str | None:
    """A field value as text: numbers as written, structures as JSON, blanks as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.strip() or None


def _broken(n: int, reason: str) -> Problem:
    return Problem(str(n), "", None, reason, n)


def _no_field(name: str, seen: Sequence[str], what: str) -> None:
    fields = ", ".join(s for s in seen if s) or "none"
    raise InputError(f"no {what} has a '{name}' field", f"fields: {fields}; choose with --field")


def mark_duplicates(problems: list[Problem]) -> list[Problem]:
    """Ids must be unique to resume: later copies become error problems with an id of their
    own (`ID@LINE`), so that their records never stand in for the first one's."""
    first: dict[str, int] = {}
    out: list[Problem] = []
    for p in problems:
        if p.id in first:
            reason = f"line {p.line}: duplicate id '{p.id}' (first on line {first[p.id]})"
            out.append(Problem(f"{p.id}@{p.line}", p.question, None, reason, p.line))
        else:
            first[p.id] = p.line
            out.append(p)
    return out


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")


# ---------------------------------------------------------------------------------------
# Records


@dataclass
class Setup:
    """What every problem of a run shares: the model, the plan, sampling and limits."""

    loaded: Loaded
    plan: Plan
    sampling: Sampling
    budget: int | None = None
    seconds: float | None = None
    clock: Clock = time.monotonic
    extra: dict[str, Any] = field(default_factory=dict)
    log: Binding | None = None


def problem_record(problem: Problem, result: Result, setup: Setup, seconds: float) -> Record:
    """The record of a problem that ran: `ponder ask --json`'s object plus id and scoring."""
    base = result_record(problem.question, result, setup.loaded, setup.plan, seconds)
    record: Record = {"id": problem.id, **setup.extra,
                      "status": "interrupted" if result.interrupted else "ok"}
    record["question"] = base.pop("question")
    record["answer"] = base.pop("answer")
    record["reference"] = problem.reference
    record["correct"] = (None if problem.reference is None
                         else equivalent(result.answer, problem.reference))
    record["tokens"] = result.completion_tokens
    record["seconds"] = base.pop("seconds")
    record.update(base)
    return record


def error_record(problem: Problem, reason: str, setup: Setup, seconds: float = 0.0) -> Record:
    """The record of a problem that could not be run, with the reason."""
    return {
        "id": problem.id, **setup.extra, "status": "error", "error": reason,
        "question": problem.question, "answer": None, "reference": problem.reference,
        "correct": None if problem.reference is None else False,
        "tokens": 0, "seconds": round(seconds, 3), "model": setup.loaded.model_id,
        "effort": setup.plan.effort, "strategy": setup.plan.spec.name,
    }


# ---------------------------------------------------------------------------------------
# Writing and resuming


class RecordWriter:
    """Writes one JSON object per line and flushes it at once; safe to share across threads."""

    def __init__(self, stream: TextIO | None, name: str, *, sync: bool = False) -> None:
        self.stream = stream
        self.name = name
        self._sync = sync
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        if self.stream is None:
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
                if self._sync:
                    os.fsync(self.stream.fileno())
            except BrokenPipeError:
                raise  # the reader went away (`| head`): the CLI ends quietly
            except OSError as exc:
                raise PonderError(f"cannot write {self.name}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self.stream is not None and self.stream not in (sys.stdout, sys.__stdout__):
            self.stream.close()


def check_output(
    out: Path | None, *, resume: bool = False, overwrite: bool = False,
    source: Path | None = None,
) -> None:
    """Refuse output settings that could lose finished work, before any work is done."""
    if out is None:
        if resume:
            raise InputError("--resume needs --out FILE")
        return
    if resume and overwrite:
        raise InputError("give --resume or --overwrite, not both")
    if out.is_dir() or not out.parent.is_dir():
        what = "it is a directory" if out.is_dir() else f"no directory {out.parent}"
        raise InputError(f"cannot write {out}: {what}")
    if source is not None and str(source) != "-" and _same_file(out, source):
        raise InputError(f"--out {out} is the input file")
    if not resume and not overwrite and _has_content(out):
        raise InputError(f"{out} already holds results",
                         "add --resume to continue it or --overwrite to start over")


def open_writer(
    out: Path | None, *, resume: bool = False, overwrite: bool = False, stdout: bool = True,
) -> RecordWriter:
    """The output: `out` appended to (resume) or created, else stdout (or nowhere)."""
    check_output(out, resume=resume, overwrite=overwrite)
    if out is None:
        return RecordWriter(sys.stdout if stdout else None, "stdout")
    try:
        stream = out.open("a" if resume else "w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    return RecordWriter(stream, str(out), sync=True)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


@dataclass
class Existing:
    """Records read back from an output file: the kept ones and what was dropped."""

    records: list[Record]
    unreadable: int = 0
    redo: int = 0


def read_records(path: Path) -> Existing:
    """Every complete record in `path`; unreadable lines are counted, not fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Existing([])
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InputError(f"cannot read {path}: {reason}") from None
    existing = Existing([])
    for line in text.split("\n"):
        if not line.strip():
            continue
        record = _parse_record(line)
        if record is None:
            existing.unreadable += 1
        else:
            existing.records.append(record)
    return existing


def _parse_record(line: str) -> Record | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    return record


def prepare_resume(path: Path) -> Existing:
    """Read `path` for --resume and repair it: drop broken lines and interrupted records.

    The file is rewritten (atomically) only when something has to go or its last line
    lacks a newline, so that new records start on a line of their own.
    """
    existing = read_records(path)
    kept = [r for r in existing.records if r.get("status") != "interrupted"]
    existing.redo = len(existing.records) - len(kept)
    existing.records = kept
    if existing.unreadable or existing.redo or _lacks_final_newline(path):
        _rewrite(path, kept)
    return existing


def _lacks_final_newline(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def _rewrite(path: Path, records: Iterable[Record]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PonderError(f"cannot repair {path}: {exc.strerror or exc}") from None


def pending(problems: Sequence[Problem], done: set[str]) -> list[Problem]:
    return [p for p in problems if p.id not in done]


# ---------------------------------------------------------------------------------------
# Running


class Progress(Protocol):
    """What a run reports as it goes (the CLI draws it; tests may record it)."""

    def started(self, problem: Problem) -> None: ...

    def event(self, problem: Problem, event: StrategyEvent) -> None: ...

    def finished(self, problem: Problem, record: Record) -> None: ...


class NoProgress:
    def started(self, problem: Problem) -> None:
        pass

    def event(self, problem: Problem, event: StrategyEvent) -> None:
        pass

    def finished(self, problem: Problem, record: Record) -> None:
        pass


def solve_problem(
    problem: Problem,
    setup: Setup,
    handle: Callable[[StrategyEvent], None],
    stop: Callable[[], bool] | None = None,
) -> Record:
    """Run one problem to its record; unusable input becomes an error record."""
    if problem.error is not None:
        return error_record(problem, problem.error, setup)
    started = setup.clock()
    try:
        task = make_task(problem.question, setup.loaded, setup.sampling, budget=setup.budget,
                         seconds=setup.seconds, clock=setup.clock,
                         single_chain=setup.plan.spec.single_chain)
        entry = setup.log.begin(task, setup.loaded) if setup.log else None
        if entry is not None and entry.hit is not None:  # answered from the log
            return entry.finish(problem_record(problem, entry.hit.result(), setup,
                                               entry.hit.seconds))
        result = drive(run_plan(task, setup.plan), handle, stop)
    except InputError as exc:  # too long for the context, among others
        return error_record(problem, str(exc), setup, setup.clock() - started)
    record = problem_record(problem, result, setup, setup.clock() - started)
    return entry.finish(record, result) if entry is not None else record


@dataclass
class Outcome:
    records: list[Record]
    interrupted: bool = False


def run_batch(
    problems: Sequence[Problem],
    setup: Setup,
    writer: RecordWriter,
    progress: Progress | None = None,
    workers: int = 1,
) -> Outcome:
    """Solve `problems`, writing each record as soon as it is done; stops on Ctrl-C."""
    progress = progress or NoProgress()
    if workers > 1 and len(problems) > 1:
        return _run_threaded(problems, setup, writer, progress, workers)
    outcome = Outcome([])
    try:
        for problem in problems:
            progress.started(problem)
            record = solve_problem(problem, setup, _sink(progress, problem))
            writer.write(record)
            outcome.records.append(record)
            progress.finished(problem, record)
            if record["status"] == "interrupted":
                outcome.interrupted = True
                break
    except KeyboardInterrupt:
        outcome.interrupted = True
    return outcome


def _sink(progress: Progress, problem: Problem) -> Callable[[StrategyEvent], None]:
    return lambda event: progress.event(problem, event)


def _run_threaded(
    problems: Sequence[Problem],
    setup: Setup,
    writer: RecordWriter,
    progress: Progress,
    workers: int,
) -> Outcome:
    """Several problems at once on a thread-safe engine; records are written as they finish."""
    stop = threading.Event()
    lock = threading.Lock()
    outcome = Outcome([])

    def work(problem: Problem) -> None:
        if stop.is_set():
            return
        with lock:
            progress.started(problem)

        def handle(event: StrategyEvent) -> None:
            with lock:
                progress.event(problem, event)

        record = solve_problem(problem, setup, handle, stop.is_set)
        writer.write(record)
        with lock:
            outcome.records.append(record)
            progress.finished(problem, record)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ponder-solve")
    futures = [pool.submit(work, p) for p in problems]
    try:
        _wait_all(futures)
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        stop.set()
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True)
    outcome.interrupted = outcome.interrupted or any(
        r["status"] == "interrupted" for r in outcome.records)
    return outcome


def _wait_all(futures: list[Future[None]]) -> None:
    """Wait for every future, re-raising the first failure (an engine error, say)."""
    remaining = set(futures)
    while remaining:
        done, remaining = wait(remaining, timeout=0.25, return_when=FIRST_EXCEPTION)
        for f in done:
            f.result()


def chains_per_problem(plan: Plan) -> int:
    """The most chains the plan's strategy runs at once, from its options (else 1):
    `width` x `expand` (beam search), `max_n` (adaptive), `n` (vote, best-of-n, ...)."""
    options = plan.options
    width, expand = _positive(options, "width"), _positive(options, "expand")
    if width and expand:
        return width * expand
    for name in ("max_n", "n", "chains", "width"):
        value = _positive(options, name)
        if value:
            return value
    return 1


def _positive(options: object, name: str) -> int:
    value = getattr(options, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_concurrency(value: str | None) -> int | None:
    """--concurrency: a positive number, or None for automatic ('auto' or not given)."""
    if value is None or value.strip().lower() == "auto":
        return None
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise InputError(f"--concurrency {value!r} is not a positive number or 'auto'")
    return number


THREAD_SAFE_ENGINES = frozenset({"ponder.engines.openai.OpenAIEngine"})
"""Engines documented as safe to call from several threads that do not say so themselves."""


def thread_safe(engine: object) -> bool:
    """Whether `engine.start` may be called from several threads at once."""
    declared = getattr(engine, "thread_safe", None)
    if isinstance(declared, bool):
        return declared
    kind = type(engine)
    return f"{kind.__module__}.{kind.__qualname__}" in THREAD_SAFE_ENGINES


def capacity(engine: object, default: int) -> int:
    """How many sequences the engine serves at once: its slots or its connections."""
    settings = getattr(engine, "settings", None)
    for value in (getattr(engine, "n_slots", None), getattr(settings, "max_connections", None)):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def choose_workers(requested: int | None, loaded: Loaded, plan: Plan, slots: int) -> int:
    """How many problems run at once.

    Only engines safe to call from several threads (the llama.cpp engine, whose slots the
    problems share; the OpenAI-compatible server engine; any engine declaring
    ``thread_safe = True``) run several problems at once: `requested` of them, or
    automatically as many as the engine's capacity (slots or connections) holds with the
    plan's chains. Other engines run problems one after another.
    """
    if not thread_safe(loaded.engine):
        return 1
    if requested is not None:
        return requested
    return max(1, capacity(loaded.engine, slots) // chains_per_problem(plan))
