"""The 50 real reasoning-model traces in `shared/data/traces` (see shared/data/README.md).

`shared/` sits beside the project's checkout (CI: `../shared`); a git worktree kept one
folder deeper finds it one level further up. Missing data fails the tests, never skips them.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ponder.thinking import THINK_CLOSE, THINK_OPEN
from tests.models import smollm2_path

ROOT = Path(__file__).resolve().parents[1]
TRACES = ("shared", "data", "traces", "math500-reasoning-traces.jsonl")
_SIMPLE_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def traces_path() -> Path:
    for base in (ROOT.parent, ROOT.parent.parent):
        path = base.joinpath(*TRACES)
        if path.is_file():
            return path
    pytest.fail(f"real traces not found: expected {ROOT.parent.joinpath(*TRACES)}")


@dataclass(frozen=True)
class Trace:
    id: str
    model: str
    question: str
    reference: str
    text: str
    graded_correct_by_source: bool

    @property
    def closes(self) -> bool:
        return THINK_CLOSE in self.text

    @property
    def thinking(self) -> str:
        """The thinking as the model meant it: everything before its closing tag."""
        return self.text.partition(THINK_CLOSE)[0].replace(THINK_OPEN, "", 1).strip()

    @property
    def answer(self) -> str:
        return self.text.partition(THINK_CLOSE)[2].strip()


@functools.cache
def load_traces() -> list[Trace]:
    rows = [json.loads(line) for line in traces_path().read_text(encoding="utf-8").splitlines()]
    return [Trace(r["id"], r["model"], r["question"], r["answer"], r["text"],
                  r["graded_correct_by_source"]) for r in rows]


def simple_tokens(text: str) -> tuple[str, ...]:
    """Words, spaces and single punctuation marks: tags come apart as a tokenizer cuts them."""
    return tuple(_SIMPLE_TOKEN.findall(text))


@functools.cache
def _smollm2_vocab() -> object:
    from llama_cpp import Llama

    return Llama(str(smollm2_path()), vocab_only=True, verbose=False)


@functools.cache
def smollm2_tokens(text: str) -> tuple[str, ...]:
    """`text` cut by SmolLM2's real tokenizer, decoded token by token as an engine streams it
    (a character split over two tokens arrives with the second)."""
    vocab = _smollm2_vocab()
    ids = vocab.tokenize(text.encode(), add_bos=False, special=False)  # type: ignore[attr-defined]
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return tuple(decoder.decode(vocab.detokenize([i])) for i in ids)  # type: ignore[attr-defined]
