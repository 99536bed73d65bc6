"""What the two sensitivity figures draw, picked from curves.json (`sensitivity`) and run.json.

`select_by_lag` gives figure 10 (per-lag components, one panel per recurrent parameter);
`select_memory` gives figure 11: each cell's total sensitivity and state size against its
memory, with the closed forms of Zucchet & Orvieto (2024) as lines where they apply.

The memory of a cell is the fitted decay factor ρ of its a-path curve (figure 1), which is
|λ| exactly for a linear recurrence. Cells alike but for the options that set λ (r_min,
r_max, recurrent_init) form one group, one line of points. A closed form is drawn for a group
when its cells are the recurrences the formulas are about (closed_form_kind) and the task
feeds the inputs they assume: `none` with gaussian or ar1 inputs (ρ = rho, times scale²).
"""
from __future__ import annotations

import numpy as np

from ..sensitivity import closed_forms as cf
from .data import RunData, log_array
from .style import OKABE_ITO, cell_colours

MEMORY_OPTIONS = ("r_min", "r_max", "recurrent_init", "label")


def asked(d: RunData) -> bool:
    """Did the case ask for the sensitivity (probe.sensitivity), or does the file hold some?"""
    return bool((d.case.get("probe") or {}).get("sensitivity")) or bool(d.curves.sensitivity)


def select_by_lag(d: RunData):
    ck, panels = d.last_checkpoint, {}
    for cell in d.cells:
        for it in d.curves.sensitivity_of(cell, ck):
            if it.kind != "sensitivity":
                continue
            panels.setdefault(it.parameter, {})[cell] = {
                "lags": np.asarray(it.lags, dtype=float), "rms": log_array(it.log10.rms)}
    if not panels:
        return "No sensitivity in curves.json (set probe.sensitivity: true to measure it)."
    return {"panels": panels, "colours": cell_colours(d.cells),
            "title": f"Each lag's part of the sensitivity ({d.when})"}


def closed_form_kind(kind: str, opts: dict) -> str | None:
    """Which closed form a cell's options make it: one unit, input weight of modulus 1, no
    bias, real λ; None when the formulas are not about this cell."""
    if opts.get("hidden") != 1 or opts.get("input_size", 1) != 1:
        return None
    gain = (opts.get("input_init") or {}).get("gain")
    ident = (opts.get("input_init") or {}).get("kind") == "identity"
    if kind == "rnn" and opts.get("activation") == "linear" and not opts.get("bias") and ident and abs(gain) == 1:
        return "linear"
    if kind == "lru" and opts.get("max_phase") == 0 and ident and np.isclose(2 * gain ** 2, 1.0, rtol=1e-12, atol=0):
        return "lru" if opts.get("normalize", True) else "lru_unnormalised"
    return None


def _task_inputs(d: RunData) -> tuple[float, float] | None:
    """(ρ, scale²) of the inputs when the closed forms' assumptions hold, else None."""
    task = d.case.get("task") or {}
    if task.get("kind") != "none" or task.get("inputs", "gaussian") not in ("gaussian", "ar1"):
        return None
    return float(task.get("rho", 0.0) or 0.0), float(task.get("scale", 1.0)) ** 2


def _group(kind: str, opts: dict) -> tuple:
    return (kind, tuple(sorted((k, repr(v)) for k, v in opts.items() if k not in MEMORY_OPTIONS)))


def _names(groups: list[tuple]) -> dict[tuple, str]:
    """The kind, plus the options that tell groups of one kind apart."""
    out = {}
    for g in groups:
        same = [h for h in groups if h[0] == g[0]]
        diff = sorted({k for h in same for k in dict(h[1]) if any(dict(x[1]).get(k) != dict(h[1]).get(k) for x in same)})
        words = [f"{k}: {_yaml(dict(g[1])[k])}" for k in diff if k in dict(g[1])]
        out[g] = g[0] + (" (" + ", ".join(words) + ")" if words else "")
    return out


def _yaml(text: str) -> str:
    return {"True": "true", "False": "false", "None": "null"}.get(text, text.strip("'"))


LINES = {   # closed-form kind -> parameter -> mean-square function of (λ, ρ); "state" for E||a||²
    "linear": {"W_a": cf.sensitivity_ms, "state": cf.state_ms},
    "lru": {"nu": cf.lru_nu_ms, "theta": cf.lru_theta_ms, "state": cf.lru_state_ms},
    "lru_unnormalised": {"nu": lambda l, r: cf.lru_nu_ms(l, r, False), "theta": lambda l, r: cf.lru_theta_ms(l, r, False),
                         "state": lambda l, r: cf.lru_state_ms(l, r, False)},
}


def select_memory(d: RunData):
    ck, groups = d.last_checkpoint, {}
    for cell in d.cells:
        c = d.curve(cell, ck)
        mem = None if c is None else c.fit.factor
        items = d.curves.sensitivity_of(cell, ck)
        if mem is None or not items or not 0 < mem < 1:
            continue
        kind, opts = d.kinds.get(cell, "?"), d.cell_options(cell)
        g = groups.setdefault(_group(kind, opts), {"memory": [], "points": {}, "forms": set()})
        g["memory"].append(float(mem))
        g["forms"].add(closed_form_kind(kind, opts))
        for it in items:
            rms = it.total.log10.rms
            g["points"].setdefault(it.parameter or it.kind, []).append(np.nan if rms is None else float(rms))
    if not groups:
        return "No sensitivity with a decaying a-path curve in curves.json (set probe.sensitivity: true)."
    names, inputs, out = _names(list(groups)), _task_inputs(d), {}
    for i, (key, g) in enumerate(groups.items()):
        mem = np.asarray(g["memory"])
        form = next(iter(g["forms"])) if len(g["forms"]) == 1 else None
        lines = {}
        if form is not None and inputs is not None:
            lam = 1 - np.geomspace(1 - mem.min(), 1 - mem.max(), 200) if mem.max() > mem.min() else mem
            rho, s2 = inputs
            lines = {p: (lam, 0.5 * np.log10(s2 * fn(lam, rho))) for p, fn in LINES[form].items() if p in g["points"]}
        out[names[key]] = {"memory": mem, "points": {p: np.asarray(v) for p, v in g["points"].items()},
                           "lines": lines, "colour": OKABE_ITO[i % len(OKABE_ITO)]}
    return {"groups": out, "rho": None if inputs is None else inputs[0],
            "title": f"Sensitivity and state size against the memory |λ| ({d.when})"}
