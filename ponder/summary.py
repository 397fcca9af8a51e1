"""An extractive summary of a chain of thought: how the answer was reached, in a few lines.

No model tokens: the thinking is cut into sentences, each is read for its role (a step
with a result, a check, a change of mind), and the summary keeps

- the main steps with their key results (equations, numbers), one line per new result;
- the checks and changes of mind, collapsed into counts ("re-checked 14/3 twice");
- the conclusion, which names the final answer.

Everything is linear regular-expression work, a few milliseconds on a 30,000-token trace.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

MAX_LINES = 6
MAX_STEPS = 4
LINE_CHARS = 100
Kind = Literal["step", "check", "pivot", "fix", "other"]

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[^\s\d])|\n+")
_FILLER = re.compile(
    r"^(?:(?:so|okay|ok|alright|all right|hmm+|well|now|then|and|but|right|yes|yeah|"
    r"great|good|oh|also|again|therefore|thus|hence|wait|let me see|let's see|"
    r"that means|which means|so that)\b[,.!:]?\s*)+",
    re.IGNORECASE,
)
_CHECK = re.compile(
    r"\b(?:double[- ]?check|re-?check|verify|verifying|confirm|make sure|sanity check|"
    r"let me check|check (?:again|that|this|it|each|my|the)|recap|to be (?:sure|safe|thorough))",
    re.IGNORECASE,
)
_CHECK_WORDS = ("check", "verif", "confirm", "sure", "recap", "safe", "thorough")
_FIX_WORDS = ("mistake", "error", "wrong", "incorrect", "can't", "cant", "no", "messed",
              "miscalc")
_PIVOT = re.compile(
    r"^(?:\W*(?:but |so |hmm,? )?(?:alternatively|another (?:way|approach|method|idea)|"
    r"instead|on second thought|let me try (?:a |another |something )|"
    r"maybe (?:a better|another) ))",
    re.IGNORECASE,
)
_FIX = re.compile(
    r"\b(?:I made a mistake|made an error|that'?s (?:not right|wrong|incorrect)|"
    r"that can'?t be (?:right|correct)|(?:was|were) (?:wrong|incorrect)|wait,? no\b|"
    r"I messed up|I miscalculated|my mistake|I was wrong)",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(
    r"^(?:[\s,:]|\b(?:maybe|perhaps|I can|I could|I should|we can|let me|let's|I'll|to|"
    r"(?:have )?(?:think|look|approach|approached|do|see|check|solve|compute) "
    r"(?:about )?(?:it|this|that)|"
    r"of (?:doing|solving|thinking about) (?:it|this)|would be|is|be|by|using|try|I)\b)*",
    re.IGNORECASE,
)
_RESTATE = re.compile(
    r"\b(?:I need to|we need to|the problem|asks|asked|we are given|I'm given|I have this|"
    r"find the|determine the)\b",
    re.IGNORECASE,
)
_CONCLUDE = re.compile(
    r"\b(?:the (?:final )?answer (?:is|should be)|final answer|the answer|"
    r"therefore|thus|so the|in conclusion|I think|is the correct)",
    re.IGNORECASE,
)
_WORD = re.compile(r"(?<![\\\w])[A-Za-z]{2,}")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:\s*/\s*\d+)?")
_NUMBER_ONLY = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_RESULT_WORDS = frozenset({"is", "equals", "gives", "to", "≈", "get", "got", "be"})
_MATH_SPAN = re.compile(r"\\\(.+?\\\)|\\\[.+?\\\]|\$\$.+?\$\$|\$[^$]+\$"
                        r"|\\boxed\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}")
_CLAUSE = re.compile(r"(?<=[,;:])\s+")
_TOKEN = re.compile(f"(?:{_MATH_SPAN.pattern}|\\S)+")
_KEEP = "\x00"
_DISPLAY = re.compile(r"\\\[.+?\\\]|\$\$.+?\$\$", re.DOTALL)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}")


@dataclass
class Sentence:
    index: int
    text: str
    kind: Kind
    value: str | None
    opens_paragraph: bool = False


def summarize(thinking: str, answer: str | None = None, max_lines: int = MAX_LINES) -> list[str]:
    """At most `max_lines` lines saying how `thinking` reached `answer`."""
    sentences = _sentences(thinking)
    if not sentences:
        return []
    forms = answer_forms(answer)
    conclusion = _conclusion(sentences, forms, answer)
    notes = [n for n in (_checks_line(sentences, forms, answer), _pivots_line(sentences)) if n]
    room = max(0, max_lines - len(notes) - (1 if conclusion else 0))
    said = conclusion.removeprefix("→ ") if conclusion else None
    steps = _steps(sentences, forms, min(room, MAX_STEPS), said)
    lines = [*steps, *notes[: max_lines - len(steps) - 1]]
    if conclusion:
        lines.append(conclusion)
    return _unique(lines)[:max_lines]


def answer_forms(answer: str | None) -> list[str]:
    """The final answer as it may be written in the thinking, flattened for comparison
    ("\\dfrac{14}{3}" → \\frac{14}{3}, 14/3; "\\frac{\\pi}{2}" → \\pi/2, π/2)."""
    if not answer:
        return []
    plain = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}", r"\1", answer)
    plain = re.sub(r"\^\{?\\circ\}?|°", "", plain)
    plain = _LATEX_FRAC.sub(r"\1/\2", _flat(plain))
    forms = [_flat(answer), plain, plain.replace("\\pi", "π")]
    return [f for f in dict.fromkeys(forms) if f]


def _flat(text: str) -> str:
    """`text` without math delimiters, sizing commands and spaces; \\dfrac as \\frac."""
    text = re.sub(r"\\[()\[\]]|\$|\\(?:left|right|displaystyle|[,!;])|\s+", "", text)
    return re.sub(r"\\[dt]frac", r"\\frac", text)


def _as_math(text: str) -> str:
    """LaTeX outside math delimiters (a display block's inside) wrapped so it renders."""
    if re.search(r"\\[a-zA-Z]|[_^]\{", text) and not re.search(r"\\[(\[]|\$", text):
        return f"\\({text}\\)"
    return text


def _sentences(thinking: str) -> list[Sentence]:
    out: list[Sentence] = []
    # a display block is one sentence: its spaces are held out of the sentence split
    thinking = _DISPLAY.sub(lambda m: _KEEP.join(m.group(0).split()), thinking)
    for paragraph in _PARAGRAPH.split(thinking.replace("<think>", "")):
        first = True
        for raw in _SENTENCE.split(paragraph.strip()):
            text = " ".join(raw.replace(_KEEP, " ").split())
            if len(text) > 2:
                value = _value(text)
                out.append(Sentence(len(out), text, _kind(text, value), value, first))
                first = False
    return out


def _kind(text: str, value: str | None) -> Kind:
    low = text.lower()  # cheap word tests first: the patterns run on few sentences
    if any(w in low for w in _FIX_WORDS) and _FIX.search(text):
        return "fix"
    if _PIVOT.match(text):
        return "pivot"
    if any(w in low for w in _CHECK_WORDS) and _CHECK.search(text):
        return "check"
    if "=" in text or value is not None:
        return "step"
    return "other"


def _value(text: str) -> str | None:
    """The result a sentence arrives at: what follows its last '=' (or a closing 'is 42')."""
    head = text.rstrip(" .,;:!?").rstrip("\\)]$ ")
    if "=" in head:
        tail = head.rsplit("=", 1)[1].strip().strip("$\\()[] ")
        return _canonical(tail) if tail and len(tail) <= 24 else None
    words = head.rsplit(None, 2)
    if len(words) < 2 or words[-2].lower() not in _RESULT_WORDS:
        return None
    number = words[-1].strip("$\\()")
    return _canonical(number) if _NUMBER_ONLY.fullmatch(number) else None


def _canonical(value: str) -> str:
    value = _LATEX_FRAC.sub(r"\1/\2", value)
    return re.sub(r"[\s,]", "", value).rstrip(".").lower()


def _mentions(text: str, forms: list[str]) -> bool:
    """Whether `text` states one of the answer's forms (as a whole number, not inside one)."""
    text = _flat(text)
    for form in forms:
        at = text.find(form)
        while at >= 0:
            before = text[at - 1] if at else " "
            after = text[at + len(form)] if at + len(form) < len(text) else " "
            if not (before.isdigit() or before == ".") and not (after.isdigit()
                                                               or after == "/"):
                return True
            at = text.find(form, at + 1)
    return False


def _steps(sentences: list[Sentence], forms: list[str], limit: int,
           conclusion: str | None) -> list[str]:
    """Key results on the way to the answer: where it was first reached, and the best new
    result of each stretch of reasoning before that, in order."""
    if limit <= 0:
        return []
    candidates = _new_results(sentences)
    reached = next((s for s in candidates if forms and _mentions(s.text, forms)), None)
    end = reached.index if reached else len(sentences)
    before = [s for s in candidates if s.index < end]
    picked = _spread(before, limit - (1 if reached else 0), end)
    if reached:
        picked.append(reached)
    lines = [_line(s.text) for s in sorted(picked, key=lambda s: s.index)]
    return [line for line in lines if line and line != conclusion]


def _new_results(sentences: list[Sentence]) -> list[Sentence]:
    """Step sentences that reach a value not reached before (repeats are re-checks);
    restatements of the problem are not steps."""
    seen: set[str] = set()
    out = []
    for s in sentences:
        if s.kind == "step" and s.value is not None and s.value not in seen \
                and not s.text.endswith(":") and not _RESTATE.search(s.text):
            seen.add(s.value)
            out.append(s)
    return out


def _spread(candidates: list[Sentence], limit: int, end: int) -> list[Sentence]:
    """The best-scoring candidate of each of `limit` equal stretches of [0, end)."""
    if limit <= 0 or not candidates:
        return []
    width = max(1, end) / limit
    buckets: dict[int, list[Sentence]] = {}
    for s in candidates:
        buckets.setdefault(min(limit - 1, int(s.index / width)), []).append(s)
    picked = [max(group, key=_score) for group in buckets.values()]
    rest = sorted((s for s in candidates if s not in picked), key=_score, reverse=True)
    return (picked + rest)[:limit]


def _score(s: Sentence) -> float:
    """Prefer short equations over long sentences that only mention a number."""
    score = 2.0 if "=" in s.text else 0.0
    score += 1.0 if len(s.text) <= 80 else -1.0 if len(s.text) > LINE_CHARS else 0.0
    return score - s.index * 1e-6


def _checks_line(sentences: list[Sentence], forms: list[str], answer: str | None) -> str | None:
    """Checks collapsed: one per run of sentences that re-check, with what they confirmed."""
    runs = _runs(sentences, "check")
    if not runs:
        return None
    confirmed = forms and any(_mentions(s.text, forms) for s in sentences
                              if s.kind in ("check", "step") and s.index > runs[0])
    if confirmed and answer:
        return f"Re-checked {_times(len(runs))}, arriving at {_as_math(answer)} again"
    return f"Re-checked the work {_times(len(runs))}"


def _pivots_line(sentences: list[Sentence]) -> str | None:
    """Changes of mind collapsed: other approaches tried and mistakes caught."""
    pivots = [s for s in sentences if s.kind == "pivot"]
    fixes = len(_runs(sentences, "fix"))
    parts = []
    if pivots:
        tried = Counter(_approach(s.text) for s in pivots)
        first = next(iter(tried))
        count = f" ({_times(len(pivots))})" if len(pivots) > 1 else ""
        parts.append(f"tried another way{count}: {first}" if first
                     else f"tried another way {_times(len(pivots))}")
    if fixes:
        parts.append(f"caught {'a mistake' if fixes == 1 else f'{fixes} mistakes'}")
    if not parts:
        return None
    line = "; ".join(parts)
    return _clip(line[0].upper() + line[1:])


def _approach(text: str) -> str:
    """What a change of mind switched to: its sentence without the 'alternatively'."""
    rest = _PIVOT.sub("", text, count=1)
    rest = _LEAD_IN.sub("", rest)
    return _as_math(_clip(rest.rstrip(".?! "), 60))


def _conclusion(sentences: list[Sentence], forms: list[str], answer: str | None) -> str | None:
    """The last sentence that states the answer (or concludes), else the answer itself."""
    stating = [s for s in sentences[-60:] if forms and _mentions(s.text, forms)
               and s.kind not in ("pivot", "fix")]
    worded = [s for s in stating if len(_WORD.findall(s.text)) >= 4]
    if stating:
        return "→ " + _stating(_clean((worded or stating)[-1].text), forms)
    if answer:
        return f"→ answer: {_as_math(answer)}"
    for s in reversed(sentences[-20:]):
        if _CONCLUDE.search(s.text):
            return "→ " + _line(s.text)
    return "→ stopped while thinking: " + _line(sentences[-1].text, 80)


def _stating(text: str, forms: list[str]) -> str:
    """A concluding sentence, shortened (if it must be) so that the answer stays in it:
    to its last clause that states the answer, else its start and its end."""
    if len(text) <= LINE_CHARS:
        return _as_math(text)
    clauses = _CLAUSE.split(text)
    for i in range(len(clauses) - 1, 0, -1):
        if _mentions(clauses[i], forms):
            tail = " ".join(clauses[i:])
            if len(tail) <= LINE_CHARS - 2:
                return "… " + _as_math(tail[0].upper() + tail[1:])
            break
    return _as_math(_ends(text, LINE_CHARS))


def _ends(text: str, limit: int) -> str:
    """The start and the end of `text` around an ellipsis, math spans kept whole."""
    tokens = _TOKEN.findall(text)
    tail: list[str] = []
    while tokens and (not tail or len(" ".join([tokens[-1], *tail])) <= limit * 0.6):
        tail.insert(0, tokens.pop())
    head: list[str] = []
    for token in tokens:
        if len(" ".join([*head, token, *tail])) + 3 > limit:
            break
        head.append(token)
    return " ".join(head).rstrip(",;:") + " … " + " ".join(tail) if tokens else " ".join(tail)


def _runs(sentences: list[Sentence], kind: Kind) -> list[int]:
    """Start index of each run of `kind` sentences (a run ends at the next step; a
    paragraph that opens with one starts a new run)."""
    starts: list[int] = []
    inside = False
    for s in sentences:
        if s.kind == kind and (not inside or s.opens_paragraph):
            starts.append(s.index)
        inside = s.kind == kind or (inside and s.kind in ("other", "step") and s.value is None)
    return starts


def _clean(text: str) -> str:
    text = re.sub(r"^\*\*[^*]+\*\*:?\s*", "", text)
    text = _FILLER.sub("", text).strip(" ,")
    first = text.split(" ", 1)[0].rstrip(",.:;")
    if len(first) > 1 and first.isalpha() and first.islower():
        text = text[0].upper() + text[1:]
    return text


def _line(sentence: str, limit: int = LINE_CHARS) -> str:
    return _as_math(_clip(_clean(sentence), limit))


def _clip(text: str, limit: int = LINE_CHARS) -> str:
    """`text` cut at a word boundary near `limit`, never inside a math span."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rfind(" ")
    cut = cut if cut > limit // 2 else limit - 1
    for span in _MATH_SPAN.finditer(text):
        if span.start() < cut < span.end():
            cut = span.start() if span.start() > limit // 2 else span.end()
            break
    if cut >= len(text):
        return text
    return text[:cut].rstrip(" ,;:…") + "…"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _unique(lines: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for line in lines:
        key = line.lower().strip(" .→")
        if key not in seen:
            seen.add(key)
            out.append(line)
    return out
