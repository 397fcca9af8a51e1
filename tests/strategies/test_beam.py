"""`beam` (step-level beam search) on the scripted engine.

Most tests use a deterministic verifier that scores the last paragraph of a partial
solution: "good" 0.9, "bad" 0.1, a boxed 1 scores 1.0, anything else 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from ponder.engines.scripted import Script, ScriptedEngine
from ponder.events import StrategyNote
from ponder.strategies.base import Task
from ponder.strategies.verifiers import VERIFIERS, register_verifier
from tests.conftest import run_strategy


class ByContent:
    tokens_per_call = 0

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score(self, task: Task, question: str, solution: str) -> float:
        self.seen.append(solution)
        last = [p for p in solution.split("\n\n") if p.strip()][-1]
        if "\\boxed{1}" in last:
            return 1.0
        return 0.9 if "good" in last else 0.1 if "bad" in last else 0.5


@pytest.fixture
def content() -> Iterator[ByContent]:
    verifier = ByContent()
    register_verifier("content", lambda _k: verifier)
    yield verifier
    del VERIFIERS["content"]


def test_only_the_best_width_beams_are_expanded(content: ByContent) -> None:
    engine = ScriptedEngine(["good A\n\n", "bad B\n\n", "good C\n\n", "bad D\n\n",
                             "\\boxed{1}", "bad E\n\n", "good F\n\n", "\\boxed{2}"])
    result, events = run_strategy(engine, "beam", width=2, expand=2, max_steps=2,
                                  verifier="content")
    assert len(engine.prompts) == 3  # one start for the root, one per kept beam
    assert engine.prompts[1].endswith("good A\n\n")
    assert engine.prompts[2].endswith("good C\n\n")
    assert not any("bad B" in p or "bad D" in p for p in engine.prompts)
    assert result.answer == "1"
    assert result.text == "good A\n\n\\boxed{1}"
    assert result.samples[0].score == 1.0
    notes = [e.text for e in events if isinstance(e, StrategyNote)]
    assert notes[0] == "step 1: kept #1 (0.90), #3 (0.90)"


def test_finished_beams_compete_and_end_the_search(content: ByContent) -> None:
    engine = ScriptedEngine(["\\boxed{1}", "good B\n\n", "bad C\n\n", "bad D\n\n",
                             "bad E\n\n", "bad F\n\n"])
    result, _ = run_strategy(engine, "beam", width=2, expand=2, max_steps=5,
                             verifier="content")
    # step 1 keeps the finished "\\boxed{1}" (1.0) and "good B" (0.9); step 2 expands only
    # "good B" (its children score 0.1) and step 3 the best child, which ends: all done
    assert len(engine.prompts) == 3
    assert engine.prompts[1].endswith("good B\n\n")
    assert engine.prompts[2].endswith("good B\n\nbad E\n\n")
    assert result.settings["steps"] == 3
    assert result.answer == "1"
    assert result.samples[0].chain == 0


def test_unfinished_best_beam_is_completed_with_an_answer(content: ByContent) -> None:
    engine = ScriptedEngine(["<think>good A\n\n", "<think>bad B\n\n", "\\boxed{3}"])
    result, _ = run_strategy(engine, "beam", width=1, expand=2, max_steps=1,
                             verifier="content")
    assert engine.prompts[-1].endswith("<think>good A\n</think>\n\n")
    assert result.answer == "3"
    assert result.thinking == "good A"


def test_steps_split_at_blank_lines_and_tokens_accumulate(content: ByContent) -> None:
    engine = ScriptedEngine(["one two\n\nthree", "four five six\n\n", "\\boxed{1}"])
    result, _ = run_strategy(engine, "beam", width=1, expand=1, max_steps=5,
                             verifier="content")
    assert engine.prompts[1].endswith("one two\n\n")
    assert engine.prompts[2].endswith("one two\n\nfour five six\n\n")
    assert result.samples[0].tokens == engine.tokens_generated == 3 + 4 + 1
    assert result.answer == "1"


def test_steps_without_progress_are_dropped(content: ByContent) -> None:
    engine = ScriptedEngine(["good A\n\n", "\n\n", "\\boxed{1}"])
    result, _ = run_strategy(engine, "beam", width=1, expand=1, max_steps=3,
                             verifier="content")
    assert result.answer == "1"
    assert all(s.strip() for s in content.seen)


def test_self_verifier_ranks_by_p_yes() -> None:
    engine = ScriptedEngine(["good A\n\n", "bad B\n\n", Script("Yes", math.log(0.2)),
                             Script("Yes", math.log(0.8)), "\\boxed{5}"])
    result, _ = run_strategy(engine, "beam", width=1, expand=2, max_steps=1)
    assert "bad B" in engine.prompts[2] and "Proposed solution" in engine.prompts[2]
    assert engine.prompts[-1].endswith("bad B\n\n")
    assert result.answer == "5"
    assert result.samples[0].score == pytest.approx(0.8)
    assert result.completion_tokens == engine.tokens_generated


def test_budget_bounds_the_search_and_keeps_room_for_the_answer(content: ByContent) -> None:
    engine = ScriptedEngine(["step " * 30 + "\n\n"] * 4 + ["\\boxed{1}"])
    result, _ = run_strategy(engine, "beam", width=2, expand=2, max_steps=10, budget=100,
                             verifier="content")
    assert engine.tokens_generated <= 100
    assert engine.tokens_generated > 100 - 64  # the search spent all but the answer's room
    assert result.answer == "1"
