"""Answer probes during thinking: stop a chain's thinking once its answer has settled.

Dynasor-CoT (Fu et al., 2025) and DEER (Yang et al., 2025): every `every` thinking tokens
the chain is forked (the fork shares its KV cache), the fork's thinking is closed and it is
asked for the boxed answer in at most `tokens` tokens. When the last `agree` probes give the
same answer (and, if `confidence` > 0, the last probe's answer tokens have at least that
mean probability), the chain's own thinking is closed and it writes its answer: thinking
that would only re-check a settled result is not paid for. Probe tokens count towards the
budget like any other sampled token.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from ponder.answers import equivalent, extract_answer
from ponder.engines.base import Generation
from ponder.events import SequenceDone, StrategyEvent, StrategyNote, TokenEvent
from ponder.strategies.base import Task, require
from ponder.thinking import CLOSE_THINKING

PROBE_TEXT = CLOSE_THINKING + "The final answer is \\boxed{"


@dataclass(frozen=True)
class ProbeConfig:
    every: int = 0
    """Thinking tokens between probes (0: no probes)."""
    agree: int = 2
    tokens: int = 16
    confidence: float = 0.0


@dataclass
class _Probe:
    parent_seq: int
    chain: int
    text: str = ""
    tokens: int = 0
    logprobs: list[float] = field(default_factory=list)


@dataclass
class _Watch:
    """What the probes know of one chain."""

    next_at: int
    answers: list[str | None] = field(default_factory=list)
    settled: bool = False


class Probes:
    """The probes of one generation; `run_chains` routes the probes' events here."""

    def __init__(self, task: Task, config: ProbeConfig) -> None:
        self.task = task
        self.config = config
        self._probes: dict[int, _Probe] = {}
        self._watch: dict[int, _Watch] = {}
        self.on_settle: list[int] = []
        """Sequences whose thinking the probes closed, in order."""

    def owns(self, seq: int) -> bool:
        return seq in self._probes

    def after_token(self, gen: Generation, seq: int, chain: int, thinking_tokens: int,
                    thinking: bool) -> None:
        """Fork a probe when the chain has thought `every` more tokens."""
        watch = self._watch.setdefault(chain, _Watch(self.config.every))
        if not thinking or watch.settled or thinking_tokens < watch.next_at:
            return
        watch.next_at += self.config.every
        remaining = self.task.budget.remaining()
        if remaining is not None and remaining <= self.config.tokens:
            return
        (child,) = gen.fork(seq, 1)
        gen.inject(child, PROBE_TEXT)
        self._probes[child] = _Probe(seq, chain)

    def on_event(self, gen: Generation, event: TokenEvent | SequenceDone
                 ) -> Iterator[StrategyEvent]:
        probe = self._probes[event.seq]
        if isinstance(event, TokenEvent):
            if not event.injected:
                self.task.budget.used += 1
                probe.tokens += 1
                probe.text += event.text
                if event.logprob is not None:
                    probe.logprobs.append(event.logprob)
                if "}" in probe.text or probe.tokens >= self.config.tokens:
                    gen.abort(event.seq)
            return
        del self._probes[event.seq]
        yield from self._settle(gen, probe)

    def _settle(self, gen: Generation, probe: _Probe) -> Iterator[StrategyEvent]:
        watch = self._watch[probe.chain]
        answer = extract_answer("\\boxed{" + probe.text.split("}")[0] + "}")
        watch.answers.append(answer)
        last = watch.answers[-self.config.agree:]
        if watch.settled or len(last) < self.config.agree or last[0] is None:
            return
        if not all(equivalent(last[0], a) for a in last[1:]):
            return
        if self.config.confidence and _mean_prob(probe.logprobs) < self.config.confidence:
            return
        watch.settled = True
        self.on_settle.append(probe.parent_seq)
        gen.inject(probe.parent_seq, CLOSE_THINKING)
        yield StrategyNote(f"chain {probe.chain + 1}: {self.config.agree} probes agree on "
                           f"{answer}; thinking closed")

    def is_settled(self, chain: int) -> bool:
        watch = self._watch.get(chain)
        return watch is not None and watch.settled


def check_probes(every: int, agree: int, confidence: float) -> None:
    """Validate the probe options strategies expose (probe_every, probe_agree, ...)."""
    require(every >= 0, "probe_every must be 0 (off) or more")
    require(agree >= 1, "probe_agree must be at least 1")
    require(0.0 <= confidence <= 1.0, "probe_confidence must be between 0 and 1")


def _mean_prob(logprobs: list[float]) -> float:
    return sum(math.exp(lp) for lp in logprobs) / len(logprobs) if logprobs else 0.0
