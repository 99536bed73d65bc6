"""Regression of sweeps: two sweep.json documents compared, and a sweep's baseline gate.

    cmp = compare_sweeps(current, baseline, SweepTolerances())   # regression.Comparison rows
    g = gate(doc, path, tol, update=False)                       # written | missing | ok | regression

Identity: a row is (group values, cell). Compared: the number of trials (must be equal: a
different grid is not a regression to tolerate), the success count (within `successes`),
and every pooled curve point of every checkpoint (within `decades` of the baseline's one-seed
band, or of the point itself without a band; for `stats`). A group or cell on one side only is
a failing "missing" row. A pooled curve measured differently on the two sides (exact against
estimated, other rows) is a failing "estimator" row instead of its points unless
`mixed_estimators`. The table is the curve regression's.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..documents import SWEEP, Band, PooledCurve, Sweep
from ..regression.baseline import GateResult
from ..regression.comparison import ZERO_LOG10, Comparison, Row, num_diff, worst_point
from .tolerances import SweepTolerances

SWEEP_BASELINE = "sweep baseline"


def load_sweep_doc(path: str | os.PathLike) -> Sweep:
    return Sweep.read(path)


def _name(key) -> str:
    values = json.loads(key[0])
    where = ", ".join(f"{k}={v}" for k, v in values.items()) or "all"
    return f"{key[1]} [{where}]"


def compare_sweeps(cur: Sweep | dict, base: Sweep | dict, tol: SweepTolerances | None = None) -> Comparison:
    """`cur` against `base`: diag-sweep/1 documents, or dicts checked into them."""
    tol = tol or SweepTolerances()
    rows: list[Row] = []
    cur, base = Sweep.of(cur, "current sweep"), Sweep.of(base, "baseline sweep")
    c_cells, b_cells = cur.cells_by_key(), base.cells_by_key()
    for key in list(b_cells) + [k for k in c_cells if k not in b_cells]:
        name = _name(key)
        if key not in c_cells or key not in b_cells:
            rows.append(Row(name, "missing", None, "present" if key in b_cells else "missing",
                            "present" if key in c_cells else "missing", None, None, False, ("cell", key[1], key[0])))
            continue
        c, b = c_cells[key], b_cells[key]
        rows.append(Row(name, "trials", None, b.trials, c.trials, num_diff(b.trials, c.trials), 0,
                        c.trials == b.trials, ("cell", key[1], key[0])))
        d = num_diff(b.successes, c.successes)
        rows.append(Row(name, "successes", None, b.successes, c.successes, d, tol.successes,
                        abs(d) <= tol.successes, ("cell", key[1], key[0])))
        b_curves = {x.checkpoint: x for x in b.curves}
        c_curves = {x.checkpoint: x for x in c.curves}
        for ck in sorted(set(b_curves) | set(c_curves)):
            if ck not in b_curves or ck not in c_curves:
                rows.append(Row(f"{name} ckpt={ck}", "missing", None, "present" if ck in b_curves else "missing",
                                "present" if ck in c_curves else "missing", None, None, False, ("curve", key[1], ck)))
                continue
            bc, cc = b_curves[ck], c_curves[ck]
            if _how(cc) != _how(bc) and not tol.mixed_estimators:
                # an estimate's own error is not a change of the model: not compared unless asked
                rows.append(Row(f"{name} ckpt={ck} estimator (mixed_estimators: true compares them)", "estimator",
                                None, _how(bc), _how(cc), None, None, False, ("curve", key[1], ck)))
                continue
            for stat in tol.stats:
                bands = bc.band if tol.seed_band else None
                label = f"{name} ckpt={ck} pooled {stat}"
                bs, cs = bc.stat(stat), cc.stat(stat)
                if bands is not None:
                    row = _band_row(label, bs, cs, getattr(bands, stat), tol.decades, ("curve", key[1], ck))
                    if row is not None:
                        rows.append(row)
                    continue
                w = worst_point(bs, cs, ZERO_LOG10)
                if w is None:
                    continue
                i, bv, cv, diff = w
                ok = diff <= tol.decades and len(bs) == len(cs)
                rows.append(Row(label, "point", i + 1, bv, cv, num_diff(bv, cv), tol.decades, ok, ("curve", key[1], ck)))
    return Comparison(rows, tol, subject="sweep")


def _how(curve: PooledCurve) -> str:
    """How a pooled curve was measured, in the table's words (the rows' seeds are each point's)."""
    e = curve.estimated
    return "exact" if e is None else f"{e.kind} rows={e.rows}"


def _log(v) -> float:
    """A pooled-curve value as a number: null is an exact zero (-inf)."""
    return -math.inf if v is None or v < ZERO_LOG10 else float(v)


def _band_row(label: str, base: list, cur: list, band: Band | None, decades: float, key) -> Row | None:
    """The worst lag of a pooled curve against the baseline's one-seed band widened by
    `decades`; its tolerance is the distance to the band's edge on the side it moved to. A band
    of null (too few seeds to bound it) lets the curve move anywhere: an ok row says so."""
    if len(base) != len(cur):
        return Row(label, "lags", None, f"{len(base)} lags", f"{len(cur)} lags", None, None, False, key)
    if not base:
        return None
    if band is None:
        return Row(label, "point", None, "any (few seeds)", "-", None, None, True, key)
    worst = None
    for i, (b, c) in enumerate(zip(base, cur)):
        lo, hi, bv, cv = _log(band.lo[i]), _log(band.hi[i]), _log(b), _log(c)
        low, high = lo - decades, hi + decades
        excess = 0.0 if low <= cv <= high or (cv == bv) else (low - cv if cv < low else cv - high)
        tol = (high - bv) if cv >= bv else (bv - low)
        score = (excess, abs(cv - bv) if math.isfinite(cv - bv) else math.inf)
        if worst is None or score > worst[0]:
            worst = (score, i, b, c, tol)
    (excess, _), i, b, c, tol = worst
    return Row(label, "point", i + 1, b, c, num_diff(b, c), tol if math.isfinite(tol) else None, excess == 0.0, key)


def gate(doc: Sweep, path: str | os.PathLike, tol: SweepTolerances | None = None, *,
         update: bool = False) -> GateResult:
    path = Path(path)
    if update:
        Sweep.of(doc, "sweep").write(path)
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
    if not p.is_file():   # a pipe would block the peek; the reader says what it is
        return False
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
    if cur.sweep != base.sweep:
        lines.append(f"note: comparing two different sweeps: {cur.sweep!r} ({current}) against "
                     f"{base.sweep!r} ({baseline})")
    cmp = compare_sweeps(cur, base, tol)
    lines.append(cmp.table(all_rows=all_rows))
    return "\n".join(lines), cmp.ok
