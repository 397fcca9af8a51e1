"""Mapping exceptions to one line on stderr and an exit code, at the CLI boundary only."""

from __future__ import annotations

import os
import sys
import traceback

from ponder.errors import PonderError

DEBUG_ENV = "PONDER_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def report(err: BaseException) -> int:
    """Print `err` as one line (a traceback too when PONDER_DEBUG is set); return exit code."""
    if debug_enabled():
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    if isinstance(err, PonderError):
        print(f"ponder: error: {err}", file=sys.stderr)
        return err.exit_code
    if isinstance(err, KeyboardInterrupt):
        print("ponder: interrupted", file=sys.stderr)
        return 130
    if isinstance(err, BrokenPipeError):
        return 0
    name = type(err).__name__
    print(f"ponder: internal error: {name}: {err} (set {DEBUG_ENV}=1 for details)",
          file=sys.stderr)
    return 70
