"""Several generations at once on one llama.cpp engine, from several threads (integration).

The engine serves every generation whose consumer is waiting in one decode batch; these
tests check that the generations keep their own prompts, slots and hooks while sharing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from ponder.engines.base import Generation, Sampling
from ponder.engines.llamacpp import LlamaCppEngine
from ponder.events import SequenceDone, TokenEvent
from tests.models import smollm2_path

pytestmark = pytest.mark.integration

GREEDY = Sampling(temperature=0.0, max_tokens=24)
# Prompts whose greedy continuations SmolLM2-135M gets right alone, at any batch size.
COUNTING = {
    "1, 2, 3, 4, 5, 6,": " 7, 8, 9, 10",
    "a, b, c, d, e, f,": " g, h, i, j",
    "10, 20, 30, 40,": " 50, 60, 70",
}


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaCppEngine]:
    eng = LlamaCppEngine(smollm2_path(), n_ctx=512, n_slots=4)
    yield eng
    eng.close()


def texts_of(gen: Generation) -> dict[int, str]:
    """Each sequence's streamed text, checked against its SequenceDone text."""
    streamed: dict[int, str] = {}
    final: dict[int, str] = {}
    for event in gen:
        if isinstance(event, TokenEvent):
            streamed[event.seq] = streamed.get(event.seq, "") + event.text
        elif isinstance(event, SequenceDone):
            final[event.seq] = event.text
    assert streamed == {k: v for k, v in final.items() if v}
    return final


def all_free(engine: LlamaCppEngine) -> bool:
    """Every slot free and no generation left open."""
    assert engine.scheduler is not None
    return engine.slots.free_slots == [0, 1, 2, 3] and not engine.scheduler.generations


def in_threads(jobs: list[Callable[[], object]]) -> list[object]:
    """Run the jobs in threads started together; their results (or exceptions raised)."""
    results: list[object] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as err:
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a generation never finished"
    return results


def test_threads_share_decode_steps_and_keep_their_own_text(engine: LlamaCppEngine) -> None:
    def job(prompt: str) -> Callable[[], object]:
        def run() -> object:
            gen = engine.start(prompt, GREEDY)
            try:
                return texts_of(gen)[0], gen.stats.shared_steps, gen.stats.steps  # type: ignore[attr-defined]
            finally:
                gen.close()
        return run

    results = in_threads([job(p) for p in COUNTING])
    for (prompt, expected), result in zip(COUNTING.items(), results, strict=True):
        assert isinstance(result, tuple), result
        text, shared, steps = result
        assert text.startswith(expected), (prompt, text)
        assert steps > 0 and shared > 0  # decoded in batches with the other generations
    assert all_free(engine)


def test_generations_with_more_chains_than_free_slots_wait_for_them(
    engine: LlamaCppEngine,
) -> None:
    sampling = Sampling(temperature=0.8, max_tokens=12, seed=5)

    def job() -> object:
        gen = engine.start(engine.chat_prompt([{"role": "user", "content": "Say hi."}]),
                           sampling, n=3)
        try:
            done = [e for e in gen if isinstance(e, SequenceDone)]
            return sorted(d.seq for d in done), [d.tokens for d in done]
        finally:
            gen.close()

    results = in_threads([job, job])  # 6 chains, 4 slots
    for result in results:
        assert isinstance(result, tuple), result
        seqs, tokens = result
        assert seqs == [0, 1, 2] and all(0 < t <= 12 for t in tokens)
    assert engine.slots.free_slots == [0, 1, 2, 3]


def test_a_prompt_prefix_in_another_open_generation_is_reused(engine: LlamaCppEngine) -> None:
    system = "You are a careful assistant. " * 12
    first = engine.chat_prompt([{"role": "system", "content": system},
                                {"role": "user", "content": "What is 2 + 2?"}])
    second = engine.chat_prompt([{"role": "system", "content": system},
                                 {"role": "user", "content": "Name a colour."}])
    opened = threading.Event()
    release = threading.Event()

    def hold_first() -> object:
        gen = engine.start(first, GREEDY)
        try:
            next(iter(gen))  # its prompt is in a holder now
            opened.set()
            release.wait(60)
            return gen.stats.prompt_evaluated  # type: ignore[attr-defined]
        finally:
            gen.close()

    holder = threading.Thread(target=hold_first)
    holder.start()
    try:
        assert opened.wait(60)
        gen = engine.start(second, GREEDY)
        texts_of(gen)
        stats = gen.stats  # type: ignore[attr-defined]
        gen.close()
    finally:
        release.set()
        holder.join(60)
    assert stats.prompt_reused >= engine.count_tokens(system)
    assert stats.prompt_evaluated < engine.count_tokens(second) - engine.count_tokens(system)


def test_an_idle_generation_in_another_thread_does_not_stall_this_one(
    engine: LlamaCppEngine,
) -> None:
    started = threading.Event()
    release = threading.Event()

    def idle() -> None:
        gen = engine.start("x, y,", GREEDY)  # started, never iterated
        started.set()
        release.wait(60)
        gen.close()

    other = threading.Thread(target=idle)
    other.start()
    try:
        assert started.wait(60)
        gen = engine.start("1, 2, 3, 4, 5, 6,", GREEDY)
        assert texts_of(gen)[0].startswith(COUNTING["1, 2, 3, 4, 5, 6,"])
        gen.close()
    finally:
        release.set()
        other.join(60)
    assert all_free(engine)


def test_starting_again_in_the_same_thread_closes_the_open_generation(
    engine: LlamaCppEngine,
) -> None:
    first = engine.start("a, b, c, d, e, f,", GREEDY)
    assert isinstance(next(iter(first)), TokenEvent)
    second = engine.start("1, 2, 3, 4, 5, 6,", GREEDY)
    assert list(first) == []
    assert texts_of(second)[0].startswith(" 7, 8, 9")
    second.close()


def test_the_engine_says_it_is_thread_safe(engine: LlamaCppEngine) -> None:
    assert engine.thread_safe and engine.capacity == 4
