"""Running problems to their records, one at a time or several at once (ponder.batch)."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ponder import batch
from ponder.batch import Setup
from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import ScriptedEngine, ScriptedGeneration
from ponder.errors import EngineError, InputError
from ponder.events import StrategyEvent
from ponder.problems import Problem
from ponder.records import Record, RecordWriter
from ponder.runner import make_plan
from tests.conftest import EchoEngine, InterruptingEngine

RIGHT = "<think>easy</think>\\boxed{4}"


def setup_for(engine: ScriptedEngine, **kw: Any) -> Setup:
    return Setup(Loaded(engine, "prompted", "m"), make_plan("low", None), Sampling(), **kw)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------
# Records and running


def test_problem_record_scores_against_the_reference() -> None:
    engine = ScriptedEngine([RIGHT, "<think>hmm</think>\\boxed{5}", RIGHT])
    setup = setup_for(engine)
    problems = [Problem("a", "2+2?", "4"), Problem("b", "2+2?", "4.0"), Problem("c", "2+2?")]
    out = batch.run_batch(problems, setup, RecordWriter(None, "none"))
    a, b, c = out.records
    assert (a["id"], a["status"], a["answer"], a["reference"], a["correct"]) == (
        "a", "ok", "4", "4", True)
    assert b["correct"] is False
    assert c["reference"] is None and c["correct"] is None
    assert a["tokens"] == a["usage"]["completion_tokens"] > 0
    assert a["strategy"] == "cot" and a["effort"] == "low" and a["model"] == "m"
    assert a["thinking"] == "easy" and a["seconds"] >= 0
    assert not out.interrupted


def test_error_records_and_the_run_goes_on() -> None:
    engine = ScriptedEngine([RIGHT, RIGHT], context_length=100)
    problems = [
        Problem("1", "", None, "line 1: malformed JSON (oops)"),
        Problem("2", "word " * 80, "9"),
        Problem("3", "2+2?", "4"),
    ]
    out = batch.run_batch(problems, setup_for(engine), RecordWriter(None, "none"))
    bad, long, good = out.records
    assert bad["status"] == "error" and bad["error"] == "line 1: malformed JSON (oops)"
    assert long["status"] == "error" and "context holds 100" in long["error"]
    assert long["correct"] is False and long["tokens"] == 0
    assert good["status"] == "ok" and good["correct"] is True


def test_each_record_is_written_before_the_next_problem_starts() -> None:
    stream = io.StringIO()
    seen: list[int] = []

    class Spy:
        def started(self, problem: Problem) -> None:
            seen.append(stream.getvalue().count("\n"))

        def event(self, problem: Problem, event: StrategyEvent) -> None:
            pass

        def finished(self, problem: Problem, record: Record) -> None:
            pass

    engine = ScriptedEngine([RIGHT] * 3)
    batch.run_batch([Problem(str(i), "q") for i in range(3)], setup_for(engine),
                    RecordWriter(stream, "s"), Spy())
    assert seen == [0, 1, 2]


def test_ctrl_c_finishes_the_record_in_flight_as_interrupted() -> None:
    long = "<think>" + " step" * 30 + "</think>\\boxed{4}"
    engine = InterruptingEngine([RIGHT, long, RIGHT], nth=2, after=5)
    problems = [Problem("a", "q", "4"), Problem("b", "q", "4"), Problem("c", "q", "4")]
    stream = io.StringIO()
    out = batch.run_batch(problems, setup_for(engine), RecordWriter(stream, "s"))
    assert out.interrupted
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["id"], r["status"]) for r in records] == [("a", "ok"), ("b", "interrupted")]
    assert records[1]["interrupted"] is True and records[1]["tokens"] == 5


def test_drive_stop_flag_interrupts_once() -> None:
    engine = ScriptedEngine(["<think>" + " x" * 50 + "</think>\\boxed{1}"])
    setup = setup_for(engine)
    count = {"events": 0}

    def handle(event: StrategyEvent) -> None:
        count["events"] += 1

    record = batch.solve_problem(Problem("a", "q"), setup, handle, stop=lambda: True)
    assert record["status"] == "interrupted"


def test_engine_errors_stop_the_run_but_keep_finished_records() -> None:
    class Failing(ScriptedEngine):
        def start(self, prompt: str, sampling: Sampling, n: int = 1,
                  budget: int | None = None) -> ScriptedGeneration:
            if self.prompts:
                raise EngineError("the server went away")
            return super().start(prompt, sampling, n, budget)

    stream = io.StringIO()
    with pytest.raises(EngineError):
        batch.run_batch([Problem("a", "q"), Problem("b", "q")], setup_for(Failing([RIGHT])),
                        RecordWriter(stream, "s"))
    assert json.loads(stream.getvalue())["id"] == "a"


# ---------------------------------------------------------------------------------------
# Concurrency


def test_concurrency_choice() -> None:
    plan = make_plan("low", None)
    assert batch.parse_concurrency(None) is None
    assert batch.parse_concurrency("auto") is None
    assert batch.parse_concurrency("3") == 3
    for bad in ("0", "-2", "many"):
        with pytest.raises(InputError, match="not a positive number or 'auto'"):
            batch.parse_concurrency(bad)
    local = Loaded(ScriptedEngine(), "prompted", "m")
    assert batch.choose_workers(None, local, plan) == 1
    assert batch.choose_workers(4, local, plan) == 1
    remote = Loaded(EchoEngine(), "prompted", "m")
    assert batch.choose_workers(None, remote, plan) == 8
    assert batch.choose_workers(3, remote, plan) == 3


def test_chains_per_problem_of_each_kind_of_strategy() -> None:
    def chains(name: str, **options: str) -> int:
        return batch.chains_per_problem(make_plan(None, name, options))

    assert chains("cot") == chains("budget") == chains("refine") == 1
    assert chains("vote", n="6") == chains("best-of-n", n="6") == chains("confidence", n="6") == 6
    assert chains("adaptive", max_n="10") == 10
    assert chains("beam", width="2", expand="3") == 6
    assert chains("mcts", expand="3", rollouts="2") == 6


def test_every_strategys_options_say_how_many_chains_it_runs_at_once() -> None:
    from ponder.strategies import STRATEGIES

    for spec in STRATEGIES.values():
        options = spec.make_options({})
        assert isinstance(options.max_chains, int) and options.max_chains >= 1, spec.name
        assert "max_chains" not in make_plan(None, spec.name).settings()  # not an option


def test_workers_follow_the_engines_thread_safety_and_capacity() -> None:
    from ponder.engines.openai import OpenAIEngine, OpenAISettings

    server = OpenAIEngine.__new__(OpenAIEngine)
    server.settings = OpenAISettings("http://127.0.0.1:1/v1", max_connections=3)
    assert server.thread_safe and server.capacity == 3
    assert not ScriptedEngine().thread_safe and EchoEngine().thread_safe
    low, vote = make_plan("low", None), make_plan(None, "vote", {"n": "2"})
    assert batch.choose_workers(None, Loaded(server, "prompted", "m"), low) == 3
    many = Loaded(ScriptedEngine(capacity=5), "prompted", "m")
    assert batch.choose_workers(None, many, low) == 1  # not thread-safe
    wide = Loaded(EchoEngine(capacity=5), "prompted", "m")
    assert batch.choose_workers(None, wide, low) == 5
    assert batch.choose_workers(None, wide, vote) == 2


def test_thread_pool_runs_problems_together_and_writes_whole_records() -> None:
    engine = EchoEngine(delay=0.002)
    setup = Setup(Loaded(engine, "prompted", "m"), make_plan("low", None), Sampling())
    problems = [Problem(str(i), f"What is {i}?", str(i if i % 3 else i + 1)) for i in range(12)]
    stream = io.StringIO()
    out = batch.run_batch(problems, setup, RecordWriter(stream, "s"), workers=4)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert sorted(int(r["id"]) for r in records) == list(range(12))
    assert all(r["answer"] == r["id"] for r in records)
    assert [r["correct"] for r in sorted(records, key=lambda r: int(r["id"]))] == [
        bool(i % 3) for i in range(12)]
    assert engine.most > 1
    assert not out.interrupted and len(out.records) == 12


def test_ctrl_c_with_a_thread_pool_finishes_the_problems_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = EchoEngine(delay=0.01)
    setup = Setup(Loaded(engine, "prompted", "m"), make_plan("low", None), Sampling())
    def interrupted_wait(futures: list[Any]) -> None:
        time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "_wait_all", interrupted_wait)
    stream = io.StringIO()
    problems = [Problem(str(i), f"What is {i}?", str(i)) for i in range(40)]
    out = batch.run_batch(problems, setup, RecordWriter(stream, "s"), workers=3)
    assert out.interrupted
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert 1 <= len(records) < 40 and len(records) == len(out.records)
    assert {r["status"] for r in records} <= {"ok", "interrupted"}
    assert any(r["status"] == "interrupted" for r in records)


def test_broken_pipe_is_left_to_the_cli() -> None:
    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        RecordWriter(Closed(), "stdout").write({"id": "a"})
