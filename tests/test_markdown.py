"""The shared Markdown-table helper renders tables GitHub parses as intended."""

from __future__ import annotations

import pytest

from aurora_mlops._markdown import markdown_cell, markdown_table


def test_table_has_header_rule_and_one_line_per_row() -> None:
    text = markdown_table(["name", "value"], [["a", 1], ["b", 2.5]])
    assert text.splitlines() == [
        "| name | value |",
        "|---|---|",
        "| a | 1 |",
        "| b | 2.5 |",
    ]


def test_cells_escape_pipes_and_newlines_and_show_missing_values() -> None:
    text = markdown_table(["x"], [["a|b"], ["two\nlines"], [None]], missing="n/a")
    assert text.splitlines()[2:] == ["| a\\|b |", "| two lines |", "| n/a |"]
    assert markdown_cell(None) == "-"


def test_empty_cells_are_one_space() -> None:
    assert markdown_table(["", ""], [["a", ""]]).splitlines() == ["| | |", "|---|---|", "| a | |"]


def test_alignment_rules() -> None:
    text = markdown_table(["a", "b", "c", "d"], [], align=["default", "left", "right", "center"])
    assert text.splitlines()[1] == "|---|:---|---:|:---:|"


@pytest.mark.parametrize(("header", "rows", "align"), [
    (["a", "b"], [["only one"]], None),
    (["a", "b"], [], ["right"]),
])
def test_shape_mismatch_is_refused(header: list[str], rows: list[list[str]],
                                   align: list[str] | None) -> None:
    with pytest.raises(ValueError, match="columns"):
        markdown_table(header, rows, align=align)  # type: ignore[arg-type]
