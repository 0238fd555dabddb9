"""Header checks shared by the data folder's tables (metadata, labels, submission format)
and the run files: a header split at another separator, a column name given twice."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import InputError

# Separators that a file exported with another locale or tool uses instead of commas.
OTHER_SEPARATORS = ((";", "semicolon"), ("\t", "tab"), ("|", "'|'"))


def listed(names: Sequence[str], limit: int = 12, width: int = 40) -> str:
    """Column names for a message: at most ``limit`` of them, each cut at ``width``."""
    shown_names = [n if len(n) <= width else n[:width] + "..." for n in names[:limit]]
    return str(shown_names) + (f" (and {len(names) - limit} more)" if len(names) > limit else "")


def check_separator(path: str | os.PathLike[str], found: Sequence[str],
                    expected: Sequence[str], kind: str) -> None:
    """A header read as one column that splits into the ``expected`` names at ``;``, a tab
    or ``|`` is an InputError saying which separator it saw (``kind``, e.g. ``run files``,
    must be comma-separated)."""
    for sep, sep_name in OTHER_SEPARATORS:
        if len(found) == 1 and set(expected) <= {n.strip().strip('"') for n in
                                                 found[0].split(sep)}:
            raise InputError(path, f"the header is {sep_name}-separated ({listed(found)}); "
                             f"{kind} must be comma-separated", "re-export the file with "
                             "commas between the values (e.g. pandas to_csv(sep=',')), keeping "
                             "'.' as the decimal point", row=1)


def check_unique_columns(path: str | os.PathLike[str], names: Sequence[str]) -> None:
    """No column name (spaces and quotes stripped, empty names aside) appears twice in a
    header, else an InputError naming it: pandas would rename the second ``x.1`` and pyarrow
    take one of them, silently dropping the other's values."""
    seen: dict[str, int] = {}
    for position, raw in enumerate(names, start=1):
        name = raw.strip().strip('"')
        if not name:
            continue
        if name in seen:
            raise InputError(path, f"column name '{name}' appears twice in the header "
                             f"(columns {seen[name]} and {position}), so which one holds "
                             "the values is ambiguous", "rename or remove one of the two "
                             "columns", row=1, column=name)
        seen[name] = position
