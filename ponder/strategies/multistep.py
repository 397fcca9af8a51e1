"""What strategies of several steps share: Ctrl-C-safe events, budget hold-backs, chains on
other prompts, a greedy chain asked the one-chain way, finishing a chain with an answer,
judging a solution, a chain-confidence hook, and the Result.

Ctrl-C reaches a strategy as a KeyboardInterrupt thrown in at the event it was suspended on
(see `ponder.cli.ask.drive`). Inside `run_chains` that is handled; :func:`emit` and
:func:`tap` make the strategy's own events just as safe: they mark the task interrupted
(or pass the interrupt on to the chains they wrap) so the strategy answers with what it has.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from ponder.answers import extract_answer
from ponder.engines.base import Sampling
from ponder.events import FinishReason, Result, Sample, StrategyEvent, TokenEvent
from ponder.strategies.base import Budget, Task
from ponder.strategies.chains import ChainConfig, Chains, ChainState, OnToken, run_chains
from ponder.strategies.verifiers import Verifier
from ponder.thinking import CLOSE_THINKING, THINK_OPEN, ThinkSplitter, split_thinking

R = TypeVar("R")
Events = Generator[StrategyEvent, None, None]
After = Callable[[StrategyEvent], Iterable[StrategyEvent]]


def emit(task: Task, *events: StrategyEvent) -> Events:
    """Yield events; a Ctrl-C arriving at one marks the task interrupted instead of raising."""
    for event in events:
        try:
            yield event
        except KeyboardInterrupt:
            task.interrupted = True


def tap(
    run: Generator[StrategyEvent, None, R],
    after: After,
) -> Generator[StrategyEvent, None, R]:
    """Forward `run`'s events, each followed by `after(event)`'s; returns `run`'s value.

    A Ctrl-C thrown in at any of these events is thrown on into `run`, as `yield from`
    would, so the chains wrap up and keep what they produced.
    """
    thrown: BaseException | None = None
    try:
        while True:
            try:
                event = run.throw(thrown) if thrown is not None else next(run)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            thrown = None
            try:
                yield event
                yield from after(event)
            except KeyboardInterrupt as exc:
                thrown = exc
    finally:
        run.close()


@contextmanager
def holding(budget: Budget, tokens: int) -> Iterator[int]:
    """Keep `tokens` of the budget back (for verifier calls or a final answer) meanwhile."""
    if budget.tokens is None or tokens <= 0:
        yield 0
        return
    held = min(tokens, budget.remaining() or 0)
    budget.tokens -= held
    try:
        yield held
    finally:
        budget.tokens += held


def run_on(
    task: Task,
    prompt: str,
    n: int,
    config: ChainConfig,
    *,
    sampling: Sampling | None = None,
    first_chain: int = 0,
    on_token: OnToken | None = None,
) -> Chains:
    """`run_chains` on another prompt (a critique, a revision) with the task's budget."""
    sub = dataclasses.replace(task, _prompt=prompt, prompt_tokens=0)
    try:
        return (yield from run_chains(sub, n, config, sampling=sampling,
                                      first_chain=first_chain, on_token=on_token))
    finally:
        task.prompt_tokens += sub.prompt_tokens
        task.interrupted = task.interrupted or sub.interrupted


def run_led(
    task: Task,
    n: int,
    config: ChainConfig,
    *,
    sampling: Sampling,
    prefix: str = "",
    on_token: OnToken | None = None,
) -> Chains:
    """`run_chains` for n chains whose first is the greedy one (`greedy_first`), with that
    chain asked the way one-chain strategies ask (`Task.lead`): it is the chain `low` runs
    (the same prompt, decoding and seed), so the run log can hand it over. The lead runs
    first, the other chains then decode together with their own seeds (chain k is seeded
    seed + k either way). Where the family advises against greedy decoding
    (`Task.greedy_lead` off), the first chain is sampled like the rest."""
    lead = task.led() if sampling.greedy_first and not prefix else None
    if not task.greedy_lead:
        sampling = sampling.with_(greedy_first=False)
    if lead is None:
        return (yield from run_chains(task, n, config, sampling=sampling, prefix=prefix,
                                      on_token=on_token))
    try:
        first = yield from run_chains(lead, 1, config, sampling=sampling, on_token=on_token)
    finally:
        task.prompt_tokens += lead.prompt_tokens
        task.interrupted = task.interrupted or lead.interrupted
    if n == 1:
        return first
    rest = yield from run_chains(task, n - 1, config, sampling=sampling.with_(greedy_first=False),
                                 first_chain=1, on_token=on_token)
    return first + rest


def opening(task: Task) -> str:
    """What a continuation must start with to be inside a thinking block."""
    return "" if task.opens_think else THINK_OPEN + "\n"


NO_THINKING = "Okay, I think I have finished thinking."


def skip_thinking(task: Task) -> str:
    """A prefix holding an empty, closed thinking block: NoThinking (Ma et al., 2025), where
    reasoning models answer at once; cheap answers to vote on."""
    return opening(task) + NO_THINKING + CLOSE_THINKING


def in_thinking(task: Task, text: str) -> bool:
    """Whether `text` (a continuation of the task's prompt) is still inside its thinking."""
    splitter = ThinkSplitter(task.thinks_first)
    splitter.feed(text)
    return splitter.state == "thinking"


def close_thinking(task: Task, text: str) -> str:
    """`text` with its thinking closed, so that what follows is the answer."""
    if not in_thinking(task, text):
        return text
    if not task.opens_think and THINK_OPEN not in text:
        text = opening(task) + text
    return text.rstrip() + CLOSE_THINKING


def answer_from(
    task: Task,
    text: str,
    *,
    chain: int,
    prior_tokens: int,
    max_tokens: int,
    label: str = "answer",
    greedy: bool = False,
) -> Chains:
    """Continue a chain's `text` into its final answer, closing its thinking first."""
    sampling = task.sampling.with_(max_tokens=max_tokens)
    if greedy:
        sampling = sampling.with_(temperature=0.0)
    config = ChainConfig(answer_reserve=min(64, max_tokens), label=label)
    return (yield from run_chains(task, 1, config, sampling=sampling, first_chain=chain,
                                  prefix=close_thinking(task, text),
                                  prior_tokens=prior_tokens))


def sample_of(
    task: Task, chain: int, text: str, tokens: int, reason: FinishReason,
    score: float | None = None, confidence: float | None = None,
) -> Sample:
    """A Sample for a chain's raw `text` (a continuation of the task's prompt)."""
    thinking, answer_text = split_thinking(text, task.thinks_first)
    answer = extract_answer(answer_text) if answer_text else None
    return Sample(chain, answer, answer_text, thinking, tokens, reason, confidence, score)


def judge(task: Task, verifier: Verifier, question: str, solution: str) -> float | None:
    """The verifier's score, or None when interrupted or out of time (Ctrl-C safe)."""
    if task.interrupted or task.budget.out_of_time():
        return None
    try:
        return verifier.score(task, question, solution)
    except KeyboardInterrupt:
        task.interrupted = True
        return None


def solution_text(sample: Sample) -> str:
    """What a verifier reads: the answer part, or the thinking when there is no answer."""
    return sample.text.strip() or sample.thinking.strip()


def no_result_reason(task: Task) -> FinishReason:
    if task.interrupted:
        return "interrupted"
    return "time" if task.budget.out_of_time() else "budget"


def make_result(
    task: Task,
    chosen: Sample | None,
    samples: list[Sample],
    votes: dict[str, float] | None = None,
    **settings: object,
) -> Result:
    """The Result for `chosen` among `samples`; `settings` records how the run went."""
    if chosen is None:
        return Result(None, "", "", no_result_reason(task), prompt_tokens=task.prompt_tokens,
                      completion_tokens=task.budget.used, samples=samples,
                      votes=votes or {}, settings=dict(settings),
                      interrupted=task.interrupted)
    answer = chosen.answer
    if answer is None and chosen.thinking:
        answer = extract_answer(chosen.thinking)
    return Result(
        answer=answer,
        text=chosen.text,
        thinking=chosen.thinking,
        finish_reason=chosen.finish_reason,
        prompt_tokens=task.prompt_tokens,
        completion_tokens=task.budget.used,
        thinking_tokens=task.engine.count_tokens(chosen.thinking) if chosen.thinking else 0,
        samples=samples,
        votes=votes or {},
        settings=dict(settings),
        interrupted=task.interrupted,
    )


def mean_probability() -> OnToken:
    """An on_token hook keeping each chain's confidence at its geometric-mean token
    probability (exp of the mean logprob), updated in O(1) per token."""
    sums: dict[int, tuple[float, int]] = {}

    def hook(st: ChainState, event: TokenEvent) -> None:
        if event.logprob is None:
            return
        total, count = sums.get(st.chain, (0.0, 0))
        total, count = total + event.logprob, count + 1
        sums[st.chain] = (total, count)
        st.confidence = math.exp(total / count)

    return hook
