"""The test-time-scaling plot: accuracy against mean tokens per question (log-scale x).

Two renderings of the same points: a PNG drawn by a tiny pure-Python rasterizer (a pixel
buffer, lines, dots, a built-in 5x8 bitmap font, and a PNG encoder made of zlib and
struct) and a text scatter chart for the terminal. Drawing our own keeps ponder free of
matplotlib and its dependencies (tens of megabytes and a slow import) for one simple chart.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from ponder.errors import PonderError
from ponder.evaluation import Summary

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
INK: Color = (40, 40, 40)
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
# The rasterizer

GLYPH_W, GLYPH_H = 5, 8
_B32 = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
# Each glyph is 8 rows of 5 pixels; each row one base-32 digit (bit 4 is the left pixel).
FONT: dict[str, str] = {
    ' ': "00000000", '!': "44444040", '"': "AA000000", '#': "AAVAVAA0", '$': "4FKE5U40",
    '%': "OP248J30", '&': "CIK8LID0", "'": "44800000", '(': "24888420", ')': "84222480",
    '*': "04LEL400", '+': "044V4400", ',': "00000C48", '-': "000V0000", '.': "00000CC0",
    '/': "11248GG0", '0': "EHJLPHE0", '1': "4C4444E0", '2': "EH1248V0", '3': "EH161HE0",
    '4': "26AIV220", '5': "VGU11HE0", '6': "68GUHHE0", '7': "V1248880", '8': "EHHEHHE0",
    '9': "EHHF12C0", ':': "0CC0CC00", ';': "0CC0C480", '<': "248G8420", '=': "00V0V000",
    '>': "84212480", '?': "EH124040", '@': "EHNLNGE0", 'A': "EHHVHHH0", 'B': "UHHUHHU0",
    'C': "EHGGGHE0", 'D': "SIHHHIS0", 'E': "VGGUGGV0", 'F': "VGGUGGG0", 'G': "EHGNHHF0",
    'H': "HHHVHHH0", 'I': "E44444E0", 'J': "72222IC0", 'K': "HIKOKIH0", 'L': "GGGGGGV0",
    'M': "HRLLHHH0", 'N': "HHPLJHH0", 'O': "EHHHHHE0", 'P': "UHHUGGG0", 'Q': "EHHHLID0",
    'R': "UHHUKIH0", 'S': "FGGE11U0", 'T': "V4444440", 'U': "HHHHHHE0", 'V': "HHHHHA40",
    'W': "HHHLLLA0", 'X': "HHA4AHH0", 'Y': "HHA44440", 'Z': "V1248GV0", '[': "E88888E0",
    '\\': "GG842110", ']': "E22222E0", '^': "4AH00000", '_': "0000000V", '`': "84000000",
    'a': "00E1FHF0", 'b': "GGMPHHU0", 'c': "00EGGHE0", 'd': "11DJHHF0", 'e': "00EHVGE0",
    'f': "698S8880", 'g': "00FHHF1E", 'h': "GGMPHHH0", 'i': "40C444E0", 'j': "206222IC",
    'k': "GGIKOKI0", 'l': "C44444E0", 'm': "00QLLLL0", 'n': "00MPHHH0", 'o': "00EHHHE0",
    'p': "00UHHUGG", 'q': "00FHHF11", 'r': "00MPGGG0", 's': "00FGE1U0", 't': "88S88960",
    'u': "00HHHJD0", 'v': "00HHHA40", 'w': "00HHLLA0", 'x': "00HA4AH0", 'y': "00HHHF1E",
    'z': "00V248V0", '{': "34484430", '|': "44444440", '}': "O44244O0", '~': "008L2000",
    '×': "0HA4AH00", '–': "000F0000", '—': "000V0000",
}
_FALLBACK = "VHHHHHV0"


class Canvas:
    """An RGB pixel buffer with the few drawing operations a scatter plot needs."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * (y * self.width + x)
            self.pixels[i : i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), both included."""
        x0, x1 = max(0, min(x0, x1)), min(self.width - 1, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height - 1, max(y0, y1))
        if x0 > x1:
            return
        row = bytes(color) * (x1 - x0 + 1)
        for y in range(y0, y1 + 1):
            i = 3 * (y * self.width + x0)
            self.pixels[i : i + len(row)] = row

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1) -> None:
        """A straight line (Bresenham), `width` pixels thick."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err, half = dx + dy, (width - 1) // 2
        while True:
            self.rect(x0 - half, y0 - half, x0 - half + width - 1, y0 - half + width - 1, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err, x0 = err + dy, x0 + sx
            if e2 <= dx:
                err, y0 = err + dx, y0 + sy

    def dot(self, cx: int, cy: int, radius: int, color: Color) -> None:
        for dy in range(-radius, radius + 1):
            half = int(math.sqrt(radius * radius - dy * dy) + 0.5)
            self.rect(cx - half, cy + dy, cx + half, cy + dy, color)

    def text(self, x: int, y: int, s: str, color: Color, scale: int = 2) -> None:
        """Draw `s` with its top-left corner at (x, y)."""
        for k, ch in enumerate(s):
            code = FONT.get(ch, _FALLBACK)
            left = x + k * (GLYPH_W + 1) * scale
            for row, digit in enumerate(code):
                bits = _B32.index(digit)
                for col in range(GLYPH_W):
                    if bits & (16 >> col):
                        px, py = left + col * scale, y + row * scale
                        self.rect(px, py, px + scale - 1, py + scale - 1, color)

    def vtext(self, x: int, y: int, s: str, color: Color, scale: int = 2) -> None:
        """Draw `s` turned 90° anticlockwise (read bottom to top) with its bottom-left at (x, y)."""
        for k, ch in enumerate(s):
            code = FONT.get(ch, _FALLBACK)
            base = y - k * (GLYPH_W + 1) * scale
            for row, digit in enumerate(code):
                bits = _B32.index(digit)
                for col in range(GLYPH_W):
                    if bits & (16 >> col):
                        px, py = x + row * scale, base - (col + 1) * scale
                        self.rect(px, py, px + scale - 1, py + scale - 1, color)

    def png(self) -> bytes:
        return encode_png(self.width, self.height, bytes(self.pixels))


def text_width(s: str, scale: int = 2) -> int:
    return max(0, len(s) * (GLYPH_W + 1) * scale - scale)


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit RGB PNG: signature, IHDR, one zlib IDAT (filter 0 rows), IEND."""
    if len(rgb) != width * height * 3:
        raise ValueError("pixel data does not match the size")
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------
# The PNG plot


@dataclass(frozen=True)
class Frame:
    """Where the plot area sits on the canvas, and the data-to-pixel mapping."""

    left: int
    top: int
    right: int
    bottom: int
    scale: LogScale

    def px(self, tokens: float) -> int:
        return round(self.left + self.scale.frac(tokens) * (self.right - self.left))

    def py(self, accuracy: float) -> int:
        return round(self.bottom - accuracy * (self.bottom - self.top))


def render_png(points: Sequence[Point], *, title: str = TITLE, width: int = 880,
               height: int = 560) -> bytes:
    """The scaling plot as PNG bytes (an empty frame with a note when there are no points)."""
    canvas = Canvas(width, height)
    scale = LogScale.fit([p.tokens for p in points] or [10.0, 1000.0])
    frame = Frame(96, 64, width - 40, height - 84, scale)
    _axes(canvas, frame)
    canvas.text((width - text_width(title, 2)) // 2, 20, title, INK, 2)
    if points:
        _series(canvas, frame, points)
    else:
        note = "no configuration has scored answers"
        canvas.text((frame.left + frame.right - text_width(note)) // 2,
                    (frame.top + frame.bottom) // 2, note, AXIS)
    return canvas.png()


def _axes(canvas: Canvas, f: Frame) -> None:
    for pct in range(0, 101, 20):
        y = f.py(pct / 100)
        canvas.line(f.left, y, f.right, y, GRID)
        label = f"{pct}%"
        canvas.text(f.left - 10 - text_width(label), y - GLYPH_H + 1, label, INK)
    for value in f.scale.ticks():
        x = f.px(value)
        canvas.line(x, f.top, x, f.bottom, GRID)
        canvas.line(x, f.bottom, x, f.bottom + 5, AXIS)
        label = tick_label(value)
        canvas.text(x - text_width(label) // 2, f.bottom + 10, label, INK)
    canvas.line(f.left, f.top, f.left, f.bottom, AXIS, 2)
    canvas.line(f.left, f.bottom, f.right, f.bottom, AXIS, 2)
    canvas.text((f.left + f.right - text_width(X_LABEL)) // 2, f.bottom + 40, X_LABEL, INK)
    middle = (f.top + f.bottom) // 2
    canvas.vtext(18, middle + text_width(Y_LABEL) // 2, Y_LABEL, INK)


def _series(canvas: Canvas, f: Frame, points: Sequence[Point]) -> None:
    ordered = sorted(points, key=lambda p: p.tokens)
    for a, b in itertools.pairwise(ordered):
        canvas.line(f.px(a.tokens), f.py(a.accuracy), f.px(b.tokens), f.py(b.accuracy), LINK, 2)
    taken: list[tuple[int, int, int, int]] = []
    for i, p in enumerate(points):
        color = PALETTE[i % len(PALETTE)]
        x, y = f.px(p.tokens), f.py(p.accuracy)
        canvas.line(x, f.py(p.low), x, f.py(p.high), color, 2)
        for edge in (p.low, p.high):
            canvas.line(x - 6, f.py(edge), x + 6, f.py(edge), color, 2)
        canvas.dot(x, y, 7, color)
        canvas.dot(x, y, 3, WHITE)
        _label(canvas, f, p, x, y, color, taken)


def _label(canvas: Canvas, f: Frame, p: Point, x: int, y: int, color: Color,
           taken: list[tuple[int, int, int, int]]) -> None:
    """Name the point beside it, where the text fits and covers no earlier label."""
    text = f"{p.label} {round(100 * p.accuracy)}%"
    w, h = text_width(text), GLYPH_H * 2
    spots = [(x + 14, y - h - 4), (x + 14, y + 6), (x - 14 - w, y - h - 4), (x - 14 - w, y + 6),
             (x + 14, y - 2 * h - 8), (x - 14 - w, y + h + 10)]
    inside = [(sx, sy) for sx, sy in spots
              if f.left + 2 <= sx and sx + w <= canvas.width - 4 and f.top - 20 <= sy
              and sy + h <= f.bottom - 2]
    free = [(sx, sy) for sx, sy in inside
            if not any(_overlap((sx, sy, sx + w, sy + h), box) for box in taken)]
    sx, sy = (free or inside or spots)[0]
    taken.append((sx, sy, sx + w, sy + h))
    canvas.rect(sx - 2, sy - 2, sx + w + 1, sy + h + 1, WHITE)
    canvas.text(sx, sy, text, color)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


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
