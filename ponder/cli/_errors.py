"""Mapping exceptions to one line on stderr and an exit code, at the CLI boundary only."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from ponder.errors import Interrupted, PonderError

DEBUG_ENV = "PONDER_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def report(err: BaseException) -> int:
    """Print `err` as one line (a traceback too when PONDER_DEBUG is set); return exit code."""
    if isinstance(err, typer.TyperException):
        return _usage(err)
    if debug_enabled():
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    if isinstance(err, Interrupted):
        print(f"ponder: {err}", file=sys.stderr)
        return err.exit_code
    if isinstance(err, PonderError):
        print(f"ponder: error: {err}", file=sys.stderr)
        return err.exit_code
    if isinstance(err, typer.Abort):
        print("ponder: aborted", file=sys.stderr)
        return 1
    if isinstance(err, KeyboardInterrupt):
        print("ponder: interrupted", file=sys.stderr)
        return 130
    if isinstance(err, BrokenPipeError):
        return 0
    name = type(err).__name__
    print(f"ponder: internal error: {name}: {err} (set {DEBUG_ENV}=1 for details)",
          file=sys.stderr)
    return 70


def _usage(err: typer.TyperException) -> int:
    """A command-line mistake: its message on one line, and where to find help."""
    if type(err).__name__ != "NoArgsIsHelpError":  # that one has shown the help already
        path = getattr(getattr(err, "ctx", None), "command_path", None)
        hint = f" (see `{path} --help`)" if path else ""
        message = " ".join(err.format_message().split())
        print(f"ponder: error: {message}{hint}", file=sys.stderr)
    return err.exit_code
