"""Separating a model's thinking from its answer, and asking instruct models to think."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from ponder.events import Message, Phase
from ponder.textmatch import Found, HoldBack

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


def _tags(state: State) -> HoldBack:
    """The tags that matter in `state`: inside thinking only its end, elsewhere either."""
    return HoldBack((THINK_CLOSE,) if state == "thinking" else (THINK_OPEN, THINK_CLOSE))


class ThinkSplitter:
    """Streaming splitter: feed text chunks, get (kind, text) pieces back.

    Tags split across chunks are held back until they can be decided (by the streaming
    matcher of :mod:`ponder.textmatch`). `opened` means the output starts inside thinking:
    the chat template opened <think>, or the model is a native reasoner that thinks first
    (a repeated opening tag is dropped).

    Otherwise, before any visible text, an opening <think> switches to thinking, and other
    text streams as answer, provisionally: if a think tag follows, everything streamed so
    far was thinking after all (a template opened the tag without saying so). It comes back
    once as a ("moved", text) piece, exactly the answer text emitted until then, so a live
    view can re-label it. Answer pieces never contain a think tag.
    """

    def __init__(self, opened: bool = False) -> None:
        self.state: State = "thinking" if opened else "start"
        self._buf = ""  # text not yet given to the tag matcher
        self._fresh = opened  # at the start of a part: leading whitespace and tags are dropped
        self._untagged: list[str] = []
        self._matcher = _tags(self.state)

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
        rest, self._buf = self._matcher.flush() + self._buf, ""
        if not rest:
            return []
        return [("thinking" if self.state == "thinking" else "answer", rest)]

    def _enter(self, state: State, rest: str, fresh: bool) -> None:
        self.state, self._buf, self._fresh = state, rest, fresh
        self._matcher = _tags(state)

    def _step(self, out: list[Piece]) -> bool:
        """Consume what can be decided; True when the state changed and more may follow."""
        if self.state == "start":
            return self._start()
        if self._fresh:
            return self._skip_fresh()
        text, self._buf = self._buf, ""
        found = self._matcher.feed(text)
        if self.state == "thinking":
            out.append(("thinking", found.text))
            if found.pattern is not None:
                self._enter("answer", found.rest, fresh=True)
        elif self.state == "untagged":
            self._untagged_text(out, found)
        else:
            out.append(("answer", found.text))
            self._buf = found.rest  # a stray tag in the answer is dropped
        return found.pattern is not None

    def _start(self) -> bool:
        stripped = self._buf.lstrip()
        if not stripped or THINK_OPEN.startswith(stripped):
            return False
        if stripped.startswith(THINK_OPEN):
            self._enter("thinking", stripped[len(THINK_OPEN):], fresh=True)
        else:
            self._enter("untagged", stripped, fresh=False)
        return True

    def _skip_fresh(self) -> bool:
        """Drop the whitespace (and, in thinking, a repeated opening tag) a part starts with."""
        stripped = self._buf.lstrip()
        if self.state != "thinking":  # the whitespace after a closing tag is not the answer
            self._buf, self._fresh = stripped, not stripped
            return not self._fresh
        if not stripped or THINK_OPEN.startswith(stripped):
            return False
        if stripped.startswith(THINK_OPEN):
            stripped = stripped[len(THINK_OPEN):].lstrip()
        self._buf, self._fresh = stripped, False
        return True

    def _untagged_text(self, out: list[Piece], found: Found) -> None:
        """Untagged text is answer until a tag shows it was thinking: then it moves."""
        if found.pattern is None:
            out.append(("answer", found.text))
            self._untagged.append(found.text)
            return
        out.append(("moved", "".join(self._untagged)))
        out.append(("thinking", found.text))
        self._untagged = []
        if found.pattern == THINK_CLOSE:
            self._enter("answer", found.rest, fresh=True)
        else:
            self._enter("thinking", found.rest.lstrip("\n"), fresh=False)


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
