"""The two exceptions a run expects: a failure to report, and a signal that ends the run."""

from .constants import UNKNOWN


class HealthcheckError(Exception):
    """An expected failure: its message says what failed and what to check."""

    def __init__(self, message, state=UNKNOWN):
        super().__init__(message)
        self.state = state


class RunInterrupted(KeyboardInterrupt):
    """SIGTERM arrived; like Ctrl-C (SIGINT), it unwinds the run so the lock is released."""
