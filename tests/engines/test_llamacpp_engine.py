"""Integration tests of the in-process llama.cpp engine on SmolLM2-135M.

Run with ``pytest tests/engines/test_llamacpp_engine.py -m integration``. The model is found by
:func:`smollm_path` (swap it for ponder's registry later).
"""

from __future__ import annotations

import _thread
import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from ponder.engines.base import Engine, Generation, Sampling, fold, generate
from ponder.errors import ContextOverflowError, InputError, ModelFileError
from ponder.events import EngineEvent, SequenceDone, TokenEvent
from tests.models import smollm2_path

pytestmark = pytest.mark.integration

SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HAIKU = [{"role": "user", "content": "Write a haiku about the sea."}]
STORY = [{"role": "user", "content": "Tell me a long story about a dragon and a knight."}]


def smollm_path() -> Path:
    """The SmolLM2-135M test model, installed through ponder's registry."""
    return smollm2_path()


def load_engine(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    from ponder.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(path, **kwargs)


@pytest.fixture(scope="session")
def model_path() -> Path:
    return smollm_path()


@pytest.fixture(scope="session")
def engine(model_path: Path) -> Iterator[Engine]:
    eng = load_engine(model_path, n_ctx=1024, n_slots=4)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def two_slots(model_path: Path) -> Iterator[Engine]:
    eng = load_engine(model_path, n_ctx=512, n_slots=2)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def haiku(engine: Engine) -> str:
    return engine.chat_prompt(HAIKU)


@pytest.fixture(scope="session")
def story(engine: Engine) -> str:
    return engine.chat_prompt(STORY)


def collect(gen: Generation) -> list[EngineEvent]:
    try:
        return list(gen)
    finally:
        gen.close()


def texts(completions: list) -> list[str]:  # type: ignore[type-arg]
    return [c.text for c in completions]


def streamed(events: list[EngineEvent], seq: int) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent) and e.seq == seq)


def done_of(events: list[EngineEvent]) -> dict[int, SequenceDone]:
    return {e.seq: e for e in events if isinstance(e, SequenceDone)}


# --------------------------------------------------------------------------- basics


def test_engine_protocol_and_metadata(engine: Engine) -> None:
    assert isinstance(engine, Engine)
    assert engine.model_name
    assert engine.context_length == 1024
    meta = engine.metadata  # type: ignore[attr-defined]
    assert meta["general.architecture"] == "llama"
    assert engine.count_tokens("Hello world") >= 2
    assert engine.count_tokens("") == 0


def test_chat_prompt_uses_gguf_template(engine: Engine) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = engine.metadata["tokenizer.chat_template"]  # type: ignore[attr-defined]
    prompt = engine.chat_prompt(HAIKU)
    expected = Jinja2ChatFormatter(template, "<|im_end|>", "<|im_start|>")(
        messages=[dict(m) for m in HAIKU]  # type: ignore[misc]
    ).prompt
    assert prompt == expected
    assert "<|im_start|>user\nWrite a haiku about the sea.<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert "SmolLM" in prompt  # the template's own default system message


def test_special_tokens_are_parsed_not_doubled(engine: Engine, haiku: str) -> None:
    # "<|im_start|>" is one special token, and SmolLM2 adds no BOS of its own.
    assert engine.count_tokens("<|im_start|>") == 1
    gen = engine.start(haiku, Sampling(max_tokens=1, temperature=0))
    collect(gen)
    assert engine.last_stats.prompt_tokens == engine.count_tokens(haiku)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- sampling


def test_same_seed_same_texts_different_seeds_differ(engine: Engine, haiku: str) -> None:
    s = Sampling(max_tokens=24, seed=7, temperature=0.9)
    a = texts(generate(engine, haiku, s, n=3))
    b = texts(generate(engine, haiku, s, n=3))
    c = texts(generate(engine, haiku, s.with_(seed=1234), n=3))
    assert a == b
    assert len(set(a)) == 3  # seq i is seeded seed + i
    assert a != c


def test_greedy_all_identical_and_equal_to_single(engine: Engine, haiku: str) -> None:
    s = Sampling(max_tokens=32, temperature=0)
    many = generate(engine, haiku, s, n=4)
    one = generate(engine, haiku, s, n=1)
    assert len({c.text for c in many}) == 1
    assert many[0].text == one[0].text
    assert many[0].text


def test_events_stream_concatenates_to_final_text(engine: Engine, story: str) -> None:
    events = collect(engine.start(story, Sampling(max_tokens=40, seed=3), n=3))
    done = done_of(events)
    assert sorted(done) == [0, 1, 2]
    for seq, d in done.items():
        assert streamed(events, seq) == d.text
        sampled = [e for e in events if isinstance(e, TokenEvent) and e.seq == seq]
        assert len(sampled) == d.tokens


# --------------------------------------------------------------------------- finishing


def test_max_tokens_ends_each_sequence(engine: Engine, story: str) -> None:
    out = generate(engine, story, Sampling(max_tokens=9, seed=5), n=4)
    for c in out:
        assert c.finish_reason in ("length", "eos")
        assert c.tokens <= 9
        if c.finish_reason == "length":
            assert c.tokens == 9


def test_eos_ends_a_sequence(engine: Engine, haiku: str) -> None:
    out = generate(engine, haiku, Sampling(max_tokens=200, temperature=0), n=1)
    assert out[0].finish_reason == "eos"
    assert out[0].tokens < 200


def test_stop_strings_end_sequences_independently(engine: Engine, story: str) -> None:
    s = Sampling(max_tokens=60, seed=11, temperature=1.0, stop=(".",))
    events = collect(engine.start(story, s, n=4))
    done = done_of(events)
    assert len(done) == 4
    reasons = {d.reason for d in done.values()}
    assert "stop" in reasons
    for d in done.values():
        if d.reason == "stop":
            assert "." not in d.text
            assert d.tokens < 60
        assert streamed(events, d.seq) == d.text
    # the first sequence to stop did not stop the others: they produced tokens afterwards
    first_done = next(i for i, e in enumerate(events) if isinstance(e, SequenceDone))
    later = {e.seq for e in events[first_done:] if isinstance(e, TokenEvent)}
    assert later - {events[first_done].seq}


def test_stop_string_spanning_token_boundary(engine: Engine, story: str) -> None:
    s = Sampling(max_tokens=48, temperature=0)
    events = collect(engine.start(story, s))
    pieces = [e.text for e in events if isinstance(e, TokenEvent)]
    full = "".join(pieces)
    stop = None
    offset = 0
    for a, b in itertools.pairwise(pieces):
        offset += len(a)
        cand = a[-2:] + b[:2]
        if len(a) >= 2 and len(b) >= 2 and full.find(cand) == offset - 2:
            stop = cand
            break
    assert stop is not None, pieces
    events2 = collect(engine.start(story, s.with_(stop=(stop, "\x00never"))))
    d = done_of(events2)[0]
    assert d.reason == "stop"
    assert d.text == full[: full.find(stop)]
    assert streamed(events2, 0) == d.text  # the partial stop string was never streamed


# --------------------------------------------------------------------------- slots


def test_more_sequences_than_slots_refills(two_slots: Engine) -> None:
    prompt = two_slots.chat_prompt(STORY)
    events = collect(two_slots.start(prompt, Sampling(max_tokens=12, seed=2), n=6))
    done = done_of(events)
    assert sorted(done) == list(range(6))
    assert all(d.tokens > 0 and d.text for d in done.values())
    live: set[int] = set()
    peak = 0
    for e in events:
        if isinstance(e, TokenEvent):
            live.add(e.seq)
        else:
            live.discard(e.seq)
        peak = max(peak, len(live))
    assert peak <= 2
    stats = two_slots.last_stats  # type: ignore[attr-defined]
    assert stats.prompt_evals <= 1
    assert stats.seq_start_tokens == 6  # each sequence copied the prompt, decoded 1 token
    # a finished sequence's slot is refilled at once: 6 seqs * 12 tokens over 2 slots
    assert stats.steps <= 36 + 2


def test_budget_is_never_exceeded(engine: Engine, story: str) -> None:
    out = generate(engine, story, Sampling(max_tokens=20, seed=4), n=4, budget=30)
    assert sum(c.tokens for c in out) <= 30
    assert "budget" in {c.finish_reason for c in out}


def test_budget_with_refills(two_slots: Engine) -> None:
    prompt = two_slots.chat_prompt(STORY)
    out = generate(two_slots, prompt, Sampling(max_tokens=10, seed=4), n=5, budget=25)
    assert len(out) == 5
    assert sum(c.tokens for c in out) <= 25
    assert out[-1].finish_reason == "budget"


# --------------------------------------------------------------------------- hooks


def test_abort_one_sequence_others_continue(engine: Engine, story: str) -> None:
    gen = engine.start(story, Sampling(max_tokens=20, seed=9), n=3)
    events: list[EngineEvent] = []
    try:
        for e in gen:
            events.append(e)
            if isinstance(e, TokenEvent) and e.seq == 1:
                gen.abort(1)
    finally:
        gen.close()
    done = done_of(events)
    assert done[1].reason == "abort"
    assert done[1].tokens == 1
    assert done[0].tokens > 1 and done[2].tokens > 1
    assert done[0].reason != "abort"


def test_inject_appends_text_and_is_not_counted(engine: Engine, story: str) -> None:
    gen = engine.start(story, Sampling(max_tokens=12, seed=1), n=2)
    events: list[EngineEvent] = []
    injected = False
    try:
        for e in gen:
            events.append(e)
            if isinstance(e, TokenEvent) and e.seq == 0 and not injected:
                gen.inject(0, " Wait, let me think again about the knight.")
                injected = True
    finally:
        gen.close()
    done = done_of(events)
    inj = [e for e in events if isinstance(e, TokenEvent) and e.injected]
    assert [(e.seq, e.text) for e in inj] == [(0, " Wait, let me think again about the knight.")]
    text = done[0].text
    head, _, tail = text.partition(" Wait, let me think again about the knight.")
    assert head and tail  # model text before, continuation after
    sampled = [e for e in events if isinstance(e, TokenEvent) and e.seq == 0 and not e.injected]
    assert done[0].tokens == len(sampled)
    assert done[0].tokens <= 12
    assert done[0].reason in ("length", "eos")
    assert " Wait" not in done[1].text
    assert streamed(events, 0) == text


def test_fork_children_start_with_parent_text(engine: Engine, story: str) -> None:
    gen = engine.start(story, Sampling(max_tokens=30, seed=21, temperature=1.0), n=1)
    events: list[EngineEvent] = []
    parent_text = fork_text = ""
    fork_tokens = 0
    children: list[int] = []
    try:
        for e in gen:
            events.append(e)
            if isinstance(e, TokenEvent) and e.seq == 0:
                parent_text += e.text
                if len(events) == 6:
                    children = gen.fork(0, 2)
                    fork_text, fork_tokens = parent_text, 6
    finally:
        gen.close()
    assert children == [1, 2]
    done = done_of(events)
    assert sorted(done) == [0, 1, 2]
    for c in children:
        assert done[c].text.startswith(fork_text)
        assert done[c].tokens >= fork_tokens
        assert fork_text + streamed(events, c) == done[c].text
    assert len({done[0].text, done[1].text, done[2].text}) > 1


def test_fork_more_children_than_slots(two_slots: Engine) -> None:
    prompt = two_slots.chat_prompt(STORY)
    gen = two_slots.start(prompt, Sampling(max_tokens=16, seed=8), n=1)
    events: list[EngineEvent] = []
    fork_text = ""
    try:
        for e in gen:
            events.append(e)
            if isinstance(e, TokenEvent) and e.seq == 0 and len(events) == 4:
                fork_text = streamed(events, 0)
                assert gen.fork(0, 3) == [1, 2, 3]
    finally:
        gen.close()
    done = done_of(events)
    assert sorted(done) == [0, 1, 2, 3]
    for c in (1, 2, 3):
        assert done[c].text.startswith(fork_text)


def test_greedy_forks_continue_exactly_like_the_parent(two_slots: Engine) -> None:
    """Children get the parent's KV (copied, inherited on the parent's end, or recomputed
    when neither is possible): greedy continuations must then all equal the parent's."""
    prompt = two_slots.chat_prompt(STORY)
    s = Sampling(max_tokens=24, temperature=0)
    reference = texts(generate(two_slots, prompt, s))[0]
    gen = two_slots.start(prompt, s, n=1)
    events: list[EngineEvent] = []
    try:
        for e in gen:
            events.append(e)
            if len(events) == 5:
                assert gen.fork(0, 3) == [1, 2, 3]
    finally:
        gen.close()
    done = done_of(events)
    assert [done[i].text for i in range(4)] == [reference] * 4
    assert all(done[i].tokens == done[0].tokens for i in range(4))
    # decoded when taking a slot: seq 0 the last prompt token; seq 1 copied the parent's KV
    # and seq 2 inherited the parent's slot (1 pending token each); seq 3 found no parent KV
    # left and recomputed its 6 tokens (last prompt token + 5 sampled before the fork)
    assert two_slots.last_stats.seq_start_tokens == 1 + 1 + 1 + 6  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- logprobs


def test_logprobs_are_valid(engine: Engine, story: str) -> None:
    s = Sampling(max_tokens=16, seed=3, top_logprobs=5)
    events = collect(engine.start(story, s, n=2))
    toks = [e for e in events if isinstance(e, TokenEvent)]
    assert toks
    for e in toks:
        assert e.logprob is not None and e.logprob <= 1e-6
        top = e.top_logprobs
        assert top is not None and len(top) == 5
        values = [lp for _, lp in top]
        assert values == sorted(values, reverse=True)
        assert all(v <= 1e-6 for v in values)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-4
        assert e.logprob <= values[0] + 1e-5
        if e.logprob >= values[-1] - 1e-6:  # chosen among the top 5: its logprob is listed
            assert any(abs(v - e.logprob) < 1e-4 for v in values)


def test_greedy_logprob_is_the_top_one(engine: Engine, story: str) -> None:
    s = Sampling(max_tokens=10, temperature=0, top_logprobs=3)
    comp = fold(iter(collect(engine.start(story, s))))[0]
    for lp, top in zip(comp.logprobs, comp.top_logprobs, strict=True):
        assert abs(lp - top[0][1]) < 1e-5


# --------------------------------------------------------------------------- errors


def test_bad_requests_fail_before_decoding(engine: Engine, haiku: str) -> None:
    before = engine.last_stats  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="n must be at least 1"):
        engine.start(haiku, Sampling(), n=0)
    with pytest.raises(ContextOverflowError, match="context holds 1024"):
        engine.start("word " * 2000, Sampling(max_tokens=8))
    with pytest.raises(ContextOverflowError, match="max_tokens"):
        engine.start(haiku, Sampling(max_tokens=1020))
    assert engine.last_stats is before  # type: ignore[attr-defined]
    for err in (InputError("x"), ContextOverflowError("y")):
        assert "\n" not in str(err)


def test_bad_model_files(tmp_path: Path, model_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"<html>404</html>")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        load_engine(not_gguf)
    with pytest.raises(ModelFileError, match="not found"):
        load_engine(tmp_path / "missing.gguf")
    truncated = tmp_path / "truncated.gguf"
    with model_path.open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(4 * 1024 * 1024))
    with pytest.raises(ModelFileError) as info:
        load_engine(truncated)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- robustness


def test_interrupt_mid_generation_leaves_engine_usable(engine: Engine, story: str) -> None:
    """A Ctrl-C (SIGINT to the main thread) arriving while a step decodes."""
    s = Sampling(max_tokens=20, temperature=0)
    reference = texts(generate(engine, story, s, n=2))
    gen = engine.start(story, s, n=2)
    context = engine.context  # type: ignore[attr-defined]
    real_decode = context.decode
    calls = 0

    def interrupted(n_tokens: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 5:
            _thread.interrupt_main()
        real_decode(n_tokens)

    context.decode = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            list(gen)
    finally:
        del context.decode
        gen.close()
    assert texts(generate(engine, story, s, n=2)) == reference


def test_abandoned_generation_is_closed_by_next_start(engine: Engine, story: str) -> None:
    s = Sampling(max_tokens=8, temperature=0)
    reference = texts(generate(engine, story, s))
    gen = engine.start(story, s, n=3)
    next(iter(gen))
    assert texts(generate(engine, story, s)) == reference
    assert list(gen) == []


def test_prefix_reuse(engine: Engine, story: str) -> None:
    s = Sampling(max_tokens=12, temperature=0)
    generate(engine, story, s)
    longer = story + "Once upon a time"
    reused = texts(generate(engine, longer, s))
    stats = engine.last_stats  # type: ignore[attr-defined]
    assert stats.prompt_reused == engine.count_tokens(story) - 1
    assert stats.prompt_evaluated == engine.count_tokens(longer) - 1 - stats.prompt_reused
    engine.reset_cache()  # type: ignore[attr-defined]
    fresh = texts(generate(engine, longer, s))
    assert engine.last_stats.prompt_reused == 0  # type: ignore[attr-defined]
    assert fresh == reused


def test_multibyte_text_is_whole_characters(engine: Engine) -> None:
    prompt = engine.chat_prompt(
        [{"role": "user", "content": "Écris une phrase en français avec des accents: é è à ç."}]
    )
    events = collect(engine.start(prompt, Sampling(max_tokens=40, seed=2), n=2))
    for d in done_of(events).values():
        assert "\ufffd" not in d.text
        assert streamed(events, d.seq) == d.text


def test_close_is_idempotent(model_path: Path) -> None:
    eng = load_engine(model_path, n_ctx=256, n_slots=1)
    eng.close()
    eng.close()
    with pytest.raises(Exception, match="closed"):
        eng.start("hi", Sampling(max_tokens=2))
