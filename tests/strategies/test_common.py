"""What every strategy must do: keep to --budget and --time, survive Ctrl-C, validate
options."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.engines import Loaded
from ponder.engines.scripted import Script, ScriptedEngine
from ponder.errors import InputError
from ponder.runner import make_plan, result_record
from ponder.strategies import STRATEGIES
from tests.conftest import long_chain, run_strategy, think

SMALL: dict[str, dict[str, Any]] = {
    "cot": {},
    "budget": {"min_think": "20", "max_waits": "2"},
    "vote": {"n": "4"},
    "confidence": {"n": "6", "warmup": "2", "window": "4", "consensus": "1"},
    "adaptive": {"start": "2", "max_n": "6"},
    "best-of-n": {"n": "3"},
    "beam": {"width": "2", "expand": "2", "max_steps": "3"},
    "refine": {"rounds": "2"},
    "mcts": {"expand": "2", "iterations": "3", "step_tokens": "16", "rollout_tokens": "32"},
}
"""Small settings per strategy, for the tests that run all of them."""


class TickingClock:
    """A clock that advances by `step` seconds every time it is read."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def many(*scripts: Script | str, repeat: int = 60) -> ScriptedEngine:
    return ScriptedEngine(list(scripts) * repeat)


# ---------------------------------------------------------------------------------------


def test_every_strategy_is_registered() -> None:
    assert set(STRATEGIES) == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("budget", [1, 9, 37, 150])
def test_budget_is_never_exceeded(name: str, budget: int) -> None:
    engine = many(long_chain(), "\\boxed{3}")
    result, _ = run_strategy(engine, name, budget=budget, **SMALL[name])
    assert engine.tokens_generated <= budget
    assert result.completion_tokens == engine.tokens_generated
    assert not result.interrupted


@pytest.mark.parametrize("name", sorted(SMALL))
def test_out_of_budget_answers_from_what_there_is(name: str) -> None:
    engine = many(long_chain(60), "\\boxed{3}")
    result, _ = run_strategy(engine, name, budget=50, **SMALL[name])
    assert engine.tokens_generated <= 50
    assert result.answer == "3"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_time_limit_stops_and_still_answers(name: str) -> None:
    engine = many(long_chain(400), "\\boxed{3}")
    clock = TickingClock(1.0)
    result, _ = run_strategy(engine, name, seconds=60, clock=clock, **SMALL[name])
    assert engine.tokens_generated < 400  # the chains were cut when time ran out
    assert clock.now >= 60
    assert result.answer == "3"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_ctrl_c_keeps_what_was_produced(name: str) -> None:
    engine = many(long_chain(30), "\\boxed{3}")
    result, _ = run_strategy(engine, name, interrupt_at=6, **SMALL[name])
    assert result.interrupted
    assert result.finish_reason == "interrupted" or any(
        s.finish_reason == "interrupted" for s in result.samples)
    assert engine.tokens_generated < 30 * 2


@pytest.mark.parametrize(
    ("name", "opts", "message"),
    [
        ("vote", {"n": "0"}, "n must be between 1 and 256"),
        ("vote", {"n": "many"}, "not a valid int"),
        ("vote", {"chains": "3"}, "unknown option 'chains'"),
        ("confidence", {"warmup": "9", "n": "4"}, "warmup must be between 1 and n"),
        ("confidence", {"measure": "median"}, "measure must be one of lowest, tail, mean"),
        ("confidence", {"keep": "0"}, "keep must be in (0, 1]"),
        ("adaptive", {"start": "5", "max_n": "4"}, "start must be between 1 and max_n"),
        ("adaptive", {"threshold": "1.5"}, "threshold must be 0 (off) or in (0.5, 1)"),
        ("best-of-n", {"verifier": "oracle"}, "unknown verifier 'oracle'"),
        ("best-of-n", {"select": "worst"}, "select must be one of best, weighted"),
        ("beam", {"width": "0"}, "width must be between 1 and 16"),
        ("budget", {"min_think": "500", "think_cap": "100"}, "min_think must not exceed"),
        ("budget", {"waits": "3", "max_waits": "2"}, "waits must be between 0 and max_waits"),
        ("refine", {"rounds": "-1"}, "rounds must be between 0 and 16"),
    ],
)
def test_bad_options_are_clear_errors(name: str, opts: dict[str, str], message: str) -> None:
    with pytest.raises(InputError) as err:
        make_plan(None, name, opts)
    assert message in str(err.value)


def test_json_record_carries_samples_votes_and_settings() -> None:
    engine = ScriptedEngine([think(4), think(4), think(5)])
    result, _ = run_strategy(engine, "vote", n=3)
    plan = make_plan(None, "vote", {"n": "3"})
    record = result_record("q", result, Loaded(engine, "prompted", "m"), plan, 1.0)
    assert record["settings"]["n"] == 3
    assert record["votes"] == {"4": 2.0, "5": 1.0}
    assert [s["answer"] for s in record["samples"]] == ["4", "4", "5"]
    assert {"tokens", "confidence", "finish_reason", "score"} <= set(record["samples"][0])
