"""The test-time-scaling plot: accuracy against mean tokens per question (log-scale x).

Two renderings of the same points: a PNG drawn with matplotlib, an optional extra
(``pip install "ponder[plot]"``: its import is slow and its dependencies weigh tens of
megabytes, for one chart), and a text scatter chart for the terminal, always available.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from ponder.errors import InputError, PonderError
from ponder.evaluation import Summary

Color = tuple[int, int, int]
GRID: Color = (228, 228, 228)
AXIS: Color = (120, 120, 120)
LINK: Color = (175, 175, 175)
PALETTE: tuple[Color, ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
RICH_COLORS = ("blue", "dark_orange", "green", "red", "magenta", "yellow", "cyan",
               "bright_black", "bright_green", "bright_cyan")
MARKERS = "123456789abcdefghijklmnopqrstuvwxyz"
TITLE = "Test-time scaling: accuracy vs. tokens per question"
X_LABEL = "mean tokens per question (log scale)"
Y_LABEL = "accuracy (95% CI)"


@dataclass(frozen=True)
class Point:
    """One configuration: mean tokens per question, accuracy and its interval."""

    label: str
    tokens: float
    accuracy: float
    low: float
    high: float


def points_from(summaries: Sequence[Summary]) -> list[Point]:
    """The plottable configurations: those with an accuracy and a positive token mean."""
    points = []
    for s in summaries:
        acc, ci, tokens = s.accuracy, s.interval, s.mean_tokens
        if acc is not None and ci is not None and tokens is not None and tokens > 0:
            points.append(Point(s.label, tokens, acc, ci[0], ci[1]))
    return points


# ---------------------------------------------------------------------------------------
# Scales


@dataclass(frozen=True)
class LogScale:
    """log10 of the data range, padded so that points do not sit on the frame."""

    lo: float
    hi: float

    @classmethod
    def fit(cls, values: Sequence[float]) -> LogScale:
        logs = [math.log10(v) for v in values]
        lo, hi = min(logs), max(logs)
        pad = max(0.12 * (hi - lo), 0.25)
        return cls(lo - pad, hi + pad)

    def frac(self, value: float) -> float:
        return (math.log10(value) - self.lo) / (self.hi - self.lo)

    def ticks(self) -> list[float]:
        """Round values (1-2-5 steps, or every digit on narrow ranges) inside the range."""
        for mults in ((1, 2, 5), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
            found = [m * 10.0**d for d in range(math.floor(self.lo) - 1, math.ceil(self.hi) + 1)
                     for m in mults if self.lo <= math.log10(m * 10.0**d) <= self.hi]
            if len(found) >= 3:
                break
        if len(found) > 9:
            found = [v for v in found if math.log10(v).is_integer()]
        return found


def tick_label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


# ---------------------------------------------------------------------------------------
# The PNG plot (matplotlib, an optional extra)

PLOT_EXTRA_HINT = 'install it with: pip install "ponder[plot]"'


def require_matplotlib() -> None:
    """Fail before any work when --plot cannot be drawn (matplotlib is optional)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib, which is not installed",
                         PLOT_EXTRA_HINT) from None


def render_png(points: Sequence[Point], *, title: str = TITLE, width: int = 880,
               height: int = 560) -> bytes:
    """The scaling plot as PNG bytes (an empty frame with a note when there are no points)."""
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, PercentFormatter

    fig = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ordered = sorted(points, key=lambda p: p.tokens)
    if len(ordered) > 1:
        ax.plot([p.tokens for p in ordered], [p.accuracy for p in ordered],
                color=_rgb(LINK), linewidth=1.5, zorder=1)
    for i, p in enumerate(points):
        ax.errorbar([p.tokens], [p.accuracy], yerr=[[p.accuracy - p.low], [p.high - p.accuracy]],
                    fmt="o", color=_rgb(PALETTE[i % len(PALETTE)]), markersize=9, capsize=5,
                    elinewidth=2, label=f"{p.label}: {round(100 * p.accuracy)}%", zorder=2)
    if points:
        ax.legend(loc="best", frameon=False)
    else:
        ax.text(0.5, 0.5, "no configuration has scored answers", transform=ax.transAxes,
                ha="center", color=_rgb(AXIS))
        ax.set_xlim(10, 1000)
    ax.set_xscale("log")
    ax.margins(x=0.08)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: tick_label(v)))
    ax.xaxis.set_minor_formatter(FuncFormatter(_minor_label))
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(True, color=_rgb(GRID))
    ax.set(title=title, xlabel=X_LABEL, ylabel=Y_LABEL)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _minor_label(value: float, _pos: object = None) -> str:
    """Label the 2s and 5s between powers of ten, as the terminal chart does."""
    lead = round(value / 10.0 ** math.floor(math.log10(value) + 1e-9))
    return tick_label(value) if lead in (2, 5) else ""


def _rgb(color: Color) -> tuple[float, float, float]:
    return (color[0] / 255, color[1] / 255, color[2] / 255)


def write_png(path: Path, points: Sequence[Point], *, title: str = TITLE) -> None:
    data = render_png(points, title=title)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise PonderError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------
# The terminal chart


def terminal_chart(points: Sequence[Point], width: int = 56, height: int = 11) -> Text:
    """A text scatter plot: one marker per configuration, its 95% CI drawn as a bar."""
    scale = LogScale.fit([p.tokens for p in points] or [10.0, 1000.0])
    grid = [[(" ", "")] * width for _ in range(height)]

    def row_of(acc: float) -> int:
        return round((1 - acc) * (height - 1))

    for i, p in enumerate(points):
        col = min(width - 1, max(0, round(scale.frac(p.tokens) * (width - 1))))
        style = RICH_COLORS[i % len(RICH_COLORS)]
        for r in range(row_of(p.high), row_of(p.low) + 1):
            if grid[r][col][0] == " ":
                grid[r][col] = ("│", style + " dim")
        r, c = row_of(p.accuracy), col
        while grid[r][c][0] not in (" ", "│") and c < width - 1:
            c += 1
        grid[r][c] = (MARKERS[i % len(MARKERS)], style + " bold")
    return _chart_text(grid, scale, points, width, height)


def _chart_text(grid: list[list[tuple[str, str]]], scale: LogScale, points: Sequence[Point],
                width: int, height: int) -> Text:
    out = Text()
    out.append("accuracy\n", style="bold")
    for r, cells in enumerate(grid):
        pct = 100 * (1 - r / (height - 1))
        label = f"{pct:.0f}%" if r in (0, (height - 1) // 2, height - 1) else ""
        out.append(f"{label:>5} ┤", style="dim")
        for ch, style in cells:
            out.append(ch, style=style or None)
        out.append("\n")
    out.append("      └" + "─" * width + "\n", style="dim")
    out.append("       " + _tick_line(scale, width) + "\n", style="dim")
    out.append(" " * 7 + X_LABEL.center(width).rstrip() + "\n", style="dim")
    for i, p in enumerate(points):
        style = RICH_COLORS[i % len(RICH_COLORS)]
        out.append(f"  {MARKERS[i % len(MARKERS)]} ", style=style + " bold")
        out.append(f"{p.label}: {100 * p.accuracy:.1f}% (CI {100 * p.low:.1f}–"
                   f"{100 * p.high:.1f}%) at {p.tokens:,.0f} tokens\n")
    return out


def _tick_line(scale: LogScale, width: int) -> str:
    line = [" "] * (width + 6)
    for value in scale.ticks():
        label = tick_label(value)
        at = round(scale.frac(value) * (width - 1)) - len(label) // 2
        at = max(0, at)
        if all(c == " " for c in line[max(0, at - 2) : at + len(label) + 2]):
            line[at : at + len(label)] = list(label)
    return "".join(line).rstrip()
