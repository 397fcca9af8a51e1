"""`refine` (answer, critique, revise) on the scripted engine."""

from __future__ import annotations

from ponder.engines.scripted import ScriptedEngine
from ponder.events import ChainStarted, StrategyNote
from ponder.strategies.refine import verdict
from tests.conftest import run_strategy, think

WRONG = "<think> check </think> Step 2 multiplies wrongly. VERDICT: INCORRECT"
RIGHT = "<think> check </think> All steps hold. VERDICT: CORRECT"


def test_critique_then_revision_until_the_critique_approves() -> None:
    engine = ScriptedEngine([think(5), WRONG, think(6), RIGHT, think(99)])
    result, events = run_strategy(engine, "refine", rounds=3)
    assert result.answer == "6"
    assert [s.answer for s in result.samples] == ["5", "6"]
    assert result.settings["rounds"] == 2
    assert len(engine.prompts) == 4
    critique, revision = engine.prompts[1], engine.prompts[2]
    assert "\\boxed{5}" in critique and "VERDICT" in critique
    assert "multiplies wrongly" in revision and "\\boxed{5}" in revision
    labels = [e.label for e in events if isinstance(e, ChainStarted)]
    assert labels == ["answer", "critique 1", "revision 1", "critique 2"]
    assert any(isinstance(e, StrategyNote) and "no errors" in e.text for e in events)


def test_rounds_bound_the_revisions() -> None:
    engine = ScriptedEngine([think(1), WRONG, think(2), WRONG, think(3), WRONG, think(4)])
    result, _ = run_strategy(engine, "refine", rounds=2)
    assert result.answer == "3"
    assert [s.answer for s in result.samples] == ["1", "2", "3"]
    assert len(engine.prompts) == 5


def test_zero_rounds_is_one_answer() -> None:
    engine = ScriptedEngine([think(1), WRONG])
    result, _ = run_strategy(engine, "refine", rounds=0)
    assert result.answer == "1" and len(engine.prompts) == 1


def test_approval_can_be_ignored() -> None:
    engine = ScriptedEngine([think(1), RIGHT, think(2)])
    result, _ = run_strategy(engine, "refine", rounds=1, stop_when_correct=False)
    assert result.answer == "2"


def test_a_critique_without_verdict_leads_to_a_revision() -> None:
    engine = ScriptedEngine([think(1), "<think> hmm </think> looks odd", think(2)])
    result, _ = run_strategy(engine, "refine", rounds=1)
    assert result.answer == "2"


def test_a_revision_without_answer_keeps_the_last_answer() -> None:
    engine = ScriptedEngine([think(1), WRONG, "<think> hmm </think> I am not sure."])
    result, _ = run_strategy(engine, "refine", rounds=1)
    assert result.answer == "1"
    assert len(result.samples) == 2


def test_budget_cuts_the_rounds_short() -> None:
    engine = ScriptedEngine([think(1, words=5), "<think>" + " hmm" * 100, think(2)])
    result, _ = run_strategy(engine, "refine", rounds=3, budget=40)
    assert engine.tokens_generated <= 40
    assert result.answer == "1"


def test_verdict_parsing() -> None:
    assert verdict("VERDICT: CORRECT") == "correct"
    assert verdict("Verdict - incorrect.") == "incorrect"
    assert verdict("verdict: correct ... on reflection, VERDICT: INCORRECT") == "incorrect"
    assert verdict("no verdict here") is None
