"""The extractive thinking summary, on the 50 real traces and on small made-up ones."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from ponder.answers import extract_answer
from ponder.cli.mathtext import to_text
from ponder.cli.render import Renderer
from ponder.events import ChainStarted, Result
from ponder.summary import MAX_LINES, answer_forms, summarize
from tests.conftest import FakeClock
from tests.traces import Trace, load_traces

TRACES = load_traces()
NOTES = ("Re-checked ", "Tried another way", "Caught ")


def summary_of(trace: Trace) -> tuple[list[str], str | None]:
    answer = extract_answer(trace.answer) if trace.answer else None
    return summarize(trace.thinking, answer), answer


def flat(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("trace", TRACES, ids=[t.id for t in TRACES])
def test_summary_of_a_real_trace(trace: Trace) -> None:
    lines, answer = summary_of(trace)
    assert 1 <= len(lines) <= MAX_LINES
    assert len({line.lower() for line in lines}) == len(lines)  # no repeated lines
    assert lines[-1].startswith("→ ")
    if answer is None:
        assert lines[-1].startswith("→ stopped while thinking: ")
    else:  # the conclusion states the final result
        forms = answer_forms(answer)
        assert any(form in flat(lines[-1]).replace("\\(", "").replace("\\)", "")
                   or form in flat(to_text(lines[-1]).plain) for form in forms)
    body = flat(re.sub(r"\\[()]", "", trace.thinking)).lower()
    for line in lines:  # extractive: every step and conclusion comes from the thinking
        if line.startswith(NOTES) or line.startswith("→ answer:"):
            continue
        words = line.removeprefix("→ ").removeprefix("stopped while thinking: ")
        for piece in re.sub(r"\\[()]", "", words).split("…"):
            assert len(piece.strip()) < 3 or flat(piece).lower() in body, line


def test_most_conclusions_are_the_models_own_words() -> None:
    concluded = [summary_of(t)[0][-1] for t in TRACES if t.closes]
    own = [line for line in concluded if not line.startswith("→ answer:")]
    assert len(concluded) == 49 and len(own) >= 47


def test_summary_of_a_known_trace() -> None:
    trace = next(t for t in TRACES if t.id == "DeepSeek-R1-Distill-Qwen-7B/math500_0002")
    lines, _ = summary_of(trace)
    assert lines == [
        "That would be f(-2) = (3*(-2) - 2) / (-2 - 2).",
        "f(-1) = (3*(-1) - 2) / (-1 - 2).",
        "f(0) = (3*0 - 2) / (0 - 2).",
        "9/3 + 5/3 is 14/3.",
        "Re-checked 3 times, arriving at \\(\\dfrac{14}{3}\\) again",
        "→ The value of \\( f(-2) + f(-1) + f(0) \\) is \\boxed{\\dfrac{14}{3}}.",
    ]


def test_a_trace_stuck_in_a_loop_collapses_to_counts() -> None:
    trace = next(t for t in TRACES if t.id == "DeepSeek-R1-Distill-Qwen-7B/math500_0009")
    lines, _ = summary_of(trace)
    assert any(line.startswith("Tried another way (649 times)") for line in lines)
    assert any(line.startswith("Re-checked the work 13 times") for line in lines)


def test_checks_and_changes_of_mind_are_collapsed() -> None:
    thinking = (
        "The total is 3 + 4 = 7.\n\nThen 7 * 2 = 14.\n\n"
        "Wait, let me double-check: 3 + 4 = 7, times 2 is 14.\n\n"
        "Let me verify that again. 7 * 2 = 14.\n\n"
        "Alternatively, count the items directly: 14.\n\n"
        "Hmm, that's not right, I counted 13. No: 14.\n\nSo the answer is 14."
    )
    lines = summarize(thinking, "14")
    assert lines == [
        "The total is 3 + 4 = 7.",
        "7 * 2 = 14.",
        "Re-checked twice, arriving at 14 again",
        "Tried another way: count the items directly: 14; caught a mistake",
        "→ The answer is 14.",
    ]


def test_empty_thinking_has_no_summary() -> None:
    assert summarize("", "4") == []
    assert summarize("Short.", None) == ["→ stopped while thinking: Short."]


def test_renderer_prints_the_summary_with_readable_math(clock: FakeClock) -> None:
    trace = next(t for t in TRACES if t.id == "DeepSeek-R1-Distill-Qwen-7B/math500_0002")
    console = Console(file=io.StringIO(), width=100, force_terminal=True, color_system=None)
    renderer = Renderer(console, "summary", clock=clock)
    renderer.handle(ChainStarted(0))
    renderer.summary(Result("\\dfrac{14}{3}", trace.answer, trace.thinking, "eos",
                            thinking_tokens=988))
    assert isinstance(console.file, io.StringIO)
    assert console.file.getvalue() == (
        "Thought for 0.0s · 988 thinking tokens\n"
        "  • That would be f(-2) = (3*(-2) - 2) / (-2 - 2).\n"
        "  • f(-1) = (3*(-1) - 2) / (-1 - 2).\n"
        "  • f(0) = (3*0 - 2) / (0 - 2).\n"
        "  • 9/3 + 5/3 is 14/3.\n"
        "  • Re-checked 3 times, arriving at 14/3 again\n"
        "  → The value of f(-2) + f(-1) + f(0) is 14/3.\n"
    )
