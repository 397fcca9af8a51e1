"""`mcts` (Monte Carlo tree search over reasoning steps) on the scripted engine, plus one
end-to-end run on SmolLM2.

Most tests use a deterministic verifier that scores the last paragraph of a partial
solution: "good" 0.9, "bad" 0.1, anything else 0.5; it costs no tokens, so budgets are
spent by the search alone. The scripted engine splits text into word tokens: in
"good A\\n\\nso \\boxed{4}" the step "good A" ends with the third token, and the rollout
stops at the boxed answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from ponder.cli.render import Renderer
from ponder.engines import EngineOptions, Loaded, load_engine
from ponder.engines.base import Sampling
from ponder.engines.scripted import ScriptedEngine, ScriptedGeneration
from ponder.events import (
    ChainDone,
    ChainStarted,
    ChainText,
    Sample,
    SequenceDone,
    StrategyNote,
    VoteUpdate,
)
from ponder.runner import drain, make_plan, make_task, result_record, run_plan
from ponder.strategies.base import Task
from ponder.strategies.mcts import boxed_answer, step_end
from ponder.strategies.mcts_tree import Tree
from ponder.strategies.verifiers import VERIFIERS, register_verifier
from tests.conftest import run_strategy
from tests.models import smollm2_path


class ByContent:
    tokens_per_call = 0

    def score(self, task: Task, question: str, solution: str) -> float:
        last = [p for p in solution.split("\n\n") if p.strip()][-1]
        return 0.9 if "good" in last else 0.1 if "bad" in last else 0.5


@pytest.fixture(autouse=True)
def content() -> Iterator[None]:
    register_verifier("content", lambda _k: ByContent())
    yield
    del VERIFIERS["content"]


def mcts(engine: ScriptedEngine, **opts: Any) -> tuple[Any, list[Any]]:
    opts.setdefault("verifier", "content")
    return run_strategy(engine, "mcts", **opts)


def rollout(answer: str | None, chain: int = 0) -> Sample:
    return Sample(chain, answer, "", "", 1, "stop")


# --------------------------------------------------------------------------- the tree


def test_uct_takes_unvisited_children_first_then_weighs_value_against_visits() -> None:
    tree = Tree(c=0.0)
    a = tree.add(tree.root, "good a\n\n", 2)
    b = tree.add(tree.root, "bad b\n\n", 2)
    a.score, b.score = 0.9, 0.1
    tree.record(a, rollout("4", 0))
    assert tree.select() is b  # never visited: UCT is infinite
    tree.record(b, rollout("5", 1))
    for chain in range(2, 5):
        tree.record(a, rollout("4", chain))
    # a: 4 visits, every answer 4 (share 4/5); b: 1 visit, answer 5 (share 1/5)
    assert tree.value(a) == pytest.approx(0.5 * 0.8 + 0.5 * 0.9)
    assert tree.value(b) == pytest.approx(0.5 * 0.2 + 0.5 * 0.1)
    assert tree.select() is a  # c = 0: pure exploitation
    tree.c = 2.0
    assert tree.uct(a) == pytest.approx(0.85 + 2.0 * math.sqrt(math.log(5) / 4))
    assert tree.uct(b) == pytest.approx(0.15 + 2.0 * math.sqrt(math.log(5) / 1))
    assert tree.select() is b  # the rarely visited child wins on exploration


def test_selection_descends_and_skips_finished_subtrees() -> None:
    tree = Tree(c=0.0, max_depth=3)
    a = tree.add(tree.root, "a\n\n", 1)
    b = tree.add(tree.root, "b\n\n", 1)
    tree.record(a, rollout("4", 0))
    tree.record(b, rollout("5", 1))
    a.score, b.score = 0.9, 0.1
    deep = tree.add(a, "a\n\nc\n\n", 2)
    tree.record(deep, rollout("4", 2))
    assert tree.select() is deep
    deep.terminal = True  # a's only path has ended: a's subtree is done, b is next
    assert tree.select() is b
    d = tree.add(b, "b\n\nd\n\n", 2)
    assert tree.select() is d
    d.dead = True  # its expansion produced nothing: the whole tree is done
    assert tree.select() is None
    tree = Tree(max_depth=1)
    tree.add(tree.root, "a\n\n", 1)
    assert tree.select() is None  # at max_depth nothing is expanded


def test_step_boundaries_and_boxed_answers() -> None:
    assert step_end("one two\n\nthree") == 7
    assert step_end("<think>\n\nfirst\n\nsecond") == 14  # a bare tag is not a step
    assert step_end("no break yet") == -1
    assert boxed_answer("so \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert boxed_answer("so \\boxed{\\frac{1}{2") is None  # still open
    assert boxed_answer("the answer is 4") is None


# --------------------------------------------------------------------------- the search


def test_search_expands_the_uct_leaf_and_picks_the_visit_weighted_answer() -> None:
    engine = ScriptedEngine([
        "good A\n\nso \\boxed{4}", "bad B\n\nthus \\boxed{5}",  # iteration 1, from the root
        "good C\n\nhence \\boxed{4}", "bad D\n\n\\boxed{6}",  # iteration 2, from A
    ])
    result, events = mcts(engine, expand=2, iterations=2)
    assert len(engine.prompts) == 2
    assert engine.prompts[1].endswith("good A\n\n")  # A: value 0.7 against B's 0.3
    assert result.answer == "4"
    # rewards: 0.5 * share + 0.5 * score: A's and C's rollouts (4, 2/4, 0.9) 0.7 each, B's
    # (5, 1/4, 0.1) and D's (6, 1/4, 0.1) 0.175. value(A) = mean(0.7, 0.7, 0.175) = 0.525
    # (C and D are under A); 4 gets value(A) + value(C) and is answered by C's rollout
    assert result.votes == pytest.approx({"4": 1.225, "5": 0.175, "6": 0.175}, abs=1e-6)
    assert result.text == "good A\n\ngood C\n\nhence \\boxed{4}"
    assert result.settings["verifier"] == "content"
    assert {k: result.settings[k] for k in ("nodes", "depth", "rollouts", "iterations")} == {
        "nodes": 4, "depth": 2, "rollouts": 4, "iterations": 2}
    assert [s.answer for s in result.samples] == ["4", "5", "4", "6"]
    assert [s.score for s in result.samples] == [0.9, 0.1, 0.9, 0.1]
    assert result.samples[2].tokens == 3 + 4  # A's step, then C's step and rollout
    assert result.completion_tokens == engine.tokens_generated
    votes = [e.tally for e in events if isinstance(e, VoteUpdate)]
    assert votes[-1] == {"4": 2, "5": 1, "6": 1}  # the live tally: visits per answer


def test_json_carries_tree_statistics_and_every_rollout() -> None:
    engine = ScriptedEngine(["good A\n\nso \\boxed{4}", "bad B\n\nthus \\boxed{5}"])
    result, _ = mcts(engine, expand=2, iterations=1)
    plan = make_plan(None, "mcts", {"expand": "2", "iterations": "1", "verifier": "content"})
    record = result_record("q", result, Loaded(engine, "prompted", "m"), plan, 1.0)
    assert record["settings"]["c"] == 1.0
    assert {"nodes": 2, "depth": 1, "rollouts": 2, "pruned": 0}.items() <= record["run"].items()
    assert [s["answer"] for s in record["samples"]] == ["4", "5"]
    assert [s["score"] for s in record["samples"]] == [0.9, 0.1]


@pytest.mark.parametrize(("weight", "answer"), [(0.5, "4"), (0.9, "5")])
def test_final_pick_blends_agreement_with_the_verifier(weight: float, answer: str) -> None:
    engine = ScriptedEngine(["bad A\n\n\\boxed{4}", "bad B\n\n\\boxed{4}",
                             "good C\n\n\\boxed{5}"])
    result, _ = mcts(engine, expand=3, iterations=1, verifier_weight=weight)
    # rewards: 4 -> (1-w) * 2/3 + w * 0.1 twice; 5 -> (1-w) * 1/3 + w * 0.9 once
    four = 2 * ((1 - weight) * 2 / 3 + weight * 0.1)
    five = (1 - weight) / 3 + weight * 0.9
    assert result.votes == pytest.approx({"4": four, "5": five}, abs=1e-6)
    assert result.answer == answer


def test_paths_that_ended_are_not_expanded_and_repeated_final_steps_count() -> None:
    engine = ScriptedEngine(["\\boxed{4}", "\\boxed{4}", "never used"])
    result, _ = mcts(engine, expand=2, iterations=5)
    assert len(engine.prompts) == 1  # the only node is final: nothing left to expand
    assert result.settings["iterations"] == 1
    assert result.settings["nodes"] == 1
    assert result.settings["rollouts"] == 2  # the twin's answer still counts
    assert result.answer == "4"


def test_extra_rollouts_fork_the_childs_live_sequence() -> None:
    engine = ScriptedEngine(["good A\n\nso \\boxed{4}", " then \\boxed{4}"])
    result, _ = mcts(engine, expand=1, rollouts=2, iterations=1)
    assert len(engine.prompts) == 1  # the second rollout is a fork, not a new prompt
    fork = result.samples[1]
    assert fork.text == "good A\n\nso then \\boxed{4}"  # it continues the child's text
    assert fork.tokens == 3 + 2
    assert result.settings["rollouts"] == 2
    assert result.votes == pytest.approx({"4": 2 * (0.5 + 0.5 * 0.9)})


# --------------------------------------------------------------------------- budget, time, Ctrl-C


def test_budget_runs_out_mid_rollout_exactly() -> None:
    engine = ScriptedEngine([
        "good A\n\n\\boxed{4}", "bad B\n\nthen \\boxed{5}",  # 3 + 4 tokens
        "good C\n\n" + "word " * 50 + "\\boxed{4}", "bad D\n\n" + "word " * 50 + "\\boxed{6}",
    ])
    result, _ = mcts(engine, expand=2, iterations=4, budget=30)
    assert engine.tokens_generated == 30 == result.completion_tokens
    cut = [s for s in result.samples if s.chain in (2, 3)]
    assert [s.finish_reason for s in cut] == ["budget", "budget"]
    assert result.settings["rollouts"] == 2  # cut rollouts are kept as samples, not counted
    assert result.settings["nodes"] == 4
    assert result.answer == "4"
    assert result.samples[0].chain == 0


def test_last_expansions_narrow_to_what_the_budget_can_finish() -> None:
    engine = ScriptedEngine([
        "good A\n\n" + "w " * 6 + "\\boxed{4}", "bad B\n\n" + "w " * 6 + "\\boxed{5}",  # 9 each
        "good C\n\n" + "w " * 6 + "\\boxed{4}", "never started",
    ])
    result, events = mcts(engine, expand=2, iterations=2, budget=30)
    # 12 tokens are left after the first expansion: one 9-token child fits, two do not
    started = [e for e in events if isinstance(e, ChainStarted) and e.label == "depth 2"]
    assert len(started) == 1
    assert result.samples[2].finish_reason == "stop"
    assert result.settings["rollouts"] == 3
    assert result.votes.keys() == {"4", "5"}
    assert engine.tokens_generated == 27


def test_without_an_answered_rollout_the_best_node_is_completed() -> None:
    engine = ScriptedEngine(["bad A\n\n" + "x " * 40, "good B\n\n" + "y " * 40, "\\boxed{7}"])
    result, _ = mcts(engine, expand=2, iterations=3, budget=40, answer_reserve=8,
                     answer_tokens=8)
    assert engine.tokens_generated <= 40
    assert result.settings["rollouts"] == 0
    assert engine.prompts[-1].rstrip().endswith("y")  # B (0.9) was continued, not A
    assert "good B" in engine.prompts[-1]
    assert result.answer == "7"


def interrupted_scripts() -> list[str]:
    return ["good A\n\n\\boxed{4}", "bad B\n\nthen \\boxed{5}",
            "good C\n\n" + "word " * 50, "bad D\n\n" + "word " * 50]


def test_ctrl_c_answers_from_the_best_node_so_far() -> None:
    _, first = mcts(ScriptedEngine(interrupted_scripts()), expand=2, iterations=1)
    engine = ScriptedEngine(interrupted_scripts())
    # Ctrl-C a dozen events into the second iteration's rollouts
    result, _ = mcts(engine, expand=2, iterations=3, interrupt_at=len(first) + 12)
    assert result.interrupted
    assert len(engine.prompts) == 2  # no third iteration
    assert engine.tokens_generated < 7 + 2 * 20
    assert [s.finish_reason for s in result.samples[2:]] == ["interrupted", "interrupted"]
    assert result.answer == "4"
    assert result.settings["rollouts"] == 2


# --------------------------------------------------------------------------- pruning and slots


class SlotGeneration(ScriptedGeneration):
    """A scripted generation that decodes at most `SLOTS` sequences at a time, in index order,
    as the llama engine does: a waiting sequence starts when a running one finishes."""

    SLOTS = 2

    def __iter__(self) -> Iterator[Any]:
        reported: set[int] = set()
        while not self._closed:
            live = [s for s in self._seqs if s.index not in reported][: self.SLOTS]
            if not live:
                return
            for s in live:
                yield from self._step(s)
                if s.done is not None:
                    reported.add(s.index)
                    yield SequenceDone(s.index, s.done, s.text, s.sampled)


class SlotEngine(ScriptedEngine):
    def start(self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
              ) -> ScriptedGeneration:
        self.prompts.append(prompt)
        return SlotGeneration(self, sampling, n, budget)


def test_a_repeated_step_is_pruned_at_once_and_frees_its_slot() -> None:
    engine = SlotEngine([
        "same step\n\nthen " + "a " * 20 + "\\boxed{4}",
        "same step\n\nmore words \\boxed{5}",
        "other\n\nso \\boxed{4}",
    ])
    result, events = mcts(engine, expand=3, iterations=1)
    assert engine.aborted[0] == 1  # first the twin; then rollouts stopped at their answers
    pruned = next(s for s in result.samples if s.chain == 1)
    assert (pruned.finish_reason, pruned.tokens) == ("abort", 3)  # never rolled out
    order = [(type(e).__name__, e.chain) for e in events if isinstance(e, ChainDone | ChainText)]
    third_starts = order.index(("ChainText", 2))
    assert order.index(("ChainDone", 1)) < third_starts < order.index(("ChainDone", 0))
    assert result.settings["pruned"] == 1
    assert result.settings["nodes"] == 2
    assert result.settings["rollouts"] == 2
    assert result.answer == "4"


# --------------------------------------------------------------------------- the live panel


def test_live_panel_shows_depth_nodes_and_leading_answers() -> None:
    engine = ScriptedEngine(["good A\n\nso \\boxed{4}", "bad B\n\nthus \\boxed{5}",
                             "good C\n\nhence \\boxed{4}", "bad D\n\n\\boxed{6}"])
    _, events = mcts(engine, expand=2, iterations=2)
    notes = [e.text for e in events if isinstance(e, StrategyNote)]
    assert notes[-1] == "iteration 2 · depth 2 · 4 nodes · 4 rollouts · leading 4 (2), 5 (1), 6 (1)"
    console = Console(width=100, record=True, force_terminal=False, color_system=None)
    renderer = Renderer(console, clock=lambda: 0.0)
    for event in events:
        renderer.handle(event)
    console.print(renderer.__rich__())
    panel = console.export_text()
    assert "depth 2 · 4 nodes" in panel
    assert "leading 4 (2)" in panel
    bars = [line for line in panel.splitlines() if "█" in line]
    assert bars[0].split()[0] == "4" and bars[0].split()[-1] == "2"


# --------------------------------------------------------------------------- SmolLM2


@pytest.mark.integration
def test_mcts_end_to_end_on_smollm2() -> None:
    # load_engine's per-process cache owns the engine (other test modules share it): no close
    loaded = load_engine("llama", EngineOptions(model=str(smollm2_path()), n_ctx=2048,
                                                slots=4))
    question = ("Natalia sold clips to 48 of her friends in April, and then she sold half "
                "as many clips in May. How many clips did Natalia sell altogether?")
    task = make_task(question, loaded, Sampling(seed=3, max_tokens=2048), budget=500)
    plan = make_plan(None, "mcts", {"expand": "2", "rollouts": "2", "step_tokens": "32",
                                    "rollout_tokens": "96", "answer_tokens": "64"})
    result = drain(run_plan(task, plan))
    assert 0 < result.completion_tokens <= 500
    assert not result.interrupted
    run = result.settings
    assert run["iterations"] >= 1 and run["nodes"] >= 1 and run["depth"] >= 1
    assert len(result.samples) >= run["rollouts"]
    assert sum(s.tokens > 0 for s in result.samples) == len(result.samples)
    assert all(s.score is None or 0.0 <= s.score <= 1.0 for s in result.samples)
    assert result.answer is not None
