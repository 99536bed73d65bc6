"""Case checks that need the cell and task registries (the schema alone cannot know them).

They read the raw YAML data, so they still report their problems when the schema has found
others elsewhere in the file: a user sees every problem in one pass. Building the task and
the cells here also runs their own option checks ("activation: must be one of ...").
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

from .caseload import suggest
from .schema import Case, CellSpec

NOT_OPTIONS = ("input_size", "hidden", "kind")   # set by the runner, not by the case


# --- registries ---------------------------------------------------------------------------
def cell_kinds() -> list[str]:
    from .cells import cell_kinds as kinds
    return list(kinds())


def cell_option_defaults(kind: str) -> dict[str, Any]:
    from .cells import cell_options
    return {k: v for k, v in cell_options(kind).items() if k not in NOT_OPTIONS}


def _tasks():
    import diagnostics.tasks as tasks
    return tasks


def task_kinds() -> list[str]:
    t = _tasks()
    if hasattr(t, "task_kinds"):
        return list(t.task_kinds())
    return sorted(getattr(t, "TASKS", {}))


def task_option_defaults(kind: str) -> dict[str, Any]:
    t = _tasks()
    if hasattr(t, "task_options"):
        return {k: v for k, v in dict(t.task_options(kind)).items() if k != "kind"}
    cls = t.TASKS[kind]
    out = {}
    for f in dataclasses.fields(cls):
        if f.name == "kind":
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
        else:
            out[f.name] = None
    return out


def make_task(kind: str, **options):
    return _tasks().make_task(kind, **options)


# --- helpers -------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def prefixed(key: str, exc: Exception) -> str:
    """"activation: must be ..." from a cell becomes "cells[0].activation: must be ..."."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_.]*): (.*)$", msg)
    if m and not m.group(1).startswith(key):
        return f"{key}.{m.group(1)}: {m.group(2)}"
    return f"{key}: {msg}"


def default_labels(cells_raw: list) -> list[str | None]:
    """Unlabelled cells are named after their kind; a repeated kind gets "lstm 2", "lstm 3"."""
    given = {c.get("label") for c in cells_raw if isinstance(c, dict) and isinstance(c.get("label"), str)}
    kinds = [c.get("kind") if isinstance(c, dict) else None for c in cells_raw]
    count: dict[str, int] = {}
    out: list[str | None] = []
    for c, kind in zip(cells_raw, kinds):
        if isinstance(c, dict) and isinstance(c.get("label"), str):
            out.append(c["label"])
            continue
        if not isinstance(kind, str):
            out.append(None)
            continue
        n = count.get(kind, 0)
        while True:
            n += 1
            label = kind if n == 1 else f"{kind} {n}"
            if label not in given:
                break
        count[kind] = n
        out.append(label)
    return out


# --- the checks ----------------------------------------------------------------------------
def _check_task(raw: dict, lines: list[str]):
    t = raw.get("task")
    if not isinstance(t, dict) or not isinstance(t.get("kind"), str):
        return None
    kind, kinds = t["kind"], task_kinds()
    if kind not in kinds:
        lines.append(f"task.kind: must be one of {', '.join(kinds)}, got {kind!r}{suggest(kind, kinds)}")
        return None
    opts = task_option_defaults(kind)
    unknown = [k for k in t if k != "kind" and k not in opts]
    for k in unknown:
        lines.append(f"task.{k}: unknown option of {kind} tasks{suggest(k, opts)} "
                     f"({kind} options: {', '.join(opts) or 'none'})")
    try:  # the known options are checked even when an unknown one is present
        task = make_task(kind, **{k: v for k, v in t.items() if k != "kind" and k in opts})
    except (ValueError, TypeError) as e:
        lines.append(prefixed("task", e))
        return None
    return None if unknown else task


def _check_cells(raw: dict, lines: list[str]) -> list[str | None]:
    cells = raw.get("cells")
    if not isinstance(cells, list):
        return []
    kinds = cell_kinds()
    for i, c in enumerate(cells):
        if not isinstance(c, dict) or not isinstance(c.get("kind"), str):
            continue
        kind = c["kind"]
        if kind not in kinds:
            lines.append(f"cells[{i}].kind: must be one of {', '.join(kinds)}, got {kind!r}{suggest(kind, kinds)}")
            continue
        opts = cell_option_defaults(kind)
        for k in c:
            if k in CellSpec.model_fields and k not in CellSpec.SPECIAL and k not in opts:
                lines.append(f"cells[{i}].{k}: is not an option of {kind} cells "
                             f"({kind} options: {', '.join(opts)})")
    labels = default_labels(cells)
    first: dict[str, int] = {}
    for i, label in enumerate(labels):
        if label is None:
            continue
        if label in first:
            lines.append(f"cells[{i}].label: must be unique; {label!r} is also the label of cells[{first[label]}]")
        else:
            first[label] = i
    return labels


def _check_train(raw: dict, task, lines: list[str]) -> None:
    tr = raw.get("train")
    if not isinstance(tr, dict):
        return
    opt = tr.get("optimizer")
    if isinstance(opt, dict):
        kind = opt.get("kind", "adam")
        if kind == "adam" and "momentum" in opt:
            lines.append("train.optimizer.momentum: is an sgd option; adam takes betas")
        for k in ("betas", "eps"):
            if kind == "sgd" and k in opt:
                lines.append(f"train.optimizer.{k}: is an adam option; sgd takes momentum")
    steps, ck = tr.get("steps"), tr.get("checkpoints")
    if _is_int(steps) and steps > 0 and isinstance(ck, list):
        bad = [c for c in ck if _is_int(c) and c > steps]
        if bad:
            lines.append(f"train.checkpoints: must lie in 0..steps ({steps}), got {bad}")
        if not ck:
            lines.append("train.checkpoints: must name at least one step, got []")
    if task is not None and task.loss_kind is None:
        lines.append(f"train: the {task.kind} task has no targets to train on; remove `train` "
                     "(the probe then runs at initialisation)")


def semantic_checks(raw: dict, case: Case | None):
    """-> (problem lines, cell labels, built task or None, built cells or [])."""
    lines: list[str] = []
    task = _check_task(raw, lines)
    labels = _check_cells(raw, lines)
    _check_train(raw, task, lines)
    cells = []
    if case is None or task is None or lines:
        return lines, labels, task, cells
    for i, spec in enumerate(case.cells):
        try:
            from .cells import make_cell
            cells.append(make_cell(spec.kind, input_size=task.input_size, hidden=spec.hidden, **spec.options()))
        except (ValueError, TypeError) as e:
            lines.append(prefixed(f"cells[{i}]", e))
    if not lines:
        from .plan import plan_problems
        lines += plan_problems(case, task, cells)
    return lines, labels, task, cells
