"""`cot`: one chain of thought, thinking then answer, thinking closed at an optional cap.

With `probe_every` > 0 the chain's answer is probed during thinking and thinking ends once
`probe_agree` probes agree (`ponder.strategies.probes`)."""

from __future__ import annotations

from dataclasses import dataclass

from ponder.events import Result, Sample
from ponder.strategies.base import StrategyRun, StrategySpec, Task
from ponder.strategies.chains import run_chains
from ponder.strategies.options import ChainOptions
from ponder.strategies.probes import ProbeConfig, check_probes


@dataclass
class CotOptions(ChainOptions):
    probe_every: int = 0
    probe_agree: int = 2
    probe_confidence: float = 0.0

    def validate(self) -> None:
        super().validate()
        check_probes(self.probe_every, self.probe_agree, self.probe_confidence)

    def probe(self) -> ProbeConfig:
        return ProbeConfig(self.probe_every, self.probe_agree, confidence=self.probe_confidence)


def run(task: Task, opts: CotOptions) -> StrategyRun:
    samples = yield from run_chains(task, 1, opts.chain_config(probe=opts.probe()))
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
