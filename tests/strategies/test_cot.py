"""The shared chain runner and the `cot` strategy, on the scripted engine."""

from __future__ import annotations

from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import ScriptedEngine
from ponder.events import ChainDone, ChainText, Result
from ponder.runner import drain, make_plan, make_task, run_plan
from ponder.strategies.base import StrategyRun


def run_cot(engine: ScriptedEngine, budget: int | None = None, **opts: str) -> tuple[Result, list]:
    loaded = Loaded(engine, "prompted", "m")
    task = make_task("What is 2+2?", loaded, Sampling(), budget=budget)
    run = run_plan(task, make_plan("low", "cot", opts))
    events = []
    while True:
        try:
            events.append(next(run))
        except StopIteration as stop:
            return stop.value, events


def test_cot_splits_thinking_and_extracts_answer() -> None:
    engine = ScriptedEngine(["<think>2 plus 2 makes 4.</think>The answer is \\boxed{4}."])
    result, events = run_cot(engine)
    assert result.answer == "4"
    assert result.thinking == "2 plus 2 makes 4."
    assert result.text == "The answer is \\boxed{4}."
    assert result.finish_reason == "eos"
    phases = {e.phase for e in events if isinstance(e, ChainText)}
    assert phases == {"thinking", "answer"}
    assert result.completion_tokens == engine.tokens_generated


def test_think_cap_closes_thinking_and_model_answers() -> None:
    long_thought = "<think>" + " step" * 50
    engine = ScriptedEngine([long_thought, "So \\boxed{4}."])
    result, _ = run_cot(engine, think_cap="5")
    assert result.answer == "4"
    assert result.thinking.split() == ["step"] * 4  # the <think> tag is the fifth
    assert result.completion_tokens == 5 + 2


def test_budget_never_exceeded_and_answer_forced() -> None:
    engine = ScriptedEngine(["<think>" + " hmm" * 200, "\\boxed{7}"])
    result, events = run_cot(engine, budget=40, think_cap="1000")
    assert engine.tokens_generated <= 40
    assert result.completion_tokens <= 40
    assert result.answer == "7"
    assert result.finish_reason == "budget"
    assert any(isinstance(e, ChainDone) and e.answer == "7" for e in events)


def test_budget_of_one_token_is_respected() -> None:
    engine = ScriptedEngine(["<think> a b c d", "\\boxed{1}"])
    result, _ = run_cot(engine, budget=1)
    assert engine.tokens_generated == 1
    assert result.completion_tokens == 1


def test_drain_folds_a_run() -> None:
    engine = ScriptedEngine(["\\boxed{9}"])
    task = make_task("q", Loaded(engine, "prompted", "m"), Sampling())
    result = drain(run_plan(task, make_plan(None, None)))
    assert result.answer == "9"
    assert "q" in engine.prompts[0] and "<think>" in engine.prompts[0]


def test_drive_returns_interrupted_when_a_strategy_does_not_catch_ctrl_c() -> None:
    from ponder.events import StrategyNote
    from ponder.runner import drive

    def careless() -> StrategyRun:
        while True:
            yield StrategyNote("working")

    def handle(_event: object) -> None:
        raise KeyboardInterrupt

    result = drive(careless(), handle)
    assert result.interrupted and result.finish_reason == "interrupted"
