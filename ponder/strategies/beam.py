"""`beam`: step-level beam search guided by a verifier.

A step is a paragraph: chains stop at a blank line ("\\n\\n"). From the question,
`width * expand` first steps are sampled; each is scored by the verifier (the model's
P("yes") that the solution so far is correct, by default) and the best `width` are kept.
Every kept beam is then continued with `expand` samples of its next step (one
`engine.start` from the beam's text with n = expand: a finished step cannot be forked),
and so on until the kept beams are finished or `max_steps` is reached. The best beam is
completed with an answer if it has none. Finished beams compete with open ones.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

from ponder.events import ChainDone, FinishReason, Sample, StrategyEvent, StrategyNote, TokenEvent
from ponder.strategies.aggregate import ballots_from, tally, weights
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, ChainState, run_chains
from ponder.strategies.multistep import answer_from, emit, holding, judge, make_result, sample_of
from ponder.strategies.verifiers import (
    NEUTRAL,
    VERIFIERS,
    Verifier,
    make_verifier,
    tokens_per_call,
)
from ponder.thinking import split_thinking

STEP_BREAK = "\n\n"
OPEN_ENDS: frozenset[FinishReason] = frozenset({"stop", "length"})
"""Finish reasons after which a beam can take another step."""


@dataclass
class BeamOptions:
    width: int = 2
    expand: int = 3
    max_steps: int = 12
    step_tokens: int = 192
    verifier: str = "self"
    top_logprobs: int = 10
    answer_tokens: int = 256
    answer_reserve: int = 64

    @property
    def max_chains(self) -> int:
        """The first step samples `width * expand` chains at once."""
        return self.width * self.expand

    def validate(self) -> None:
        require(1 <= self.width <= 16, "width must be between 1 and 16")
        require(1 <= self.expand <= 16, "expand must be between 1 and 16")
        require(1 <= self.max_steps <= 256, "max_steps must be between 1 and 256")
        require(self.step_tokens >= 1, "step_tokens must be at least 1")
        require(self.verifier in VERIFIERS,
                f"unknown verifier '{self.verifier}': choose from {', '.join(VERIFIERS)}")
        require(1 <= self.top_logprobs <= 100, "top_logprobs must be between 1 and 100")
        require(self.answer_tokens >= 1, "answer_tokens must be at least 1")
        require(self.answer_reserve >= 1, "answer_reserve must be at least 1")


@dataclass
class Beam:
    """A partial solution: its text after the prompt, tokens sampled, and score."""

    chain: int
    text: str
    tokens: int = 0
    reason: FinishReason = "stop"
    score: float | None = None
    progressed: bool = True

    @property
    def done(self) -> bool:
        return self.reason not in OPEN_ENDS


Steps = Generator[StrategyEvent, None, list[Beam]]


def run(task: Task, opts: BeamOptions) -> StrategyRun:
    verifier = make_verifier(opts.verifier, opts.top_logprobs)
    beams = [Beam(0, "")]
    steps = 0
    with holding(task.budget, opts.answer_reserve):
        for step in range(1, opts.max_steps + 1):
            if all(b.done for b in beams) or task.interrupted or task.budget.exhausted():
                break
            fresh = yield from _step(task, opts, verifier, beams, step)
            pool = [b for b in beams if b.done] + [c for c in fresh if c.progressed]
            if not pool:
                break
            beams, steps = sorted(pool, key=_rank)[: opts.width], step
            yield from emit(task, StrategyNote(f"step {step}: kept " + ", ".join(
                f"#{b.chain + 1} ({_score(b):.2f})" for b in beams)))
    chosen = yield from _finish(task, opts, beams)
    finals = [chosen] + [_sample(task, b) for b in beams[1:]]
    votes = weights(tally(ballots_from(finals, "score")))
    return make_result(task, chosen, finals, votes, steps=steps, verifier=opts.verifier)


def _step(task: Task, opts: BeamOptions, verifier: Verifier, beams: list[Beam], step: int
          ) -> Steps:
    """Expand every open beam and score the new candidates."""
    live = [b for b in beams if not b.done]
    each = opts.width * opts.expand if step == 1 else opts.expand
    first = (step - 1) * opts.width * opts.expand  # step k's chains follow step k-1's
    fresh: list[Beam] = []
    with holding(task.budget, len(live) * each * tokens_per_call(verifier)):
        for beam in live:
            fresh += yield from _expand(task, opts, beam, each, first + len(fresh), step)
    for c in fresh:
        if c.progressed and not task.interrupted:
            c.score = judge(task, verifier, task.question, _plain(task, c.text))
            s = _sample(task, c)
            yield from emit(task, ChainDone(c.chain, s.answer, c.tokens, c.reason, None,
                                            c.score))
    return fresh


def _expand(task: Task, opts: BeamOptions, beam: Beam, n: int, first: int, step: int
            ) -> Steps:
    """n samples of the beam's next step (up to a blank line)."""
    raw: dict[int, str] = {}

    def capture(st: ChainState, event: TokenEvent) -> None:
        raw[st.chain] = st.text

    sampling = task.sampling.with_(stop=(STEP_BREAK,), max_tokens=opts.step_tokens)
    config = ChainConfig(force_answers=False, label=f"step {step}")
    samples = yield from run_chains(task, n, config, sampling=sampling, first_chain=first,
                                    prefix=beam.text, on_token=capture,
                                    prior_tokens=beam.tokens)
    return [_child(beam, s, raw.get(s.chain, beam.text)[len(beam.text):]) for s in samples]


def _child(parent: Beam, s: Sample, new: str) -> Beam:
    if s.finish_reason == "stop":
        cut = new.find(STEP_BREAK)
        new = (new[:cut] if cut >= 0 else new).rstrip() + STEP_BREAK
    progressed = bool(new.strip()) or s.finish_reason not in OPEN_ENDS
    return Beam(s.chain, parent.text + new, s.tokens, s.finish_reason, None, progressed)


def _rank(b: Beam) -> tuple[float, int]:
    return (-_score(b), b.chain)


def _score(b: Beam) -> float:
    return NEUTRAL if b.score is None else b.score


def _plain(task: Task, text: str) -> str:
    """The beam as a verifier reads it: thinking and answer, tags removed."""
    thinking, answer = split_thinking(text, task.thinks_first)
    return f"{thinking}\n\n{answer}".strip()


def _sample(task: Task, b: Beam) -> Sample:
    return sample_of(task, b.chain, b.text, b.tokens, b.reason, score=b.score)


def _finish(task: Task, opts: BeamOptions, beams: list[Beam]
            ) -> Generator[StrategyEvent, None, Sample]:
    """The best beam's sample, completed with an answer when it has none; when no
    budget is left for that, the best beam that has an answer."""
    best = beams[0]
    sample = _sample(task, best)
    if sample.answer is not None and best.done:
        return sample
    done = yield from answer_from(task, best.text, chain=best.chain, prior_tokens=best.tokens,
                                  max_tokens=opts.answer_tokens, greedy=True)
    if done and done[0].answer is not None:
        done[0].score = best.score
        return done[0]
    answered = [s for s in (_sample(task, b) for b in beams) if s.answer is not None]
    return answered[0] if answered else sample


SPEC = StrategySpec(
    "beam",
    "step-level beam search: paragraphs scored by a verifier, the best `width` expanded",
    BeamOptions,
    run,
)
