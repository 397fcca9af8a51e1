"""The one stopping rule shared by `adaptive` and its offline replay."""

from __future__ import annotations

from ponder.events import Sample
from ponder.strategies.stopping import StopRule, decide


def chains(*answers: str | None) -> list[Sample]:
    return [Sample(i, a, "", "", 10, "eos") for i, a in enumerate(answers)]


def test_window_of_agreeing_answers_stops() -> None:
    rule = StopRule(start=2, step=2, max_n=8, window=2)
    assert decide(chains("4", "4.0"), rule).stop == "the last 2 answers agree"
    go_on = decide(chains("4", "5"), rule)
    assert go_on.stop is None and go_on.next_size == 2


def test_window_ignores_missing_answers() -> None:
    rule = StopRule(window=2, max_n=8)
    assert decide(chains("4", None), rule).stop is None


def test_leader_that_cannot_be_overtaken_stops_before_the_window() -> None:
    rule = StopRule(window=0, max_n=5)
    assert decide(chains("1", "1", "1", "2"), rule).stop == "the leader cannot be overtaken"
    assert decide(chains("1", "1", "2"), rule).stop is None


def test_give_up_when_answers_stay_scattered() -> None:
    rule = StopRule(window=2, max_n=16, give_up_after=4, give_up_share=0.5)
    verdict = decide(chains("1", "2", "3", "4"), rule)
    assert verdict.stop is not None and "scattered" in verdict.stop
    assert decide(chains("1", "2", "3"), rule).stop is None


def test_posterior_threshold_and_round_sizes() -> None:
    rule = StopRule(window=0, threshold=0.9, max_n=12, step=3)
    assert decide(chains("7", "7", "7"), rule).stop is not None
    verdict = decide(chains("7", "8", "7", "9"), rule)
    assert verdict.stop is None and verdict.next_size == 3
    assert decide(chains(*["1"] * 11), StopRule(window=0, max_n=12, step=5)).stop is not None
    last = decide(chains("1", "2", "3", "1", "2", "3", "4", "5", "6", "7"),
                  StopRule(window=0, max_n=12, step=5))
    assert last.next_size == 2


def test_no_chains_left() -> None:
    assert decide(chains("1", "2"), StopRule(window=0, max_n=2)).stop == "no chains left"


def sure(*pairs: tuple[str | None, float]) -> list[Sample]:
    return [Sample(i, a, "", "", 10, "eos", stats={"answer_prob": p})
            for i, (a, p) in enumerate(pairs)]


def test_confident_stop_settles_on_one_sure_chain() -> None:
    rule = StopRule(start=1, step=1, max_n=6, window=2, confident=0.99)
    assert decide(sure(("4", 0.995)), rule).stop == "every answer agrees with answer_prob >= 0.99"
    unsure = decide(sure(("4", 0.9)), rule)
    assert unsure.stop is None and unsure.next_size == 1


def test_confident_stop_needs_every_chain_sure_and_agreeing() -> None:
    rule = StopRule(start=1, window=0, max_n=6, confident=0.99)
    assert decide(sure(("4", 0.999), ("5", 0.999)), rule).stop is None
    assert decide(sure(("4", 0.999), ("4", 0.5)), rule).stop is None
    assert decide(sure((None, 1.0)), rule).stop is None
    assert decide(chains("4"), rule).stop is None  # no statistic recorded: not sure
    assert decide(sure(("4", 0.999), ("4.0", 0.99)), rule).stop is not None
