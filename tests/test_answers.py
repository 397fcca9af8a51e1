from __future__ import annotations

import pytest

from ponder.answers import equivalent, extract_answer, group_answers, normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the total is \\boxed{156}.", "156"),
        ("first \\boxed{1} then \\boxed{\\frac{3}{4}}", "\\frac{3}{4}"),
        ("nested \\boxed{\\sqrt{x^{2}}} done", "\\sqrt{x^{2}}"),
        ("Final answer: 0.05 dollars", "0.05 dollars"),
        ("The answer is **$1,200**.", "1,200"),
        ("I had 3 apples and ate 2, leaving 1", "1"),
        ("no numbers here", None),
        ("", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("raw", "norm"),
    [("$1,000", "1000"), ("156.0", "156"), ("\\text{yes}", "yes"), (" 0.50. ", "0.5"),
     ("\\$18", "18"), ("3/4", "0.75")],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("156", "156.00", True),
        ("1,000", "1000", True),
        ("\\frac{1}{2}", "0.5", True),
        ("\\dfrac{1}{2}", "1/2", True),
        ("x^2 + 2x", "2x + x^2", True),
        ("5", "6", False),
        ("5", None, False),
    ],
)
def test_equivalent(a: str, b: str | None, same: bool) -> None:
    assert equivalent(a, b) is same


def test_group_answers_merges_equivalent_forms() -> None:
    groups = group_answers(["18", "$18.00", "\\frac{36}{2}", "20"])
    assert sorted(len(v) for v in groups.values()) == [1, 3]
    assert groups["18"] == [0, 1, 2]
