"""The `ponder` command: one module per command group, wired in with one line each.

A command's module is imported only when that command runs: `ponder ask` answered from the
log, and `ponder --help`, do not pay for the imports of `models` (huggingface_hub, httpx) or
`eval`. The listing in `ponder --help` uses the one-line summaries below, which a test holds
equal to each command's own help.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer import _click as click  # Typer 0.29's own click (pyproject pins 0.29.x)
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command_from_info, get_group_from_info
from typer.models import CommandInfo, TyperInfo

from ponder import __version__
from ponder.cli._errors import report


@dataclass(frozen=True)
class Lazy:
    """A command (a function) or a command group (a `typer.Typer`) in `module.attribute`."""

    module: str
    attribute: str
    summary: str


COMMANDS: dict[str, Lazy] = {
    "ask": Lazy("ponder.cli.ask", "ask",
                "Ask a question; the answer goes to stdout, the thinking digest to stderr."),
    "solve": Lazy("ponder.cli.solve", "solve",
                  "Solve every problem in FILE; one JSON record per problem to --out or stdout."),
    "eval": Lazy("ponder.cli.eval", "eval_command",
                 "Compare efforts or strategies on DATA: accuracy (95% CI), tokens, time, and "
                 "a plot."),
    "strategies": Lazy("ponder.cli.strategies", "strategies",
                       "List the strategies with their options, and what each --effort level "
                       "runs."),
    "chat": Lazy("ponder.cli.chat", "chat",
                 "Talk with a model; every turn is thought through (same effort flags as ask) "
                 "and logged."),
    "models": Lazy("ponder.cli.models", "app",
                   "Manage local models: list, pull (download), info, optimize, rm."),
    "logs": Lazy("ponder.cli.logs", "app",
                 "The log of every ask, solve, eval and chat run: list, show, search, export, "
                 "prune."),
}


class Placeholder(TyperCommand):
    """A command not built yet: its name and summary, for the root help and suggestions."""


class LazyGroup(TyperGroup):
    """The root group: builds a command from its module when it is asked for by name."""

    _listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, lazy in COMMANDS.items():
            self.commands.setdefault(name, Placeholder(name=name, help=lazy.summary))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, Placeholder) and not self._listing:
            command = self.commands[cmd_name] = load_command(cmd_name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True  # the root help lists summaries: no command module is imported
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="ponder",
    help="Think hard with local reasoning models: test-time-compute strategies on llama.cpp.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    cls=LazyGroup,
)


def load_command(name: str) -> click.Command:
    """The click command of `name`, built from its module (imported now)."""
    lazy = COMMANDS[name]
    target = getattr(importlib.import_module(lazy.module), lazy.attribute)
    if isinstance(target, typer.Typer):
        return get_group_from_info(
            TyperInfo(target, name=name), pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands)
    return get_command_from_info(
        CommandInfo(name=name, callback=target),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode)


def _version(value: bool) -> None:
    if value:
        print(f"ponder {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = None,
) -> None:
    """Ask local reasoning models hard questions, with a thinking budget."""


def main() -> None:
    """Console-script entry point: domain and usage errors become one line and an exit code."""
    try:
        code = app(prog_name="ponder", standalone_mode=False)
    except SystemExit:
        raise
    except BaseException as err:  # the one place every failure is mapped for the user
        sys.exit(report(err))
    sys.exit(code if isinstance(code, int) else 0)
