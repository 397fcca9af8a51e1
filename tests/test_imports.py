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


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


HEAVY = {"ponder.sources", "huggingface_hub", "httpx", "rich.markdown", "ponder.cli.render",
         "ponder.engines.llamacpp", "numpy", "ponder.cli.eval", "ponder.cli.models"}


def test_the_cli_imports_a_command_only_when_it_runs() -> None:
    code = ("import contextlib, io\nfrom ponder.cli import app\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    app(['--help'], prog_name='ponder', standalone_mode=False)")
    loaded = loaded_after(code)
    assert not {m for m in loaded if m.startswith("ponder.cli.") and m != "ponder.cli._errors"}
    assert not loaded & (HEAVY - {"rich.markdown"})  # Typer's help formats with it


def test_answering_from_the_log_needs_no_engine_nor_renderer() -> None:
    assert not loaded_after("import ponder.cli.ask") & HEAVY


def test_the_help_summaries_are_the_commands_own() -> None:
    from ponder.cli import COMMANDS, load_command

    for name, lazy in COMMANDS.items():
        command = load_command(name)
        assert command.help is not None
        assert command.help.split("\n\n")[0].replace("\n", " ") == lazy.summary, name
