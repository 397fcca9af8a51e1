"""Domain exceptions. Each carries a user-facing message; the CLI maps them to one line."""

from __future__ import annotations


class PonderError(Exception):
    """Base class: `str(err)` is the one line shown to the user."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InputError(PonderError):
    """The user's input (question, file, option) cannot be used."""

    exit_code = 2


class ContextOverflowError(InputError):
    """A prompt or request does not fit the model's context window."""


class ModelNotFoundError(PonderError):
    """An unknown model id or a path that does not exist."""

    exit_code = 3


class ModelNotInstalledError(PonderError):
    """A registered model that is not downloaded yet."""

    exit_code = 3


class ModelFileError(PonderError):
    """A model file is missing, truncated, corrupted or fails its checksum."""

    exit_code = 4


class DownloadError(PonderError):
    """A model source could not be reached or returned something unusable."""

    exit_code = 5


class EngineError(PonderError):
    """The inference backend failed or was asked something it cannot do."""

    exit_code = 6


class RemoteError(EngineError):
    """A remote inference server was unreachable, refused us, or broke a stream."""


class Interrupted(PonderError):
    """Ctrl-C outside a strategy run (loading a model, downloading): nothing to show."""

    exit_code = 130
