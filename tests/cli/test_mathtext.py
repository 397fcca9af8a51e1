"""Math readable in a terminal: LaTeX in answers and summaries as Unicode, raw when piped."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ponder.cli import app
from ponder.cli.mathtext import latex_to_unicode, segments, to_markdown, to_text
from ponder.cli.render import print_answer, summary_line
from ponder.engines.scripted import ScriptedEngine
from ponder.events import Result

# The trace: what a terminal showed, and what it should show.
R1_ANSWER = (
    "The angles add up: \\(40 + 80 + 50 = 170\\), so\n\n"
    "\\[36 + 85 + R = 180\\]\n\n"
    "and the answer is (\\boxed{59})."
)


@pytest.mark.parametrize(
    ("latex", "text"),
    [
        ("\\frac{14}{3}", "14/3"),
        ("\\dfrac{\\pi}{2}", "π/2"),
        ("\\frac{x+1}{2}", "(x+1)/2"),
        ("6 \\times 7 = 42", "6 × 7 = 42"),
        ("a \\cdot b", "a · b"),
        ("90^\\circ", "90°"),
        ("90^{\\circ}", "90°"),
        ("3\\sqrt{13}", "3√13"),
        ("\\sqrt{x+1}", "√(x+1)"),
        ("\\sqrt[3]{8}", "∛8"),
        ("2\\pi r", "2π r"),
        ("\\alpha + \\beta = \\gamma", "α + β = γ"),
        ("\\theta \\le \\Omega", "θ ≤ Ω"),
        ("x \\to \\infty", "x → ∞"),
        ("x^2 + y_1", "x² + y₁"),
        ("x^{10} + a_{n+1}", "x¹⁰ + aₙ₊₁"),
        ("e^{i\\pi/4}", "e^(iπ/4)"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "( 3, π/2)"),
        ("\\text{Evelyn}", "Evelyn"),
        ("50\\%", "50%"),
    ],
)
def test_latex_to_unicode(latex: str, text: str) -> None:
    assert latex_to_unicode(latex) == text


def test_delimiters_and_boxed_results() -> None:
    assert segments(R1_ANSWER) == [
        ("The angles add up: ", "text"),
        ("40 + 80 + 50 = 170", "math"),
        (", so\n\n", "text"),
        ("36 + 85 + R = 180", "math"),
        ("\n\nand the answer is (", "text"),
        ("59", "boxed"),
        (").", "text"),
    ]
    assert segments("so $x^2 = 4$ and $$y = \\frac{1}{2}$$") == [
        ("so ", "text"), ("x² = 4", "math"), (" and ", "text"), ("y = 1/2", "math")]
    assert segments("\\(\\boxed{\\dfrac{14}{3}}\\)") == [("14/3", "boxed")]


def test_dollars_that_are_money_stay_text() -> None:
    assert segments("It costs $5 and $10 today.") == [("It costs $5 and $10 today.", "text")]


def test_boxed_result_is_highlighted() -> None:
    text = to_text("so \\(x = \\boxed{\\frac{1}{2}}\\)", style="dim")
    assert text.plain == "so x = 1/2"
    assert [(text.plain[s.start:s.end], str(s.style)) for s in text.spans] == [
        ("1/2", "bold reverse")]


def test_math_in_markdown_is_escaped() -> None:
    assert to_markdown("\\(a_1 * b_2\\)") == "a₁ \\* b₂"
    assert to_markdown("\\(x_{ab}\\) and \\(y_{cd}\\)") == "x\\_(ab) and y\\_(cd)"


def terminal(width: int = 60) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)


def output(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_answer_in_a_terminal_shows_readable_math() -> None:
    console = terminal()
    print_answer(console, Result("59", R1_ANSWER, "", "eos"))
    shown = output(console)
    assert "40 + 80 + 50 = 170" in shown and "(40 + 80 + 50 = 170)" not in shown
    assert "36 + 85 + R = 180" in shown and "[36" not in shown
    assert "(59)" in shown and "boxed" not in shown and "\\" not in shown


def test_boxed_answer_is_highlighted_in_a_terminal() -> None:
    console = Console(file=io.StringIO(), width=60, force_terminal=True,
                      color_system="standard")
    print_answer(console, Result("59", "the answer is \\boxed{59}", "", "eos"))
    plain = Console(file=io.StringIO(), width=60, force_terminal=True,
                    color_system="standard")
    print_answer(plain, Result("59", "the answer is 59", "", "eos"))
    assert output(console) != output(plain)
    assert "59\x1b[0m" in output(console)


def test_summary_line_renders_math_and_fits_the_width() -> None:
    line = summary_line("→ The value is \\boxed{\\dfrac{14}{3}} and \\(x^2 = 9\\)", 80)
    assert line.plain == "  → The value is 14/3 and x² = 9"
    long = summary_line("step " * 40, 30)
    assert len(long.plain) == 29 and long.plain.endswith("…")


def test_piped_answer_keeps_the_raw_text(scripted: ScriptedEngine) -> None:
    scripted.enqueue("<think>add</think>" + R1_ANSWER)
    result = CliRunner().invoke(app, ["ask", "q"])
    assert result.exit_code == 0, result.output
    assert result.stdout == R1_ANSWER + "\n"


def test_json_keeps_the_raw_text(scripted: ScriptedEngine) -> None:
    scripted.enqueue("<think>add</think>" + R1_ANSWER)
    result = CliRunner().invoke(app, ["ask", "--json", "q"])
    assert json.loads(result.stdout)["text"] == R1_ANSWER
