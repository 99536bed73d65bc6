"""Cells by name, and the public check that a cell's Jacobian is true.

    make_cell("lstm", input_size=1, hidden=64, forget_bias=1.0)
    register_cell(MyCell)                    # under MyCell.kind; MyCell(input_size=..., hidden=..., **options)
    register_cell("mycell", MyCell)          # the older form: "mycell" must be MyCell.kind
    check_jacobian(cell, params, state, x)   # -> JacobianCheck(max_rel_error, method, ok)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import suggest
from ..options import option_fields
from ..registry import Registry
from .base import Cell, missing

CELLS: Registry[type[Cell]] = Registry("cell", Cell)


def register_cell(name_or_cls, cls: type[Cell] | None = None, *, overwrite: bool = False) -> None:
    """Make a Cell class available as `make_cell(cls.kind, ...)`: register_cell(MyCell), or
    register_cell("mycell", MyCell) where the name must be MyCell.kind. The class's typed
    dataclass fields declare its options (diagnostics/options.py). A class that lacks a
    required member (Cell's docstring) is refused here, before a case file can name it."""
    target = name_or_cls if cls is None else cls
    if isinstance(target, type) and issubclass(target, Cell) and (lacks := missing(target)):
        raise TypeError(f"register_cell: {target.__name__} is not a complete cell: it lacks {'; '.join(lacks)}")
    CELLS.add(name_or_cls, cls, overwrite=overwrite)


def unregister_cell(name: str) -> None:
    """Remove a registered cell (the built-ins can be removed too; tests use this to clean up)."""
    CELLS.remove(name)


def registry_version() -> int:
    return CELLS.version


def cell_kinds() -> list[str]:
    return CELLS.kinds()


def cell_factory(name: str) -> type[Cell]:
    return CELLS.get(name)


def cell_options(name: str) -> dict[str, object]:
    """Option names and defaults of a registered cell (`input_size` and `hidden` included)."""
    out = {}
    for k, (_, info) in option_fields(cell_factory(name)).items():
        out[k] = info.get_default(call_default_factory=True) if not info.is_required() else None
    return out


def make_cell(name: str, **options) -> Cell:
    factory = cell_factory(name)
    known = cell_options(name)
    for key in options:
        if key not in known:  # name the bad key instead of a TypeError
            raise ValueError(f"{key}: unknown option of {name} cells{suggest(key, known)}; "
                             f"expected one of {', '.join(known)}")
    return factory(**options)


@dataclass(frozen=True)
class JacobianCheck:
    max_rel_error: float
    method: str
    ok: bool


def reference_jacobian(cell: Cell, params, state: np.ndarray, x: np.ndarray,
                       method: str = "auto", h: float | None = None) -> tuple[np.ndarray, str]:
    """d state<t>/d state<t-1> (B, S, S) computed from `step` alone, independent of `jacobian`.

    complex-step: J[:, :, j] = Im(step(state + i h e_j)) / h, exact to rounding for analytic
    steps. central: (step(s + h e_j) - step(s - h e_j)) / 2h, for steps that are not analytic.
    """
    if method == "auto":
        method = "complex" if cell.analytic else "central"
    B, S = state.shape
    J = np.empty((B, S, S))
    if method == "complex":
        h = 1e-30 if h is None else h
        for j in range(S):
            s = state.astype(np.complex128)
            s[:, j] += 1j * h
            new, _ = cell.step(params, s, x.astype(np.complex128))
            J[:, :, j] = new.imag / h
    elif method == "central":
        h = 1e-6 if h is None else h
        for j in range(S):
            sp, sm = state.copy(), state.copy()
            sp[:, j] += h
            sm[:, j] -= h
            J[:, :, j] = (cell.step(params, sp, x)[0] - cell.step(params, sm, x)[0]) / (2 * h)
    else:
        raise ValueError(f"method: must be auto, complex or central, got {method!r}")
    return J, method


def check_jacobian(cell: Cell, params, state: np.ndarray, x: np.ndarray, *,
                   method: str = "auto", rtol: float | None = None) -> JacobianCheck:
    """Compare `cell.jacobian` with a derivative taken from `cell.step` alone.

    The error is relative to the largest entry of the reference, per sequence. Default
    tolerance: 1e-10 for complex step, 1e-6 for central differences.
    """
    _, cache = cell.step(params, state, x)
    J = np.asarray(cell.jacobian(params, cache))
    R, used = reference_jacobian(cell, params, state, x, method)
    scale = np.maximum(np.abs(R).max(axis=(1, 2)), 1e-300)[:, None, None]
    err = float((np.abs(J - R) / scale).max())
    tol = rtol if rtol is not None else (1e-10 if used == "complex" else 1e-6)
    return JacobianCheck(err, used, err <= tol)
