"""`confidence` (DeepConf) on the scripted engine, and the confidence math behind it.

The scripted engine reports the sampled token with the script's logprob and k-1
alternatives sharing the rest of the probability, so a script with logprob -0.05 is a
confident chain (DeepConf confidence about 2.5 with k=3) and one with -1.5 an unsure one
(about 1.1).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from ponder.engines.scripted import Script, ScriptedEngine
from ponder.events import ChainDone, ChainText, Sample, StrategyNote
from ponder.strategies.confidence import final_groups
from ponder.strategies.scoring import (
    ChainConfidence,
    SlidingMean,
    keep_most_confident,
    percentile,
    token_confidence,
)
from tests.conftest import done_events, run_strategy, think

SURE, UNSURE = -0.05, -1.5
BASE: dict[str, Any] = {"top_logprobs": 3, "window": 4, "consensus": 1.0}


def chain(answer: int, logprob: float, words: int = 6) -> Script:
    return Script(think(answer, words).text, logprob)


def test_token_confidence_is_mean_negative_top_k_logprob() -> None:
    top = (("a", -0.1), ("b", -2.0), ("c", -3.9))
    assert token_confidence(top) == pytest.approx(2.0)
    flat = tuple((t, math.log(1 / 3)) for t in "abc")
    assert token_confidence(flat) < token_confidence(top)


def test_sliding_window_lowest_group_and_tail() -> None:
    conf = ChainConfidence(window=2, tail_size=2)
    values = [3.0, 3.0, 1.0, 1.0, 3.0, 3.0]
    for v in values:
        conf.push((("x", -v),))
    assert conf.lowest == pytest.approx(1.0)
    assert conf.tail == pytest.approx(3.0)
    assert conf.mean == pytest.approx(14 / 6)
    short = ChainConfidence(window=10)
    short.push((("x", -2.0),))
    assert short.value("lowest") == pytest.approx(2.0)  # shorter than a window: the mean


def test_sliding_mean_drops_old_values() -> None:
    window = SlidingMean(3)
    for v in (1, 2, 3, 4):
        window.push(v)
    assert window.mean == pytest.approx(3.0) and window.full


def test_percentile_and_keep() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 10) == 5.0
    assert keep_most_confident([0.1, 0.9, 0.5, 0.7], 0.5) == [1, 3]
    assert keep_most_confident([0.1, 0.9], 1.0) == [0, 1]


def test_low_confidence_chain_is_stopped_early_and_does_not_vote() -> None:
    long_unsure = Script("<think>" + " hmm" * 40 + " </think> \\boxed{9}", UNSURE)
    engine = ScriptedEngine([chain(4, SURE), chain(4, SURE), long_unsure, chain(4, SURE)])
    result, events = run_strategy(engine, "confidence", n=4, warmup=2, **BASE)
    stopped = result.samples[2]
    assert stopped.finish_reason == "abort"
    assert stopped.tokens == 4  # aborted as soon as its first window was full
    assert result.votes.keys() == {"4"}
    assert result.answer == "4"
    assert result.settings["stopped_early"] == 1
    assert any(isinstance(e, StrategyNote) and "stopped early" in e.text for e in events)
    assert engine.tokens_generated < 4 * 10 + 4 + 10


def test_threshold_is_the_warmup_percentile() -> None:
    engine = ScriptedEngine([chain(4, SURE), chain(4, UNSURE), chain(4, -0.5)])
    result, _ = run_strategy(engine, "confidence", n=3, warmup=2, keep=0.5, **BASE)
    sure, unsure = (s.confidence or 0.0 for s in result.samples[:2])
    assert result.settings["threshold"] == pytest.approx((sure + unsure) / 2)


def test_early_stop_can_be_turned_off() -> None:
    long_unsure = Script("<think>" + " hmm" * 20 + " </think> \\boxed{9}", UNSURE)
    engine = ScriptedEngine([chain(4, SURE), chain(4, SURE), long_unsure])
    result, _ = run_strategy(engine, "confidence", n=3, warmup=2, early_stop=False, **BASE)
    assert result.samples[2].finish_reason == "eos"
    assert result.samples[2].answer == "9"


def test_votes_are_weighted_by_confidence() -> None:
    engine = ScriptedEngine([chain(7, UNSURE), chain(7, UNSURE), chain(9, SURE)])
    result, _ = run_strategy(engine, "confidence", n=3, warmup=3, keep=1.0, **BASE)
    assert result.answer == "9"  # one sure chain outweighs two unsure ones
    assert result.votes["9"] > result.votes["7"] > 0
    engine = ScriptedEngine([chain(7, -0.3), chain(7, -0.3), chain(9, -0.2)])
    result, _ = run_strategy(engine, "confidence", n=3, warmup=3, keep=1.0, **BASE)
    assert result.answer == "7"  # close confidences: the count decides


def test_only_the_most_confident_share_votes() -> None:
    engine = ScriptedEngine([chain(7, UNSURE), chain(7, UNSURE), chain(7, -0.9),
                             chain(9, SURE)])
    result, _ = run_strategy(engine, "confidence", n=4, warmup=4, keep=0.25, **BASE)
    assert result.votes.keys() == {"9"}
    assert result.answer == "9"


def test_consensus_after_warmup_saves_the_other_chains() -> None:
    engine = ScriptedEngine([chain(4, SURE)] * 3 + [chain(5, SURE)] * 5)
    result, events = run_strategy(engine, "confidence", n=8, warmup=3, top_logprobs=3,
                                  window=4, consensus=0.9)
    assert len(engine.prompts) == 1
    assert len(result.samples) == 3
    assert result.answer == "4"
    assert any(isinstance(e, StrategyNote) and "5 chains saved" in e.text for e in events)


def test_consensus_during_the_run_stops_the_rest() -> None:
    slow = Script("<think>" + " hmm" * 30 + " </think> \\boxed{5}", SURE)
    engine = ScriptedEngine([chain(4, SURE), chain(5, SURE), chain(4, SURE, words=2),
                             chain(4, SURE, words=3), slow])
    result, _ = run_strategy(engine, "confidence", n=5, warmup=2, top_logprobs=3, window=4,
                             consensus=0.7)
    assert result.samples[4].finish_reason == "abort"
    assert result.samples[4].tokens < 15  # of its 32
    assert result.answer == "4"


def test_confidence_is_reported_on_text_done_and_samples() -> None:
    engine = ScriptedEngine([chain(4, SURE), chain(4, UNSURE)])
    result, events = run_strategy(engine, "confidence", n=2, warmup=2, **BASE)
    texts = [e for e in events if isinstance(e, ChainText) and e.confidence is not None]
    assert {e.chain for e in texts} == {0, 1}
    done = {d.chain: d for d in done_events(events) if isinstance(d, ChainDone)}
    assert done[0].confidence == result.samples[0].confidence
    assert (result.samples[0].confidence or 0) > (result.samples[1].confidence or 0) > 0


def test_without_confidences_the_vote_counts() -> None:
    samples = [Sample(i, a, "", "", 5, "eos") for i, a in enumerate(["4", "5", "4"])]
    groups = final_groups(samples, keep=1.0)
    assert [(g.key, g.weight) for g in groups] == [("4", 2.0), ("5", 1.0)]


def test_early_stopped_chains_vote_only_when_nothing_else_answered() -> None:
    samples = [Sample(0, "4", "", "", 5, "abort", 1.0), Sample(1, None, "", "", 5, "eos", 2.0)]
    assert [g.key for g in final_groups(samples, keep=1.0)] == ["4"]
