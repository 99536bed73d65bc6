"""Synthetic long-lag tasks by name.

    task = make_task("copy", delay=100)          # ValueError naming the option on bad input
    task_kinds() -> ["adding", "copy", ...];  task_options("copy") -> {"delay": 100, ...}
    register_task(MyTask)                        # a Task subclass with an `Options` model, by MyTask.kind
"""
from __future__ import annotations

from ..registry import Registry
from .adding import AddingTask
from .base import Batch, Task
from .copy import CopyTask
from .induction import InductionTask
from .latch import LatchTask
from .mqar import MQARTask
from .none import NoneTask
from .selective_copy import SelectiveCopyTask
from .tariff_shock import TariffShockTask
from .temporal_order import TemporalOrderTask

TASKS = Registry("task", Task)


def register_task(name_or_cls, cls: type[Task] | None = None, *, overwrite: bool = False) -> None:
    """register_task(MyTask) under MyTask.kind; register_task("mytask", MyTask) too, if the names agree."""
    TASKS.add(name_or_cls, cls, overwrite=overwrite)


def unregister_task(name: str) -> None:
    TASKS.remove(name)


def registry_version() -> int:
    return TASKS.version


for _cls in (CopyTask, AddingTask, TemporalOrderTask, LatchTask, TariffShockTask, SelectiveCopyTask, MQARTask,
             InductionTask, NoneTask):
    register_task(_cls)


def task_kinds() -> list[str]:
    return TASKS.kinds()


def task_class(kind: str) -> type[Task]:
    return TASKS.get(kind)


def task_options(kind: str) -> dict:
    """Option names and defaults of a task kind (for `diag list`)."""
    model = task_class(kind).Options
    return {k: f.get_default(call_default_factory=True) for k, f in model.model_fields.items()}


def make_task(kind: str, **options) -> Task:
    return task_class(kind)(**options)


__all__ = ["Batch", "Task", "make_task", "register_task", "unregister_task", "task_kinds", "task_options",
           "task_class", "registry_version", "AddingTask",
           "CopyTask", "InductionTask", "LatchTask", "MQARTask", "NoneTask", "SelectiveCopyTask",
           "TariffShockTask", "TemporalOrderTask"]
