"""A closing </think> with no opening tag: what streamed before it is thinking, live too."""

from __future__ import annotations

import io
import itertools
from collections.abc import Generator
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ponder.cli import app
from ponder.cli.render import Renderer
from ponder.engines import Loaded, register_engine
from ponder.engines.base import Sampling
from ponder.engines.scripted import ScriptedEngine
from ponder.events import ChainStarted, ChainText, Sample, StrategyEvent
from ponder.strategies.base import Budget, Task
from ponder.strategies.chains import ChainConfig, run_chains
from ponder.thinking import (
    THINK_CLOSE,
    THINK_OPEN,
    Piece,
    ThinkSplitter,
    join_pieces,
    split_thinking,
)
from tests.conftest import FakeClock

ORPHAN = "Let me add. 2 plus 2 is 4.\n</think>\n\nThe sum is \\boxed{4}."
TEXTS = [
    ORPHAN,
    "<think>\nplan it</think>\n\n42",
    "no tags at all, just an answer",
    "still thinking, never closed",
    "</think>answer right away",
    "Sure. <think>x is 2</think>So 2.",
    "<think>a</think>b</think>c<think>",
]


def stream(text: str, cuts: list[int], opened: bool) -> list[Piece]:
    splitter = ThinkSplitter(opened)
    bounds = [0, *cuts, len(text)]
    pieces: list[Piece] = []
    for a, b in itertools.pairwise(bounds):
        pieces += splitter.feed(text[a:b])
    return pieces + splitter.flush()


def test_orphan_close_moves_the_streamed_answer_to_thinking() -> None:
    pieces = stream(ORPHAN, [4, 12, 27, 31], opened=False)
    kinds = [k for k, _ in pieces]
    assert "moved" in kinds
    at = kinds.index("moved")
    before = "".join(t for k, t in pieces[:at] if k == "answer")
    assert pieces[at] == ("moved", before)
    assert all(k != "answer" or "think>" not in t for k, t in pieces)
    assert join_pieces(pieces) == ("Let me add. 2 plus 2 is 4.\n", "The sum is \\boxed{4}.")


@pytest.mark.parametrize("opened", [False, True])
@pytest.mark.parametrize("text", TEXTS)
def test_streamed_split_equals_final_split_at_every_cut(text: str, opened: bool) -> None:
    final = split_thinking(text, opened)
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1, 3):
            thinking, answer = join_pieces(stream(text, [i, j], opened))
            assert (thinking.strip(), answer.strip()) == final, (i, j)
            assert THINK_OPEN not in answer and THINK_CLOSE not in answer


def test_answer_never_shows_a_think_tag() -> None:
    assert split_thinking("<think>a</think>b</think>c<think>") == ("a", "bc")
    assert split_thinking(ORPHAN) == ("Let me add. 2 plus 2 is 4.", "The sum is \\boxed{4}.")


def test_thinking_first_drops_a_repeated_opening_tag() -> None:
    pieces = stream("<think>\nplan</think>ok", [3, 9], opened=True)
    assert join_pieces(pieces) == ("plan", "ok")
    assert next(k for k, _ in pieces) == "thinking"


def drain(gen: Generator[StrategyEvent, None, list[Sample]]) -> tuple[list[StrategyEvent],
                                                                         list[Sample]]:
    events: list[StrategyEvent] = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def task_for(style: Any, text: str) -> Task:
    engine = ScriptedEngine([text])
    return Task("What is 2+2?", engine, style, Sampling(), Budget())


def texts(events: list[StrategyEvent]) -> list[ChainText]:
    return [e for e in events if isinstance(e, ChainText)]


def test_native_model_streams_thinking_from_the_first_token() -> None:
    events, samples = drain(run_chains(task_for("native", ORPHAN), 1, ChainConfig()))
    chain_texts = texts(events)
    assert chain_texts[0].phase == "thinking" and not any(e.moved for e in chain_texts)
    assert "".join(e.text for e in chain_texts if e.phase == "answer") == "The sum is \\boxed{4}."
    assert samples[0].answer == "4" and samples[0].thinking == "Let me add. 2 plus 2 is 4."


def test_unhinted_model_relabels_the_streamed_text_when_the_close_tag_arrives() -> None:
    config = ChainConfig(think_cap=None)
    events, samples = drain(run_chains(task_for("prompted", ORPHAN), 1, config))
    chain_texts = texts(events)
    assert chain_texts[0].phase == "answer"
    moved = [e for e in chain_texts if e.moved]
    assert len(moved) == 1 and moved[0].phase == "thinking"
    assert moved[0].text.startswith("Let me add.")
    after = chain_texts[chain_texts.index(moved[0]) + 1:]
    assert "".join(e.text for e in after if e.phase == "answer") == "The sum is \\boxed{4}."
    assert samples[0].thinking == "Let me add. 2 plus 2 is 4."


def test_renderer_relabels_moved_text_as_thinking(clock: FakeClock) -> None:
    r = Renderer(Console(file=io.StringIO(), width=100), "summary", clock=clock)
    r.handle(ChainStarted(0))
    r.handle(ChainText(0, "answer", "Let me add. 2 plus 2 is 4. So", tokens=9))
    r.handle(ChainText(0, "thinking", "Let me add. 2 plus 2 is 4. So", tokens=11, moved=True))
    live = Console(file=io.StringIO(), width=100, force_terminal=False)
    live.print(r)
    assert isinstance(live.file, io.StringIO)
    assert "Thinking · 0.0s · 11 tokens · 2 plus 2 is 4." in live.file.getvalue()
    assert r.thinking_tokens == 11


def test_ask_full_shows_orphan_thinking_live_and_a_clean_answer() -> None:
    engine = ScriptedEngine([ORPHAN], model_name="r1-distill")
    register_engine("scripted", lambda _opts: Loaded(engine, "prompted", "r1-distill"))
    result = CliRunner().invoke(app, ["ask", "--engine", "scripted", "--thinking", "full",
                                      "--effort", "low", "What is 2+2?"])
    assert result.exit_code == 0, result.output
    assert "2 plus 2 is 4." in result.stderr
    assert result.stdout == "The sum is \\boxed{4}.\n"
