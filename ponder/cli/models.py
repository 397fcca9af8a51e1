"""`ponder models ...`: list, pull, inspect and remove registered models."""

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
from ponder.engines import default_engine
from ponder.registry import FamilyDefaults, ModelEntry, Source, installed_path, load_registry
from ponder.sources import pull as pull_model
from ponder.sources import remove as remove_model
from ponder.sources import verify

app = typer.Typer(
    help="Manage local models: list, pull (download), info, rm.",
    no_args_is_help=True,
)

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
    data["installed"] = path is not None
    data["path"] = str(path) if path is not None else None
    return data


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
    rows = [(entry, installed_path(entry)) for entry in load_registry()]
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
            ]
            print("\t".join(fields))
        return
    table = Table(title="ponder models")
    for column in ("id", "name", "size", "thinking", "installed", "source"):
        table.add_column(column, justify="right" if column == "size" else "left")
    for entry, path in rows:
        table.add_row(
            entry.id,
            entry.name,
            human_size(entry),
            entry.thinking,
            "[green]✓[/green]" if path else "–",
            _sources_text(entry),
        )
    Console().print(table)


def _list_remote(base_url: str | None, api_key_env: str | None, as_json: bool) -> None:
    from ponder.engines.openai import list_remote_models

    ids = list_remote_models(base_url, api_key_env)
    print(json.dumps(ids, indent=2) if as_json else "\n".join(ids))


@app.command()
def pull(model: ModelArg) -> None:
    """Download a model (progress on stderr) and verify its checksum."""
    entry = load_registry().get(model)
    err = Console(stderr=True)
    existing = installed_path(entry)
    if existing is not None:
        verify(existing, entry, progress=True)
        err.print(f"{entry.id} is already installed")
        print(f"{entry.id}: {existing}")
        return
    err.print(
        f"pulling {entry.name} ({entry.quant}, {human_size(entry)}) from {_sources_text(entry)}"
    )
    path = pull_model(entry, progress=True)
    print(f"{entry.id} installed at {path}")


@app.command()
def info(model: ModelArg) -> None:
    """Show everything the registry knows about a model, and where it is installed."""
    entry = load_registry().get(model)
    path = installed_path(entry)
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
    ]
    for source in entry.sources:
        if source.kind == "hf":
            pin = f" @ {source.revision}" if source.revision else ""
            lines.append(("source", f"hf {source.repo}/{source.file}{pin}"))
        else:
            lines.append(("source", f"pypi {', '.join(source.packages)}"))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"{key:<{width}}  {value}")


def sampling_lines(d: FamilyDefaults) -> list[tuple[str, str]]:
    """The family's sampling settings as `info` shows them (--temperature overrides)."""
    single = "greedy" if d.single_temperature == 0 else f"temperature {d.single_temperature:g}"
    lines = [
        ("sampling", f"temperature {d.temperature:g}, top-p {d.top_p:g}, top-k "
                     f"{d.top_k or 'off'}, min-p {d.min_p:g} (chains that vote)"),
        ("one chain", f"{single} (--effort low, cot, budget)"),
        ("turn starts", repr(d.assistant_prefix) if d.assistant_prefix else "-"),
    ]
    if d.source:
        lines.append(("settings", d.source))
    return lines


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
    path = installed_path(entry)
    err = Console(stderr=True)
    if path is None:
        err.print(f"{entry.id} is not installed; nothing to remove")
        return
    if not yes and _stdin_is_tty() and not typer.confirm(f"Delete {path}?"):
        err.print("aborted")
        raise typer.Exit(1)
    removed = remove_model(entry)
    for p in removed:
        err.print(f"removed {p}")
    print(f"{entry.id} removed")
