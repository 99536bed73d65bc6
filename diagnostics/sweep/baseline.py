"""Regression of sweeps: two sweep.json documents compared, and a sweep's baseline gate.

    cmp = compare_sweeps(current, baseline, SweepTolerances())   # regression.Comparison rows
    g = gate(doc, path, tol, update=False)                       # written | missing | ok | regression

Identity: a row is (group values, cell). Compared: the number of trials (must be equal: a
different grid is not a regression to tolerate), the success count (within `successes`),
and every pooled curve point of every checkpoint (within `decades`, for `stats`). A group or
cell on one side only is a failing "missing" row. The table is the curve regression's.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..documents import SWEEP, read_document
from ..io import atomic_write_text, dumps
from ..regression.baseline import GateResult
from ..regression.comparison import ZERO_LOG10, Comparison, Row, num_diff, worst_point
from .tolerances import SweepTolerances

SWEEP_BASELINE = "sweep baseline"


def load_sweep_doc(path: str | os.PathLike) -> dict:
    return read_document(path, SWEEP)


def _cells(doc: dict) -> dict:
    out = {}
    for g in doc.get("groups") or []:
        gk = json.dumps(g.get("values"), sort_keys=True)
        for c in g.get("cells") or []:
            out[(gk, c.get("cell"))] = c
    return out


def _name(key) -> str:
    values = json.loads(key[0])
    where = ", ".join(f"{k}={v}" for k, v in values.items()) or "all"
    return f"{key[1]} [{where}]"


def compare_sweeps(cur: dict, base: dict, tol: SweepTolerances | None = None) -> Comparison:
    tol = tol or SweepTolerances()
    rows: list[Row] = []
    c_cells, b_cells = _cells(cur), _cells(base)
    for key in list(b_cells) + [k for k in c_cells if k not in b_cells]:
        name = _name(key)
        if key not in c_cells or key not in b_cells:
            rows.append(Row(name, "missing", None, "present" if key in b_cells else "missing",
                            "present" if key in c_cells else "missing", None, None, False, ("cell", key[1], key[0])))
            continue
        c, b = c_cells[key], b_cells[key]
        rows.append(Row(name, "trials", None, b.get("trials"), c.get("trials"),
                        num_diff(b.get("trials"), c.get("trials")), 0, c.get("trials") == b.get("trials"),
                        ("cell", key[1], key[0])))
        d = num_diff(b.get("successes"), c.get("successes"))
        rows.append(Row(name, "successes", None, b.get("successes"), c.get("successes"), d, tol.successes,
                        d is not None and abs(d) <= tol.successes, ("cell", key[1], key[0])))
        b_curves = {x["checkpoint"]: x for x in b.get("curves") or []}
        c_curves = {x["checkpoint"]: x for x in c.get("curves") or []}
        for ck in sorted(set(b_curves) | set(c_curves)):
            if ck not in b_curves or ck not in c_curves:
                rows.append(Row(f"{name} ckpt={ck}", "missing", None, "present" if ck in b_curves else "missing",
                                "present" if ck in c_curves else "missing", None, None, False, ("curve", key[1], ck)))
                continue
            for stat in tol.stats:
                w = worst_point(b_curves[ck][stat], c_curves[ck][stat], ZERO_LOG10)
                if w is None:
                    continue
                i, bv, cv, diff = w
                ok = diff <= tol.decades and len(b_curves[ck][stat]) == len(c_curves[ck][stat])
                rows.append(Row(f"{name} ckpt={ck} pooled {stat}", "point", i + 1, bv, cv,
                                num_diff(bv, cv), tol.decades, ok, ("curve", key[1], ck)))
    return Comparison(rows, tol, subject="sweep")


def gate(doc: dict, path: str | os.PathLike, tol: SweepTolerances | None = None, *, update: bool = False) -> GateResult:
    path = Path(path)
    if update:
        atomic_write_text(path, dumps(doc))
        return GateResult("written", path, noun=SWEEP_BASELINE)
    if not path.exists():
        return GateResult("missing", path, noun=SWEEP_BASELINE)
    cmp = compare_sweeps(doc, load_sweep_doc(path), tol)
    return GateResult("ok" if cmp.ok else "regression", path, cmp, noun=SWEEP_BASELINE)


def is_sweep_document(path: str | os.PathLike) -> bool:
    """A sweep.json (or a sweep folder holding one): `diag check` compares it as a sweep."""
    p = Path(path)
    if p.is_dir():
        return (p / "sweep.json").is_file() and not (p / "curves.json").exists()
    try:
        with open(p, encoding="utf-8") as f:
            head = f.read(200)
    except (OSError, UnicodeDecodeError):
        return False
    return f'"format": "{SWEEP}"' in head


def check_files(current, baseline, tol: SweepTolerances, all_rows: bool = False) -> tuple[str, bool]:
    """`diag check` on two sweep.json files: (the table, ok); BadDocument on bad input."""
    cur, base = load_sweep_doc(current), load_sweep_doc(baseline)
    lines = []
    if cur.get("sweep") != base.get("sweep"):
        lines.append(f"note: comparing two different sweeps: {cur.get('sweep')!r} ({current}) against "
                     f"{base.get('sweep')!r} ({baseline})")
    cmp = compare_sweeps(cur, base, tol)
    lines.append(cmp.table(all_rows=all_rows))
    return "\n".join(lines), cmp.ok
