"""Synthetic long-lag tasks by name.

    task = make_task("copy", delay=100)          # ValueError naming the option on bad input
    task_kinds() -> ["adding", "copy", ...];  task_options("copy") -> {"delay": 100, ...}
    register_task("mytask", MyTask)              # a Task subclass with OPTIONS and _validate
"""
from __future__ import annotations

from .adding import AddingTask
from .base import Batch, Task
from .copy import CopyTask
from .latch import LatchTask
from .none import NoneTask
from .tariff_shock import TariffShockTask
from .temporal_order import TemporalOrderTask

_REGISTRY: dict[str, type[Task]] = {}


def register_task(name: str, cls: type[Task], *, overwrite: bool = False) -> None:
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"register_task: a task named {name!r} exists; pass overwrite=True to replace it")
    _REGISTRY[name] = cls


for _cls in (CopyTask, AddingTask, TemporalOrderTask, LatchTask, TariffShockTask, NoneTask):
    register_task(_cls.kind, _cls)


def task_kinds() -> list[str]:
    return sorted(_REGISTRY)


def task_options(kind: str) -> dict:
    """Option names and defaults of a task kind (for `diag list`)."""
    if kind not in _REGISTRY:
        raise ValueError(f"task kind: must be one of {', '.join(task_kinds())}, got {kind!r}")
    return dict(_REGISTRY[kind].OPTIONS)


def make_task(kind: str, **options) -> Task:
    if kind not in _REGISTRY:
        raise ValueError(f"task kind: must be one of {', '.join(task_kinds())}, got {kind!r}")
    return _REGISTRY[kind](**options)


__all__ = ["Batch", "Task", "make_task", "register_task", "task_kinds", "task_options", "AddingTask",
           "CopyTask", "LatchTask", "NoneTask", "TariffShockTask", "TemporalOrderTask"]
