"""Every ponder module imports first, on its own, in a fresh interpreter: no import cycles."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ponder

ROOT = Path(ponder.__file__).resolve().parent.parent


def all_modules() -> list[str]:
    return ["ponder", *sorted(m.name for m in pkgutil.walk_packages(ponder.__path__, "ponder."))]


def test_the_module_list_covers_the_package() -> None:
    modules = all_modules()
    assert {"ponder.thinking", "ponder.engines._openai_gen", "ponder.cli.eval"} <= set(modules)
    assert len(modules) == len(list((ROOT / "ponder").rglob("*.py")))


@pytest.mark.parametrize("module", all_modules())
def test_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not result.stdout
