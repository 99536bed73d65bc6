"""Cells by name.

    make_cell("lstm", input_size=1, hidden=64, forget_bias=1.0)
    register_cell(MyCell)                    # under MyCell.kind; MyCell(input_size=..., hidden=..., **options)
    register_cell("mycell", MyCell)          # the older form: "mycell" must be MyCell.kind
"""
from __future__ import annotations

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
