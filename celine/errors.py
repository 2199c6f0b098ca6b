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


class RunError(CelineError, RuntimeError):
    """A run could not finish for a reason the user can act on."""


class Interrupted(CelineError):
    """Work stopped on request (a signal, a step limit) with its state saved: rerun to resume.
    The run is recorded KILLED, not FAILED."""
