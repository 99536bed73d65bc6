"""`diag list`: what a case may say -- every cell and task kind with its options and defaults,
and the defaults of `train` and `probe` -- read off the same models that validate a case."""
from __future__ import annotations

import dataclasses

from pydantic import BaseModel

from ..options import INIT_KINDS
from ..tasks import make_task, task_kinds
from .schema import SGD, Adam, ProbeSpec, TrainSpec, cell_kinds_in_cases, cell_model, task_model


def _show(v) -> str:
    if dataclasses.is_dataclass(v):
        v = dataclasses.asdict(v)
    if isinstance(v, BaseModel):
        v = v.model_dump()
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return str(v)


def _fields(model: type[BaseModel], skip=("kind", "label")) -> list[str]:
    out = []
    for k, f in model.model_fields.items():
        if k in skip:
            continue
        default = "(required)" if f.is_required() else _show(f.get_default(call_default_factory=True))
        desc = f"   # {f.description}" if f.description else ""
        out.append(f"      {k}: {default}{desc}")
    return out or ["      (no options)"]


def listing_text() -> str:
    out = ["cells (cells: - {kind: KIND, label: ..., OPTION: value}):"]
    for kind in cell_kinds_in_cases():
        m = cell_model(kind)
        out.append(f"  {kind}  -- {m.__doc__}")
        out += _fields(m)
    out.append(f"  initialisers (recurrent_init / input_init kind): {', '.join(INIT_KINDS)}; gain: number")
    out.append("")
    out.append("tasks (task: {kind: KIND, OPTION: value}):")
    for kind in task_kinds():
        try:
            words = make_task(kind).sentence()
        except Exception:  # noqa: BLE001 - a task without usable defaults still lists its options
            words = ""
        out.append(f"  {kind}" + (f"  -- default: {words}" if words else ""))
        out += _fields(task_model(kind))
    out.append("")
    out.append("train (leave out to probe at initialisation only):")
    out += _fields(TrainSpec, skip=("optimizer",))
    out.append("    optimizer: adam (default) or sgd")
    out += [ln.replace("      ", "      adam.", 1) for ln in _fields(Adam)]
    out += [ln.replace("      ", "      sgd.", 1) for ln in _fields(SGD)]
    out.append("")
    out.append("probe:")
    out += _fields(ProbeSpec)
    return "\n".join(out)
