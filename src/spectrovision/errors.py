"""Errors that a scientist can act on: each names the file, the place in it, and the fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input data. The message names the file, the row/column, and what to do."""

    def __init__(self, path: object, problem: str, fix: str, *, row: int | None = None,
                 column: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        self.row = row
        self.column = column
        where = self.path
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}. Fix: {fix}")


class ConfigError(ValueError):
    """The configuration is inconsistent; the message names the key and the fix."""


def shown(value: object) -> str:
    """A value as a message shows it: numbers plainly (``1e+39``, ``nan``, not
    ``np.float64(1e+39)``), text quoted."""
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    return repr(value)
