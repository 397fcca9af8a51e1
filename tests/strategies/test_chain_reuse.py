"""Chains that build on logged ones: `run_chains` replays what the log holds, samples the
rest with the seeds they would have had, and charges the budget for new tokens only."""

from __future__ import annotations

from typing import Any

import pytest

from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine, ScriptedGeneration
from ponder.events import Result, StrategyEvent, StrategyNote
from ponder.log.session import LogMemory, RunLog
from ponder.runner import drive, make_plan, make_task, run_plan
from ponder.strategies.chains import ChainConfig, ChainState, run_chains
from ponder.strategies.probes import ProbeConfig
from ponder.thinking import CLOSE_THINKING
from tests.conftest import log_memory

QUESTION = "What is 2 + 2?"


class SpyEngine(ScriptedEngine):
    """A scripted engine that notes each start: (n, seed, prompt)."""

    def __init__(self, outputs: list[Script] | None = None) -> None:
        super().__init__(outputs or [], model_name="spy")
        self.starts: list[tuple[int, int, str]] = []
        self.greedy_first: list[bool] = []

    def start(self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
              ) -> ScriptedGeneration:
        self.starts.append((n, sampling.seed, prompt))
        self.greedy_first.append(sampling.greedy_first)
        return super().start(prompt, sampling, n, budget)


def think(answer: int, words: int = 3, logprob: float = -0.1) -> Script:
    return Script("<think>" + " hmm" * words + f" </think> \\boxed{{{answer}}}", logprob)


def memory(log: RunLog, reuse: bool = True) -> LogMemory:
    return log_memory(log, QUESTION, reuse)


def run(engine: ScriptedEngine, name: str, mem: LogMemory | None, *,
        budget: int | None = None, sampling: Sampling | None = None,
        **opts: Any) -> tuple[Result, list[StrategyEvent]]:
    loaded = Loaded(engine, "prompted", "spy")
    task = make_task(QUESTION, loaded, sampling or Sampling(seed=10), budget=budget)
    task.memory = mem
    events: list[StrategyEvent] = []
    plan = make_plan(None, name, {k: str(v) for k, v in opts.items()})
    return drive(run_plan(task, plan), events.append), events


def test_vote_of_8_after_4_samples_only_chains_4_to_7(log: RunLog) -> None:
    engine = SpyEngine([think(4), think(4), think(5), think(4)])
    first, _ = run(engine, "vote", memory(log), n=4)
    engine.enqueue(think(5), think(5), think(5), think(5))
    mem = memory(log)
    engine.starts.clear()
    second, events = run(engine, "vote", mem, n=8)
    assert [(n, seed) for n, seed, _ in engine.starts] == [(4, 14)]
    assert [s.chain for s in second.samples] == list(range(8))
    assert [s.answer for s in second.samples[:4]] == [s.answer for s in first.samples]
    assert second.votes == {"5": 5.0, "4": 3.0}
    reused = sum(s.tokens for s in first.samples)
    assert mem.reused == 4 and mem.saved == reused
    assert second.completion_tokens == sum(s.tokens for s in second.samples[4:])
    assert any(isinstance(e, StrategyNote) and "4 chain(s) from the log" in e.text
               for e in events)


def test_the_budget_counts_only_new_tokens(log: RunLog) -> None:
    engine = SpyEngine([think(4, words=10), think(4, words=10)])
    run(engine, "vote", memory(log), n=2)
    engine.enqueue(think(4, words=10))
    second, _ = run(engine, "vote", memory(log), n=3, budget=20)
    assert [s.finish_reason for s in second.samples] == ["eos"] * 3
    assert sum(s.tokens for s in second.samples) > 30
    assert second.completion_tokens == second.samples[2].tokens <= 20


def test_a_repeated_run_samples_nothing(log: RunLog) -> None:
    engine = SpyEngine([think(4), think(6), think(4)])
    first, _ = run(engine, "vote", memory(log), n=3)
    engine.starts.clear()
    second, _ = run(engine, "vote", memory(log), n=3)
    assert engine.starts == []
    assert second.completion_tokens == 0
    assert [(s.answer, s.text, s.tokens) for s in second.samples] == [
        (s.answer, s.text, s.tokens) for s in first.samples]


def test_a_low_chain_is_one_vote_of_high_with_its_confidence(log: RunLog) -> None:
    """`low` (cot) logs chain 0; `confidence` replays it through its own token hook, so
    chain 0's confidence is what a cold run computes."""
    chains = [think(7, logprob=-0.05), think(7, logprob=-0.3), think(9, logprob=-1.2)]
    cold, _ = run(SpyEngine(list(chains)), "confidence", None, n=3, warmup=3, window=2)
    engine = SpyEngine([chains[0]])
    run(engine, "cot", memory(log))
    engine.enqueue(*chains[1:])
    engine.starts.clear()
    warm, _ = run(engine, "confidence", memory(log), n=3, warmup=3, window=2)
    assert [(n, seed) for n, seed, _ in engine.starts] == [(2, 11)]
    assert [s.confidence for s in warm.samples] == [s.confidence for s in cold.samples]
    assert warm.answer == cold.answer == "7"
    assert warm.completion_tokens == cold.completion_tokens - cold.samples[0].tokens


def test_the_greedy_chain_is_chain_0_of_a_greedy_first_vote(log: RunLog) -> None:
    """`low` decodes greedily on instruct models; `high` votes over the greedy chain and
    samples: the logged greedy chain is its chain 0, and chain 1 on is sampled, not greedy."""
    engine = SpyEngine([think(4)])
    low, _ = run(engine, "cot", memory(log), sampling=Sampling(seed=3, temperature=0.0))
    engine.enqueue(think(5), think(5))
    engine.starts.clear()
    engine.greedy_first.clear()
    high, _ = run(engine, "vote", memory(log), n=3, greedy_first=True)
    assert [(n, seed) for n, seed, _ in engine.starts] == [(2, 11)]
    assert engine.greedy_first == [False]
    assert high.samples[0].text == low.samples[0].text
    assert high.votes == {"5": 2.0, "4": 1.0}


def test_other_sampling_settings_share_nothing(log: RunLog) -> None:
    engine = SpyEngine([think(4), think(4)])
    run(engine, "cot", memory(log))
    engine.starts.clear()
    run(engine, "cot", memory(log), sampling=Sampling(seed=10, temperature=0.9))
    assert len(engine.starts) == 1


def test_without_reuse_chains_are_logged_but_not_replayed(log: RunLog) -> None:
    engine = SpyEngine([think(4), think(4)])
    run(engine, "cot", memory(log))
    engine.starts.clear()
    mem = memory(log, reuse=False)
    run(engine, "cot", mem)
    assert len(engine.starts) == 1 and mem.reused == 0


def test_a_capped_chain_goes_on_thinking_when_the_cap_rises(log: RunLog) -> None:
    engine = SpyEngine([Script("<think>" + " a" * 20), Script(" \\boxed{3}")])
    low, _ = run(engine, "cot", memory(log), think_cap=5)  # <think> and 4 words
    assert low.samples[0].thinking == "a a a a" and low.answer == "3"
    engine.enqueue(Script(" b b </think> \\boxed{4}"))
    engine.starts.clear()
    mem = memory(log)
    high, _ = run(engine, "cot", mem, think_cap=50)
    (_n, _seed, prompt), = engine.starts
    assert prompt.endswith("<think> a a a a") and CLOSE_THINKING not in prompt
    assert high.answer == "4" and high.samples[0].thinking == "a a a a b b"
    assert mem.saved == 5 and high.completion_tokens == high.samples[0].tokens - 5


def test_the_replay_caps_where_this_run_caps(log: RunLog) -> None:
    engine = SpyEngine([Script("<think>" + " a" * 20 + " </think> \\boxed{3}")])
    run(engine, "cot", memory(log), think_cap=100)
    engine.enqueue(Script("\\boxed{5}"))
    engine.starts.clear()
    capped, _ = run(engine, "cot", memory(log), think_cap=4)
    (_n, _seed, prompt), = engine.starts
    assert prompt.endswith("<think> a a a" + CLOSE_THINKING)
    assert capped.answer == "5" and capped.completion_tokens == 1


def test_the_same_cap_replays_without_the_engine(log: RunLog) -> None:
    engine = SpyEngine([Script("<think>" + " a" * 20), Script(" \\boxed{3}")])
    first, _ = run(engine, "cot", memory(log), think_cap=5)
    engine.starts.clear()
    again, _ = run(engine, "cot", memory(log), think_cap=5)
    assert engine.starts == [] and again.text == first.text and again.answer == "3"


def test_a_hook_stops_a_replayed_chain_where_it_would_stop_a_live_one(log: RunLog) -> None:
    engine = SpyEngine([think(4, words=10)])
    run(engine, "cot", memory(log))
    loaded = Loaded(engine, "prompted", "spy")
    task = make_task(QUESTION, loaded, Sampling(seed=10))
    task.memory = memory(log)
    engine.starts.clear()
    chains = run_chains(task, 1, ChainConfig(think_cap=1024, force_answers=False),
                        on_token=lambda st, _e: "abort" if st.tokens >= 3 else None)
    samples = drain_chains(chains)
    assert engine.starts == []
    assert samples[0].finish_reason == "abort" and samples[0].tokens == 3


def test_an_interrupted_chain_is_continued_later(log: RunLog) -> None:
    engine = SpyEngine([Script("<think>" + " a" * 30 + " </think> \\boxed{1}")])
    loaded = Loaded(engine, "prompted", "spy")
    task = make_task(QUESTION, loaded, Sampling(seed=10))
    task.memory = memory(log)
    events = iter_events(run_plan(task, make_plan(None, "cot", {})), stop_after=6)
    assert events and task.interrupted
    engine.enqueue(Script(" b </think> \\boxed{2}"))
    engine.starts.clear()
    result, _ = run(engine, "cot", memory(log))
    (_n, _seed, prompt), = engine.starts
    assert prompt.endswith(" a a a")
    assert result.answer == "2" and result.samples[0].finish_reason == "eos"


@pytest.mark.parametrize("config", [ChainConfig(reuse=False),
                                    ChainConfig(probe=ProbeConfig(every=8))])
def test_chains_are_not_replayed_where_the_live_model_decides(log: RunLog,
                                                              config: ChainConfig) -> None:
    """Forking hooks (mcts) and answer probes need the live model: no replay there, but
    the chains are still logged."""
    engine = SpyEngine([think(4), think(4)])
    run(engine, "cot", memory(log))
    task = make_task(QUESTION, Loaded(engine, "prompted", "spy"), Sampling(seed=10))
    task.memory = mem = memory(log)
    engine.starts.clear()
    samples = drain_chains(run_chains(task, 1, config))
    assert len(engine.starts) == 1 and mem.reused == 0 and samples[0].answer == "4"
    store = log.store
    assert store is not None
    assert len(store.chains(mem.run_id)) == 1


def test_a_hook_asking_for_forks_gets_a_live_chain(log: RunLog) -> None:
    """A replayed chain cannot be forked: when a hook asks, the chain goes on live and
    forks there."""
    engine = SpyEngine([think(4, words=6)])
    run(engine, "cot", memory(log))
    engine.enqueue(Script(" more </think> \\boxed{4}"), Script(" other </think> \\boxed{5}"))
    task = make_task(QUESTION, Loaded(engine, "prompted", "spy"), Sampling(seed=10))
    task.memory = memory(log)
    engine.starts.clear()

    def fork_once(st: ChainState, _event: Any) -> None:
        if st.tokens == 3 and st.forked_from is None:
            st.fork = 1

    samples = drain_chains(run_chains(task, 1, ChainConfig(force_answers=False),
                                      on_token=fork_once))
    (_n, _seed, prompt), = engine.starts
    assert prompt.endswith("<think> hmm hmm")
    assert [s.chain for s in samples] == [0, 1] and samples[1].answer == "5"


def test_missing_chains_are_sampled_with_their_own_seeds(log: RunLog) -> None:
    engine = SpyEngine([think(1), think(2), think(3), think(4)])
    run(engine, "vote", memory(log), n=4)
    store = log.store
    assert store is not None
    store._write("DELETE FROM chains WHERE chain IN (1, 3)")
    engine.enqueue(think(2), think(4))
    engine.starts.clear()
    again, _ = run(engine, "vote", memory(log), n=4)
    assert [(n, seed) for n, seed, _ in engine.starts] == [(1, 11), (1, 13)]
    assert [s.answer for s in again.samples] == ["1", "2", "3", "4"]


def test_plain_replays_point_at_their_source(log: RunLog) -> None:
    engine = SpyEngine([think(4)])
    first, _ = run(engine, "cot", memory(log))
    run(engine, "cot", memory(log))
    store = log.store
    assert store is not None
    rows = store._read("SELECT run_id, stream IS NULL AS bare, reused_from, reused_tokens "
                       "FROM chains ORDER BY id")
    tokens = first.samples[0].tokens
    assert [tuple(r) for r in rows] == [(1, 0, None, 0), (2, 1, 1, tokens)]


def drain_chains(chains: Any) -> Any:
    while True:
        try:
            next(chains)
        except StopIteration as stop:
            return stop.value


def iter_events(run: Any, stop_after: int) -> list[StrategyEvent]:
    """Drive a strategy, throwing Ctrl-C in after `stop_after` events."""
    events: list[StrategyEvent] = []
    pending: BaseException | None = None
    while True:
        try:
            event = run.throw(pending) if pending else next(run)
        except StopIteration:
            return events
        pending = None
        events.append(event)
        if len(events) == stop_after:
            pending = KeyboardInterrupt()

