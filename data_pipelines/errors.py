"""Named, user-facing errors.

Every mistake a user can make (a bad file, a missing column, a wrong config key, a corrupt checkpoint)
is raised as a :class:`NewsalphaError` subclass whose message is one line naming the file, row and
column. The CLI turns these into that one line on stderr and exit code 2, never a traceback.
This module imports nothing heavy so that every package (including ``evaluation``) may use it.
"""

from __future__ import annotations


class NewsalphaError(Exception):
    """Base class of every error caused by user input; the CLI prints ``str(err)`` and exits 2."""

    exit_code = 2


class ConfigError(NewsalphaError):
    """A config file or option is wrong (unknown key, bad type, bad value)."""


class DataContractError(NewsalphaError):
    """An input table breaks its contract; names the file, and the row and column where known."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None, column: str | None = None):
        parts = []
        if file is not None:
            parts.append(str(file))
        if row is not None:
            parts.append(f"row {row}")
        if column is not None:
            parts.append(f"column '{column}'")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.file, self.row, self.column = file, row, column


class LookAheadError(NewsalphaError):
    """A label or signal would use information not available at decision time."""


class PriceSourceError(NewsalphaError):
    """Prices could not be loaded or fetched (names the tickers or the file)."""


class CheckpointError(NewsalphaError):
    """A checkpoint or predictor folder is missing, not a predictor, or corrupt."""
