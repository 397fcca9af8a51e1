"""Options shared by several commands, defined once as Annotated aliases with help panels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import typer

from ponder.errors import InputError

MODEL = "Model"
THINK = "Thinking and budget"
OUTPUT = "Output"
ENGINE = "Engine"
INPUT = "Input"

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model id, alias or path to a .gguf file "
                 "\\[default: $PONDER_MODEL, the config file, or the best installed model].",
                 rich_help_panel=MODEL, show_default=False),
]
EffortOpt = Annotated[
    str | None,
    typer.Option("--effort", "-e", help="How hard to think: low, medium, high or auto.",
                 rich_help_panel=THINK, show_default=False),
]
StrategyOpt = Annotated[
    str | None,
    typer.Option("--strategy", "-s", help="Strategy to run (overrides the effort's choice).",
                 rich_help_panel=THINK, show_default=False),
]
OptionOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-o", help="Strategy setting as key=value (repeatable).",
                 rich_help_panel=THINK, show_default=False),
]
BudgetOpt = Annotated[
    int | None,
    typer.Option("--budget", help="Hard cap on all tokens generated for one question.",
                 min=1, rich_help_panel=THINK, show_default=False),
]
TimeOpt = Annotated[
    str | None,
    typer.Option("--time", help="Wall-clock cap per question, e.g. 30s, 2m.",
                 rich_help_panel=THINK, show_default=False),
]
SeedOpt = Annotated[
    int, typer.Option("--seed", help="Random seed (same seed, same answer).", rich_help_panel=THINK)
]
TemperatureOpt = Annotated[
    float | None,
    typer.Option("--temperature", "-t", min=0.0, max=5.0, help="Sampling temperature.",
                 rich_help_panel=THINK, show_default=False),
]
SummaryOpt = Annotated[
    str,
    typer.Option("--summary", metavar="extractive|model", rich_help_panel=OUTPUT,
                 help="Who writes the summary of the thinking: extractive (picked from the "
                 "thinking, no tokens) or model (the loaded model, after the answer: at most "
                 "60 more tokens, counted in usage; skipped when --budget or --time is spent)."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object per answer.", rich_help_panel=OUTPUT)
]


def _gpu_layers(text: str | int) -> int | None:
    from ponder.engines.gpu import parse_gpu_layers

    try:
        return parse_gpu_layers(str(text))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


GpuLayersOpt = Annotated[
    int | None,
    typer.Option("--gpu-layers", parser=_gpu_layers, metavar="N|auto",
                 help="Layers to offload to a GPU: a number, -1 for all, or auto (all when "
                 "llama.cpp was built with a GPU backend, else none) \\[default: auto].",
                 rich_help_panel=ENGINE, show_default=False),
]
CtxOpt = Annotated[
    int | None,
    typer.Option("--ctx", min=256, help="Context size per sequence \\[default: model's, "
                 "at most 8192].", rich_help_panel=ENGINE, show_default=False),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="CPU threads \\[default: the free cores].",
                 rich_help_panel=ENGINE, show_default=False),
]
OptimizeOpt = Annotated[
    bool,
    typer.Option("--optimize/--no-optimize", rich_help_panel=ENGINE,
                 help="Run the model's optimized copy when it has one "
                 "(`ponder models optimize`); --no-optimize runs the download."),
]
EngineOpt = Annotated[
    str | None,
    typer.Option("--engine", envvar="PONDER_ENGINE", rich_help_panel=ENGINE,
                 show_default=False, help="Backend: llama (in-process llama.cpp) or openai "
                 "(an OpenAI-compatible server) \\[default: the config file's engine, or llama]."),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="Server URL for --engine openai, e.g. "
                 "http://127.0.0.1:8000/v1.", rich_help_panel=ENGINE, show_default=False),
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option("--api-key-env", help="Environment variable holding the server's API key.",
                 rich_help_panel=ENGINE, show_default=False),
]
FileOpt = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="Read the question from a file ('-' for stdin).",
                 show_default=False),
]


# --------------------------------------------------------------------------- problem files
# (ponder solve and ponder eval)

OverwriteOpt = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace an --out file that already holds results.",
                 rich_help_panel=OUTPUT),
]
FieldOpt = Annotated[
    str | None,
    typer.Option("--field", help="The question field of .jsonl/.csv input (default: "
                 "question); 'answer' is the reference and 'id' the id when present.",
                 rich_help_panel=INPUT, show_default=False),
]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="Input format: txt, jsonl or csv (default: from the file "
                 "suffix).", rich_help_panel=INPUT, show_default=False),
]
BlocksOpt = Annotated[
    bool,
    typer.Option("--blocks", help="Text input: problems are separated by blank lines "
                 "(default: one per line).", rich_help_panel=INPUT),
]
LimitOpt = Annotated[
    int | None,
    typer.Option("--limit", help="Only the first K problems.", rich_help_panel=INPUT,
                 show_default=False, metavar="K"),
]
ConcurrencyOpt = Annotated[
    str | None,
    typer.Option("--concurrency", help="Problems run at once: a number or auto (default: "
                 "auto: as many as the engine's slots or connections hold with the "
                 "strategy's chains). Their chains share the engine's decode batches.",
                 rich_help_panel=ENGINE, show_default=False, metavar="K|auto"),
]

SummarySource = Literal["extractive", "model"]


def parse_summary(value: str) -> SummarySource:
    """--summary's value, checked."""
    if value not in ("extractive", "model"):
        raise InputError(f"--summary {value!r} is not one of extractive, model")
    return value  # type: ignore[return-value]


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | None) -> float | None:
    """'30s', '2m', '1.5h' or plain seconds, to seconds."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"--time {text!r} is not a duration", "use e.g. 30s, 2m or 1h")
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _UNITS[unit]
