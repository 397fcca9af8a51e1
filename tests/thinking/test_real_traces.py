"""50 real reasoning traces replayed token by token through the chain runner and the renderer.

Each trace streams through the scripted engine in three settings: the chat template opened
<think> (ponder knows), a native model whose template says nothing, and an unknown model
(a chat-completions server): the thinking/answer split must come out the same live as in
the final result, and right, in all three. The fast tests cut tokens with a simple
splitter; the integration tests with SmolLM2's real tokenizer.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ponder.answers import extract_answer
from ponder.cli import app
from ponder.cli.render import Renderer, ThinkingMode
from ponder.engines import Loaded, register_engine
from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine
from ponder.events import ChainText, Result, StrategyEvent
from ponder.runner import drive, make_plan, run_plan
from ponder.strategies.base import Budget, Task
from ponder.strategies.chains import closing_paragraph
from ponder.thinking import (
    THINK_CLOSE,
    THINK_OPEN,
    ThinkingStyle,
    ThinkSplitter,
    join_pieces,
    split_thinking,
)
from tests.conftest import FakeClock
from tests.traces import Trace, load_traces, simple_tokens, smollm2_tokens

TRACES = load_traces()
IDS = [t.id for t in TRACES]
MODES: dict[str, tuple[bool, ThinkingStyle]] = {
    "template-opened": (True, "prompted"),
    "native-model": (False, "native"),
    "unknown-model": (False, "prompted"),
}
Tokenizer = Callable[[str], tuple[str, ...]]


@dataclass
class Stream:
    """What the chain events said, joined as a live view sees them."""

    thinking: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    tags_in_answer: int = 0

    def add(self, event: StrategyEvent) -> None:
        if not isinstance(event, ChainText):
            return
        if event.moved:
            self.answer.clear()
        if event.phase == "answer":
            self.answer.append(event.text)
            self.tags_in_answer += THINK_OPEN in event.text or THINK_CLOSE in event.text
        else:
            self.thinking.append(event.text)


def expected_split(trace: Trace, mode: str) -> tuple[str, str]:
    """The right (thinking, answer) of a trace in a mode."""
    if trace.closes:
        return trace.thinking, trace.answer
    if mode == "unknown-model":  # nothing tells it is thinking: it stays the answer
        return "", trace.text.strip()
    return trace.thinking, ""  # ran out of tokens mid-thought


def stream_split(trace: Trace, tokenize: Tokenizer, mode: str) -> None:
    """A trace through the splitter alone, token by token, as a chain feeds it."""
    opened, style = MODES[mode]
    splitter = ThinkSplitter(opened or style == "native")
    pieces = [p for token in tokenize(trace.text) for p in splitter.feed(token)]
    pieces += splitter.flush()
    assert not any(k == "answer" and "think>" in t for k, t in pieces)
    thinking, answer = join_pieces(pieces)
    live = (thinking.strip(), answer.strip())
    assert live == split_thinking(trace.text, opened or style == "native")
    assert live == expected_split(trace, mode)


@dataclass
class Replay:
    result: Result
    stream: Stream
    stderr: str
    renderer: Renderer


def replay(trace: Trace, tokenize: Tokenizer, mode: str, thinking: ThinkingMode) -> Replay:
    """A trace through the scripted engine, `cot` and ask's renderer, token by token."""
    opened, style = MODES[mode]
    script = Script(trace.text, tokens=tokenize(trace.text))
    engine = ScriptedEngine([script], context_length=1 << 22, opens_think=opened)
    task = Task(trace.question, engine, style, Sampling(max_tokens=1 << 21), Budget())
    console = Console(file=io.StringIO(), width=100, soft_wrap=True, color_system=None)
    renderer = Renderer(console, thinking, clock=FakeClock())
    stream = Stream()

    def handle(event: StrategyEvent) -> None:
        renderer.handle(event)
        stream.add(event)
        if isinstance(event, ChainText):  # the live line names the phase the text is in
            assert renderer.chains[event.chain].phase == event.phase

    with renderer:
        result = drive(run_plan(task, make_plan(None, "cot", {"think_cap": "none"})), handle)
    assert isinstance(console.file, io.StringIO)
    return Replay(result, stream, console.file.getvalue(), renderer)


def check_replay(trace: Trace, tokenize: Tokenizer, mode: str, thinking: ThinkingMode) -> None:
    run = replay(trace, tokenize, mode, thinking)
    live = ("".join(run.stream.thinking).strip(), "".join(run.stream.answer).strip())
    assert live == expected_split(trace, mode)
    if live[0] and not live[1]:  # ended mid-thought: its closing paragraph is the answer
        assert run.result.text == closing_paragraph(trace.thinking)
        assert run.result.thinking == live[0]
    else:
        assert (run.result.thinking, run.result.text) == live
    assert run.stream.tags_in_answer == 0
    if trace.closes:
        assert run.result.answer == extract_answer(trace.answer)
    if not run.result.thinking:
        assert "Thinking…" not in run.stderr
        return
    assert run.renderer.thinking_tokens > 0 and run.result.thinking_tokens > 0
    assert run.result.thinking.endswith(run.renderer.chains[0].tail.strip()[-200:])
    if thinking == "full":  # the thinking streamed to stderr, and only the thinking
        assert run.stderr.startswith("Thinking…\n" + run.result.thinking[:1000])
        assert run.result.text[:200] not in run.stderr


SHORT = [t for t in TRACES if t.id.endswith("_0003")]  # one short trace of each model


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("trace", TRACES, ids=IDS)
def test_trace_splits_the_same_streamed_and_final(trace: Trace, mode: str) -> None:
    stream_split(trace, simple_tokens, mode)


@pytest.mark.parametrize("thinking", ["summary", "full"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("trace", SHORT, ids=[t.id for t in SHORT])
def test_short_traces_replay_through_cot_and_the_renderer(trace: Trace, mode: str,
                                                         thinking: ThinkingMode) -> None:
    check_replay(trace, simple_tokens, mode, thinking)


@pytest.mark.integration
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("trace", TRACES, ids=IDS)
def test_trace_with_smollm2_tokens_replays_through_cot_and_the_renderer(
    trace: Trace, mode: str
) -> None:
    stream_split(trace, smollm2_tokens, mode)
    check_replay(trace, smollm2_tokens, mode, "summary")


@pytest.mark.integration
@pytest.mark.parametrize("trace", SHORT, ids=[t.id for t in SHORT])
def test_short_traces_with_smollm2_tokens_stream_thinking_in_full(trace: Trace) -> None:
    check_replay(trace, smollm2_tokens, "unknown-model", "full")


@pytest.mark.parametrize("trace", SHORT, ids=[t.id for t in SHORT])
def test_ask_json_and_plain_answer_of_a_real_trace(trace: Trace) -> None:
    engine = ScriptedEngine([Script(trace.text, tokens=simple_tokens(trace.text))],
                            context_length=1 << 20)
    register_engine("scripted", lambda _opts: Loaded(engine, "native", trace.model))
    args = ["ask", "--engine", "scripted", "-o", "think_cap=none", "-s", "cot", trace.question]
    result = CliRunner().invoke(app, [*args[:-1], "--json", args[-1]])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["thinking"], record["text"]) == (trace.thinking, trace.answer)
    assert record["answer"] == extract_answer(trace.answer)
    assert record["usage"]["thinking_tokens"] > 0
    engine.enqueue(Script(trace.text, tokens=simple_tokens(trace.text)))
    plain = CliRunner().invoke(app, args)
    assert plain.stdout == trace.answer + "\n"  # piped: the model's raw text


def test_traces_cut_tags_across_tokens() -> None:
    """The replays are realistic: the closing tag never arrives in one piece."""
    closing = [t for t in TRACES if t.closes]
    assert len(TRACES) == 50 and len(closing) == 49
    assert all(THINK_CLOSE not in tok for t in closing for tok in simple_tokens(t.text))


@pytest.mark.integration
def test_smollm2_cuts_the_closing_tag_across_tokens() -> None:
    closing = [t for t in TRACES if t.closes]
    assert all(THINK_CLOSE not in tok for t in closing for tok in smollm2_tokens(t.text))
    assert "".join(smollm2_tokens(TRACES[0].text)) == TRACES[0].text
