"""Running chains of thought on an engine: the machinery every strategy shares.

`run_chains` starts n continuations of the task's prompt (plus an optional prefix the
chains continue from), splits each into thinking and answer as it streams, closes thinking
at a cap, keeps to the task's token and time budget, and turns engine events into chain
events. When budget or time runs out it forces final answers from the partial chains with
what is left; on Ctrl-C it stops and keeps what was produced. It returns the samples.
With a task memory (the run log) it replays the chains the log holds, samples only the
missing ones, continues replayed chains that stopped short, and records every chain.

At about 400 lines this stays one module: sampling, forking and forcing answers all run
on the same `ChainRun`/`ChainState` and share one per-token step (`_on_token`) and one
way of ending a chain (`_finish`), so a split would only carry those across a module line.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from ponder.answers import extract_answer
from ponder.engines.base import Generation, Sampling
from ponder.events import (
    BudgetUpdate,
    ChainDone,
    ChainStarted,
    ChainText,
    FinishReason,
    Sample,
    SequenceDone,
    StrategyEvent,
    TokenEvent,
)
from ponder.strategies.base import Task
from ponder.strategies.probes import ProbeConfig, Probes
from ponder.strategies.reuse import (
    PriorChain,
    blocks,
    continue_chain,
    find_priors,
    remember,
    replay_all,
)
from ponder.strategies.stats import Piece, chain_stats
from ponder.thinking import CLOSE_THINKING, THINK_OPEN, ThinkSplitter, split_thinking

FORCE_REASONS: frozenset[FinishReason] = frozenset({"budget", "time", "length"})


@dataclass
class ChainState:
    """A chain as it streams; `on_token` callbacks may read and annotate it."""

    chain: int
    splitter: ThinkSplitter
    text: str = ""
    tokens: int = 0
    thinking_tokens: int = 0
    capped: bool = False
    logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[tuple[tuple[str, float], ...]] = field(default_factory=list)
    pieces: list[Piece] = field(default_factory=list)
    confidence: float | None = None
    sample: Sample | None = None
    prior_tokens: int = 0
    fork: int = 0
    """Set by an `on_token` hook: fork this chain `fork` times after this token."""
    forked_from: int | None = None
    index: int = 0
    stream: list[TokenEvent] = field(default_factory=list)
    ended: FinishReason | None = None
    prior: PriorChain | None = None
    reused: int = 0
    continued: bool = False


OnToken = Callable[[ChainState, TokenEvent], "FinishReason | None"]
Chains = Generator[StrategyEvent, None, list[Sample]]


@dataclass
class ChainConfig:
    """How chains run: thinking cap, tokens kept back to force answers, a display label."""

    think_cap: int | None = None
    answer_reserve: int = 64
    answer_tokens: int = 1024
    force_answers: bool = True
    label: str = ""
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    reuse: bool = True
    """Replay chains the run log holds; off for hooks that fork chains (the log keeps a
    chain's tokens, not the forks a hook made along the way)."""


def run_chains(
    task: Task,
    n: int,
    config: ChainConfig,
    *,
    sampling: Sampling | None = None,
    first_chain: int = 0,
    prefix: str = "",
    on_token: OnToken | None = None,
    prior_tokens: int = 0,
) -> Chains:
    """Run n chains to completion; yields chain events, returns their samples in order.

    `prior_tokens` continues chains whose first `prior_tokens` tokens are in `prefix`
    (a chain resumed after a stop): their token counts start there. Chain k is seeded
    with seed + k, so chains started in later rounds (first_chain > 0) differ from the
    first round's. When the task has a memory (the run log), chains it already holds are
    replayed instead of sampled (see :mod:`ponder.strategies.reuse`): they cost no budget,
    and only the missing chains are sampled, with the seeds they would have had.
    """
    sampling = _chain_sampling(task, sampling or task.sampling, first_chain, config)
    if task.interrupted or task.budget.out_of_time():
        return []
    prompt = task.prompt + prefix
    run = ChainRun(task, config, prompt, prefix, prior_tokens, fit_context(task, prompt, sampling),
               first_chain, on_token, n)
    priors = find_priors(run)
    if not priors and task.budget.remaining() == 0:
        return []
    try:
        yield from replay_all(run, priors)
        for lo, count in blocks([i for i in range(n) if i not in run.states]):
            yield from _sample_block(run, lo, count)
        for st in [s for s in run.ordered() if s.sample is None and s.prior is not None]:
            yield from continue_chain(run, st)
    except KeyboardInterrupt:
        task.interrupted = True
        for st in run.ordered():
            if st.sample is None:
                yield run.finish(st, "interrupted")
    ordered = run.ordered()
    if config.force_answers and not task.interrupted:
        yield from _force_answers(task, ordered, config)
    remember(run, ordered)
    yield BudgetUpdate(task.budget.used, task.budget.tokens, task.budget.elapsed())
    return [st.sample for st in ordered if st.sample is not None]


def _chain_sampling(task: Task, sampling: Sampling, first_chain: int, config: ChainConfig
                    ) -> Sampling:
    """The first chain's sampling: its seed, the cap's token limit, the logged alternatives."""
    if first_chain:
        sampling = sampling.with_(seed=sampling.seed + first_chain)
    if config.think_cap is not None:
        limit = config.think_cap + config.answer_tokens
        sampling = sampling.with_(max_tokens=min(sampling.max_tokens, limit))
    memory = task.memory
    if memory is not None and sampling.top_logprobs < memory.top_logprobs:
        sampling = sampling.with_(top_logprobs=memory.top_logprobs)
    return sampling


@dataclass
class ChainRun:
    """One `run_chains` call: chain i (0-based here) is seeded `sampling.seed + i`.

    :mod:`ponder.strategies.reuse` drives it for the chains the log holds."""

    task: Task
    config: ChainConfig
    prompt: str
    prefix: str
    prior_tokens: int
    sampling: Sampling
    first_chain: int
    on_token: OnToken | None
    n: int
    states: dict[int, ChainState] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)

    def new_state(self, i: int) -> ChainState:
        st = _new_state(self.task, self.first_chain + i, self.prefix)
        st.tokens = st.prior_tokens = self.prior_tokens
        st.index = i
        self.states[i] = st
        return st

    def ordered(self) -> list[ChainState]:
        return [self.states[i] for i in sorted(self.states)]

    def seeded(self, i: int) -> Sampling:
        """Chain i's sampling: its seed; only chain 0 may be the greedy one."""
        if not i:
            return self.sampling
        return self.sampling.with_(seed=self.sampling.seed + i, greedy_first=False)

    def feed(self, st: ChainState, event: TokenEvent, gen: Generation
             ) -> Iterator[StrategyEvent]:
        """A logged token through the live token handling, without counting the budget."""
        return _on_token(self.task, gen, st, event, self.config, self.on_token, count=False)

    def finish(self, st: ChainState, reason: FinishReason) -> ChainDone:
        st.ended = reason
        st.sample = _finish(self.task, st, reason)
        return _done_event(st.sample)

    def start(self, prompt: str, sampling: Sampling, count: int,
              index_of: Callable[[int], int]) -> Generator[StrategyEvent, None, None]:
        """Sample `count` chains continuing `prompt` (one engine call) with what budget is
        left; the generation's sequence s is chain `index_of(s)`."""
        task = self.task
        remaining = task.budget.remaining()
        budget = None if remaining is None else remaining - _reserve(remaining, count,
                                                                     self.config)
        gen = task.engine.start(prompt, fit_context(task, prompt, sampling), n=count,
                                budget=budget)
        task.prompt_tokens += task.engine.count_tokens(prompt)
        yield from _drive(self, gen, index_of)


def _sample_block(run: ChainRun, lo: int, count: int) -> Generator[StrategyEvent, None, None]:
    """Sample chains lo .. lo+count-1 together."""
    task = run.task
    if task.interrupted or task.budget.remaining() == 0 or task.budget.out_of_time():
        return
    yield from run.start(run.prompt, run.seeded(lo), count, lambda seq: lo + seq)


def _drive(run: ChainRun, gen: Generation, index_of: Callable[[int], int]
           ) -> Generator[StrategyEvent, None, None]:
    """Turn one generation's engine events into chain events (its chains by `index_of`)."""
    task = run.task
    live: dict[int, ChainState] = {}
    probes = Probes(task, run.config.probe) if run.config.probe.every else None
    try:
        for event in gen:
            if probes is not None and probes.owns(event.seq):
                yield from probes.on_event(gen, event)
                for seq in probes.on_settle:
                    live[seq].capped = True
                continue
            st = live.get(event.seq)
            if st is None:
                i = index_of(event.seq)
                st = live[event.seq] = run.states.get(i) or run.new_state(i)
                if st.prior is None:
                    yield ChainStarted(st.chain, run.config.label)
            if isinstance(event, TokenEvent):
                st.stream.append(event)
                yield from _on_token(task, gen, st, event, run.config, run.on_token)
                if st.fork:
                    yield from _fork(run, gen, st, event.seq, live)
                if probes is not None and not event.injected and not st.capped:
                    probes.after_token(gen, event.seq, st.chain, st.thinking_tokens,
                                       st.splitter.phase == "thinking")
            elif isinstance(event, SequenceDone):
                yield run.finish(st, event.reason)
            if task.budget.out_of_time():
                for seq, other in live.items():
                    if other.sample is None:
                        gen.abort(seq, "time")
    finally:
        gen.close()


def fit_context(task: Task, prompt: str, sampling: Sampling) -> Sampling:
    """Lower max_tokens to what the context leaves after `prompt` (engines reject more).

    One token is left spare for a BOS token the engine may add to the prompt.
    """
    room = task.engine.context_length - task.engine.count_tokens(prompt) - 1
    if sampling.max_tokens <= room:
        return sampling
    return sampling.with_(max_tokens=max(1, room))


def _fork(run: ChainRun, gen: Generation, st: ChainState, seq: int,
          live: dict[int, ChainState]) -> Iterator[ChainStarted]:
    """Fork the live sequence of `st` as its hook asked: each child continues from the
    parent's text (and KV), as a new chain with a copy of the parent's state. Children
    are numbered after every chain of the call; the log does not keep them (they are not
    a prompt and a seed)."""
    k, st.fork = st.fork, 0
    for child in gen.fork(seq, k):
        clone = copy.deepcopy(st)
        clone.index = max([run.n - 1, *run.states]) + 1
        clone.chain, clone.forked_from = run.first_chain + clone.index, st.chain
        clone.stream, clone.prior, clone.continued = [], None, False
        run.states[clone.index] = live[child] = clone
        yield ChainStarted(clone.chain, run.config.label)


def _new_state(task: Task, chain: int, prefix: str) -> ChainState:
    st = ChainState(chain, ThinkSplitter(task.thinks_first), text=prefix)
    st.splitter.feed(prefix)
    return st


def _reserve(remaining: int, n: int, config: ChainConfig) -> int:
    """Tokens held back from sampling so that cut chains can still state an answer."""
    if not config.force_answers:
        return 0
    return min(config.answer_reserve * n, remaining // 4)


def _on_token(
    task: Task,
    gen: Generation,
    st: ChainState,
    event: TokenEvent,
    config: ChainConfig,
    on_token: OnToken | None,
    *,
    count: bool = True,
) -> Generator[StrategyEvent, None, None]:
    st.text += event.text
    st.pieces.append((event.text, None if event.injected else event.logprob))
    if not event.injected:
        st.tokens += 1
        st.thinking_tokens += st.splitter.phase == "thinking"
        task.budget.used += count
        if event.logprob is not None:
            st.logprobs.append(event.logprob)
        if event.top_logprobs is not None:
            st.top_logprobs.append(event.top_logprobs)
    for kind, piece in st.splitter.feed(event.text):
        if kind == "moved":
            st.thinking_tokens = st.tokens - st.prior_tokens
            yield ChainText(st.chain, "thinking", piece, st.tokens, st.confidence, moved=True)
        else:
            yield ChainText(st.chain, kind, piece, st.tokens, st.confidence)
    if (config.think_cap is not None and not st.capped and st.splitter.phase == "thinking"
            and st.thinking_tokens >= config.think_cap):
        st.capped = True
        gen.inject(event.seq, CLOSE_THINKING)
    if on_token is not None and not event.injected:
        reason = on_token(st, event)
        if reason is not None:
            gen.abort(event.seq, reason)
    if st.tokens % 16 == 0 and not event.injected:
        yield BudgetUpdate(task.budget.used, task.budget.tokens, task.budget.elapsed())


ENDED: frozenset[FinishReason] = frozenset({"eos", "stop"})


def _finish(task: Task, st: ChainState, reason: FinishReason) -> Sample:
    thinking, answer_text = split_thinking(st.text, task.thinks_first)
    if not answer_text and reason in ENDED and thinking:
        # The model ended without closing its thinking (instruct models prefilled with
        # <think> write the whole solution there): its conclusion is the answer.
        answer_text = closing_paragraph(thinking)
    answer = extract_answer(answer_text) if answer_text else None
    return _sample(st, answer, answer_text, thinking, reason)


def closing_paragraph(text: str) -> str:
    """The last paragraph of `text` that states an answer ("" when none does)."""
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return next((p for p in reversed(paragraphs) if extract_answer(p) is not None), "")


def _sample(st: ChainState, answer: str | None, answer_text: str, thinking: str,
            reason: FinishReason) -> Sample:
    stats = chain_stats(st.pieces, st.top_logprobs, answer)
    return Sample(st.chain, answer, answer_text, thinking, st.tokens, reason, st.confidence,
                  stats=stats, thinking_tokens=st.thinking_tokens)


def _done_event(s: Sample) -> ChainDone:
    return ChainDone(s.chain, s.answer, s.tokens, s.finish_reason, s.confidence, s.score)


def _force_answers(task: Task, states: list[ChainState], config: ChainConfig) -> Chains:
    """Ask chains that were cut short for a final answer, longest first, with what is left."""
    cut = [st for st in states if st.sample is not None and st.sample.answer is None
           and st.sample.finish_reason in FORCE_REASONS]
    for st in sorted(cut, key=lambda s: -s.tokens):
        remaining = task.budget.remaining()
        if remaining == 0 or task.interrupted:
            break
        limit = config.answer_reserve if remaining is None else min(config.answer_reserve,
                                                                     remaining)
        yield from _force_one(task, st, limit)
    return []


def _force_one(task: Task, st: ChainState, max_tokens: int) -> Generator[StrategyEvent, None, None]:
    """Close the chain's thinking if still open and let the model write its answer."""
    if st.splitter.phase == "thinking":
        if not task.opens_think and THINK_OPEN not in st.text:
            st.text = THINK_OPEN + "\n" + st.text
        st.text += CLOSE_THINKING
        st.splitter = ThinkSplitter(task.thinks_first)
        st.splitter.feed(st.text)
    prompt = task.prompt + st.text
    sampling = fit_context(
        task, prompt, task.sampling.with_(temperature=0.0, max_tokens=max_tokens, seed=0)
    )
    gen = task.engine.start(prompt, sampling, n=1, budget=max_tokens)
    task.prompt_tokens += task.engine.count_tokens(prompt)
    reason = st.sample.finish_reason if st.sample else "budget"
    try:
        for event in gen:
            if isinstance(event, TokenEvent):
                yield from _on_token(task, gen, st, event, ChainConfig(), None)
    except KeyboardInterrupt:
        task.interrupted = True
    finally:
        gen.close()
    sample = _finish(task, st, reason)
    if sample.answer is None and sample.thinking:
        sample = _sample(st, extract_answer(sample.thinking), sample.text, sample.thinking,
                         reason)
    st.sample = sample
    yield _done_event(sample)
