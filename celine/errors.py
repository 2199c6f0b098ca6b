"""Errors the runner reports as a short message instead of a traceback."""


class CelineError(Exception):
    """Base of the errors that `celine` prints as one paragraph (traceback with HYDRA_FULL_ERROR=1)."""


class ConfigError(CelineError, ValueError):
    """Bad input found before any work starts: names the key, the value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str, hint: str = "") -> None:
        self.key, self.value, self.allowed = key, value, allowed
        msg = f"{key}={value!r} is not allowed: {allowed}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class MissingValue(ConfigError):
    """A required key with no value: `model.path is required: model 'hf' needs it (...)`."""

    def __init__(self, key: str, allowed: str, hint: str = "") -> None:
        super().__init__(key, None, allowed, hint)
        self.args = (f"{key} is required: {allowed}" + (f" ({hint})" if hint else ""),)

    def __str__(self) -> str:
        return self.args[0]


class RunError(CelineError, RuntimeError):
    """A run could not finish for a reason the user can act on."""


class Interrupted(CelineError):
    """Work stopped on request (a signal, a step limit) with its state saved: rerun to resume.
    The run is recorded KILLED, not FAILED."""


class DataError(CelineError, ValueError):
    """A data file or folder the run reads is unusable. The message names the path (and line),
    what is wrong and what is expected; printed as one line like a ConfigError."""


class DataNotFound(DataError, FileNotFoundError):
    """A data path that does not exist, or a folder without the files the format needs."""


class DataNotADirectory(DataError, NotADirectoryError):
    """A data path that had to be a folder."""


class DataFieldMissing(DataError, KeyError):
    """A record without the field the format needs."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""
