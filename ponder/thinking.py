"""Separating a model's thinking from its answer, and asking instruct models to think."""

from __future__ import annotations

from typing import Literal

from ponder.events import Message, Phase

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
CLOSE_THINKING = "\n" + THINK_CLOSE + "\n\n"
ThinkingStyle = Literal["native", "prompted"]

PROMPTED_SYSTEM = (
    "You are a careful problem solver. First think step by step inside <think> and </think> "
    "tags. After </think>, write a short final answer and put the final result in \\boxed{}."
)


def build_messages(question: str, style: ThinkingStyle) -> list[Message]:
    """Chat messages for a question: instruct models get a system prompt asking for tags."""
    if style == "native":
        return [{"role": "user", "content": question}]
    return [
        {"role": "system", "content": PROMPTED_SYSTEM},
        {"role": "user", "content": question},
    ]


def prompt_opens_think(prompt: str) -> bool:
    """True when the chat template already opened a <think> block (output starts mid-thought)."""
    return prompt.rstrip().endswith(THINK_OPEN)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for k in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ThinkSplitter:
    """Streaming splitter: feed text chunks, get (phase, text) pieces back.

    Tags split across chunks are held back until they can be decided. Before any visible
    text, an opening <think> switches to thinking; other text means there is no thinking.
    """

    def __init__(self, opened: bool = False) -> None:
        self.state: Literal["start", "thinking", "answer"] = "thinking" if opened else "start"
        self._buf = ""

    @property
    def phase(self) -> Phase:
        return "thinking" if self.state in ("thinking", "start") else "answer"

    def feed(self, text: str) -> list[tuple[Phase, str]]:
        self._buf += text
        out: list[tuple[Phase, str]] = []
        while self._buf:
            if not self._step(out):
                break
        return [(p, t) for p, t in out if t]

    def _step(self, out: list[tuple[Phase, str]]) -> bool:
        buf = self._buf
        if self.state == "start":
            stripped = buf.lstrip()
            if not stripped:
                return False
            if stripped.startswith(THINK_OPEN):
                self.state = "thinking"
                self._buf = stripped[len(THINK_OPEN):].lstrip("\n")
                return True
            if THINK_OPEN.startswith(stripped):
                return False
            self.state = "answer"
            return True
        if self.state == "thinking":
            cut = buf.find(THINK_CLOSE)
            if cut >= 0:
                out.append(("thinking", buf[:cut]))
                self.state = "answer"
                self._buf = buf[cut + len(THINK_CLOSE):].lstrip("\n")
                return True
            keep = _partial_suffix(buf, THINK_CLOSE)
            out.append(("thinking", buf[: len(buf) - keep]))
            self._buf = buf[len(buf) - keep:]
            return False
        out.append(("answer", buf))
        self._buf = ""
        return False

    def flush(self) -> list[tuple[Phase, str]]:
        rest, self._buf = self._buf, ""
        if not rest:
            return []
        return [("thinking" if self.state == "thinking" else "answer", rest)]


def split_thinking(text: str, opened: bool = False) -> tuple[str, str]:
    """Split a finished output into (thinking, answer).

    A closing tag with no opening one means the template opened it: everything before it
    is thinking.
    """
    if THINK_CLOSE in text and (opened or THINK_OPEN not in text.split(THINK_CLOSE)[0]):
        head, _, tail = text.partition(THINK_CLOSE)
        return head.replace(THINK_OPEN, "", 1).strip(), tail.strip()
    splitter = ThinkSplitter(opened)
    parts = splitter.feed(text) + splitter.flush()
    thinking = "".join(t for p, t in parts if p == "thinking")
    answer = "".join(t for p, t in parts if p == "answer")
    return thinking.strip(), answer.strip()
