"""Kinds by name: the one registry class behind cells (register_cell) and tasks (register_task).

    CELLS = Registry("cell", Cell)
    CELLS.add(LSTM)                  # under LSTM.kind
    CELLS.add("lstm", LSTM)          # the older form: the name must be LSTM.kind
    CELLS.get("lstm"); CELLS.kinds(); CELLS.remove("lstm")
    CELLS.version                    # bumped on every change: the case schema rebuilds on it

A kind is named once, by the class's `kind` ClassVar; the name given beside it, where one is,
must agree, so a run's documents (which say `cell.kind`) and the case file that chose the
class by name never disagree.
"""
from __future__ import annotations

from typing import Generic, TypeVar

from .errors import suggest

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Subclasses of `base` by their `kind`. `what` names the sort in messages ("cell")."""

    def __init__(self, what: str, base: T):
        self.what = what
        self.base = base
        self.version = 0
        self._items: dict[str, T] = {}

    def add(self, name_or_cls, cls: T | None = None, *, overwrite: bool = False) -> None:
        """Register `cls` under `cls.kind`: add(cls), or add(name, cls) with name == cls.kind."""
        caller = f"register_{self.what}"
        name, cls = (None, name_or_cls) if cls is None else (name_or_cls, cls)
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise TypeError(f"{caller}: expected a {self.base.__name__} subclass, got {cls!r}")
        kind = cls.kind
        if not isinstance(kind, str) or not kind or kind == self.base.kind:
            raise ValueError(f"{caller}: {cls.__name__} has no kind of its own; declare "
                             f"kind: ClassVar[str] = {(name or cls.__name__.lower())!r} in the class")
        if name is not None and name != kind:
            raise ValueError(f"{caller}: name {name!r} differs from {cls.__name__}.kind {kind!r}; "
                             f"{caller}({cls.__name__}) registers it under its kind")
        if kind in self._items and not overwrite:
            raise ValueError(f"{caller}: a {self.what} named {kind!r} exists; pass overwrite=True to replace it")
        self._items[kind] = cls
        self.version += 1

    def remove(self, name: str) -> None:
        if name not in self._items:
            raise ValueError(f"unregister_{self.what}: no {self.what} named {name!r}")
        del self._items[name]
        self.version += 1

    def kinds(self) -> list[str]:
        return sorted(self._items)

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ValueError(f"{self.what} kind: must be one of {', '.join(self.kinds())}, "
                             f"got {name!r}{suggest(name, self._items)}")
        return self._items[name]

    def __contains__(self, name) -> bool:
        return name in self._items
