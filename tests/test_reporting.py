"""The one table renderer: aligned plain text and markdown from rows and column specs."""

from __future__ import annotations

from streamgrad.reporting import Column, render_table

COLUMNS = [
    Column("method", align="left"),
    Column("lr", spec="g"),
    Column("loss", "loss [last]", ".3f"),
]
ROWS = [{"method": "(truth)", "loss": 0.0}, {"method": "rtrl", "lr": 0.01, "loss": None}]


def test_plain_text_is_aligned_with_blank_and_missing_cells() -> None:
    assert render_table(ROWS, COLUMNS, title="best").splitlines() == [
        "best",
        "method     lr  loss [last]",
        "(truth)              0.000",
        "rtrl     0.01            -",
    ]


def test_markdown_is_an_unpadded_pipe_table() -> None:
    assert render_table(ROWS, COLUMNS, markdown=True).splitlines() == [
        "| method | lr | loss [last] |",
        "|:--|--:|--:|",
        "| (truth) |  | 0.000 |",
        "| rtrl | 0.01 | - |",
    ]
