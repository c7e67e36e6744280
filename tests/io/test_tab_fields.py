"""The compiled reader of quantifiers' tab-separated tables: every number as Python's float
parses it (correctly rounded), ragged rows and text refused."""

from __future__ import annotations

import numpy as np
import pytest

from cohortex import CohortexError
from cohortex.io._tab_fields import TabTable, parse_tab_table

TRICKY = [
    "0",
    "-0",
    "+7",
    "0.0",
    "5.",
    ".5",
    "1800.000",
    "0.000123",
    "1e-5",
    "1E+05",
    "2.5e3",
    "123456789012345678901234",
    "1234567890123456789.5",
    "9007199254740993",
    "0.1",
    "0.30000000000000004",
    "1.7976931348623157e308",
    "4.9e-324",
    "2.2250738585072014e-308",
    "1e400",
    "nan",
    "inf",
    "-1.5",
    "00012.5000",
    "3.14159265358979323846264338",
    "1e22",
    "1e23",
    "8.98846567431158e307",
]


def parse(text: str, n_columns: int = 3, numbers=(1, 2)) -> TabTable:
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    return parse_tab_table(data, n_columns, 0, list(numbers), "'t.tsv'")


def test_tricky_numbers_as_pythons_float():
    rows = "".join(f"id{i}\t{t}\t{t}\n" for i, t in enumerate(TRICKY))
    table = parse("name\ta\tb\n" + rows)
    expected = np.array([float(t) for t in TRICKY])
    np.testing.assert_array_equal(table.numbers[:, 0], expected)
    assert np.array_equal(np.signbit(table.numbers[:, 0]), np.signbit(expected))
    assert list(table.ids()) == [f"id{i}" for i in range(len(TRICKY))]


@pytest.mark.parametrize("style", ["{!r}", "{:.6g}", "{:.3f}", "{:.17g}", "{:.6e}", "{:.10f}"])
def test_random_numbers_bit_for_bit(style):
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [
            np.exp(rng.normal(0, 12, 3000)),
            rng.gamma(0.5, 300, 3000),
            np.round(rng.uniform(0, 5000, 1000), 3),
        ]
    )
    texts = [style.format(float(v)) for v in values]
    rows = "".join(f"t{i}\t{x}\t{x}\n" for i, x in enumerate(texts))
    table = parse("id\tx\ty\n" + rows)
    np.testing.assert_array_equal(table.numbers[:, 1], [float(x) for x in texts])


def test_line_endings_blank_lines_and_a_last_line_without_newline():
    table = parse("id\ta\tb\r\nx\t1\t2\r\n\r\ny\t3.5\t4\n\nz\t5\t6")
    np.testing.assert_array_equal(table.numbers, [[1, 2], [3.5, 4], [5, 6]])
    assert list(table.ids()) == ["x", "y", "z"]
    assert table.same_ids(TabTable.of_strings(np.array(["x", "y", "z"]), table.numbers))
    assert not table.same_ids(TabTable.of_strings(np.array(["x", "z", "y"]), table.numbers))
    assert parse("id\ta\tb\n").n_rows == 0


def test_ragged_rows_and_text_refused():
    with pytest.raises(CohortexError, match="line 3 does not have the header's 3"):
        parse("id\ta\tb\nx\t1\t2\ny\t1\n")
    with pytest.raises(CohortexError, match="line 2 does not have"):
        parse("id\ta\tb\nx\t1\t2\t3\n")
    with pytest.raises(CohortexError, match="'NA', not a number"):
        parse("id\ta\tb\nx\t1\tNA\n")
    with pytest.raises(CohortexError, match="'', not a number"):
        parse("id\ta\tb\nx\t\t2\n")
    with pytest.raises(CohortexError, match="'1.2.3', not a number"):
        parse("id\ta\tb\nx\t1.2.3\t2\n")
