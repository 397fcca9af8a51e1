"""Problems to solve, read from a file: plain text, JSON Lines or CSV.

Problems come from a ``.txt`` file (one per line, or blocks separated by blank lines), a
``.jsonl`` file or a ``.csv`` file with a header. Lines that cannot be used (malformed JSON,
a wrong number of CSV fields, an empty question) become problems that carry an ``error``;
they are written as error records instead of stopping the run.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder import textinput
from ponder.errors import InputError

FORMATS = ("txt", "jsonl", "csv")
_SUFFIXES = {".txt": "txt", ".text": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl",
             ".csv": "csv"}
DEFAULT_FIELD = "question"
REFERENCE_FIELD = "answer"
ID_FIELD = "id"


@dataclass(frozen=True)
class Problem:
    """One question to solve. `error` says why it cannot be run (it becomes an error record)."""

    id: str
    question: str
    reference: str | None = None
    error: str | None = None
    line: int = 0


def read_source(source: Path) -> str:
    """The text of `source` ('-' is stdin), with a clear error when it cannot be read.
    Bytes that are not UTF-8 are kept as surrogate escapes: their lines become errors."""
    try:
        return textinput.lenient(textinput.read_stdin() if str(source) == "-"
                                 else source.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None


def detect_format(source: Path, text: str, fmt: str | None = None) -> str:
    """The format named by --format, the file suffix, or (stdin) the first line's shape."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format '{fmt}'", f"choose from {', '.join(FORMATS)}")
        return fmt
    if str(source) == "-":
        first = next((line for line in text.split("\n") if line.strip()), "")
        return "jsonl" if first.lstrip().startswith("{") else "txt"
    suffix = source.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise InputError(f"unknown format for {source.name}",
                     "use a .txt, .jsonl or .csv file, or --format txt|jsonl|csv")


def load_problems(
    source: Path,
    *,
    fmt: str | None = None,
    field: str | None = None,
    blocks: bool = False,
) -> list[Problem]:
    """Read and parse every problem of `source`; raises InputError for unusable input."""
    text = read_source(source)
    kind = detect_format(source, text, fmt)
    if blocks and kind != "txt":
        raise InputError("--blocks applies to .txt input only")
    if field is not None and kind == "txt":
        raise InputError("--field applies to .jsonl and .csv input only")
    if kind == "txt":
        problems = parse_txt(text, blocks=blocks)
    elif kind == "jsonl":
        problems = parse_jsonl(text, field or DEFAULT_FIELD)
    else:
        problems = parse_csv(text, field or DEFAULT_FIELD)
    where = "stdin" if str(source) == "-" else str(source)
    if not problems:
        raise InputError(f"no problems in {where}")
    return mark_duplicates(textinput.screen(problems, text, where))


def parse_txt(text: str, *, blocks: bool = False) -> list[Problem]:
    """One problem per non-blank line, or per block of lines between blank lines."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not blocks:
        return [Problem(str(n), line.strip(), line=n)
                for n, line in enumerate(lines, 1) if line.strip()]
    problems: list[Problem] = []
    start, current = 0, []
    for n, line in enumerate([*lines, ""], 1):
        if line.strip():
            start = start or n
            current.append(line.rstrip())
        elif current:
            problems.append(Problem(str(start), "\n".join(current).strip(), line=start))
            start, current = 0, []
    return problems


def parse_jsonl(text: str, question_field: str = DEFAULT_FIELD) -> list[Problem]:
    """One JSON object per line; a line that is not one becomes an error problem."""
    problems: list[Problem] = []
    found = False
    keys: dict[str, None] = {}
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(_broken(n, f"line {n}: malformed JSON ({exc.msg})"))
            continue
        if not isinstance(obj, dict):
            problems.append(_broken(n, f"line {n}: not a JSON object"))
            continue
        found = found or question_field in obj
        keys.update(dict.fromkeys(obj))
        problems.append(from_fields(obj, question_field, n))
    if problems and not found:
        _no_field(question_field, list(keys), "line")
    return problems


def parse_csv(text: str, question_field: str = DEFAULT_FIELD) -> list[Problem]:
    """A CSV file with a header row; rows with the wrong number of fields become errors."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _csv_header(reader)
    if header is None:
        return []
    if question_field not in header:
        _no_field(question_field, header, "column")
    problems: list[Problem] = []
    for n, row, error in _csv_rows(reader):
        if error is not None:
            problems.append(_broken(n, f"line {n}: {error}"))
        elif len(row) != len(header):
            problems.append(_broken(n, f"line {n}: expected {len(header)} fields, "
                                       f"found {len(row)}"))
        else:
            problems.append(from_fields(dict(zip(header, row, strict=True)), question_field, n))
    return problems


def _csv_header(reader: Iterator[list[str]]) -> list[str] | None:
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                return [cell.strip() for cell in row]
    except csv.Error as exc:
        raise InputError(f"the CSV header cannot be read: {exc}") from None
    return None


def _csv_rows(reader: Any) -> Iterator[tuple[int, list[str], str | None]]:
    """(first line number, fields, parse error) for each non-blank row."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, [], str(exc)
            continue
        if any(cell.strip() for cell in row):
            yield start, row, None


def from_fields(row: Mapping[str, Any], question_field: str, n: int) -> Problem:
    """A problem from one object or CSV row: question, optional reference answer and id."""
    pid = _text(row.get(ID_FIELD)) or str(n)
    reference = _text(row.get(REFERENCE_FIELD))
    value = row.get(question_field)
    if value is None:
        return Problem(pid, "", reference, f"line {n}: no '{question_field}' field", n)
    if not isinstance(value, str):
        return Problem(pid, "", reference, f"line {n}: '{question_field}' is not text", n)
    if not value.strip():
        return Problem(pid, "", reference, f"line {n}: empty problem", n)
    return Problem(pid, value.strip(), reference, None, n)


def _text(value: Any) -> str | None:
    """A field value as text: numbers as written, structures as JSON, blanks as None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.strip() or None


def _broken(n: int, reason: str) -> Problem:
    return Problem(str(n), "", None, reason, n)


def _no_field(name: str, seen: Sequence[str], what: str) -> None:
    fields = ", ".join(s for s in seen if s) or "none"
    raise InputError(f"no {what} has a '{name}' field", f"fields: {fields}; choose with --field")


def mark_duplicates(problems: list[Problem]) -> list[Problem]:
    """Ids must be unique to resume: later copies become error problems with an id of their
    own (`ID@LINE`), so that their records never stand in for the first one's."""
    first: dict[str, int] = {}
    out: list[Problem] = []
    for p in problems:
        if p.id in first:
            reason = f"line {p.line}: duplicate id '{p.id}' (first on line {first[p.id]})"
            out.append(Problem(f"{p.id}@{p.line}", p.question, None, reason, p.line))
        else:
            first[p.id] = p.line
            out.append(p)
    return out


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")


def pending(problems: Sequence[Problem], done: set[str]) -> list[Problem]:
    """The problems whose ids are not in `done`, in order."""
    return [p for p in problems if p.id not in done]
