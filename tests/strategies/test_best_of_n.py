"""`best-of-n` and the verifiers, on the scripted engine.

The self-verifier reads P("yes") from the top logprobs of one token: a scripted reply
Script("Yes", logprob) gives P(yes) = exp(logprob); a reply "No" gives 0.
"""

from __future__ import annotations

import math

import pytest

from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine
from ponder.events import ChainDone
from ponder.runner import make_task
from ponder.strategies.base import Task
from ponder.strategies.verifiers import (
    VERIFIERS,
    ArithmeticChecker,
    SelfVerifier,
    check_equations,
    evaluate,
    register_verifier,
)
from tests.conftest import done_events, run_strategy, think


def yes(p: float) -> Script:
    return Script("Yes", math.log(p))


NO = Script("No", -0.05)


def task_for(engine: ScriptedEngine, budget: int | None = None) -> Task:
    return make_task("What is 6 * 7?", Loaded(engine, "prompted", "m"), Sampling(),
                     budget=budget)


def test_highest_score_wins_over_the_majority() -> None:
    engine = ScriptedEngine([think(40), think(40), think(42), yes(0.2), yes(0.3), yes(0.9)])
    result, events = run_strategy(engine, "best-of-n", n=3)
    assert result.answer == "42"
    assert [s.score for s in result.samples] == pytest.approx([0.2, 0.3, 0.9])
    scored = [d for d in done_events(events) if d.score is not None]
    assert [d.chain for d in scored] == [0, 1, 2]
    assert result.votes == pytest.approx({"40": 0.5, "42": 0.9})


def test_weighted_selection_sums_scores_of_equivalent_answers() -> None:
    engine = ScriptedEngine([think(40), think("40.0"), think(42), yes(0.6), yes(0.6),
                             yes(0.9)])
    result, _ = run_strategy(engine, "best-of-n", n=3, select="weighted")
    assert result.answer == "40"


def test_equal_scores_go_to_the_larger_group_then_the_earlier_chain() -> None:
    engine = ScriptedEngine([think(1), think(2), think(2), NO, NO, NO])
    result, _ = run_strategy(engine, "best-of-n", n=3)
    assert result.answer == "2"
    assert result.samples[1].score == 0.0


def test_chains_without_an_answer_are_not_verified() -> None:
    engine = ScriptedEngine(["<think> hmm </think> no idea", think(5), yes(0.7)])
    result, _ = run_strategy(engine, "best-of-n", n=2)
    assert result.samples[0].score is None
    assert result.answer == "5"
    assert len(engine.prompts) == 2


def test_verifier_prompt_and_tokens_go_through_the_budget() -> None:
    engine = ScriptedEngine([think(42), yes(0.8)])
    result, _ = run_strategy(engine, "best-of-n", n=1)
    prompt = engine.prompts[1]
    assert "What is 2 + 2?" in prompt and "\\boxed{42}" in prompt and "Yes or No" in prompt
    assert result.completion_tokens == engine.tokens_generated == 9 + 1


def test_tokens_are_kept_back_for_verification_under_a_budget() -> None:
    chains = [Script("<think>" + " hmm" * 50) for _ in range(3)]
    engine = ScriptedEngine([*chains, "\\boxed{1}", "\\boxed{2}", "\\boxed{3}",
                             yes(0.1), yes(0.9), yes(0.2)])
    result, _ = run_strategy(engine, "best-of-n", n=3, budget=40)
    assert engine.tokens_generated <= 40
    assert [s.score for s in result.samples] == pytest.approx([0.1, 0.9, 0.2])
    assert result.answer == "2"


def test_a_registered_verifier_is_used() -> None:
    class Prefers7:
        tokens_per_call = 0

        def score(self, task: Task, question: str, solution: str) -> float:
            return 1.0 if "7" in solution else 0.0

    register_verifier("prefers7", lambda _k: Prefers7())
    try:
        engine = ScriptedEngine([think(5), think(7), think(5)])
        result, _ = run_strategy(engine, "best-of-n", n=3, verifier="prefers7")
        assert result.answer == "7"
        assert len(engine.prompts) == 1
    finally:
        del VERIFIERS["prefers7"]


def test_self_verifier_scores_p_yes_and_counts_its_token() -> None:
    engine = ScriptedEngine([yes(0.7), Script("yes", math.log(0.4)), NO])
    task = task_for(engine)
    verifier = SelfVerifier(top_logprobs=5)
    scores = [verifier.score(task, "q", "s") for _ in range(3)]
    assert scores == pytest.approx([0.7, 0.4, 0.0])
    assert task.budget.used == 3


def test_self_verifier_without_budget_is_neutral_and_generates_nothing() -> None:
    engine = ScriptedEngine([yes(0.9)])
    task = task_for(engine, budget=1)
    task.budget.used = 1
    assert SelfVerifier().score(task, "q", "s") == 0.5
    assert engine.tokens_generated == 0


def test_self_verifier_closes_template_opened_thinking() -> None:
    engine = ScriptedEngine([yes(0.9)], opens_think=True)
    task = task_for(engine)
    SelfVerifier().score(task, "q", "s")
    assert engine.prompts[-1].endswith("</think>\n\n")


def test_self_verifier_shortens_long_solutions_to_fit() -> None:
    engine = ScriptedEngine([yes(0.9)], context_length=200)
    task = task_for(engine)
    solution = "word " * 1000 + "so the answer is 42"
    assert SelfVerifier().score(task, "q", solution) == pytest.approx(0.9)
    assert engine.prompts[-1].count("word") < 200 and "answer is 42" in engine.prompts[-1]


def test_arithmetic_checker() -> None:
    checker = ArithmeticChecker()
    engine = ScriptedEngine()
    task = task_for(engine)
    assert checker.score(task, "q", "3 * 4 = 12 and 12 + 5 = 17") == pytest.approx(3 / 4)
    assert checker.score(task, "q", "3 * 4 = 13") == pytest.approx(1 / 3)
    assert checker.score(task, "q", "no calculations") == 0.5
    assert check_equations("$500+$200 = $700, 2/5*500 = 200, x = 5") == [True, True]
    assert evaluate("2 ** 8") is None and evaluate("(1 + 2) × 3") == 9


def test_scores_are_reported_in_chain_done_events() -> None:
    engine = ScriptedEngine([think(3), yes(0.6)])
    _, events = run_strategy(engine, "best-of-n", n=1)
    last = [e for e in events if isinstance(e, ChainDone)][-1]
    assert last.score == pytest.approx(0.6)
