"""Your cell's contract in your own pytest, one test per check, as the built-in cells are tested
(in the manner of scikit-learn's parametrize_with_checks):

    from diagnostics.testing import parametrize_with_cell_checks

    @parametrize_with_cell_checks([LeakyTanh(input_size=2, hidden=4), (MyTorchCell(...), params)])
    def test_my_cells(cell, check):
        check(cell)

A check that fails fails its test with check_cell's line; one whose hook the cell does not have
is skipped with the reason. A cell given alone is checked at `cell.init(default_rng(0))`.
pytest is imported here only: the package itself does not need it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pytest

from .cells.base import Cell
from .cells.checks import CHECKS, cell_label, check_cell


class CellCheckCase:
    """One named check, called with a cell or a (cell, params) pair."""

    def __init__(self, name: str, batch: int, tol):
        self.name, self.batch, self.tol = name, batch, tol

    def __repr__(self) -> str:
        return self.name

    def __call__(self, cell) -> None:
        cell, params = cell if isinstance(cell, tuple) else (cell, cell.init(np.random.default_rng(0)))
        res = check_cell(cell, params, batch=self.batch, tol=self.tol, checks=(self.name,))
        if res.failures:
            pytest.fail(f"{res.cell}: {res.failures[0]}", pytrace=False)
        if res.skipped:
            pytest.skip(res.skipped[0])


def parametrize_with_cell_checks(cells: Iterable, *, batch: int = 3,
                                 tol: float | Mapping[str, float] | None = None):
    """pytest.mark.parametrize("cell, check") over every cell (a Cell, or a (Cell, params)
    pair) and every check of check_cell; the test calls check(cell)."""
    cells = list(cells)
    for i, c in enumerate(cells):
        cell = c[0] if isinstance(c, tuple) and len(c) == 2 else c
        if not isinstance(cell, Cell):
            raise TypeError(f"cells[{i}]: must be a Cell or a (cell, params) pair, got {type(c).__name__}")
    values, ids = [], []
    for c in cells:
        for name in CHECKS:
            values.append((c, CellCheckCase(name, batch, tol)))
            ids.append(f"{cell_label(c[0] if isinstance(c, tuple) else c)}-{name}")
    return pytest.mark.parametrize("cell, check", values, ids=ids)
