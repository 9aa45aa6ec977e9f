"""Errors that end a run with exit code 2: the problem is the call, not the data.

Problems *inside* an input file are findings, never exceptions. These are for what stops the run
from starting: a missing file, an invalid rules file, a bad option.
"""


class SftgateError(Exception):
    """Base of every error sftgate raises on purpose. `str(error)` is the one-line message."""


class UsageError(SftgateError):
    """An option or argument that cannot be used as given."""


class ConfigError(SftgateError):
    """A rules file or profile that does not validate."""


class SourceError(SftgateError):
    """An input that cannot be opened at all: missing, a directory, no permission."""
