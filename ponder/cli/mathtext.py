"""LaTeX math made readable in a terminal: `\\(..\\)`, `\\[..\\]`, `$..$` and `\\boxed{}`.

The math inside the delimiters goes through pylatexenc's latex2text, taught a few things
it leaves out: fractions with their parentheses, roots, degrees, and sub- and
superscripts as Unicode where every character has one. `\\boxed{}` results are kept apart
so the renderer can highlight them. Only the terminal view uses this; piped output and
JSON keep the model's raw text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, Literal

from rich.text import Text

Kind = Literal["text", "math", "boxed"]
Segment = tuple[str, Kind]
BOXED_STYLE = "bold reverse"

_MATH = re.compile(
    r"\\\((?P<inline>.+?)\\\)|\\\[(?P<display>.+?)\\\]|\$\$(?P<dollars>.+?)\$\$"
    r"|(?<![\\$\w])\$(?=\S)(?P<dollar>[^$\n]+?)(?<=\S)\$(?![\w$])",
    re.DOTALL,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_SUP = dict(zip("0123456789+-=()abcdefghijklmnoprstuvwxyz",
                "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))
_SUB = dict(zip("0123456789+-=()aehijklmnoprstuvx",
                "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", strict=True))
_RELATIONS = {"le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠",
              "approx": "≈", "equiv": "≡", "to": "→", "rightarrow": "→", "implies": "⟹"}
_ROOTS = {"2": "√", "3": "∛", "4": "∜"}


def segments(text: str) -> list[Segment]:
    """`text` cut into plain text, converted math, and boxed results."""
    out: list[Segment] = []
    at = 0
    for match in _MATH.finditer(text):
        out += _boxed_split(text[at:match.start()], "text")
        body = next(g for g in match.groups() if g is not None)
        out += _boxed_split(body.strip(), "math")
        at = match.end()
    out += _boxed_split(text[at:], "text")
    return [(t, k) for t, k in out if t]


def to_text(text: str, style: str = "", boxed_style: str = BOXED_STYLE) -> Text:
    """A Rich Text of `text` with its math as Unicode and boxed results highlighted."""
    out = Text(style=style)
    for piece, kind in segments(text):
        out.append(piece, style=boxed_style if kind == "boxed" else None)
    return out


def to_markdown(text: str) -> str:
    """`text` for Rich's Markdown: math converted (and escaped), boxed results as code."""
    parts = []
    for piece, kind in segments(text):
        if kind == "boxed":
            parts.append(f"`{piece.replace('`', '')}`")
        elif kind == "math":
            parts.append(re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", piece))
        else:
            parts.append(piece)
    return "".join(parts)


def _boxed_split(text: str, kind: Kind) -> list[Segment]:
    """Plain or math text with its `\\boxed{..}` parts taken out (braces may nest)."""
    out: list[Segment] = []
    at = 0
    for match in _BOXED.finditer(text):
        if match.start() < at:
            continue
        end = _closing_brace(text, match.end())
        if end < 0:
            break
        out.append(_convert(text[at:match.start()], kind))
        out.append((latex_to_unicode(text[match.end():end]).strip(), "boxed"))
        at = end + 1
    out.append(_convert(text[at:], kind))
    return out


def _convert(text: str, kind: Kind) -> Segment:
    return (latex_to_unicode(text), "math") if kind == "math" else (text, "text")


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


@functools.lru_cache(maxsize=1024)
def latex_to_unicode(math: str) -> str:
    """One LaTeX math expression as Unicode text ("\\frac{\\pi}{2}" → "π/2")."""
    if not math.strip():
        return math
    from pylatexenc.latexwalker import LatexWalker

    walker_db, converter = _latex()
    try:
        nodes, _, _ = LatexWalker(math, latex_context=walker_db,
                                  tolerant_parsing=True).get_latex_nodes()
        text = str(converter.nodelist_to_text(nodes))
    except Exception:  # pylatexenc raises its own parse errors; raw text is readable too
        return math
    text = re.sub(r"(?<=\S) {2,}(?=\S)", " ", text)
    return text.strip() if math == math.strip() else text


@functools.cache
def _latex() -> tuple[Any, Any]:
    """pylatexenc's parser and converter, taught fractions, roots, degrees and scripts."""
    from pylatexenc import latex2text, latexwalker, macrospec
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, SpecialsTextSpec

    one_arg = macrospec.MacroStandardArgsParser("{")
    walker_db = latexwalker.get_default_latex_context_db()
    walker_db.add_context_category(
        "ponder", prepend=True,
        macros=[macrospec.MacroSpec(name, "{{") for name in ("dfrac", "tfrac")]
        + [macrospec.MacroSpec("boxed", "{")],
        specials=[macrospec.SpecialsSpec(c, args_parser=one_arg) for c in "^_"],
    )
    text_db = latex2text.get_default_latex_context_db()
    text_db.add_context_category(
        "ponder", prepend=True,
        macros=[MacroTextSpec(name, simplify_repl=_frac) for name in ("frac", "dfrac", "tfrac")]
        + [MacroTextSpec("sqrt", simplify_repl=_sqrt), MacroTextSpec("boxed", simplify_repl=_arg0),
           MacroTextSpec("circ", "°"), MacroTextSpec("degree", "°"),
           MacroTextSpec("times", " × "), MacroTextSpec("cdot", " · "),
           MacroTextSpec("div", " ÷ "), MacroTextSpec("pm", "±")]
        + [MacroTextSpec(name, f" {sign} ") for name, sign in _RELATIONS.items()],
        specials=[SpecialsTextSpec("^", simplify_repl=_script(_SUP, "^")),
                  SpecialsTextSpec("_", simplify_repl=_script(_SUB, "_"))],
    )
    converter = LatexNodes2Text(latex_context=text_db, math_mode="text",
                                strict_latex_spaces="based-on-source")
    return walker_db, converter


def _arg(node: Any, l2tobj: Any, index: int) -> str:
    args = node.nodeargd.argnlist if node.nodeargd is not None else []
    if index >= len(args) or args[index] is None:
        return ""
    return str(l2tobj.nodelist_to_text([args[index]])).strip()


def _arg0(node: Any, l2tobj: Any) -> str:
    return _arg(node, l2tobj, 0)


def _grouped(text: str) -> str:
    """`text` as one operand: parenthesized unless it is a single number or symbol."""
    plain = text.replace(".", "", 1).removeprefix("-")
    return text if len(text) <= 1 or plain.isalnum() else f"({text})"


def _frac(node: Any, l2tobj: Any) -> str:
    return f"{_grouped(_arg(node, l2tobj, 0))}/{_grouped(_arg(node, l2tobj, 1))}"


def _sqrt(node: Any, l2tobj: Any) -> str:
    index = _arg(node, l2tobj, 0) or "2"
    sign = _ROOTS.get(index, _script(_SUP, "^")(None, None, index) + "√")
    return sign + _grouped(_arg(node, l2tobj, 1))


def _script(table: dict[str, str], mark: str) -> Callable[..., str]:
    """Super- or subscript: Unicode when every character has a form, else ^(..) / _(..)."""

    def convert(node: Any, l2tobj: Any, text: str | None = None) -> str:
        inner = text if text is not None else _arg(node, l2tobj, 0)
        if inner in ("°", "∘"):
            return "°"
        tight = inner.replace(" ", "")
        if tight and all(c in table for c in tight):
            return "".join(table[c] for c in tight)
        return mark + (inner if len(inner) <= 1 else f"({inner})")

    return convert
