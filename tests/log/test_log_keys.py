"""What makes two runs (the cache key) or two chains (the chain key) the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ponder.engines import Loaded
from ponder.engines.base import Sampling
from ponder.engines.scripted import ScriptedEngine
from ponder.events import TokenEvent
from ponder.log.codec import decode, encode
from ponder.log.keys import (
    Model,
    Request,
    cache_key,
    chain_key,
    model_of,
    model_of_file,
    question_messages,
)
from ponder.log.store import Store
from ponder.registry import FamilyDefaults
from ponder.runner import make_plan
from ponder.strategies.effort import EFFORTS
from ponder.thinking import ThinkingStyle

MODEL = Model("m", "abc", "abc")


def key(question: str = "What is 2 + 2?", model: Model = MODEL, style: ThinkingStyle = "prompted",
        **changes: Any) -> str:
    fields: dict[str, Any] = {"plan": make_plan("low", None), "seed": 0, **changes}
    request = Request(**fields)
    messages = question_messages(question, style, FamilyDefaults(), request.plan)
    return cache_key(model, messages, request)


def test_the_cache_key_is_stable_and_follows_every_setting() -> None:
    assert key() == key()
    assert key("  What is 2 + 2?\n") == key()
    variants = [key("What is 2 + 3?"), key(model=Model("m", "def", "def")),
                key(plan=make_plan("high", None)),
                key(plan=make_plan("low", None, {"think_cap": "100"})), key(seed=1),
                key(temperature=0.3), key(budget=100), key(seconds=5.0), key(ctx=2048),
                key(history=(("q", "a"),)), key(style="native"),
                key(model=Model("m", "abc", "abc", "other family defaults"))]
    assert len({key(), *variants}) == len(variants) + 1


def test_the_effort_name_is_not_part_of_the_cache_key() -> None:
    low = EFFORTS["low"]
    same = make_plan(None, low.strategy, {k: str(v) for k, v in low.options.items()})
    assert key(plan=make_plan("low", None)) == key(plan=same)


def test_the_chain_key_follows_what_draws_the_tokens_only() -> None:
    base = Sampling(seed=3)
    same = [base.with_(max_tokens=99), base.with_(top_logprobs=5)]
    other = [base.with_(seed=4), base.with_(temperature=0.1), base.with_(top_p=0.5),
             base.with_(top_k=3), base.with_(min_p=0.2), base.with_(stop=("x",))]
    k = chain_key("fp", "prompt", base)
    assert all(chain_key("fp", "prompt", s) == k for s in same)
    assert len({k, *(chain_key("fp", "prompt", s) for s in other)}) == len(other) + 1
    assert chain_key("fp", "prompt!", base) != k and chain_key("fp2", "prompt", base) != k


def test_every_greedy_chain_of_a_prompt_is_the_same_chain() -> None:
    greedy = chain_key("fp", "prompt", Sampling(seed=1, temperature=0.0))
    assert chain_key("fp", "prompt", Sampling(seed=9, temperature=0.0, top_k=2)) == greedy
    assert chain_key("fp", "prompt", Sampling(seed=5, greedy_first=True)) == greedy
    assert chain_key("fp", "prompt", Sampling(seed=5)) != greedy


def test_a_model_is_its_file_and_a_file_is_hashed_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "log.db")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 100)
    calls: list[Path] = []

    def hasher(path: Path) -> str:
        calls.append(path)
        return store.file_sha256(path)

    first = model_of_file("model.gguf", gguf, None, hasher)
    assert calls == [gguf]
    assert first.sha256 == first.fingerprint and first.sha256 and len(first.sha256) == 64
    assert store.file_sha256(gguf) == first.sha256
    rows = store._read("SELECT count(*) FROM files")
    assert rows[0][0] == 1
    gguf.write_bytes(b"GGUF" + b"\1" * 100)
    assert store.file_sha256(gguf) != first.sha256


def _never(path: Path) -> str:
    raise AssertionError(f"{path} should not be hashed")


def test_the_registry_sha256_wins_over_hashing(tmp_path: Path) -> None:
    model = model_of_file("x", tmp_path / "absent.gguf", "f" * 64, _never, FamilyDefaults())
    assert model.fingerprint == "f" * 64 and "FamilyDefaults" in model.defaults


def test_a_one_chain_strategy_gets_the_familys_own_prompt() -> None:
    family = FamilyDefaults(single_system="Think, then box it.")
    one = question_messages("q?", "prompted", family, make_plan(None, "cot"))
    many = question_messages("q?", "prompted", family, make_plan(None, "vote"))
    assert one[0]["content"] == "Think, then box it." and many[0]["content"] != one[0]["content"]


def test_engines_without_a_file_have_no_fingerprint_unless_they_say() -> None:
    engine = ScriptedEngine()
    assert model_of(Loaded(engine, "prompted", "x"), _never).fingerprint is None
    engine.fingerprint = "own"
    assert model_of(Loaded(engine, "prompted", "x"), _never).fingerprint == "own"


def test_streams_survive_the_round_trip() -> None:
    events = (TokenEvent(0, "a", logprob=-0.25, top_logprobs=(("a", -0.25), ("b", -1.5))),
              TokenEvent(0, "\n</think>\n\n", injected=True), TokenEvent(0, "", logprob=None))
    assert decode(encode(events)) == events
