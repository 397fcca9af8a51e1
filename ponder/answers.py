"""Final-answer extraction and comparison.

Extraction prefers an explicit `\\boxed{}`, then a "final answer" phrase, then the last
number. Comparison is by normalized text, then numerically, then by math-verify's symbolic
equivalence for LaTeX forms.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?%?|-?\$?\.\d+%?"
_NUMBER_RE = re.compile(_NUMBER)
_FINAL_RE = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:|=)?\s*[:=]?\s*\**\s*(?!is\s*$)(\S.*)",
    re.IGNORECASE | re.MULTILINE,
)
_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
# math-verify's limits are wall-clock seconds (default 5): on a busy machine parsing a tuple
# took longer, and equal answers came out unequal. This only guards against runaway input.
SYMBOLIC_TIMEOUT = 60


def _boxed_contents(text: str) -> list[str]:
    found = []
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found.append(text[match.end() : i - 1])
    return found


def extract_answer(text: str) -> str | None:
    """The final answer stated in `text`, or None when it states none."""
    boxed = _boxed_contents(text)
    if boxed:
        return boxed[-1].strip() or None
    finals = _FINAL_RE.findall(text)
    if finals:
        line = finals[-1].strip().splitlines()[0].strip()
        in_line: list[str] = _NUMBER_RE.findall(line)
        if in_line and len(line) > 40:
            return in_line[0]
        return line.rstrip(".").strip("*$ ") or None
    numbers: list[str] = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


def normalize(answer: str) -> str:
    """A canonical string: LaTeX wrappers, units of money, commas and trailing zeros removed."""
    s = answer.strip()
    s = _TEXT_WRAP_RE.sub(r"\1", s)
    s = s.replace("\\$", "").replace("$", "").replace("\\!", "").replace("\\,", "")
    s = s.replace("\\%", "%").strip().rstrip(".").strip()
    if s.startswith("\\(") and s.endswith("\\)"):
        s = s[2:-2].strip()
    number = _as_number(s)
    if number is not None:
        return _format_number(number)
    return re.sub(r"\s+", " ", s).lower()


def _as_number(s: str) -> float | None:
    t = s.replace(",", "").rstrip("%").strip()
    frac = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}", t) or re.fullmatch(
        r"(-?\d+)\s*/\s*(-?\d+)", t
    )
    if frac and float(frac.group(2)) != 0:
        return float(frac.group(1)) / float(frac.group(2))
    try:
        return float(t)
    except ValueError:
        return None


def _format_number(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.10g}"


def equivalent(a: str | None, b: str | None) -> bool:
    """Whether two answers are the same mathematical value (or the same text)."""
    if a is None or b is None:
        return False
    return _equivalent(a, b)


@lru_cache(maxsize=65536)
def _equivalent(a: str, b: str) -> bool:
    """Cached: offline replays compare the same few answers millions of times."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return True
    xa, xb = _as_number(na), _as_number(nb)
    if xa is not None and xb is not None:
        return abs(xa - xb) <= 1e-6 * max(1.0, abs(xa), abs(xb))
    return _symbolic_equal(na, nb)


@lru_cache(maxsize=4096)
def _symbolic_equal(a: str, b: str) -> bool:
    try:
        from math_verify import parse, verify
    except ImportError:  # pragma: no cover - math-verify is a dependency
        return False
    try:
        gold = parse(f"${a}$", parsing_timeout=SYMBOLIC_TIMEOUT)
        target = parse(f"${b}$", parsing_timeout=SYMBOLIC_TIMEOUT)
        return bool(verify(gold, target, timeout_seconds=SYMBOLIC_TIMEOUT))
    except Exception:  # math-verify raises many parser errors; unequal is the safe answer
        return False


def group_answers(answers: list[str]) -> dict[str, list[int]]:
    """Group answers by equivalence; keys are the normalized form of each group's first member."""
    groups: dict[str, list[int]] = {}
    for i, ans in enumerate(answers):
        key = next((k for k in groups if equivalent(k, ans)), normalize(ans))
        groups.setdefault(key, []).append(i)
    return groups
