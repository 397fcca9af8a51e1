"""NoThinking: vote and adaptive answer after an empty, closed thinking block."""

from __future__ import annotations

from ponder.engines.scripted import ScriptedEngine
from ponder.strategies.multistep import NO_THINKING
from tests.conftest import run_strategy


def test_vote_without_thinking_prefills_a_closed_block() -> None:
    engine = ScriptedEngine(["The answer is \\boxed{4}."] * 3)
    result, _ = run_strategy(engine, "vote", n=3, nothinking=True)
    prompt = engine.prompts[0]
    assert prompt.endswith(f"<think>\n{NO_THINKING}\n</think>\n\n")
    assert result.answer == "4" and result.votes == {"4": 3.0}
    assert all(s.thinking.strip() == NO_THINKING for s in result.samples)


def test_template_opened_thinking_is_closed_not_reopened() -> None:
    engine = ScriptedEngine(["\\boxed{7}"] * 2, opens_think=True)
    result, _ = run_strategy(engine, "adaptive", start=2, max_n=2, nothinking=True)
    assert engine.prompts[0].split("<|assistant|>")[1].count("<think>") == 1
    assert result.answer == "7"
