"""The lead chain: where a family asks one chain differently from chains that vote (its own
system prompt, no <think> prefill), the greedy first chain of `vote` and `adaptive` is asked
that way too, so it is the chain `low` runs; the other chains keep the tag prompt."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.chat import Conversation
from ponder.cli._engine import sampling_for
from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine, ScriptedGeneration
from ponder.events import Result, StrategyEvent, StrategyNote
from ponder.log.session import LogMemory, RunLog
from ponder.registry import FamilyDefaults, load_registry
from ponder.runner import drive, make_plan, make_task, run_plan
from ponder.strategies.base import Task
from ponder.thinking import PROMPTED_SYSTEM
from tests.conftest import log_memory

QUESTION = "What is 2 + 2?"
FAMILY = FamilyDefaults("fam", temperature=0.7, single_temperature=0.0,
                        assistant_prefix="<think>\n", single_system="Think step by step.",
                        single_prefill=False)
OPEN = "First, 2 plus 2.\n\nThat makes 4.\n\nSo the final answer is \\boxed{4}."


class SpyEngine(ScriptedEngine):
    """A scripted engine that notes each start: (n, seed, greedy_first, prompt)."""

    def __init__(self, outputs: list[Script | str]) -> None:
        super().__init__(outputs, model_name="spy")
        self.starts: list[tuple[int, int, bool, str]] = []

    def start(self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
              ) -> ScriptedGeneration:
        self.starts.append((n, sampling.seed, sampling.greedy_first, prompt))
        return super().start(prompt, sampling, n, budget)


def tagged(answer: int, words: int = 3) -> Script:
    return Script(" hmm" * words + f" </think> \\boxed{{{answer}}}")


def task_for(engine: ScriptedEngine, family: FamilyDefaults = FAMILY, *,
             budget: int | None = None, single_chain: bool = False) -> Task:
    """The task the CLI makes: its sampling from the family (`low` greedy)."""
    loaded = Loaded(engine, "prompted", "spy", family)
    sampling = sampling_for(loaded, 10, None, single_chain=single_chain)
    return make_task(QUESTION, loaded, sampling, budget=budget, single_chain=single_chain)


def run(task: Task, name: str, **opts: Any) -> tuple[Result, list[StrategyEvent]]:
    events: list[StrategyEvent] = []
    plan = make_plan(None, name, {k: str(v) for k, v in opts.items()})
    return drive(run_plan(task, plan), events.append), events


def is_plain(prompt: str) -> bool:
    return "Think step by step." in prompt and prompt.endswith("<|assistant|>\n")


def is_tagged(prompt: str) -> bool:
    return PROMPTED_SYSTEM in prompt and prompt.endswith("<|assistant|>\n<think>\n")


def test_only_tasks_asked_the_tag_way_get_a_lead() -> None:
    engine = ScriptedEngine()
    lead = task_for(engine).lead
    assert lead is not None
    assert (lead.system, lead.prefix, lead.implicit_thinking) == (
        "Think step by step.", "", True)
    assert task_for(engine, single_chain=True).lead is None          # it is the lead
    same = FamilyDefaults("r1", assistant_prefix="<think>\n")        # one prompt for all
    assert task_for(engine, same).lead is None
    plain = FamilyDefaults("p", single_system="Think.", single_prefill=False, plain_chains=True)
    assert task_for(engine, plain).lead is None


def test_vote_asks_its_greedy_chain_as_low_does_and_samples_the_rest_together() -> None:
    engine = SpyEngine([OPEN, tagged(4), tagged(5)])
    result, _ = run(task_for(engine), "vote", n=3, greedy_first="true")
    (n0, seed0, greedy0, p0), (n1, seed1, greedy1, p1) = engine.starts
    assert (n0, greedy0) == (1, True) and is_plain(p0)
    assert (n1, seed1, greedy1) == (2, seed0 + 1, False) and is_tagged(p1)
    assert [s.chain for s in result.samples] == [0, 1, 2]
    assert [s.answer for s in result.samples] == ["4", "4", "5"] and result.answer == "4"
    lead = result.samples[0]
    assert lead.thinking == OPEN and lead.text == "So the final answer is \\boxed{4}."


def test_the_lead_is_asked_exactly_as_low_asks() -> None:
    engine = SpyEngine([OPEN, OPEN, tagged(4)])
    run(task_for(engine, single_chain=True), "cot")
    run(task_for(engine), "vote", n=2, greedy_first="true")
    assert engine.starts[0][3] == engine.starts[1][3]


def test_without_greedy_first_or_with_nothinking_every_chain_is_tagged() -> None:
    engine = SpyEngine([tagged(4), tagged(4)])
    run(task_for(engine), "vote", n=2)
    assert [(n, is_tagged(p)) for n, _, _, p in engine.starts] == [(2, True)]
    engine = SpyEngine([Script(" \\boxed{4}"), Script(" \\boxed{4}")])
    run(task_for(engine), "vote", n=2, greedy_first="true", nothinking="true")
    assert len(engine.starts) == 1 and not is_plain(engine.starts[0][3])


def test_adaptive_leads_its_first_round_only() -> None:
    engine = SpyEngine([OPEN, tagged(5), tagged(4)])
    result, _ = run(task_for(engine), "adaptive", greedy_first="true", start=1, step=1,
                    max_n=3, window=2)
    kinds = [(n, is_plain(p), is_tagged(p)) for n, _, _, p in engine.starts]
    assert kinds == [(1, True, False), (1, False, True), (1, False, True)]
    assert [s.answer for s in result.samples] == ["4", "5", "4"] and result.answer == "4"
    seeds = [seed for _, seed, _, _ in engine.starts]
    assert seeds[1:] == [seeds[0] + 1, seeds[0] + 2]


def test_a_budget_holds_across_the_lead_and_the_samples() -> None:
    engine = SpyEngine([" word" * 30 + " \\boxed{4}", tagged(4, 40), tagged(4, 40)])
    task = task_for(engine, budget=50)
    result, _ = run(task, "vote", n=3, greedy_first="true")
    assert task.budget.used <= 50
    assert sum(s.tokens for s in result.samples) == task.budget.used


def test_ctrl_c_in_the_lead_stops_before_the_samples() -> None:
    engine = SpyEngine([" word" * 50 + " \\boxed{4}", tagged(5), tagged(5)])
    task = task_for(engine)
    plan = make_plan(None, "vote", {"n": "3", "greedy_first": "true"})
    gen = run_plan(task, plan)
    for _ in range(6):
        next(gen)
    with pytest.raises(StopIteration) as stop:
        gen.throw(KeyboardInterrupt())
        while True:
            next(gen)
    result: Result = stop.value.value
    assert result.interrupted and len(engine.starts) == 1 and task.interrupted


def test_a_chat_turn_leads_with_its_history() -> None:
    engine = SpyEngine([OPEN, tagged(4)])
    chat = Conversation()
    chat.add("What is 1 + 1?", "2")
    loaded = Loaded(engine, "prompted", "spy", FAMILY)
    task = chat.task(QUESTION, loaded, Sampling())
    run(task, "vote", n=2, greedy_first="true")
    lead_prompt, rest = engine.starts[0][3], engine.starts[1][3]
    assert is_plain(lead_prompt) and "What is 1 + 1?" in lead_prompt
    assert is_tagged(rest) and "What is 1 + 1?" in rest


def memory(log: RunLog) -> LogMemory:
    return log_memory(log, QUESTION)


def test_high_after_low_takes_the_greedy_chain_from_the_log(log: RunLog) -> None:
    engine = SpyEngine([OPEN])
    low = task_for(engine, single_chain=True)
    low.memory = memory(log)
    run(low, "cot")
    engine.enqueue(tagged(4), tagged(4))
    engine.starts.clear()
    high = task_for(engine)
    high.memory = memory(log)
    result, events = run(high, "vote", n=3, greedy_first="true")
    assert [(n, is_tagged(p)) for n, _, _, p in engine.starts] == [(2, True)]
    assert result.samples[0].thinking == OPEN and result.answer == "4"
    assert any(isinstance(e, StrategyNote) and "from the log" in e.text for e in events)
    assert high.budget.used == sum(s.tokens for s in result.samples[1:])


SAMPLED = FamilyDefaults("r1", temperature=0.6, single_temperature=0.6,
                         assistant_prefix="<think>\n", greedy=False)


def test_families_that_advise_against_greedy_sample_the_first_chain_as_low_does(
        log: RunLog) -> None:
    engine = SpyEngine([tagged(4)])
    low = task_for(engine, SAMPLED, single_chain=True)
    low.memory = memory(log)
    run(low, "cot")
    engine.enqueue(tagged(4), tagged(5))
    engine.starts.clear()
    high = task_for(engine, SAMPLED)
    high.memory = memory(log)
    result, _ = run(high, "vote", n=3, greedy_first="true")
    assert [(n, greedy) for n, _, greedy, _ in engine.starts] == [(2, False)]  # chains 1, 2
    assert [s.answer for s in result.samples] == ["4", "4", "5"]
    engine.enqueue(tagged(4), tagged(4))
    engine.starts.clear()
    run(task_for(engine, SAMPLED), "vote", n=2, greedy_first="true")
    assert [(n, greedy) for n, _, greedy, _ in engine.starts] == [(2, False)]


def test_the_registry_says_which_families_advise_against_greedy() -> None:
    registry = load_registry()
    for name in ("deepseek-r1-distill", "qwen3", "qwq"):
        assert not registry.family(name).greedy
    for name in ("qwen2.5-coder", "smollm2", "unknown"):
        assert registry.family(name).greedy
