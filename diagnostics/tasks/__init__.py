"""Synthetic long-lag tasks by name.

    task = make_task("copy", delay=100)          # ValueError naming the option on bad input
    task_kinds() -> ["adding", "copy", ...];  task_options("copy") -> {"delay": 100, ...}
    register_task("mytask", MyTask)              # a Task subclass with an `Options` model
"""
from __future__ import annotations

from ..errors import suggest
from .adding import AddingTask
from .base import Batch, Task
from .copy import CopyTask
from .latch import LatchTask
from .none import NoneTask
from .tariff_shock import TariffShockTask
from .temporal_order import TemporalOrderTask

_REGISTRY: dict[str, type[Task]] = {}
_VERSION = [0]   # bumped on every change, so the case schema knows to rebuild


def register_task(name: str, cls: type[Task], *, overwrite: bool = False) -> None:
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"register_task: a task named {name!r} exists; pass overwrite=True to replace it")
    _REGISTRY[name] = cls
    _VERSION[0] += 1


def unregister_task(name: str) -> None:
    if name not in _REGISTRY:
        raise ValueError(f"unregister_task: no task named {name!r}")
    del _REGISTRY[name]
    _VERSION[0] += 1


def registry_version() -> int:
    return _VERSION[0]


for _cls in (CopyTask, AddingTask, TemporalOrderTask, LatchTask, TariffShockTask, NoneTask):
    register_task(_cls.kind, _cls)


def task_kinds() -> list[str]:
    return sorted(_REGISTRY)


def task_class(kind: str) -> type[Task]:
    if kind not in _REGISTRY:
        raise ValueError(f"task kind: must be one of {', '.join(task_kinds())}, got {kind!r}{suggest(kind, _REGISTRY)}")
    return _REGISTRY[kind]


def task_options(kind: str) -> dict:
    """Option names and defaults of a task kind (for `diag list`)."""
    model = task_class(kind).Options
    return {k: f.get_default(call_default_factory=True) for k, f in model.model_fields.items()}


def make_task(kind: str, **options) -> Task:
    return task_class(kind)(**options)


__all__ = ["Batch", "Task", "make_task", "register_task", "unregister_task", "task_kinds", "task_options",
           "task_class", "registry_version", "AddingTask",
           "CopyTask", "LatchTask", "NoneTask", "TariffShockTask", "TemporalOrderTask"]
