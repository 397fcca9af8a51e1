"""The `ponder` command: one module per command group, wired in with one line each."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ponder import __version__
from ponder.cli import ask, chat, eval, logs, models, solve, strategies
from ponder.cli._errors import report

app = typer.Typer(
    name="ponder",
    help="Think hard with local reasoning models: test-time-compute strategies on llama.cpp.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("ask")(ask.ask)
app.add_typer(models.app, name="models")
app.command("solve")(solve.solve)
app.command("eval")(eval.eval_command)
app.command("strategies")(strategies.strategies)
app.command("chat")(chat.chat)
app.add_typer(logs.app, name="logs")


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
