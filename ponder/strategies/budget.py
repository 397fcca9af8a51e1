"""`budget`: budget forcing, as in s1 (Muennighoff et al., 2025).

One chain thinks, with its thinking capped at `think_cap` tokens: at the cap the thinking
is closed and the model must answer (the cap counts the thinking of every segment, so it
is exact). When the model ends its thinking too early — it has thought fewer than
`min_think` tokens, or it has been extended fewer than `waits` times — the end is
suppressed: the chain is stopped at its end-of-thinking tag, the tag dropped, "Wait"
appended, and the chain continues from that prefix (never more than `max_waits` times).
Otherwise the chain simply goes on to its answer. --budget and --time bound every segment;
when they run out, the answer is forced from the thinking there is.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from ponder.events import FinishReason, Sample, StrategyEvent, StrategyNote, TokenEvent
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, ChainState, run_chains
from ponder.strategies.multistep import (
    answer_from,
    emit,
    make_result,
    no_result_reason,
    opening,
    sample_of,
)
from ponder.strategies.options import ChainOptions
from ponder.thinking import THINK_CLOSE

EXTEND: FinishReason = "abort"
"""How a segment whose thinking ended too early is stopped before it answers."""


@dataclass
class BudgetOptions(ChainOptions):
    min_think: int = 0
    waits: int = 0
    max_waits: int = 2
    wait: str = "Wait"
    answer_tokens: int = 1024

    def validate(self) -> None:
        super().validate()
        require(self.min_think >= 0, "min_think must not be negative")
        require(self.think_cap is None or self.min_think <= self.think_cap,
                "min_think must not exceed think_cap")
        require(0 <= self.waits <= self.max_waits, "waits must be between 0 and max_waits")
        require(self.max_waits <= 64, "max_waits must be at most 64")
        require(bool(self.wait.strip()), "wait must not be empty")
        require(self.answer_tokens >= 1, "answer_tokens must be at least 1")


@dataclass
class Thought:
    """The chain across its segments: thinking so far, tokens, and extensions made."""

    opts: BudgetOptions
    text: str = ""
    tokens: int = 0
    thinking_tokens: int = 0
    segment_thinking: int = 0
    waits: int = 0
    extending: bool = False
    closed: bool = False
    start: int = 0

    def wants_more(self, thought_now: int) -> bool:
        """Whether thinking that ends after `thought_now` tokens is to be extended."""
        if self.waits >= self.opts.max_waits or self.room(thought_now) <= 0:
            return False
        return self.waits < self.opts.waits or thought_now < self.opts.min_think

    def room(self, thought_now: int | None = None) -> int:
        """Thinking tokens the cap still allows."""
        if self.opts.think_cap is None:
            return 1 << 30
        used = self.thinking_tokens if thought_now is None else thought_now
        return self.opts.think_cap - used

    def on_token(self, st: ChainState, event: TokenEvent) -> FinishReason | None:
        """Stop the segment as soon as the model closes its thinking too early.

        Only a model that wrote its end-of-thinking tag is extended: one that answers
        without thinking tags has no thinking to extend, and a capped chain must answer.
        """
        self.segment_thinking = st.thinking_tokens
        if self.closed or st.capped or st.splitter.phase != "answer":
            return None
        self.closed = True
        ended = THINK_CLOSE in st.text[self.start:]
        if ended and self.wants_more(self.thinking_tokens + st.thinking_tokens):
            self.extending = True
            return EXTEND
        return None


def run(task: Task, opts: BudgetOptions) -> StrategyRun:
    thought = Thought(opts)
    final: Sample | None = None
    while final is None and thought.room() > 0:
        s = yield from _segment(task, opts, thought)
        if s is None:
            break
        ended_early = s.finish_reason == "eos" and not s.text and bool(s.thinking)
        if not thought.extending and not ended_early:
            final = s  # answered, capped or cut (answer forced), or interrupted
            thought.thinking_tokens += thought.segment_thinking
            break
        _absorb(thought, s)
        if not (thought.extending or thought.wants_more(thought.thinking_tokens)):
            break
        thought.text = thought.text.rstrip() + "\n\n" + opts.wait
        thought.waits += 1
        yield from emit(task, StrategyNote(
            f"thinking ended after {thought.thinking_tokens} tokens; "
            f"extension {thought.waits}: {opts.wait!r}"))
    if final is None:
        final = yield from _answer(task, opts, thought)
    return make_result(task, final, [final], waits=thought.waits,
                       thought_tokens=thought.thinking_tokens)


def _segment(task: Task, opts: BudgetOptions, thought: Thought
             ) -> Generator[StrategyEvent, None, Sample | None]:
    """Continue the chain from its thinking so far, capped at what the cap leaves."""
    thought.extending = thought.closed = False
    thought.segment_thinking = 0
    cap = None if opts.think_cap is None else thought.room()
    config = ChainConfig(think_cap=cap, answer_tokens=opts.answer_tokens,
                         answer_reserve=opts.answer_reserve,
                         label=f"wait {thought.waits}" if thought.waits else "")
    prefix = opening(task) + thought.text if thought.waits else ""
    thought.start = len(prefix)
    samples = yield from run_chains(task, 1, config, prefix=prefix,
                                    prior_tokens=thought.tokens, on_token=thought.on_token)
    return samples[0] if samples else None


def _absorb(thought: Thought, s: Sample) -> None:
    """Keep a segment that ended its thinking: its thinking text and its tokens."""
    thought.text = s.thinking
    thought.thinking_tokens += thought.segment_thinking
    thought.tokens = s.tokens


def _answer(task: Task, opts: BudgetOptions, thought: Thought
            ) -> Generator[StrategyEvent, None, Sample]:
    """Close the thinking and let the model answer; without budget for it, answer from
    the thinking itself."""
    text = opening(task) + thought.text
    samples = yield from answer_from(task, text, chain=0, prior_tokens=thought.tokens,
                                     max_tokens=opts.answer_tokens)
    if samples:
        return samples[0]
    return sample_of(task, 0, text, thought.tokens, no_result_reason(task))


SPEC = StrategySpec(
    "budget",
    "budget forcing (s1): thinking capped at think_cap, extended with 'Wait' when short",
    BudgetOptions,
    run,
    single_chain=True,
)
