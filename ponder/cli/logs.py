"""`ponder logs ...`: read the log of every run (list, show, search, export), find it, prune it."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
import sys
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ponder.cli._runlog import show_summary
from ponder.cli.render import print_answer
from ponder.errors import InputError
from ponder.log.db import LogError, log_path
from ponder.log.session import result_from_record
from ponder.log.store import DIED, RUNNING, Store, iter_json, status_of

app = typer.Typer(
    help="The log of every ask, solve, eval and chat run: list, show, search, export, prune.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line).")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most N runs.")]
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@app.command("list")
def list_runs(limit: LimitOpt = 20, json_out: JsonOpt = False) -> None:
    """The latest runs, newest first."""
    _print_runs(_runs(limit=limit), json_out)


@app.command("search")
def search(
    text: Annotated[str, typer.Argument(help="Text to find in questions and answers.")],
    limit: LimitOpt = 20,
    json_out: JsonOpt = False,
) -> None:
    """Runs whose question or answer contains TEXT, newest first."""
    if not text.strip():
        raise InputError("the search text is empty")
    _print_runs(_runs(limit=limit, search=text), json_out)


@app.command("show")
def show(
    run_id: Annotated[int, typer.Argument(help="The run's id (see `ponder logs list`).")],
    json_out: JsonOpt = False,
    chains: Annotated[bool, typer.Option("--chains", help="Also print every chain.")] = False,
) -> None:
    """A run's question, the thinking summary and the answer, as `ask` showed them."""
    store = _store()
    row = store.run(run_id) if store else None
    if store is None or row is None:
        raise InputError(f"no run {run_id} in the log", "see `ponder logs list`")
    source = store.run(int(row["cached_from"])) if row["cached_from"] else None
    chain_rows = store.chains(int((source or row)["id"]))
    if json_out:
        data = next(iter_json([row]))
        data["chains"] = [_chain_json(c) for c in chain_rows]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    err = Console(stderr=True)
    err.print(Text(f"run {row['id']} · {_describe(row)}", style="bold"))
    err.print(Text(f"Q: {row['question']}"))
    record = json.loads(row["record"]) if row["record"] else {}
    result = result_from_record(record)
    if record:
        show_summary(err, result, float(record.get("seconds") or 0.0))
    if chains:
        for c in chain_rows:
            err.print(Text(f"— chain {c['chain'] + 1}: {c['tokens']} tokens, "
                           f"{c['finish_reason']}, answer {c['answer']}", style="bold dim"))
            err.print(Text(c["thinking"], style="dim"))
            err.print(Text(c["text"]))
    status = status_of(row)
    if status == RUNNING and row["pid"] is not None and row["host"] == socket.gethostname():
        err.print(f"ponder: this run is still running (process {row['pid']})", style="yellow")
    elif status == RUNNING:  # logged by an older ponder, or on another host: cannot be told
        err.print("ponder: this run never finished (it was stopped, or is still running)",
                  style="yellow")
    elif status == DIED:
        err.print("ponder: this run never finished: its process died mid-run (killed, or "
                  "crashed)", style="yellow")
    print_answer(Console(), result)


@app.command("export")
def export(
    json_out: Annotated[bool, typer.Option("--json", help="JSON Lines (the only format).")
                        ] = True,
    chains: Annotated[bool, typer.Option("--chains", help="Include every chain's text.")
                      ] = False,
) -> None:
    """Every run as JSON Lines on stdout, oldest first."""
    store = _store()
    rows = list(reversed(store.runs())) if store else []
    for data in iter_json(rows):
        if chains and store is not None:
            data["chains"] = [_chain_json(c) for c in store.chains(int(data["id"]))]
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@app.command("path")
def path() -> None:
    """Where the log is (set PONDER_LOG to move it)."""
    print(log_path())


@app.command("prune")
def prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age of the runs to delete, "
                                            "e.g. 30d, 12h, 2w.", show_default=False)],
) -> None:
    """Delete the runs older than the given age, with their chains."""
    seconds = parse_age(older_than)
    store = _store()
    removed = store.prune(time.time() - seconds) if store else 0
    Console(stderr=True).print(f"ponder: pruned {removed} run(s) older than {older_than}",
                               markup=False, highlight=False)


def parse_age(text: str) -> float:
    """'30d', '12h', '2w', '90m', '45s' in seconds."""
    match = _AGE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"--older-than {text!r} is not an age", "use e.g. 30d, 12h or 2w")
    return float(match.group(1)) * _AGE_UNITS[match.group(2).lower()]


def _store() -> Store | None:
    """The log, or None when nothing was logged yet."""
    where = log_path()
    if not where.exists():
        return None
    store = Store(where, create=False)
    with contextlib.suppress(LogError):  # best-effort: a read-only log is still read
        store.mark_died()
    return store


def _runs(**query: Any) -> list[sqlite3.Row]:
    store = _store()
    if store is None:
        Console(stderr=True).print(f"ponder: nothing logged yet ({log_path()})",
                                   markup=False, highlight=False)
        return []
    return store.runs(**query)


def _print_runs(rows: list[sqlite3.Row], json_out: bool) -> None:
    if json_out:
        for data in iter_json(rows):
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        return
    if not rows:
        return
    if not sys.stdout.isatty():
        for row in rows:
            print("\t".join(_cells(row)))
        return
    table = Table(box=None, padding=(0, 1))
    for column in ("id", "when", "command", "model", "how", "tokens", "seconds", "answer",
                   "question", "note"):
        table.add_column(column, justify="right" if column in ("id", "tokens", "seconds")
                         else "left", no_wrap=column != "question", overflow="ellipsis",
                         max_width=40 if column == "question" else None)
    for row in rows:
        table.add_row(*_cells(row))
    Console().print(table)


def _cells(row: sqlite3.Row) -> list[str]:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created"]))
    how = "/".join(x for x in (row["effort"], row["strategy"]) if x)
    tokens = "" if row["completion_tokens"] is None else str(row["completion_tokens"])
    seconds = "" if row["seconds"] is None else f"{row['seconds']:.1f}"
    question = " ".join(str(row["question"]).split())
    return [str(row["id"]), when, row["command"], row["model"], how, tokens, seconds,
            str(row["answer"] or ""), question[:200], _note(row)]


def _note(row: sqlite3.Row) -> str:
    notes = []
    if row["cached_from"]:
        notes.append(f"cached from {row['cached_from']}")
    if row["chains_reused"]:
        notes.append(f"{row['chains_reused']} chain(s) reused, "
                     f"{row['tokens_saved']} tokens saved")
    status = status_of(row)
    if status in (RUNNING, "interrupted", DIED):
        notes.append("unfinished" if status == RUNNING else status)
    if row["conversation"]:
        notes.append(f"chat {row['conversation'][:8]} turn {row['turn']}")
    return "; ".join(notes)


def _describe(row: sqlite3.Row) -> str:
    cells = _cells(row)
    parts = [cells[1], cells[2], cells[3], cells[4]]
    if cells[5]:
        parts.append(f"{cells[5]} tokens")
    if cells[6]:
        parts.append(f"{cells[6]}s")
    if cells[9]:
        parts.append(cells[9])
    return " · ".join(parts)


def _chain_json(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data.pop("stream", None)
    data["logged_tokens"] = data.pop("sampled")
    return data
