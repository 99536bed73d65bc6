"""`diag list`: the cells and tasks a case may name, with their options and defaults."""
from __future__ import annotations

from dataclasses import asdict, is_dataclass

from .checks import cell_kinds, cell_option_defaults, make_task, task_kinds, task_option_defaults
from .schema import INIT_KINDS, NORMS


def _show(v) -> str:
    if is_dataclass(v):
        v = asdict(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_show(x)}" for k, x in v.items()) + "}"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _options(opts: dict) -> list[str]:
    return [f"      {k}: {_show(v)}" for k, v in opts.items()] or ["      (no options)"]


def listing_text() -> str:
    out = ["cells (cells: - {kind: KIND, hidden: n, label: ..., OPTION: value}):"]
    for kind in cell_kinds():
        out.append(f"  {kind}")
        out += _options(cell_option_defaults(kind))
    out.append(f"  initialisers (recurrent_init / input_init kind): {', '.join(INIT_KINDS)}; gain: number")
    out.append("")
    out.append("tasks (task: {kind: KIND, OPTION: value}):")
    for kind in task_kinds():
        opts = task_option_defaults(kind)
        try:
            words = make_task(kind).describe()
        except Exception:  # noqa: BLE001 - a task without usable defaults still lists its options
            words = ""
        out.append(f"  {kind}" + (f"  -- default: {words}" if words else ""))
        out += _options(opts)
    out.append("")
    out.append(f"probe norms: {', '.join(NORMS)}; paths: a (all cells), c, c_direct, state (lstm)")
    out.append("optimizers: adam (lr, betas), sgd (lr, momentum)")
    return "\n".join(out)
