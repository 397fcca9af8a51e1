"""`refine`: sequential self-refinement (answer, critique, revise) for `rounds` rounds.

The model answers; then, each round, it critiques the latest solution (ending with a
verdict line) and, unless the verdict is CORRECT and `stop_when_correct` is set, writes a
revised solution that takes the critique into account. The latest revision that states an
answer is the result. Every call is a chain on the task's budget and clock.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass

from ponder.events import Message, Sample, StrategyEvent, StrategyNote
from ponder.strategies.base import StrategyRun, StrategySpec, Task, require
from ponder.strategies.chains import ChainConfig, run_chains
from ponder.strategies.multistep import emit, make_result, run_on, solution_text
from ponder.strategies.options import ChainOptions
from ponder.thinking import PROMPTED_SYSTEM

CRITIC_SYSTEM = (
    "You are a careful reviewer. First think step by step inside <think> and </think> "
    "tags. After </think>, list the errors you found, if any."
)
CRITIQUE_PROMPT = (
    "Question:\n{question}\n\nProposed solution:\n{solution}\n\n"
    "Check this solution step by step for mistakes in reasoning or arithmetic. Finish with "
    "one line: 'VERDICT: CORRECT' if it is right, or 'VERDICT: INCORRECT' if it is not."
)
REVISE_PROMPT = (
    "Question:\n{question}\n\nA previous solution:\n{solution}\n\nA review of it:\n"
    "{critique}\n\nWrite a corrected, complete solution to the question, using the review "
    "where it is right. Put the final answer in \\boxed{{}}."
)
MAX_QUOTE_CHARS = 4000
_VERDICT = re.compile(r"verdict\W*\s*(correct|incorrect|wrong|right)", re.IGNORECASE)


@dataclass
class RefineOptions(ChainOptions):
    rounds: int = 2
    critique_tokens: int = 512
    stop_when_correct: bool = True

    def validate(self) -> None:
        require(0 <= self.rounds <= 16, "rounds must be between 0 and 16")
        require(self.critique_tokens >= 1, "critique_tokens must be at least 1")
        super().validate()


Solve = Generator[StrategyEvent, None, Sample | None]


def run(task: Task, opts: RefineOptions) -> StrategyRun:
    first = yield from run_chains(task, 1, opts.chain_config(label="answer"))
    solutions = list(first)
    rounds = 0
    for r in range(1, opts.rounds + 1):
        if not solutions or task.interrupted or task.budget.exhausted():
            break
        critique = yield from _critique(task, opts, solutions[-1], r, chain=2 * r - 1)
        if critique is None:
            break
        rounds = r
        if opts.stop_when_correct and verdict(critique) == "correct":
            yield from emit(task, StrategyNote(f"round {r}: the critique finds no errors"))
            break
        yield from emit(task, StrategyNote(f"round {r}: revising"))
        revised = yield from _revise(task, opts, solutions[-1], critique, r, chain=2 * r)
        if revised is None:
            break
        solutions.append(revised)
    chosen = next((s for s in reversed(solutions) if s.answer is not None),
                  solutions[-1] if solutions else None)
    return make_result(task, chosen, solutions, rounds=rounds)


def _critique(task: Task, opts: RefineOptions, solution: Sample, r: int, chain: int
              ) -> Generator[StrategyEvent, None, str | None]:
    content = CRITIQUE_PROMPT.format(question=task.question,
                                     solution=_quote(solution_text(solution)))
    prompt = task.engine.chat_prompt(_messages(task, CRITIC_SYSTEM, content))
    config = ChainConfig(think_cap=opts.think_cap, answer_tokens=opts.critique_tokens,
                         force_answers=False, label=f"critique {r}")
    sampling = task.sampling.with_(max_tokens=opts.critique_tokens + (opts.think_cap or 0))
    done = yield from run_on(task, prompt, 1, config, sampling=sampling, first_chain=chain)
    if not done:
        return None
    return (done[0].thinking + "\n\n" + done[0].text).strip()


def _revise(task: Task, opts: RefineOptions, solution: Sample, critique: str, r: int,
            chain: int) -> Solve:
    content = REVISE_PROMPT.format(question=task.question,
                                   solution=_quote(solution_text(solution)),
                                   critique=_quote(critique))
    prompt = task.engine.chat_prompt(_messages(task, PROMPTED_SYSTEM, content))
    done = yield from run_on(task, prompt, 1, opts.chain_config(label=f"revision {r}"),
                             first_chain=chain)
    return done[0] if done else None


def _messages(task: Task, system: str, content: str) -> list[Message]:
    """Prompted-thinking models get the system prompt asking for <think> tags."""
    user: Message = {"role": "user", "content": content}
    if task.style == "native":
        return [user]
    return [{"role": "system", "content": system}, user]


def _quote(text: str) -> str:
    """Long texts are quoted by their end, where the conclusion is."""
    return text if len(text) <= MAX_QUOTE_CHARS else "…" + text[-MAX_QUOTE_CHARS:]


def verdict(critique: str) -> str | None:
    """The critique's last verdict: "correct", "incorrect", or None when it gives none."""
    found = _VERDICT.findall(critique)
    if not found:
        return None
    word = found[-1].lower()
    return "correct" if word in ("correct", "right") else "incorrect"


SPEC = StrategySpec(
    "refine",
    "self-refinement: answer, critique and revise for `rounds` rounds",
    RefineOptions,
    run,
)
