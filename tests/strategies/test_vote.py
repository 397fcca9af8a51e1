"""`vote` (self-consistency) on the scripted engine, and the aggregation behind it."""

from __future__ import annotations

from ponder.engines.scripted import Script, ScriptedEngine
from ponder.events import ChainDone, ChainStarted, VoteUpdate
from ponder.strategies.aggregate import Ballot, tally, weights
from tests.conftest import done_events, long_chain, run_strategy, think


def test_majority_wins_across_equivalent_forms() -> None:
    engine = ScriptedEngine([think("0.5"), think("3"), think("\\frac{1}{2}"), think("1/2"),
                             think("3")])
    result, _ = run_strategy(engine, "vote", n=5)
    assert result.answer == "0.5"
    assert result.votes == {"0.5": 3.0, "3": 2.0}
    assert [s.answer for s in result.samples] == ["0.5", "3", "\\frac{1}{2}", "1/2", "3"]


def test_all_chains_start_in_one_parallel_generation() -> None:
    engine = ScriptedEngine([think(i) for i in range(6)])
    result, events = run_strategy(engine, "vote", n=6)
    assert len(engine.prompts) == 1
    assert len([e for e in events if isinstance(e, ChainStarted)]) == 6
    assert len(result.samples) == 6


def test_tie_goes_to_the_more_confident_group() -> None:
    unsure, sure = -2.0, -0.05
    engine = ScriptedEngine([Script(think(3).text, unsure), Script(think(5).text, sure),
                             Script(think(3).text, unsure), Script(think(5).text, sure)])
    result, _ = run_strategy(engine, "vote", n=4)
    assert result.votes == {"3": 2.0, "5": 2.0}
    assert result.answer == "5"
    assert result.samples[1].confidence is not None
    assert result.samples[1].confidence > (result.samples[0].confidence or 1.0)


def test_tie_with_equal_confidence_goes_to_the_earliest_chain() -> None:
    engine = ScriptedEngine([think(8), think(7), think(7), think(8)])
    result, _ = run_strategy(engine, "vote", n=4)
    assert result.answer == "8"
    engine = ScriptedEngine([think(7), think(8), think(8), think(7)])
    result, _ = run_strategy(engine, "vote", n=4)
    assert result.answer == "7"


def test_vote_updates_follow_each_finished_chain() -> None:
    engine = ScriptedEngine([think(1, words=1), think(2, words=3), think(2, words=6)])
    result, events = run_strategy(engine, "vote", n=3)
    tallies = [e.tally for e in events if isinstance(e, VoteUpdate)]
    assert tallies == [{"1": 1.0}, {"1": 1.0, "2": 1.0}, {"2": 2.0, "1": 1.0}]
    assert result.votes == tallies[-1]
    done = done_events(events)
    assert [d.chain for d in done] == [0, 1, 2]


def test_budget_cut_mid_chain_forces_answers_and_they_vote() -> None:
    engine = ScriptedEngine([long_chain(100)] * 3 + ["\\boxed{6}", "\\boxed{6}", "\\boxed{2}"])
    result, events = run_strategy(engine, "vote", n=3, budget=60)
    assert engine.tokens_generated <= 60
    assert {s.finish_reason for s in result.samples} == {"budget"}
    assert result.answer == "6"
    assert result.votes == {"6": 2.0, "2": 1.0}
    assert any(isinstance(e, ChainDone) and e.answer == "2" for e in events)


def test_chains_without_answers_do_not_vote() -> None:
    engine = ScriptedEngine(["<think> no idea </think> sorry", think(4)])
    result, _ = run_strategy(engine, "vote", n=2)
    assert result.answer == "4"
    assert result.votes == {"4": 1.0}


def test_tally_weights_and_order() -> None:
    ballots = [Ballot(0, "2", 0.5), Ballot(1, "3", 2.0), Ballot(2, "2.0", 0.5)]
    groups = tally(ballots)
    assert [g.key for g in groups] == ["3", "2"]
    assert weights(groups) == {"3": 2.0, "2": 1.0}
    assert groups[1].first_chain == 0 and groups[1].count == 2
