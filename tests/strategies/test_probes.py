"""Answer probes during thinking (Dynasor-CoT / DEER) on the scripted engine."""

from __future__ import annotations

from ponder.engines.scripted import ScriptedEngine
from ponder.events import StrategyNote
from tests.conftest import run_strategy

THINKING = "<think>" + " step" * 40 + "</think>The answer is \\boxed{42}."


def test_agreeing_probes_close_thinking_early_and_save_tokens() -> None:
    plain = ScriptedEngine([THINKING])
    full, _ = run_strategy(plain, "cot")
    engine = ScriptedEngine([THINKING, "", "42}", "", "42}", "So \\boxed{42}."])
    result, events = run_strategy(engine, "cot", probe_every=8, probe_agree=2)
    assert result.answer == "42"
    assert engine.tokens_generated < plain.tokens_generated
    assert result.completion_tokens == engine.tokens_generated < full.completion_tokens
    assert any(isinstance(e, StrategyNote) and "2 probes agree on 42" in e.text
               for e in events)


def test_disagreeing_probes_let_the_chain_think_on() -> None:
    engine = ScriptedEngine([THINKING, "", "41}", "", "42}", "", "43}", "", "44}", "", "45}"])
    result, events = run_strategy(engine, "cot", probe_every=8, probe_agree=2)
    assert result.answer == "42"
    assert "step step" in result.thinking and result.thinking.count("step") == 40
    assert not any(isinstance(e, StrategyNote) and "agree" in e.text for e in events)


def test_probes_keep_to_an_exact_budget() -> None:
    engine = ScriptedEngine([THINKING] + ["", "7}"] * 10 + ["\\boxed{7}"] * 3)
    result, _ = run_strategy(engine, "cot", budget=30, probe_every=4, probe_agree=9)
    assert engine.tokens_generated <= 30
    assert result.completion_tokens <= 30
