"""Compare two diag-curves/1 documents in log space and list what moved.

    cmp = compare(current, baseline, Tolerances())      # documents.Curves, or dicts checked into them
    cmp.ok, cmp.failing, print(cmp.table())

Identity: a curve series is (cell, checkpoint, path, norm), as is a model cell's influence curve
(compared as a series, at its own lags 0..K-1), a Lyapunov spectrum (cell,
checkpoint, path), a training record (cell), a sensitivity item (cell, checkpoint, kind,
parameter): its per-lag curve and its total, "rms" and the `stats`, each within `decades`. Present on one side only -> a failing "missing" row.
Each compared quantity gives ONE row holding its worst point, so the table says where it moved most.

Estimated series (curves.json `estimated`): see tolerances.py; a series measured differently on
the two sides gives one failing "estimator" row unless Tolerances.mixed_estimators.

Nulls: log10 of an exact zero is null in the file. Both null is equal; one null fails unless the
other value is below -300 (i.e. underflowed to zero in all but name, 1e-300).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..documents import Curves, Influence, Lyapunov, Sensitivity, Series, Training
from ..tolerances import Tolerances
from .table import format_table

ZERO_LOG10 = -300.0        # log10 values below this count as an exact zero (null)
ZERO_LN = ZERO_LOG10 * 2.302585092994046


@dataclass(frozen=True)
class Row:
    series: str                 # human label, e.g. "LSTM ckpt=0 c/spectral median"
    what: str                   # point|slope|horizon|loss|diverged|nonfinite|lyapunov|lags|missing|duplicate|estimator
    lag: Any                    # worst lag (point), checkpoint step (loss), exponent index (lyapunov)
    baseline: Any               # value, None (null = exact zero / no value) or a word ("missing")
    current: Any
    difference: float | None    # current - baseline; None when not a number (null vs value)
    tolerance: float | None
    ok: bool
    key: tuple = field(default=(), compare=False)   # ("series"|"lyapunov"|"training", *identity)


@dataclass
class Comparison:
    rows: list[Row]
    tol: Tolerances
    subject: str = "gradient curves"   # the table's first words: what was compared

    @property
    def failing(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failing

    def table(self, all_rows: bool = False) -> str:
        return format_table(self, all_rows=all_rows)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def worst_point(base: list, cur: list, zero: float):
    """(index, baseline, current, |difference| or inf) of the largest disagreement, None if empty."""
    worst = None
    for i, (b, c) in enumerate(zip(base, cur)):
        if b is None and c is None:
            d = 0.0
        elif b is None or c is None:
            other = c if b is None else b
            d = 0.0 if (_is_num(other) and other < zero) else float("inf")
        elif _is_num(b) and _is_num(c):
            d = abs(c - b)
        else:
            d = float("inf")
        if worst is None or d > worst[3]:
            worst = (i, b, c, d)
    return worst


def num_diff(b, c):
    return c - b if _is_num(b) and _is_num(c) else None


def _index(items: list, kind: str, rows: list[Row], side: str) -> dict:
    out: dict = {}
    for it in items:
        k = it.key
        if k in out:
            rows.append(Row(_label(kind, k), "duplicate", None, "", f"twice in {side}",
                            None, None, False, (kind, *k)))
        out[k] = it
    return out


def _ident(k: tuple) -> str:
    cell, *rest = k
    if not rest:
        return str(cell)
    ckpt, *more = rest
    return f"{cell} ckpt={ckpt} " + "/".join(str(m) for m in more)


def _label(kind: str, k: tuple) -> str:
    if kind == "sensitivity":          # (cell, checkpoint, "sensitivity" | "state", parameter)
        return f"{k[0]} ckpt={k[1]} " + (f"sensitivity/{k[3]}" if k[2] == "sensitivity" else str(k[2]))
    return _ident(k) + {"series": "", "influence": "", "lyapunov": " lyapunov", "training": " training loss"}[kind]


def _pair(cur: dict, base: dict, kind: str, rows: list[Row]):
    """Yield (key, current_item, baseline_item) for keys on both sides; missing rows for the rest."""
    for k in list(base) + [k for k in cur if k not in base]:
        if k in base and k in cur:
            yield k, cur[k], base[k]
        else:
            rows.append(Row(_label(kind, k), "missing", None,
                            "present" if k in base else "missing",
                            "present" if k in cur else "missing", None, None, False, (kind, *k)))


def _within(b, c, tol_of) -> tuple[bool, float | None, float | None]:
    """Compare two scalars that may be null: both null equal, one null fails."""
    if b is None and c is None:
        return True, None, None
    if not (_is_num(b) and _is_num(c)):
        return False, None, None
    t = tol_of(b)
    return abs(c - b) <= t, c - b, t


def _curve_rows(label: str, what: str, bs: list, cs: list, zero: float, tol_value: float, key, rows: list[Row],
                lag_of=lambda i: i + 1, unit: str = "lags") -> None:
    """A curve against its baseline: a failing row if their lengths differ, then the row of
    its worst point (tol_value decades or units at most)."""
    if len(cs) != len(bs):
        rows.append(Row(label, "lags", None, f"{len(bs)} {unit}", f"{len(cs)} {unit}", None, None, False, key))
    w = worst_point(bs, cs, zero)
    if w is not None:
        i, bv, cv, d = w
        rows.append(Row(label, what, lag_of(i), bv, cv, num_diff(bv, cv), tol_value, d <= tol_value, key))


def _how(s: Series) -> str:
    """How a series was measured, in the table's words."""
    e = s.estimated
    return "exact" if e is None else f"{e.kind} rows={e.rows} seed={e.seed}"


def _half_width(s: Series, n: int) -> list[float]:
    """Per lag, half the width of an estimated series' interval, in decades (0 where exact, no
    interval, or a null end): the interval's own, not measured from the curve it widens."""
    iv = s.estimated.interval if s.estimated is not None else None
    if iv is None:
        return [0.0] * n
    out = [(hi - lo) / 2.0 if _is_num(lo) and _is_num(hi) else 0.0 for lo, hi in zip(iv.lo, iv.hi)]
    return out + [0.0] * (n - len(out))


def _widened_rows(label: str, bs: list, cs: list, widen: list[float], decades: float, key, rows: list[Row],
                  first: int = 1) -> None:
    """_curve_rows for an estimated curve: the tolerance at lag i is decades + widen[i]; the row
    holds the lag that exceeds its tolerance most (or comes nearest to it). `first`: the first lag."""
    if len(cs) != len(bs):
        rows.append(Row(label, "lags", None, f"{len(bs)} lags", f"{len(cs)} lags", None, None, False, key))
    worst = None
    for i, (bv, cv) in enumerate(zip(bs, cs)):
        _, _, _, d = worst_point([bv], [cv], ZERO_LOG10)
        t = decades + widen[i]
        if worst is None or d - t > worst[0]:
            worst = (d - t, i, bv, cv, t)
    if worst is not None:
        excess, i, bv, cv, t = worst
        rows.append(Row(label, "point", i + first, bv, cv, num_diff(bv, cv), t, excess <= 0, key))


def _influence_rows(k, c: Influence, b: Influence, tol: Tolerances, rows: list[Row]) -> None:
    """An influence curve as a series, at its own lags (0..K-1); lags that differ fail."""
    if c.lags != b.lags:
        rows.append(Row(_ident(k), "lags", None, f"lags {_span(b.lags)}", f"lags {_span(c.lags)}", None, None, False,
                        ("influence", *k)))
    _series_rows(k, c, b, tol, rows, section="influence", first=b.lags[0] if b.lags else 0)


def _span(lags: list) -> str:
    return f"{lags[0]}..{lags[-1]}" if lags else "none"


def _series_rows(k, c: Series, b: Series, tol: Tolerances, rows: list[Row], section: str = "series",
                 first: int = 1) -> None:
    """A curve (a series, lags from 1, or an influence curve from `first`) against its baseline."""
    name = _ident(k)
    key = (section, *k)
    if _how(c) != _how(b) and not tol.mixed_estimators:
        # an estimate's own error is not a change of the model: not compared unless asked
        rows.append(Row(f"{name} estimator (mixed_estimators: true compares them)", "estimator", None,
                        _how(b), _how(c), None, None, False, key))
        return
    n = max(len(c.log10.median), len(b.log10.median))
    widen = [x + y for x, y in zip(_half_width(b, n), _half_width(c, n))]
    for stat in tol.stats:
        if any(widen):
            _widened_rows(f"{name} (widened by the estimate's interval) {stat}", getattr(b.log10, stat),
                          getattr(c.log10, stat), widen, tol.decades, key, rows, first)
        else:
            _curve_rows(f"{name} {stat}", "point", getattr(b.log10, stat), getattr(c.log10, stat), ZERO_LOG10,
                        tol.decades, key, rows, lag_of=lambda i: i + first)
    # diverged (sequence, anchor) pairs: any change in their count is a change of the run
    # (a file from before the count existed reads as all zeros)
    cn, bn = (list(x.nonfinite) or [0] * n for x in (c, b))
    moved = [i for i, (p, q) in enumerate(zip(bn, cn)) if p != q] or ([min(len(bn), len(cn))] if len(bn) != len(cn) else [])
    if moved:
        i = moved[0]
        rows.append(Row(f"{name} nonfinite", "nonfinite", i + first, bn[i] if i < len(bn) else None,
                        cn[i] if i < len(cn) else None, None, 0, False, key))
    ok, d, t = _within(b.fit.slope, c.fit.slope, tol.slope_tol)
    rows.append(Row(f"{name} slope", "slope", None, b.fit.slope, c.fit.slope, d, t, ok, key))
    ok, d, t = _within(b.fit.horizon, c.fit.horizon, tol.horizon_tol)
    rows.append(Row(f"{name} horizon", "horizon", None, b.fit.horizon, c.fit.horizon, d, t, ok, key))


def _lyapunov_rows(k, c: Lyapunov, b: Lyapunov, tol: Tolerances, rows: list[Row]) -> None:
    """Exponents resolved on both sides are compared; one that is rounding on either side (a
    dead relu unit's: several nats apart between BLAS kernels) is no number to compare."""
    name = _label("lyapunov", k)
    key = ("lyapunov", *k)
    bs, cs = b.exponents, c.exponents
    keep = [x and y for x, y in zip(b.resolved_flags, c.resolved_flags)]
    keep += [True] * (max(len(bs), len(cs)) - len(keep))
    _curve_rows(name, "lyapunov", [v if ok else None for v, ok in zip(bs, keep)],
                [v if ok else None for v, ok in zip(cs, keep)], ZERO_LN, tol.lyapunov_abs, key, rows,
                unit="exponents")
    # sequences whose trajectory diverged are left out of the mean: a change in their count is
    # a change of the run even where the mean of the others stays within tolerance
    bn, cn = b.diverged_sequences, c.diverged_sequences
    if bn != cn:
        rows.append(Row(f"{name} diverged sequences", "nonfinite", None, bn, cn, None, 0, False, key))


def _sensitivity_rows(k, c: Sensitivity, b: Sensitivity, tol: Tolerances, rows: list[Row]) -> None:
    name = _label("sensitivity", k)
    key = ("sensitivity", *k)
    for part, cur, base in (("", c.log10, b.log10), (" total", c.total.log10, b.total.log10)):
        if cur is None and base is None:       # a state item has no per-lag curve
            continue
        for stat in ["rms", *tol.stats]:
            cs, bs = (_values(x, stat) for x in (cur, base))
            _curve_rows(f"{name}{part} {stat}", "point", bs, cs, ZERO_LOG10, tol.decades, key, rows,
                        lag_of=(lambda i: i) if part == "" else (lambda i: None))


def _values(stats, stat: str) -> list:
    """A statistic as a list: per lag, or the one number of a total ([] when absent)."""
    v = getattr(stats, stat) if stats is not None else []
    return v if isinstance(v, list) else [v]


def _loss_points(t: Training) -> dict:
    """{checkpoint step or 'final': loss}: losses at checkpoints when recorded, else the final
    loss, else the last recorded one (a record of one's own may lack either)."""
    if t.checkpoints and len(t.checkpoints) == len(t.loss_at_checkpoints):
        return dict(zip(t.checkpoints, t.loss_at_checkpoints))
    if "final_loss" in t.model_fields_set:
        return {"final": t.final_loss}
    return {"final": t.loss[-1]} if t.loss else {}


def _training_rows(k, c: Training, b: Training, tol: Tolerances, rows: list[Row]) -> None:
    name = _label("training", k)
    key = ("training", *k)
    cp, bp = _loss_points(c), _loss_points(b)
    if list(cp) != list(bp):
        rows.append(Row(name, "lags", None, f"checkpoints {list(bp)}", f"checkpoints {list(cp)}",
                        None, None, False, key))
    if b.diverged_at != c.diverged_at:      # a run that blew up is a change in itself
        rows.append(Row(name, "diverged", None, b.diverged_at, c.diverged_at, None, None, False, key))
    worst = None
    for step in [s for s in bp if s in cp]:
        ok, d, t = _within(bp[step], cp[step], tol.loss_tol)
        # rank by how far past its tolerance each checkpoint is; non-numbers rank first
        score = float("inf") if (not ok and d is None) else (0.0 if d is None else abs(d) / max(t, 1e-300))
        if worst is None or score > worst[0]:
            worst = (score, Row(name, "loss", step, bp[step], cp[step], d, t, ok, key))
    if worst is not None:
        rows.append(worst[1])


SECTIONS = {"series": _series_rows, "influence": _influence_rows, "lyapunov": _lyapunov_rows,
            "training": _training_rows, "sensitivity": _sensitivity_rows}


def compare(current: Curves | dict, baseline: Curves | dict, tol: Tolerances | None = None) -> Comparison:
    """Compare `current` curves against `baseline` curves: diag-curves/1 documents, or dicts
    (numpy values and non-finite floats allowed) checked into them (BadDocument if they do not fit)."""
    tol = tol or Tolerances()
    current, baseline = Curves.of(current, "current curves"), Curves.of(baseline, "baseline curves")
    rows: list[Row] = []
    if current.lags != baseline.lags:
        rows.append(Row("lags", "lags", None, f"{len(baseline.lags)} lags", f"{len(current.lags)} lags",
                        None, None, False, ("lags",)))
    for section, fn in SECTIONS.items():
        ci = _index(getattr(current, section), section, rows, "current")
        bi = _index(getattr(baseline, section), section, rows, "baseline")
        for k, c, b in _pair(ci, bi, section, rows):
            fn(k, c, b, tol, rows)
    return Comparison(rows, tol)
