"""`budget` (s1 budget forcing) on the scripted engine."""

from __future__ import annotations

from ponder.engines.scripted import ScriptedEngine
from ponder.events import StrategyNote
from tests.conftest import run_strategy


def test_thinking_is_capped_and_the_answer_follows() -> None:
    engine = ScriptedEngine(["<think>" + " step" * 50, "So \\boxed{4}."])
    result, _ = run_strategy(engine, "budget", think_cap=5)
    assert result.answer == "4"
    assert result.thinking.split() == ["step"] * 4  # the <think> tag is the fifth token
    assert result.settings["thought_tokens"] == 5
    assert engine.tokens_generated == 5 + 2
    assert len(engine.prompts) == 1  # the cap closes thinking in the running sequence


def test_long_enough_thinking_runs_as_one_chain() -> None:
    engine = ScriptedEngine(["<think> a b c d e f </think> \\boxed{2}"])
    result, events = run_strategy(engine, "budget", min_think=3)
    assert result.answer == "2"
    assert result.settings["waits"] == 0
    assert len(engine.prompts) == 1
    assert not any(isinstance(e, StrategyNote) for e in events)


def test_short_thinking_is_extended_with_wait() -> None:
    engine = ScriptedEngine(["<think> a b </think> \\boxed{1}", " c d e </think> \\boxed{2}"])
    result, events = run_strategy(engine, "budget", min_think=6)
    assert result.answer == "2"  # the early answer was never written
    assert result.settings["waits"] == 1
    assert engine.prompts[1].endswith("<think>\na b\n\nWait")
    assert result.thinking == "a b\n\nWait c d e"
    assert engine.tokens_generated == 4 + 5  # the aborted "\\boxed{1}" was never sampled
    assert result.samples[0].tokens == 9  # one chain, counted across its segments
    assert any(isinstance(e, StrategyNote) and "extension 1" in e.text for e in events)


def test_fixed_number_of_waits() -> None:
    engine = ScriptedEngine(["<think> a b c d e f g </think> x",
                             " h </think> y", " i </think> \\boxed{3}"])
    result, _ = run_strategy(engine, "budget", waits=2, max_waits=2)
    assert result.settings["waits"] == 2
    assert result.answer == "3"
    assert result.thinking.count("Wait") == 2


def test_extensions_stop_at_max_waits() -> None:
    engine = ScriptedEngine(["<think> a </think>", " b </think>", " c </think> \\boxed{5}"])
    result, _ = run_strategy(engine, "budget", min_think=100, max_waits=2)
    assert result.settings["waits"] == 2
    assert result.answer == "5"


def test_the_cap_counts_thinking_across_extensions() -> None:
    engine = ScriptedEngine(["<think> a b </think>", " c d e f g h i j", " \\boxed{6}"])
    result, _ = run_strategy(engine, "budget", think_cap=6, min_think=6)
    # 4 thinking tokens up to the early close (its tag included), 2 more after "Wait"
    assert result.settings["thought_tokens"] == 6
    assert result.thinking.endswith("Wait c d")
    assert result.answer == "6"
    assert engine.tokens_generated == 4 + 2 + 1


def test_model_that_answers_without_thinking_is_not_extended() -> None:
    engine = ScriptedEngine(["\\boxed{9}"])
    result, _ = run_strategy(engine, "budget", min_think=100)
    assert result.answer == "9"
    assert len(engine.prompts) == 1


def test_thinking_that_ends_without_a_close_is_closed_and_answered() -> None:
    engine = ScriptedEngine(["<think> a b c", "\\boxed{7}"])
    result, _ = run_strategy(engine, "budget")
    assert result.answer == "7"
    assert engine.prompts[1].endswith("a b c\n</think>\n\n")


def test_budget_exhaustion_mid_thinking_forces_the_answer() -> None:
    engine = ScriptedEngine(["<think>" + " hmm" * 200, "\\boxed{8}"])
    result, _ = run_strategy(engine, "budget", budget=30, think_cap=1000)
    assert engine.tokens_generated <= 30
    assert result.answer == "8"
    assert result.finish_reason == "budget"


def test_budget_exhaustion_during_an_extension() -> None:
    engine = ScriptedEngine(["<think> a </think>", " b" * 100, "\\boxed{4}"])
    result, _ = run_strategy(engine, "budget", budget=25, min_think=50)
    assert engine.tokens_generated <= 25
    assert result.answer == "4"
