"""The effort table: each level picks a strategy and settings; overrides win."""

from __future__ import annotations

import pytest

from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError
from ponder.runner import make_plan
from ponder.strategies.effort import DEFAULT_EFFORT, EFFORTS
from tests.conftest import run_strategy, think


@pytest.mark.parametrize(
    ("effort", "strategy", "settings"),
    [
        ("low", "cot", {"think_cap": 1024}),
        ("medium", "adaptive", {"greedy_first": True, "start": 1, "step": 1, "max_n": 3,
                                "window": 2, "confident": 0.95,
                                "confidence_measure": "mean_prob"}),
        ("high", "vote", {"greedy_first": True, "n": 10}),
        ("auto", "adaptive", {"greedy_first": True, "start": 1, "step": 4, "max_n": 6,
                              "confident": 0.95, "give_up_after": 0}),
    ],
)
def test_each_effort_chooses_a_strategy_and_settings(
    effort: str, strategy: str, settings: dict[str, int]
) -> None:
    plan = make_plan(effort, None)
    assert plan.spec.name == strategy
    assert plan.effort == effort
    for key, value in settings.items():
        assert plan.settings()[key] == value


def test_default_effort_is_medium() -> None:
    assert DEFAULT_EFFORT == "medium"
    assert make_plan(None, None).spec.name == "adaptive"


def test_every_effort_has_a_description() -> None:
    assert all(e.description for e in EFFORTS.values())


def test_option_overrides_win_over_the_effort() -> None:
    plan = make_plan("high", None, {"n": "4", "think_cap": "32"})
    assert plan.settings()["n"] == 4 and plan.settings()["think_cap"] == 32
    assert plan.settings()["greedy_first"] is True


def test_strategy_replaces_the_effort_choice_and_its_settings() -> None:
    plan = make_plan("high", "confidence", {"n": "5"})
    assert plan.spec.name == "confidence"
    assert plan.settings()["n"] == 5 and "greedy_first" not in plan.settings()


def test_an_override_the_chosen_strategy_lacks_is_an_error() -> None:
    with pytest.raises(InputError, match="unknown option 'warmup' for strategy adaptive"):
        make_plan("auto", None, {"warmup": "3"})


def test_invalid_override_is_an_error() -> None:
    with pytest.raises(InputError, match="start must be between 1 and max_n"):
        make_plan("auto", None, {"start": "7"})


def test_a_sure_greedy_chain_settles_medium_and_auto_alone() -> None:
    for level in ("medium", "auto"):
        sure = ScriptedEngine([think(4, logprob=-0.01)] * 6)   # mean probability 0.99
        result, _ = run_strategy(sure, "adaptive", **make_plan(level, None).settings())
        assert len(result.samples) == 1 and result.answer == "4"


def test_medium_stops_at_three_chains() -> None:
    scattered = ScriptedEngine([think(a) for a in [4, 5, 6, 7, 8]])
    result, _ = run_strategy(scattered, "adaptive", **make_plan("medium", None).settings())
    assert len(result.samples) == 3


def test_auto_samples_four_together_when_the_greedy_chain_is_unsure() -> None:
    agree = ScriptedEngine([think(4)] * 12)   # mean probability 0.90: not sure alone
    result, _ = run_strategy(agree, "adaptive", **make_plan("auto", None).settings())
    assert len(result.samples) == 5 and result.settings["rounds"] == 2
    # 4 5 4 4 6: the last two differ, but one more chain cannot overtake 4's three votes
    settled = ScriptedEngine([think(a) for a in [4, 5, 4, 4, 6, 6, 6, 6]])
    result, _ = run_strategy(settled, "adaptive", **make_plan("auto", None).settings())
    assert len(result.samples) == 5 and result.answer == "4"
    # 4 5 6 7 4: still open after five, so one more chain (the sixth and last)
    scattered = ScriptedEngine([think(a) for a in [4, 5, 6, 7, 4, 5, 9, 9]])
    result, _ = run_strategy(scattered, "adaptive", **make_plan("auto", None).settings())
    assert len(result.samples) == 6 and result.settings["rounds"] == 3


def test_adaptive_gives_up_when_answers_stay_scattered() -> None:
    scattered = ScriptedEngine([think(a) for a in [1, 2, 3, 4, 5, 6, 7, 8]])
    settings = {**make_plan("auto", None).settings(), "give_up_after": 4}
    result, _ = run_strategy(scattered, "adaptive", **settings)
    assert len(result.samples) == 5   # the first check after 4 chains ends auto's 1 + 4
    assert "scattered after 5 chains" in result.settings["stop_reason"]


def test_every_effort_level_can_be_replayed_from_recorded_chains() -> None:
    from ponder.replay import replayable

    ks = {}
    for level in EFFORTS:
        plan = make_plan(level, None)
        ks[level] = replayable(plan.spec.name, plan.options).k
    assert ks == {"low": 1, "medium": 3, "high": 10, "auto": 6}
