"""Running many problems: each to its record, one after another or several at once.

Each finished problem's record (:mod:`ponder.records`) is written as soon as it is done;
Ctrl-C finishes the problems in flight as interrupted records. Problems run side by side
only on an engine that is `thread_safe`, as many as its `capacity` holds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from ponder.answers import equivalent
from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.errors import InputError
from ponder.events import Result, StrategyEvent
from ponder.problems import Problem
from ponder.records import Record, RecordWriter
from ponder.runner import Plan, drive, make_task, result_record, run_plan
from ponder.strategies.base import Clock, StrategyOptions

if TYPE_CHECKING:
    from ponder.log.session import Binding, Entry


@dataclass
class Setup:
    """What every problem of a run shares: the model, the plan, sampling and limits, and
    the configuration's label (`ponder eval`) that its records carry."""

    loaded: Loaded
    plan: Plan
    sampling: Sampling
    budget: int | None = None
    seconds: float | None = None
    clock: Clock = time.monotonic
    config: str | None = None
    log: Binding | None = None


def _record_head(problem: Problem, setup: Setup, status: str) -> dict[str, Any]:
    config = {} if setup.config is None else {"config": setup.config}
    return {"id": problem.id, **config, "status": status}


def problem_record(problem: Problem, result: Result, setup: Setup, seconds: float) -> Record:
    """The record of a problem that ran: id and scoring first, then the rest of
    `ponder ask --json`'s object."""
    base = result_record(problem.question, result, setup.loaded, setup.plan, seconds)
    correct = None if problem.reference is None else equivalent(result.answer, problem.reference)
    record = {
        **_record_head(problem, setup, "interrupted" if result.interrupted else "ok"),
        "question": base["question"], "answer": base["answer"],
        "reference": problem.reference, "correct": correct,
        "tokens": result.completion_tokens, "seconds": base["seconds"], **base,
    }
    return cast(Record, record)


def error_record(problem: Problem, reason: str, setup: Setup, seconds: float = 0.0) -> Record:
    """The record of a problem that could not be run, with the reason."""
    record = {
        **_record_head(problem, setup, "error"), "error": reason,
        "question": problem.question, "answer": None, "reference": problem.reference,
        "correct": None if problem.reference is None else False,
        "tokens": 0, "seconds": round(seconds, 3), "model": setup.loaded.model_id,
        "effort": setup.plan.effort, "strategy": setup.plan.spec.name,
    }
    return cast(Record, record)


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
            return _logged(entry, problem_record(problem, entry.hit.result(), setup,
                                                 entry.hit.seconds))
        result = drive(run_plan(task, setup.plan), handle, stop)
    except InputError as exc:  # too long for the context, among others
        return error_record(problem, str(exc), setup, setup.clock() - started)
    record = problem_record(problem, result, setup, setup.clock() - started)
    return _logged(entry, record, result) if entry is not None else record


def _logged(entry: Entry, record: Record, result: Result | None = None) -> Record:
    """`record` as the run log completes it (`cached`, `reuse`, `log_id`)."""
    return cast(Record, entry.finish(cast(dict[str, Any], record), result))


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
    """The most chains the plan's strategy runs at once for one problem (at least 1)."""
    options: StrategyOptions = plan.options
    return max(1, options.max_chains)


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


def choose_workers(requested: int | None, loaded: Loaded, plan: Plan) -> int:
    """How many problems run at once.

    Only engines safe to call from several threads (`thread_safe`: the llama.cpp engine,
    whose slots the problems share, and the OpenAI-compatible server engine) run several
    problems at once: `requested` of them, or automatically as many as the engine's
    `capacity` (slots or connections) holds with the plan's chains. Other engines run
    problems one after another.
    """
    if not loaded.engine.thread_safe:
        return 1
    if requested is not None:
        return requested
    return max(1, loaded.engine.capacity // chains_per_problem(plan))
