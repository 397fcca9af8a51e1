"""Answer extraction and equivalence on LaTeX: the MATH-500 references of the real traces.

On 45 of the 50 traces ponder's verdict matches the source's own grading
(`graded_correct_by_source`); on the other 5 the source is wrong and ponder is right.
"""

from __future__ import annotations

import pytest

from ponder.answers import equivalent, extract_answer
from tests.traces import Trace, load_traces

TRACES = {t.id: t for t in load_traces()}

# id -> (what ponder extracts, why the source's grading is wrong)
PONDER_RIGHT = {
    "DeepSeek-R1-Distill-Qwen-7B/math500_0000": (r"(3, \dfrac{\pi}{2})", "tuple with \\dfrac"),
    "DeepSeek-R1-Distill-Qwen-7B/math500_0002": (r"\dfrac{14}{3}", "\\dfrac vs \\frac"),
    "DeepSeek-R1-Distill-Llama-8B/math500_0002": (r"\dfrac{14}{3}", "\\dfrac vs \\frac"),
    "DeepSeek-R1-Distill-Qwen-7B/math500_0007": ("90", "90 vs 90^\\circ"),
    "DeepSeek-R1/math500_0007": ("90", "90 vs 90^\\circ"),
}


def verdict(trace: Trace) -> tuple[str | None, bool]:
    extracted = extract_answer(trace.answer) if trace.answer else None
    return extracted, equivalent(extracted, trace.reference)


@pytest.mark.parametrize("trace_id", list(PONDER_RIGHT))
def test_ponder_is_right_where_the_source_grading_is_not(trace_id: str) -> None:
    trace = TRACES[trace_id]
    extracted, correct = verdict(trace)
    assert extracted == PONDER_RIGHT[trace_id][0]
    assert correct and not trace.graded_correct_by_source


@pytest.mark.parametrize("trace_id", [i for i in TRACES if i not in PONDER_RIGHT])
def test_ponder_agrees_with_the_source_grading(trace_id: str) -> None:
    assert verdict(TRACES[trace_id])[1] == TRACES[trace_id].graded_correct_by_source


def test_agreement_count() -> None:
    agree = sum(verdict(t)[1] == t.graded_correct_by_source for t in TRACES.values())
    correct = sum(verdict(t)[1] for t in TRACES.values())
    assert (len(TRACES), agree, correct) == (50, 45, 42)


def test_a_trace_that_never_closes_has_no_answer_to_extract() -> None:
    trace = TRACES["DeepSeek-R1-Distill-Qwen-7B/math500_0009"]
    assert not trace.closes and verdict(trace) == (None, False)


@pytest.mark.parametrize(
    ("given", "reference", "same"),
    [
        (r"\dfrac{14}{3}", r"\frac{14}{3}", True),
        (r"\tfrac{14}{3}", r"\frac{14}{3}", True),
        ("14/3", r"\frac{14}{3}", True),
        (r"\frac{3}{56}", r"-\dfrac{1}{49}", False),
        ("90", r"90^\circ", True),
        (r"90^{\circ}", r"90^\circ", True),
        ("90°", r"90^\circ", True),
        ("66", r"90^\circ", False),
        (r"(3, \dfrac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)", True),
        (r"(3, \frac{\pi}{3})", r"\left( 3, \frac{\pi}{2} \right)", False),
        ("(1,2)", "(2,1)", False),
        ("[2, 5)", r"\left[2, 5\right)", True),
        (r"(-\infty, 3]", r"(-\infty,3]", True),
        ("[2,5]", "[2,5)", False),
        (r"\pi", r"\pi", True),
        (r"2\pi", r"\pi", False),
        (r"3\sqrt{13}", r"\sqrt{117}", True),
        ("6-5i", "6 - 5i", True),
        ("Evelyn", r"\text{Evelyn}", True),
    ],
)
def test_latex_forms(given: str, reference: str, same: bool) -> None:
    assert equivalent(given, reference) is same


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (r"so it is \(\boxed{90^\circ}\).", r"90^\circ"),
        (r"**Final Answer** \[ \boxed{\left[ 2, 5 \right)} \]", r"\left[ 2, 5 \right)"),
        (r"\[\boxed{(3, \frac{\pi}{2})}\]", r"(3, \frac{\pi}{2})"),
        (r"The answer is $\frac{1}{2}$.", r"\frac{1}{2}"),
    ],
)
def test_extracts_latex_answers(text: str, answer: str) -> None:
    assert extract_answer(text) == answer
