"""What `ponder solve` and `ponder eval` share: the records' writer, how many problems run
at once, plain notes on stderr, and the exit after Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from ponder import batch
from ponder.engines import Loaded
from ponder.records import RecordWriter, open_writer
from ponder.runner import Plan


def workers_for(err: Console, requested: int | None, loaded: Loaded, plan: Plan) -> int:
    """Problems at once; says so when an asked-for concurrency cannot be used."""
    workers = batch.choose_workers(requested, loaded, plan)
    if requested is not None and requested > workers:
        say(err, f"ponder: note: this engine solves one problem at a time; --concurrency "
            f"{requested} runs them in turn", "yellow")
    return workers


@contextmanager
def closing_writer(out: Path | None, resume: bool, overwrite: bool,
                   stdout: bool = True) -> Iterator[RecordWriter]:
    writer = open_writer(out, resume=resume, overwrite=overwrite, stdout=stdout)
    try:
        yield writer
    finally:
        writer.close()


def say(console: Console, text: str, style: str | None = None) -> None:
    """One plain line on `console`: no markup, no highlighting, never wrapped."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def finish_interrupted(err: Console, out: Path | None) -> None:
    """Tell how to continue after Ctrl-C, then exit 130."""
    hint = f"; continue with --resume --out {out}" if out else ""
    say(err, f"ponder: interrupted{hint}", "yellow")
    raise typer.Exit(130)
