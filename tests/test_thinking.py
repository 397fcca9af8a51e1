from __future__ import annotations

import pytest

from ponder.thinking import ThinkSplitter, build_messages, prompt_opens_think, split_thinking


def feed_all(splitter: ThinkSplitter, chunks: list[str]) -> list[tuple[str, str]]:
    out = []
    for chunk in chunks:
        out += splitter.feed(chunk)
    out += splitter.flush()
    return out


def joined(parts: list[tuple[str, str]], phase: str) -> str:
    return "".join(t for p, t in parts if p == phase)


@pytest.mark.parametrize(
    "chunks",
    [
        ["<think>plan it</think>42"],
        ["<th", "ink>plan", " it</th", "ink>", "42"],
        ["  <think>\n", "plan it", "<", "/", "think>\n\n42"],
    ],
)
def test_tags_split_across_chunks(chunks: list[str]) -> None:
    parts = feed_all(ThinkSplitter(), chunks)
    assert joined(parts, "thinking").strip() == "plan it"
    assert joined(parts, "answer") == "42"


def test_template_opened_think_starts_mid_thought() -> None:
    parts = feed_all(ThinkSplitter(opened=True), ["so x=2", "</think>", "x is 2"])
    assert joined(parts, "thinking") == "so x=2"
    assert joined(parts, "answer") == "x is 2"


def test_no_tags_means_all_answer() -> None:
    parts = feed_all(ThinkSplitter(), ["The answer", " is 4."])
    assert joined(parts, "thinking") == ""
    assert joined(parts, "answer") == "The answer is 4."


def test_unclosed_thinking_stays_thinking() -> None:
    s = ThinkSplitter()
    parts = feed_all(s, ["<think>still going </thi"])
    assert joined(parts, "thinking") == "still going </thi"
    assert s.phase == "thinking"


def test_split_thinking_orphan_close_tag_is_thinking() -> None:
    assert split_thinking("reasoning here</think>\n\nAnswer: 3") == ("reasoning here", "Answer: 3")
    assert split_thinking("<think>a</think>b") == ("a", "b")
    assert split_thinking("just text") == ("", "just text")


def test_prompt_helpers() -> None:
    assert prompt_opens_think("<|assistant|>\n<think>\n")
    assert not prompt_opens_think("<|assistant|>\n")
    assert build_messages("q", "native") == [{"role": "user", "content": "q"}]
    prompted = build_messages("q", "prompted")
    assert prompted[0]["role"] == "system" and "<think>" in prompted[0]["content"]
