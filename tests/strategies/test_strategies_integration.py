"""Every strategy once, end to end, on the real SmolLM2-135M GGUF (integration).

The model is tiny and often wrong; these tests check the machinery on a real engine —
parallel chains, logprob confidences, verifier P(yes), forks of the budget — not accuracy.
A counting wrapper around the engine checks that --budget holds for every sampled token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from ponder.engines import EngineOptions, Loaded, load_engine
from ponder.engines.base import Engine, Generation, Sampling
from ponder.events import EngineEvent, FinishReason, Message, Result, SequenceDone
from ponder.runner import drain, make_plan, make_task, run_plan
from tests.models import smollm2_path

pytestmark = pytest.mark.integration

QUESTION = ("Natalia sold clips to 48 of her friends in April, and then she sold half as many "
            "clips in May. How many clips did Natalia sell altogether in April and May?")
BUDGET = 500


def model_path() -> Path:
    return smollm2_path()


class CountingGeneration:
    """Delegates to a real generation and counts the tokens its sequences sampled."""

    def __init__(self, inner: Generation, owner: CountingEngine) -> None:
        self.inner = inner
        self.owner = owner

    def __iter__(self) -> Iterator[EngineEvent]:
        for event in self.inner:
            if isinstance(event, SequenceDone):
                self.owner.sampled += event.tokens
            yield event

    def abort(self, seq: int, reason: FinishReason = "abort") -> None:
        self.inner.abort(seq, reason)

    def inject(self, seq: int, text: str) -> None:
        self.inner.inject(seq, text)

    def fork(self, seq: int, k: int) -> list[int]:
        return self.inner.fork(seq, k)

    def close(self) -> None:
        self.inner.close()


class CountingEngine:
    """The real engine, with a count of every token sampled and every start."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner
        self.sampled = 0
        self.starts: list[int] = []

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def context_length(self) -> int:
        return self.inner.context_length

    @property
    def thread_safe(self) -> bool:
        return self.inner.thread_safe

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        return self.inner.chat_prompt(messages)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def start(self, prompt: str, sampling: Sampling, n: int = 1, budget: int | None = None
              ) -> CountingGeneration:
        self.starts.append(n)
        return CountingGeneration(self.inner.start(prompt, sampling, n, budget), self)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def real() -> Loaded:
    return load_engine("llama", EngineOptions(model=str(model_path()), n_ctx=2048, slots=4))


def solve(real: Loaded, name: str, **opts: Any) -> tuple[Result, CountingEngine]:
    engine = CountingEngine(real.engine)
    loaded = Loaded(engine, real.style, real.model_id)
    sampling = Sampling(seed=3, max_tokens=engine.context_length)
    task = make_task(QUESTION, loaded, sampling, budget=BUDGET)
    result = drain(run_plan(task, make_plan(None, name, {k: str(v) for k, v in opts.items()})))
    assert engine.sampled <= BUDGET
    assert result.completion_tokens >= engine.sampled > 0
    assert not result.interrupted
    return result, engine


def test_budget_caps_thinking(real: Loaded) -> None:
    result, _ = solve(real, "budget", think_cap=24, min_think=16, max_waits=1)
    assert result.samples[0].tokens > 0
    assert result.settings["thought_tokens"] <= 24
    assert result.text or result.thinking


def test_vote_decodes_chains_in_one_generation(real: Loaded) -> None:
    result, engine = solve(real, "vote", n=3, think_cap=96)
    assert engine.starts[0] == 3
    assert len(result.samples) == 3
    answered = [s for s in result.samples if s.answer is not None]
    assert sum(result.votes.values()) == len(answered)
    assert all(0 < (s.confidence or 0) <= 1 for s in result.samples)


def test_confidence_reads_top_logprobs(real: Loaded) -> None:
    result, engine = solve(real, "confidence", n=4, warmup=2, window=8, think_cap=96,
                           consensus=1.0)
    assert engine.starts[:2] == [2, 2]
    assert all((s.confidence or 0) > 0 for s in result.samples)
    assert result.settings["threshold"] is not None
    assert result.settings["stopped_early"] == sum(s.finish_reason == "abort"
                                                   for s in result.samples)


def test_adaptive_rounds_draw_fresh_chains(real: Loaded) -> None:
    result, engine = solve(real, "adaptive", start=2, step=2, max_n=4, think_cap=96,
                           threshold=0.99)
    assert engine.starts[0] == 2
    assert 2 <= len(result.samples) <= 4
    if len(result.samples) == 4:
        texts = [s.text for s in result.samples]
        assert texts[2:] != texts[:2]  # later rounds are seeded apart


def test_best_of_n_scores_with_p_yes(real: Loaded) -> None:
    result, _ = solve(real, "best-of-n", n=2, think_cap=96)
    scores = [s.score for s in result.samples if s.answer is not None]
    assert scores and all(s is not None and 0.0 <= s <= 1.0 for s in scores)
    assert result.answer is not None


def test_beam_search_keeps_scored_beams(real: Loaded) -> None:
    result, _ = solve(real, "beam", width=2, expand=2, max_steps=2, step_tokens=32,
                      answer_tokens=64)
    assert 1 <= result.settings["steps"] <= 2
    assert 1 <= len(result.samples) <= 2
    assert all(s.score is None or 0.0 <= s.score <= 1.0 for s in result.samples)


def test_refine_critiques_and_revises(real: Loaded) -> None:
    result, engine = solve(real, "refine", rounds=1, think_cap=64, critique_tokens=64,
                           stop_when_correct=False)
    assert len(engine.starts) >= 2
    assert 1 <= len(result.samples) <= 2
