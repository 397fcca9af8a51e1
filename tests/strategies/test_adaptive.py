"""`adaptive` (adaptive consistency) on the scripted engine, and its stopping rules."""

from __future__ import annotations

import pytest

from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine, ScriptedGeneration
from ponder.errors import InputError
from ponder.events import StrategyNote
from ponder.strategies.aggregate import (
    Ballot,
    Group,
    beta_confidence,
    cannot_be_overtaken,
    tally,
)
from tests.conftest import run_strategy, think


def groups_of(*answers: str) -> list[Group]:
    return tally([Ballot(i, a) for i, a in enumerate(answers)])


def test_beta_stopping_probability() -> None:
    assert beta_confidence(0, 0) == pytest.approx(0.5)
    assert beta_confidence(3, 0) == pytest.approx(1 - 0.5**4)
    assert beta_confidence(4, 1) == pytest.approx(1 - 7 / 64)
    assert beta_confidence(5, 5) == pytest.approx(0.5)
    assert beta_confidence(10, 2) > beta_confidence(6, 2) > beta_confidence(4, 2)


def test_overtake_rule() -> None:
    assert cannot_be_overtaken(groups_of("1", "1", "1", "2"), remaining=1)
    assert not cannot_be_overtaken(groups_of("1", "1", "1", "2"), remaining=2)  # could tie
    assert not cannot_be_overtaken([], remaining=0)


def test_agreeing_chains_stop_after_the_first_round() -> None:
    engine = ScriptedEngine([think(4)] * 3 + [think(5)] * 9)
    result, events = run_strategy(engine, "adaptive", start=3, step=2, max_n=12)
    assert len(engine.prompts) == 1
    assert len(result.samples) == 3
    assert result.answer == "4"
    assert result.settings["rounds"] == 1
    assert any(isinstance(e, StrategyNote) and "stopped after 3 chains" in e.text
               for e in events)


def test_disagreement_samples_more_until_the_vote_is_settled() -> None:
    answers = [4, 5, 4,  4, 4,  4, 4,  9, 9]
    engine = ScriptedEngine([think(a) for a in answers])
    result, _ = run_strategy(engine, "adaptive", start=3, step=2, max_n=12, window=0,
                             threshold=0.9)
    # 2-1 (P=0.69), then 4-1 (0.89), then 6-1 (0.96 >= 0.9): three rounds, seven chains
    assert len(engine.prompts) == 3
    assert len(result.samples) == 7
    assert result.answer == "4"
    assert result.votes == {"4": 6.0, "5": 1.0}
    assert [s.chain for s in result.samples] == list(range(7))


def test_stops_when_the_leader_cannot_be_overtaken() -> None:
    engine = ScriptedEngine([think(a) for a in [4, 4, 4, 5, 5]])
    result, _ = run_strategy(engine, "adaptive", start=3, max_n=5, threshold=0.99)
    assert len(result.samples) == 3
    assert "overtaken" in result.settings["stop_reason"]


def test_never_more_than_max_n_chains() -> None:
    engine = ScriptedEngine([think(a) for a in [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    result, _ = run_strategy(engine, "adaptive", start=2, step=3, max_n=6)
    assert len(result.samples) == 6
    assert result.settings["stop_reason"] == "no chains left"
    assert result.answer == "1"  # all tied: the earliest chain


def test_budget_runs_out_in_a_later_round() -> None:
    chains = [think(a, words=10) for a in [1, 2, 1, 2]]  # 16 tokens each
    engine = ScriptedEngine([*chains, "\\boxed{1}", "\\boxed{2}"])
    result, _ = run_strategy(engine, "adaptive", start=2, step=2, max_n=8, budget=50,
                             answer_reserve=4)
    assert engine.tokens_generated <= 50
    assert [s.finish_reason for s in result.samples] == ["eos", "eos", "budget", "budget"]
    assert result.votes == {"1": 2.0, "2": 2.0}
    assert result.answer == "1"
    assert result.settings["stop_reason"] == "out of budget"


class SeedRecorder(ScriptedEngine):
    def __init__(self, outputs: list[Script]) -> None:
        super().__init__(outputs)
        self.seeds: list[tuple[int, int]] = []
        self.greedy: list[bool] = []

    def start(self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
              ) -> ScriptedGeneration:
        self.seeds.append((sampling.seed, n))
        self.greedy.append(sampling.greedy_first)
        return super().start(prompt, sampling, n, budget)


def test_each_round_draws_new_seeds() -> None:
    engine = SeedRecorder([think(a) for a in [4, 5, 6, 7, 8, 9]])
    run_strategy(engine, "adaptive", start=2, step=2, max_n=6)
    assert engine.seeds == [(0, 2), (2, 2), (4, 2)]  # chain k is seeded with seed + k


def test_only_the_first_round_leads_with_the_greedy_chain() -> None:
    engine = SeedRecorder([think(a) for a in [4, 5, 6, 7, 4, 4]])
    result, _ = run_strategy(engine, "adaptive", start=2, step=2, max_n=6, greedy_first=True)
    assert engine.greedy == [True, False, False]
    assert result.settings["stop_reason"] == "the last 2 answers agree"
    assert result.answer == "4"


def test_confident_greedy_chain_alone_settles_the_question() -> None:
    sure, unsure = think(4, logprob=-0.001), think(4, logprob=-1.0)
    engine = SeedRecorder([sure, think(5)])
    result, _ = run_strategy(engine, "adaptive", start=1, step=1, max_n=4, greedy_first=True,
                             confident=0.99)
    assert len(result.samples) == 1 and result.answer == "4"
    assert result.settings["stop_reason"].startswith("every answer agrees")
    engine = SeedRecorder([unsure, think(4), think(5)])
    result, _ = run_strategy(engine, "adaptive", start=1, step=1, max_n=4, greedy_first=True,
                             confident=0.99)
    assert len(result.samples) == 2 and engine.greedy == [True, False]
    assert result.settings["stop_reason"] == "the last 2 answers agree"


def test_confident_must_be_a_probability() -> None:
    with pytest.raises(InputError):
        run_strategy(ScriptedEngine([think(4)]), "adaptive", confident=1.5)
    with pytest.raises(InputError):
        run_strategy(ScriptedEngine([think(4)]), "adaptive", confidence_measure="lowest")
