"""Separating a model's thinking from its answer, and asking instruct models to think."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ponder.engines.base import Message
from ponder.events import Phase

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
CLOSE_THINKING = "\n" + THINK_CLOSE + "\n\n"
ThinkingStyle = Literal["native", "prompted"]
State = Literal["start", "thinking", "untagged", "answer"]
PieceKind = Literal["thinking", "answer", "moved"]
Piece = tuple[PieceKind, str]

PROMPTED_SYSTEM = (
    "You are a careful problem solver. First think step by step inside <think> and </think> "
    "tags. After </think>, write a short final answer and put the final result in \\boxed{}."
)


def build_messages(question: str, style: ThinkingStyle, system: str = "") -> list[Message]:
    """Chat messages for a question: instruct models get a system prompt (by default the
    one asking for tags)."""
    if style == "native":
        return [{"role": "user", "content": question}]
    return [
        {"role": "system", "content": system or PROMPTED_SYSTEM},
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


def _held(text: str) -> int:
    """How much of `text`'s end might begin a think tag (held back until decided)."""
    return max(_partial_suffix(text, THINK_OPEN), _partial_suffix(text, THINK_CLOSE))


def _first_tag(text: str) -> tuple[int, str]:
    """Where the first think tag in `text` starts, and which one ((-1, "") if none)."""
    found = [(i, tag) for tag in (THINK_OPEN, THINK_CLOSE) if (i := text.find(tag)) >= 0]
    return min(found) if found else (-1, "")


class ThinkSplitter:
    """Streaming splitter: feed text chunks, get (kind, text) pieces back.

    Tags split across chunks are held back until they can be decided. `opened` means the
    output starts inside thinking: the chat template opened <think>, or the model is a
    native reasoner that thinks first (a repeated opening tag is dropped).

    Otherwise, before any visible text, an opening <think> switches to thinking, and other
    text streams as answer, provisionally: if a think tag follows, everything streamed so
    far was thinking after all (a template opened the tag without saying so). It comes back
    once as a ("moved", text) piece, exactly the answer text emitted until then, so a live
    view can re-label it. Answer pieces never contain a think tag.
    """

    def __init__(self, opened: bool = False) -> None:
        self.state: State = "thinking" if opened else "start"
        self._buf = ""
        self._fresh = opened  # at the start of a part: leading whitespace and tags are dropped
        self._untagged: list[str] = []

    @property
    def phase(self) -> Phase:
        return "thinking" if self.state in ("start", "thinking") else "answer"

    def feed(self, text: str) -> list[Piece]:
        self._buf += text
        out: list[Piece] = []
        while self._buf and self._step(out):
            pass
        return [(k, t) for k, t in out if t]

    def flush(self) -> list[Piece]:
        rest, self._buf = self._buf, ""
        if not rest:
            return []
        return [("thinking" if self.state == "thinking" else "answer", rest)]

    def _step(self, out: list[Piece]) -> bool:
        """Consume what can be decided; True when the state changed and more may follow."""
        if self.state == "start":
            return self._start()
        if self.state == "thinking":
            return self._thinking(out)
        if self.state == "untagged":
            return self._untagged_text(out)
        return self._answer(out)

    def _start(self) -> bool:
        stripped = self._buf.lstrip()
        if not stripped or THINK_OPEN.startswith(stripped):
            return False
        if stripped.startswith(THINK_OPEN):
            self.state, self._fresh = "thinking", True
            stripped = stripped[len(THINK_OPEN):]
        else:
            self.state = "untagged"
        self._buf = stripped
        return True

    def _thinking(self, out: list[Piece]) -> bool:
        buf = self._buf
        if self._fresh:
            stripped = buf.lstrip()
            if not stripped or THINK_OPEN.startswith(stripped):
                return False
            self._fresh = False
            if stripped.startswith(THINK_OPEN):
                stripped = stripped[len(THINK_OPEN):].lstrip()
            self._buf = stripped
            return True
        cut = buf.find(THINK_CLOSE)
        if cut >= 0:
            out.append(("thinking", buf[:cut]))
            self._close(buf[cut + len(THINK_CLOSE):])
            return True
        keep = _partial_suffix(buf, THINK_CLOSE)
        out.append(("thinking", buf[: len(buf) - keep]))
        self._buf = buf[len(buf) - keep:]
        return False

    def _untagged_text(self, out: list[Piece]) -> bool:
        buf = self._buf
        cut, tag = _first_tag(buf)
        if cut < 0:
            keep = _held(buf)
            piece = buf[: len(buf) - keep]
            out.append(("answer", piece))
            self._untagged.append(piece)
            self._buf = buf[len(buf) - keep:]
            return False
        out.append(("moved", "".join(self._untagged)))
        out.append(("thinking", buf[:cut]))
        self._untagged = []
        if tag == THINK_CLOSE:
            self._close(buf[cut + len(tag):])
        else:
            self.state, self._buf = "thinking", buf[cut + len(tag):].lstrip("\n")
        return True

    def _close(self, rest: str) -> None:
        self.state, self._buf, self._fresh = "answer", rest, True

    def _answer(self, out: list[Piece]) -> bool:
        if self._fresh:  # the whitespace after a closing tag is not part of the answer
            self._buf = self._buf.lstrip()
            self._fresh = not self._buf
            return not self._fresh
        buf = self._buf
        cut, tag = _first_tag(buf)
        if cut >= 0:
            out.append(("answer", buf[:cut]))
            self._buf = buf[cut + len(tag):]
            return True
        keep = _held(buf)
        out.append(("answer", buf[: len(buf) - keep]))
        self._buf = buf[len(buf) - keep:]
        return False


def join_pieces(pieces: Iterable[Piece]) -> tuple[str, str]:
    """(thinking, answer) from a splitter's pieces, a "moved" piece taking back the answer."""
    thinking: list[str] = []
    answer: list[str] = []
    for kind, text in pieces:
        if kind == "moved":
            answer.clear()
        (answer if kind == "answer" else thinking).append(text)
    return "".join(thinking), "".join(answer)


def split_thinking(text: str, opened: bool = False) -> tuple[str, str]:
    """Split a finished output into (thinking, answer), exactly as it streamed.

    A closing tag with no opening one means the template opened it: everything before it
    is thinking.
    """
    splitter = ThinkSplitter(opened)
    thinking, answer = join_pieces(splitter.feed(text) + splitter.flush())
    return thinking.strip(), answer.strip()
