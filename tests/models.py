"""Where the integration tests find the real SmolLM2-135M GGUF.

Resolved through ponder's own registry: `ponder models pull smollm2-135m` installs it (CI
does so before the tests). `PONDER_TEST_MODEL` may point at the file directly. The
environment is read when this module is imported, before the per-test fixture points
PONDER_HOME at an empty folder.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_REAL_HOME = os.environ.get("PONDER_HOME")
_EXPLICIT = os.environ.get("PONDER_TEST_MODEL")


@contextlib.contextmanager
def _real_home() -> Iterator[None]:
    saved = os.environ.get("PONDER_HOME")
    if _REAL_HOME is None:
        os.environ.pop("PONDER_HOME", None)
    else:
        os.environ["PONDER_HOME"] = _REAL_HOME
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PONDER_HOME", None)
        else:
            os.environ["PONDER_HOME"] = saved


@functools.cache
def smollm2_path() -> Path:
    """The installed SmolLM2-135M file; fails (never skips) when it is missing."""
    if _EXPLICIT:
        return Path(_EXPLICIT)
    from ponder.registry import installed_path, load_registry

    with _real_home():
        path = installed_path(load_registry().get("smollm2-135m"))
    if path is None:
        pytest.fail("SmolLM2-135M is not installed: run `ponder models pull smollm2-135m`")
    return path
