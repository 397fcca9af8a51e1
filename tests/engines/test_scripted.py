"""The scripted engine keeps the engine contract the strategies rely on."""

from __future__ import annotations

import pytest

from ponder.engines.base import Sampling
from ponder.engines.scripted import ScriptedEngine
from ponder.events import EngineEvent, SequenceDone, TokenEvent


def run(engine: ScriptedEngine, sampling: Sampling, n: int = 1) -> list[EngineEvent]:
    gen = engine.start("prompt", sampling, n=n)
    try:
        return list(gen)
    finally:
        gen.close()


def streamed(events: list[EngineEvent], seq: int) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent) and e.seq == seq)


def finals(events: list[EngineEvent]) -> dict[int, SequenceDone]:
    return {e.seq: e for e in events if isinstance(e, SequenceDone)}


@pytest.mark.parametrize(("script", "stop", "final", "reason"), [
    ("one two STOP three", ("STOP",), "one two ", "stop"),
    ("one two\n\nthree", ("\n\n",), "one two", "stop"),
    ("one two\n three", ("\n\n",), "one two\n three", "eos"),
    ("ends with a half S", ("STOP",), "ends with a half S", "eos"),
])
def test_streamed_text_equals_the_final_text(script: str, stop: tuple[str, ...], final: str,
                                             reason: str) -> None:
    events = run(ScriptedEngine([script]), Sampling(stop=stop))
    done = finals(events)[0]
    assert (done.text, done.reason) == (final, reason)
    assert streamed(events, 0) == done.text


def test_a_possible_stop_string_is_held_back_until_decided() -> None:
    events = run(ScriptedEngine(["aX Yb"]), Sampling(stop=("XY",)))
    assert [e.text for e in events if isinstance(e, TokenEvent)] == ["a", "X Yb"]


def test_held_text_goes_out_before_injected_text_and_aborts_drop_it() -> None:
    engine = ScriptedEngine(["a bX c", "d eX f", "g"])
    gen = engine.start("prompt", Sampling(stop=("XY",)), n=2)
    events: list[EngineEvent] = []
    for event in gen:
        events.append(event)
        if isinstance(event, TokenEvent) and event.text == " b":
            gen.inject(0, " [note]")
        if isinstance(event, TokenEvent) and event.text == " e":
            gen.abort(1)
    done = finals(events)
    assert (done[0].text, done[1].text) == ("a bX [note]g", "d e")
    assert [e.text for e in events if isinstance(e, TokenEvent) and e.injected] == ["X [note]"]
    assert streamed(events, 0) == done[0].text and streamed(events, 1) == done[1].text


def test_max_tokens_cut_releases_the_held_text() -> None:
    events = run(ScriptedEngine(["one twoX three"]), Sampling(stop=("XY",), max_tokens=2))
    done = finals(events)[0]
    assert (done.text, done.reason) == ("one twoX", "length")
    assert streamed(events, 0) == done.text
