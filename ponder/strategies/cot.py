"""`cot`: one chain of thought, thinking then answer, thinking closed at an optional cap.

With `probe_every` > 0 the chain's answer is probed during thinking and thinking ends once
`probe_agree` probes agree (`ponder.strategies.probes`)."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Result, Sample
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, run_chains
from ponder.strategies.probes import ProbeConfig, check_probes


@dataclass
class CotOptions:
    think_cap: int | None = 1024
    answer_reserve: int = 64
    probe_every: int = 0
    probe_agree: int = 2
    probe_confidence: float = 0.0

    def validate(self) -> None:
        require(self.think_cap is None or self.think_cap >= 1, "think_cap must be at least 1")
        require(self.answer_reserve >= 1, "answer_reserve must be at least 1")
        check_probes(self.probe_every, self.probe_agree, self.probe_confidence)

    def probe(self) -> ProbeConfig:
        return ProbeConfig(self.probe_every, self.probe_agree, confidence=self.probe_confidence)


def run(task: Task, opts: CotOptions) -> StrategyRun:
    config = ChainConfig(think_cap=opts.think_cap, answer_reserve=opts.answer_reserve,
                         probe=opts.probe())
    samples = yield from run_chains(task, 1, config)
    return single_result(task, samples)


def single_result(task: Task, samples: list[Sample]) -> Result:
    """The result of a strategy that ends with one chain (the last sample)."""
    if not samples:
        return Result(None, "", "", "budget" if not task.interrupted else "interrupted",
                      prompt_tokens=task.prompt_tokens, interrupted=task.interrupted)
    s = samples[-1]
    return Result(
        answer=s.answer,
        text=s.text,
        thinking=s.thinking,
        finish_reason=s.finish_reason,
        prompt_tokens=task.prompt_tokens,
        completion_tokens=task.budget.used,
        thinking_tokens=_thinking_tokens(task, s),
        samples=samples,
        interrupted=task.interrupted,
    )


def _thinking_tokens(task: Task, s: Sample) -> int:
    return task.engine.count_tokens(s.thinking) if s.thinking else 0


SPEC = StrategySpec("cot", "one chain of thought, thinking closed at think_cap tokens",
                    CotOptions, run, single_chain=True)
