"""Where the integration tests find the real SmolLM2-135M GGUF.

Resolved through ponder's own registry (`ponder models pull smollm2-135m` installs it; CI
does so before the tests). `PONDER_TEST_MODEL` may point at the file directly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def smollm2_path() -> Path:
    explicit = os.environ.get("PONDER_TEST_MODEL")
    if explicit:
        return Path(explicit)
    from ponder.registry import installed_path, load_registry

    entry = load_registry().get("smollm2-135m")
    path = installed_path(entry)
    if path is None:
        pytest.fail("SmolLM2-135M is not installed: run `ponder models pull smollm2-135m`")
    return path
