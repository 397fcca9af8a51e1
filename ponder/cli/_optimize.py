"""`ponder models optimize ID`: a faster local copy of an installed model, and the copy
`ponder models pull` makes when the registry names a measured format for the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ponder.cli import _options as opt
from ponder.copies import remove_record, usable_record
from ponder.errors import ModelNotInstalledError
from ponder.optimize import (
    Measurement,
    auto,
    make_copy,
    normalize_format,
    record_download,
)
from ponder.registry import ModelEntry, installed_path, load_registry
from ponder.sources import verify

ModelArg = Annotated[str, typer.Argument(help="Model id or alias (see `ponder models list`).")]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="iq4_nl-mix (the download's Q5_0 tensors and its output "
                 "layer in IQ4_NL, every other tensor as downloaded), out-iq4_nl (the output "
                 "layer only), q4_0, q4_0-out-iq4_nl, q4_0-pure, iq4_nl-pure (every tensor in "
                 "4 bits: fastest, but they can cost accuracy), q8_0, or auto: measure q4_0, "
                 "iq4_nl-mix and q8_0 here and keep the fastest that passes a short accuracy "
                 "check \\[default: the format the registry names for the model, else auto].",
                 show_default=False),
]
RemoveOpt = Annotated[
    bool, typer.Option("--remove", help="Delete the optimized copy; engines run the download.")
]


def optimize(
    model: ModelArg,
    fmt: FormatOpt = None,
    threads: opt.ThreadsOpt = None,
    remove: RemoveOpt = False,
) -> None:
    """Requantize an installed model with llama.cpp into a faster local copy (the original
    is kept as downloaded). Engines run the copy unless given --no-optimize."""
    entry = load_registry().get(model)
    err = Console(stderr=True)
    if remove:
        for path in remove_record(entry.id):
            err.print(f"removed {path}")
        print(f"{entry.id}: runs {entry.quant} as downloaded")
        return
    original = installed_path(entry)
    if original is None:
        raise ModelNotInstalledError(
            f"model {entry.id} is not installed", hint=f"ponder models pull {entry.id}"
        )
    verify(original, entry, progress=True)
    choice = normalize_format(fmt or entry.optimize or "auto")
    if choice == "auto":
        _auto(err, entry, original, threads)
        return
    if entry.variant(choice) is not None:
        err.print(f"note: a {choice} file made from the original weights is published: "
                  f"ponder models pull {entry.id} --quant {choice.lower()}")
    with err.status(f"requantizing {entry.file} to {choice}…", spinner="dots"):
        record = make_copy(entry, original, choice, threads)
    print(f"{entry.id}: {record.format} copy at {record.path} (sha256 {record.sha256})")


def _auto(err: Console, entry: ModelEntry, original: Path, threads: int | None) -> None:
    err.print(f"measuring {entry.id}: the download ({entry.quant}) and each candidate format "
              "(8 arithmetic checks, greedy; then decoding 1 and 4 sequences x 40 tokens)")

    def report(m: Measurement) -> None:
        err.print(f"  {m.format:<7} {m.correct}/{m.total} checks right  "
                  f"{m.tokens_per_s:6.1f} tok/s  ({m.seconds:.1f} s)")

    result = auto(entry, original, threads, report=report)
    if result.kept is None:
        print(f"{entry.id}: the download ({entry.quant}) is the fastest that passes; "
              "no copy kept")
        return
    kept = result.kept
    print(f"{entry.id}: kept the {kept.format} copy at {kept.path} (sha256 {kept.sha256})")


def optimize_after_pull(
    err: Console, entry: ModelEntry, path: Path, variant: ModelEntry | None = None
) -> None:
    """After a pull: record a pulled variant as the format to run, or make the copy the
    registry names for the model (where it was measured faster, accuracy within noise)."""
    if variant is not None:
        record_download(entry, variant, path)
        err.print(f"engines will run the {variant.quant} file for {entry.id} "
                  f"(`ponder models optimize {entry.id} --remove` to undo)")
        return
    if not entry.optimize or usable_record(entry) is not None:
        return
    with err.status(f"making the {entry.optimize} copy…", spinner="dots"):
        record = make_copy(entry, path, entry.optimize)
    err.print(f"made a {record.format} copy that engines run ({record.path}); measured faster "
              f"with accuracy within noise. Undo: ponder models optimize {entry.id} --remove")
