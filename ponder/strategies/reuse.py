"""Replaying a logged chain through this run's token handling, as if it were sampled now.

The logged tokens go through the same code as live ones (thinking split, thinking cap,
the strategy's `on_token` hook) but cost nothing: they do not count against the budget.
The replay follows the log for as long as this run would have produced the same chain:

- the run's hook stops the chain (an early stop), or `max_tokens` runs out: the chain ends
  there, exactly as a live run would have ended it;
- the run caps the thinking where the logged run did too: the replay goes on;
- the run caps the thinking where the logged run did not, or the logged run capped it
  where this run does not, or the log ends without the model having finished (a budget,
  a time limit, Ctrl-C, an early stop of that run): the replay stops and the chain is
  continued live from the text so far (a cap this run wants is applied first).

A continued chain is not token-for-token what a cold run would sample (the random state
differs), but it is drawn from the same distribution: the model continues its own text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ponder.engines.base import Generation, Sampling
from ponder.errors import EngineError
from ponder.events import (
    ChainStarted,
    EngineEvent,
    FinishReason,
    StrategyEvent,
    StrategyNote,
    TokenEvent,
)
from ponder.strategies.base import Task
from ponder.strategies.memory import NATURAL_ENDS, ChainRecord, PriorChain

if TYPE_CHECKING:
    from ponder.strategies.chains import ChainRun, ChainState

__all__ = ["PriorChain", "blocks", "continue_chain", "find_priors", "remember", "replay",
           "replay_all"]
Events = Generator[StrategyEvent, None, None]

Feed = Callable[["ChainState", TokenEvent, Generation], Iterator[StrategyEvent]]


@dataclass(frozen=True)
class Replayed:
    """Where a replay stopped: `reason` ends the chain; None means continue it live."""

    reason: FinishReason | None
    sampled: int


class Probe:
    """Stands in for the engine's Generation during a replay: it notes what the run's
    token handling asks for (an abort, an injection) instead of doing it."""

    def __init__(self) -> None:
        self.aborted: FinishReason | None = None
        self.injected = ""

    def __iter__(self) -> Iterator[EngineEvent]:
        return iter(())

    def abort(self, seq: int, reason: FinishReason = "abort") -> None:
        self.aborted = self.aborted or reason

    def inject(self, seq: int, text: str) -> None:
        self.injected += text

    def fork(self, seq: int, k: int) -> list[int]:
        raise EngineError("a replayed chain cannot be forked")

    def close(self) -> None:
        pass


def replay(
    st: ChainState, prior: PriorChain, *, max_tokens: int, top_logprobs: int, feed: Feed
) -> Generator[StrategyEvent, None, Replayed]:
    """Feed `prior`'s tokens to `st`; returns why and after how many tokens it stopped."""
    probe = Probe()
    events = [trim(e, top_logprobs) for e in prior.events]
    i = sampled = 0
    while i < len(events):
        if events[i].injected:
            return Replayed(None, sampled)  # the logged run capped here; this one does not
        if sampled >= max_tokens:
            return Replayed("length", sampled)
        yield from _feed(feed, st, events[i], probe)
        i, sampled = i + 1, sampled + 1
        if probe.aborted is not None:
            return Replayed(probe.aborted, sampled)
        if st.fork:  # a hook wants forks: only a live chain can give them
            return Replayed(None, sampled)
        if probe.injected:
            text, probe.injected = probe.injected, ""
            end = injected_run(events, i, text)
            if end is None:  # this run caps here; the logged one did not
                yield from _feed(feed, st, TokenEvent(0, text, injected=True), probe)
                return Replayed(None, sampled)
            for event in events[i:end]:
                yield from _feed(feed, st, event, probe)
            i = end
    if prior.reason in NATURAL_ENDS:
        return Replayed(prior.reason, sampled)
    if sampled >= max_tokens:
        return Replayed("length", sampled)
    return Replayed(None, sampled)


def _feed(feed: Feed, st: ChainState, event: TokenEvent, probe: Probe
          ) -> Iterator[StrategyEvent]:
    st.stream.append(event)
    yield from feed(st, event, probe)


def injected_run(events: Sequence[TokenEvent], start: int, text: str) -> int | None:
    """The end of the injected events from `start` when together they are `text`."""
    joined, end = "", start
    while end < len(events) and events[end].injected and len(joined) < len(text):
        joined += events[end].text
        end += 1
    return end if joined == text else None


def trim(event: TokenEvent, k: int) -> TokenEvent:
    """The event as a run asking for `k` alternatives per token would have seen it."""
    top = event.top_logprobs
    if top is None or len(top) <= k:
        return dataclasses.replace(event, seq=0)
    return dataclasses.replace(event, seq=0, top_logprobs=top[:k] if k else None)


def find_priors(run: ChainRun) -> dict[int, PriorChain]:
    """The logged chains this call can replay (none while answer probes decide where
    thinking ends, or where the config says so: they need the live model)."""
    memory = run.task.memory
    if memory is None:
        return {}
    usable = run.config.reuse and not run.config.probe.every
    found: dict[int, PriorChain] = {}
    for i in range(run.n):
        run.keys[i] = key = memory.key(run.prompt, run.seeded(i))
        prior = memory.prior(key, run.sampling.top_logprobs) if usable else None
        if prior is not None and prior.events:
            found[i] = prior
    return found


def replay_all(run: ChainRun, priors: dict[int, PriorChain]) -> Events:
    """Replay the logged chains; those to be continued are left without a sample."""
    for i in sorted(priors):
        st = run.new_state(i)
        st.prior = priors[i]
        yield ChainStarted(st.chain, run.config.label)
        done = yield from replay(st, priors[i], max_tokens=run.sampling.max_tokens,
                                 top_logprobs=run.sampling.top_logprobs, feed=run.feed)
        st.reused = done.sampled
        if done.reason is not None:
            yield run.finish(st, done.reason)
    if priors:
        saved = sum(run.states[i].reused for i in priors)
        yield StrategyNote(f"{len(priors)} chain(s) from the log: {saved:,} tokens saved")


def continue_chain(run: ChainRun, st: ChainState) -> Events:
    """Sample the rest of a replayed chain from its text so far (seeded anew: the random
    state of the logged run is not kept)."""
    task = run.task
    sampled = sum(not e.injected for e in st.stream)
    left = run.sampling.max_tokens - sampled
    if left <= 0 or task.budget.remaining() == 0 or task.interrupted:
        yield run.finish(st, "length" if left <= 0 else no_room_reason(task))
        return
    if task.budget.out_of_time():
        yield run.finish(st, "time")
        return
    st.continued = True
    seed = (run.sampling.seed + st.index + 7919 * sampled) & 0x7FFFFFFF
    sampling = run.seeded(st.index).with_(max_tokens=left, seed=seed)
    yield from run.start(task.prompt + st.text, sampling, 1, lambda _seq: st.index)


def no_room_reason(task: Task) -> FinishReason:
    return "interrupted" if task.interrupted else "budget"


def remember(run: ChainRun, states: Sequence[ChainState]) -> None:
    """Hand the call's chains to the task's memory (the run log)."""
    if run.task.memory is not None:
        run.task.memory.record(records(states, run.keys, run.sampling))


def records(states: Sequence[ChainState], keys: dict[int, str], sampling: Sampling
            ) -> list[ChainRecord]:
    """The log's records of finished chains (chain i seeded `sampling.seed + i`).

    A chain replayed to its end without new tokens points at its source instead of
    storing the same stream again.
    """
    out = []
    for st in states:
        if st.sample is None or st.index not in keys:
            continue
        plain = st.prior is not None and not st.continued
        out.append(ChainRecord(
            keys[st.index], sampling.seed + st.index, st.sample,
            None if plain else tuple(st.stream), st.ended or st.sample.finish_reason,
            sampling.top_logprobs, st.prior.id if st.prior is not None else None, st.reused))
    return out


def blocks(indices: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive chain indices as (first, count): each is one engine call."""
    out: list[tuple[int, int]] = []
    for i in indices:
        if out and out[-1][0] + out[-1][1] == i:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((i, 1))
    return out
