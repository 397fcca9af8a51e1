"""Rendering on a fixed-width capture console with an injected clock."""

from __future__ import annotations

import io

from rich.console import Console

from ponder.cli.render import Renderer, latest_sentence, print_answer
from ponder.events import (
    BudgetUpdate,
    ChainDone,
    ChainStarted,
    ChainText,
    Result,
    VoteUpdate,
)
from tests.conftest import FakeClock


def text_of(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_latest_sentence_only_complete_ones() -> None:
    assert latest_sentence("First idea. Second idea! Third is unfinis") == "Second idea!"
    assert latest_sentence("no end yet") == ""
    assert latest_sentence("Done.") == "Done."
    assert latest_sentence("Add the boxes first. 2. Then", min_words=3) == "Add the boxes first."
    assert latest_sentence("1. 2.", min_words=3) == ""


def test_one_chain_live_line(capture: Console, clock: FakeClock) -> None:
    r = Renderer(capture, "summary", clock=clock)
    r.handle(ChainStarted(0))
    r.handle(ChainText(0, "thinking", "Let me add. Then carry the one", tokens=7))
    clock.advance(2.5)
    live = Console(file=io.StringIO(), width=80, force_terminal=False)
    live.print(r)
    out = text_of(live)
    assert "Thinking · 2.5s · 7 tokens · Let me add." in out


def test_summary_after_one_chain(capture: Console, clock: FakeClock) -> None:
    r = Renderer(capture, "summary", clock=clock)
    r.handle(ChainStarted(0))
    clock.advance(3.0)
    result = Result("4", "It is 4.", "Add them: 1 + 3 = 4.\n\nSo it is 4.", "eos",
                    thinking_tokens=12)
    r.summary(result)
    out = text_of(capture)
    assert "Thought for 3.0s · 12 thinking tokens" in out
    assert "• Add them: 1 + 3 = 4." in out and "→ It is 4." in out


def test_panel_for_many_chains_shows_rows_tally_and_budget(
    capture: Console, clock: FakeClock
) -> None:
    r = Renderer(capture, "summary", clock=clock)
    for i in range(3):
        r.handle(ChainStarted(i))
    r.handle(ChainText(1, "answer", "x", tokens=30, confidence=0.8))
    r.handle(ChainDone(0, "18", 40, "eos", confidence=0.91))
    r.handle(ChainDone(2, None, 12, "abort"))
    r.handle(VoteUpdate({"18": 2.0, "20": 1.0}))
    r.handle(BudgetUpdate(82, 500, 1.0))
    clock.advance(4.0)
    live = Console(file=io.StringIO(), width=80, force_terminal=False)
    live.print(r)
    out = text_of(live)
    assert "#1" in out and "#3" in out and "abort" in out and "0.91" in out
    assert "82/500 tokens · 4.0s" in out
    assert "█" in out and "18" in out and "20" in out


def test_panel_digests_the_latest_thinking_sentence(capture: Console, clock: FakeClock) -> None:
    r = Renderer(capture, "summary", clock=clock)
    for i in range(2):
        r.handle(ChainStarted(i))
    r.handle(ChainText(0, "thinking", "Each box holds 4. So 24 / 4 = 6 boxes. Then", tokens=9))
    r.handle(ChainText(1, "thinking", "Six boxes at $6 each. Six times", tokens=8))
    live = Console(file=io.StringIO(), width=80, force_terminal=False)
    live.print(r)
    assert "#2 Six boxes at $6 each." in text_of(live)
    r.handle(ChainDone(1, "36", 20, "eos"))
    live = Console(file=io.StringIO(), width=80, force_terminal=False)
    live.print(r)
    assert "Six boxes at" not in text_of(live)  # a finished chain no longer thinks


def test_summary_after_a_vote_follows_the_chosen_chain(capture: Console,
                                                       clock: FakeClock) -> None:
    r = Renderer(capture, "summary", clock=clock)
    for i in range(2):
        r.handle(ChainStarted(i))
    r.handle(VoteUpdate({"4": 2.0}))
    result = Result("4", "It is 4.", "Add them: 1 + 3 = 4.\n\nSo it is 4.", "eos",
                    thinking_tokens=12, votes={"4": 2.0})
    r.summary(result)
    out = text_of(capture)
    assert "2 chains" in out and "• Add them: 1 + 3 = 4." in out


def test_full_mode_streams_thinking(capture: Console, clock: FakeClock) -> None:
    r = Renderer(capture, "full", clock=clock)
    r.handle(ChainStarted(0))
    r.handle(ChainText(0, "thinking", "carry the one", tokens=3))
    assert "carry the one" in text_of(capture)


def test_print_answer_plain_when_not_a_terminal() -> None:
    out = Console(file=io.StringIO(), width=40, force_terminal=False)
    print_answer(out, Result("4", "**The answer is 4.**", "", "eos"))
    assert text_of(out) == "**The answer is 4.**\n"


def test_print_answer_markdown_in_a_terminal() -> None:
    out = Console(file=io.StringIO(), width=40, force_terminal=True, color_system="truecolor")
    print_answer(out, Result("4", "**The answer is 4.**", "", "eos"))
    assert "\x1b[" in text_of(out) and "**" not in text_of(out)
