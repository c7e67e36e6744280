"""Tab-separated tables of one id column and number columns (a quantifier's per-sample output),
read by compiled loops: the fields' bounds in one scan, the numbers parsed where they lie.

A number is parsed exactly (correctly rounded) on the fast path of Clinger (1990): a decimal
of at most 19 significant digits whose integer ``m`` is below 2⁵³ and whose power of ten ``p``
is within ±22 is ``m × 10^p`` or ``m / 10^p``, one rounding of two exact doubles. Every other
field (more digits, larger exponents, ``nan``, text) is left to Python's ``float``, which rounds
correctly too; quantifiers write few such fields.
"""

from __future__ import annotations

import numpy as np

from .._errors import CohortexError
from .._jit import njit

__all__ = ["TabTable", "parse_tab_table"]

_TAB, _NEWLINE, _RETURN = 9, 10, 13
_POWERS = np.array([10.0**k for k in range(23)])  # exact doubles


class TabTable:
    """A parsed table: its ids' bytes and its number columns.

    Attributes
    ----------
    id_bytes : ndarray of uint8
        The ids' bytes, one after the other.
    id_offsets : ndarray of int64, shape (n_rows + 1,)
        Where each id starts in ``id_bytes`` (and the end).
    numbers : ndarray of float64, shape (n_rows, n_number_columns)
    """

    def __init__(self, id_bytes: np.ndarray, id_offsets: np.ndarray, numbers: np.ndarray):
        self.id_bytes, self.id_offsets, self.numbers = id_bytes, id_offsets, numbers

    @classmethod
    def of_strings(cls, ids: np.ndarray, numbers: np.ndarray) -> TabTable:
        """A table of ids given as str."""
        encoded = [str(i).encode("utf-8") for i in ids]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets, numbers)

    @property
    def n_rows(self) -> int:
        return int(self.numbers.shape[0])

    def ids(self) -> np.ndarray:
        """The ids as an object array of str."""
        raw, at = self.id_bytes.tobytes(), self.id_offsets
        return np.array(
            [raw[at[i] : at[i + 1]].decode("utf-8") for i in range(self.n_rows)], dtype=object
        )

    def id_at(self, row: int) -> str:
        return (
            self.id_bytes[self.id_offsets[row] : self.id_offsets[row + 1]]
            .tobytes()
            .decode("utf-8", "replace")
        )

    def same_ids(self, other: TabTable) -> bool:
        """Whether ``other`` lists the same ids in the same order."""
        return bool(
            self.n_rows == other.n_rows
            and np.array_equal(self.id_offsets, other.id_offsets)
            and np.array_equal(self.id_bytes, other.id_bytes)
        )


def parse_tab_table(
    data: np.ndarray, n_columns: int, id_column: int, number_columns: list[int], where: str
) -> TabTable:
    """Parse the rows after the header line of a tab-separated table.

    Parameters
    ----------
    data : ndarray of uint8
        The whole file's bytes (decompressed).
    n_columns : int
        The header's number of columns: every row must have as many fields.
    id_column : int
    number_columns : list of int
    where : str
        The file's name, for errors.

    Returns
    -------
    TabTable

    Raises
    ------
    CohortexError
        For a row with another number of fields, or a field that is not a number.
    """
    is_newline = data == _NEWLINE
    n_newlines = int(np.count_nonzero(is_newline))
    start = int(np.argmax(is_newline)) + 1 if n_newlines else data.shape[0]
    bounds, bad_line = _field_bounds(data, start, n_columns, n_newlines)
    if bad_line >= 0:
        raise CohortexError(
            f"{where}: line {bad_line + 2} does not have the header's {n_columns} tab-separated "
            "fields."
        )
    numbers = np.empty((bounds.shape[0], len(number_columns)))
    slow = np.zeros(bounds.shape[0], dtype=np.bool_)
    for k, column in enumerate(number_columns):
        slow[:] = False
        _parse_numbers(data, bounds, column, numbers[:, k], slow, _POWERS)
        for row in np.flatnonzero(slow):
            text = data[bounds[row, column, 0] : bounds[row, column, 1]].tobytes()
            try:
                numbers[row, k] = float(text)
            except ValueError:
                raise CohortexError(
                    f"{where}: field {column + 1} of data row {row + 1} holds "
                    f"{text.decode('utf-8', 'replace')!r}, not a number."
                ) from None
    id_bytes, id_offsets = _gather_field(data, bounds, id_column)
    return TabTable(id_bytes, id_offsets, numbers)


@njit(nogil=True, cache=True)
def _field_bounds(data, start, n_columns, n_newlines):  # type: ignore[no-untyped-def]
    """Each data row's fields' [start, end) in ``data``: shape (n_rows, n_columns, 2); blank
    lines are skipped, a ``\\r`` before a line's end is not part of its last field. Returns
    the bounds and -1, or the (0-based, after the header) line of a row that does not have
    ``n_columns`` fields. ``n_newlines``: the file's, a bound on its rows."""
    n = data.shape[0]
    bounds = np.empty((n_newlines + 1, n_columns, 2), dtype=np.int64)  # lines after the header
    row, column, line, field_start = 0, 0, 0, start
    for i in range(start, n + 1):
        c = data[i] if i < n else _NEWLINE
        if c == _TAB:
            if column >= n_columns - 1:
                return bounds[:0], line
            bounds[row, column, 0] = field_start
            bounds[row, column, 1] = i
            column += 1
            field_start = i + 1
        elif c == _NEWLINE:
            end = i
            if end > field_start and data[end - 1] == _RETURN:
                end -= 1
            if column == 0 and end == field_start:  # a blank line (or the file's end)
                field_start = i + 1
                line += 1
                continue
            if column != n_columns - 1:
                return bounds[:0], line
            bounds[row, column, 0] = field_start
            bounds[row, column, 1] = end
            row += 1
            column = 0
            line += 1
            field_start = i + 1
    return bounds[:row], -1


@njit(nogil=True, cache=True)
def _parse_numbers(data, bounds, column, out, slow, powers):  # type: ignore[no-untyped-def]
    """Parse column ``column`` into ``out``; ``slow[r]`` where row r's field is not a decimal
    the fast path parses exactly."""
    for r in range(bounds.shape[0]):
        i, end = bounds[r, column, 0], bounds[r, column, 1]
        negative = False
        if i < end and (data[i] == 45 or data[i] == 43):  # - or +
            negative = data[i] == 45
            i += 1
        mantissa = np.uint64(0)
        digits, exponent, seen, exact = 0, 0, False, True
        point = False
        while i < end:
            if data[i] == 46 and not point:  # the decimal point
                point = True
            elif 48 <= data[i] <= 57:
                d = data[i] - 48
                seen = True
                if digits < 19:  # significant digits: the mantissa's (leading zeros are not)
                    if mantissa > 0 or d > 0:
                        mantissa = mantissa * np.uint64(10) + np.uint64(d)
                        digits += 1
                    exponent -= point
                else:  # beyond 19: exact only where 0
                    exponent += not point
                    exact = exact and d == 0
            else:
                break
            i += 1
        if seen and i < end and (data[i] == 101 or data[i] == 69):  # e or E
            i += 1
            sign = 1
            if i < end and (data[i] == 45 or data[i] == 43):
                sign = -1 if data[i] == 45 else 1
                i += 1
            value, any_digit = 0, False
            while i < end and 48 <= data[i] <= 57:
                value = min(value * 10 + (data[i] - 48), 100000)
                any_digit = True
                i += 1
            seen = seen and any_digit
            exponent += sign * value
        if not seen or i != end or not exact:
            slow[r] = True
            continue
        if mantissa == 0:
            out[r] = -0.0 if negative else 0.0
        elif mantissa < np.uint64(2**53) and -22 <= exponent <= 22:
            x = float(mantissa)
            x = x * powers[exponent] if exponent >= 0 else x / powers[-exponent]
            out[r] = -x if negative else x
        else:
            slow[r] = True


@njit(nogil=True, cache=True)
def _gather_field(data, bounds, column):  # type: ignore[no-untyped-def]
    """Column ``column``'s bytes one after the other, and where each starts (and the end)."""
    n_rows = bounds.shape[0]
    offsets = np.empty(n_rows + 1, dtype=np.int64)
    offsets[0] = 0
    for r in range(n_rows):
        offsets[r + 1] = offsets[r] + bounds[r, column, 1] - bounds[r, column, 0]
    out = np.empty(offsets[n_rows], dtype=np.uint8)
    for r in range(n_rows):
        out[offsets[r] : offsets[r + 1]] = data[bounds[r, column, 0] : bounds[r, column, 1]]
    return out, offsets
