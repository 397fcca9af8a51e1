"""The chat template and special tokens of a GGUF file, read by llama.cpp (vocab only)."""

from __future__ import annotations

from pathlib import Path

from ponder.engines._ggufmeta import TemplateInfo, template_info
from tests.harness import write_gguf


def test_template_tokens_and_context(tmp_path: Path) -> None:
    info = template_info(write_gguf(tmp_path / "tiny.gguf"))
    assert info == TemplateInfo("{% for m in messages %}{{ m.content }}{% endfor %}",
                                "<s>", "</s>", 2048, True)


def test_unreadable_files_have_no_template(tmp_path: Path) -> None:
    alien = write_gguf(tmp_path / "alien.gguf", arch="nosucharch")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes((tmp_path / "alien.gguf").read_bytes()[:100])
    (tmp_path / "text.gguf").write_text("not a model", encoding="utf-8")
    for path in (alien, cut, tmp_path / "text.gguf", tmp_path / "missing.gguf", tmp_path):
        assert template_info(path) is None
