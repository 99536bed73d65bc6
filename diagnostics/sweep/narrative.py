"""What a sweep showed, in sentences and a table generated from sweep.json alone.

    opening(doc)  -> ["Over 10 seeds per setting, the LSTM chrono succeeded ...", ...]
    failures(doc) -> ["2 of 50 points failed (KilledWorker: 1, ...)", ...]
    table(doc)    -> the terminal table

`doc` is a documents.Sweep (a dict is checked into one).

Every claim rests on counts and their 95% Wilson intervals: two cells are said to differ at
a setting only when their intervals do not overlap, and where they overlap the text says
that these counts cannot tell them apart.
"""
from __future__ import annotations

from ..documents import Sweep, SweepCell
from ..numfmt import fmt
from ..report.narrative import _join
from .stats import overlap


def _value(v) -> str:
    """A varied value for a person: a whole tagged item (a task, a cell) as its kind and options,
    `selective_copy (length 16, tokens 2)`, rather than a Python dict."""
    if isinstance(v, dict) and "kind" in v:
        rest = ", ".join(f"{k} {_value(x)}" for k, x in v.items() if k != "kind")
        return f"{v['kind']} ({rest})" if rest else str(v["kind"])
    return str(v)


def setting(values: dict) -> str:
    return ", ".join(f"{k.split('.')[-1]} = {_value(v)}" for k, v in values.items()) or "the base case"


def _count(c: SweepCell) -> str:
    return f"{c.successes}/{c.trials}"


def _interval(c: SweepCell) -> str:
    lo, hi = c.wilson95
    return f"{lo:.2f}–{hi:.2f}"


def _cell_phrase(label: str, entries: list[tuple[dict, SweepCell]]) -> str:
    """entries: (group values, the cell's entry) over the groups."""
    tried = [(v, c) for v, c in entries if c.trials]
    if not tried:
        return f"the {label} has no finished trial"
    same = len({c.trials for _, c in tried}) == 1
    if all(c.successes == c.trials for _, c in tried):
        if same:
            c = tried[0][1]
            return (f"the {label} succeeded in every trial ({_count(c)} at each setting; 95% interval "
                    f"{_interval(c)})")
        return f"the {label} succeeded in every trial (" + ", ".join(f"{_count(c)} at {setting(v)}" for v, c in tried) + ")"
    if all(c.successes == 0 for _, c in tried):
        if same:
            c = tried[0][1]
            return f"the {label} never succeeded ({_count(c)} at each setting; 95% interval {_interval(c)})"
        return f"the {label} never succeeded (" + ", ".join(f"{_count(c)} at {setting(v)}" for v, c in tried) + ")"
    if len(tried) <= 8:
        return f"the {label} " + ", ".join(f"{_count(c)} at {setting(v)}" for v, c in tried)
    (v0, c0), (v1, c1) = tried[0], tried[-1]
    return f"the {label} {_count(c0)} at {setting(v0)} to {_count(c1)} at {setting(v1)}"


def opening(doc: Sweep) -> list[str]:
    doc = Sweep.of(doc, "sweep")
    groups = doc.groups
    if not groups or not groups[0].cells:
        return []
    labels = doc.labels
    seeds = max((c.trials for g in groups for c in g.cells), default=0)
    crit = doc.success.description
    out = [f"Success ({crit}) over up to {seeds} seed(s) per setting: "
           + "; ".join(_cell_phrase(lab, [(g.values, g.cell(lab)) for g in groups]) for lab in labels) + "."]
    apart, undecided, together = [], [], []
    for g in groups:
        cells = sorted((c for c in g.cells if c.trials), key=lambda c: -c.rate)
        if len(cells) < 2:
            continue
        if all(overlap(a.wilson95, b.wilson95) for a in cells for b in cells):
            together.append(setting(g.values))
            continue
        above = []
        for i, hi in enumerate(cells):
            lows = [lo for lo in cells[i + 1:] if not overlap(hi.wilson95, lo.wilson95)]
            if lows:
                above.append(f"the {hi.cell}'s {_count(hi)} ({_interval(hi)}) is above "
                             + _join([f"the {lo.cell}'s {_count(lo)} ({_interval(lo)})" for lo in lows]))
            undecided += [f"the {hi.cell}'s {_count(hi)} and the {lo.cell}'s {_count(lo)} at {setting(g.values)}"
                          for lo in cells[i + 1:] if lo.successes * hi.trials != hi.successes * lo.trials
                          and overlap(hi.wilson95, lo.wilson95)]
        apart.append(f"at {setting(g.values)} " + ", and ".join(above))
    if apart:
        out.append("Intervals that do not overlap: " + "; ".join(apart) + ".")
    if undecided:
        out.append("Counts that differ but whose intervals overlap, so no conclusion is drawn between them: "
                   + "; ".join(undecided) + ".")
    if together:
        out.append(f"At {_join(together)} every cell's interval overlaps every other's: these counts "
                   "cannot rank the cells there, and no conclusion is drawn.")
    within = [(g.values, c) for g in groups for c in g.cells if c.within]
    if within:
        by = {}
        for v, c in within:
            by.setdefault(c.cell, []).append(f"{c.within.median:.3f} at {setting(v)}")
        out.append("Median fraction of evaluation sequences answered within the task's tolerance: "
                   + "; ".join(f"the {lab} {', '.join(parts)}" for lab, parts in by.items()) + ".")
    est = {(p.estimated.rows, p.estimated.value) for g in groups for c in g.cells for p in c.curves
           if p.estimated is not None}
    if est:
        rows = "/".join(str(r) for r in sorted({r for r, _ in est}))
        what = "lower bounds" if {v for _, v in est} == {"lower_bound"} else "estimates"
        out.append(f"The pooled curves and decay factors are of {what}: each seed's curves were estimated "
                   f"from {rows} random rows (probe.estimator), not measured exactly.")
    if seeds <= 1:
        out.append("One trial per setting: each rate is 0 or 1 and its interval is wide; vary the seed "
                   "for rates that can support a claim.")
    return out


def failures(doc: Sweep) -> list[str]:
    n = Sweep.of(doc, "sweep").counts
    out = []
    if n.failed:
        why = ", ".join(f"{k}: {v}" for k, v in n.reasons.items())
        out.append(f"{n.failed} of {n.points} points failed ({why}); they are not counted as trials "
                   "(points/<id>/error.json has each traceback; a rerun tries them again).")
    if n.missing:
        out.append(f"{n.missing} of {n.points} points have no result yet (rerun to finish them).")
    if n.diverged:
        out.append(f"{n.diverged} cell training(s) diverged; each counts as a trial that did not succeed.")
    return out


def quartiles_text(q, spec: str, none: str = "-") -> str:
    """'median [q25, q75]' of a Quartiles, `none` when there is none."""
    return none if q is None else f"{fmt(q.median, spec, none)} [{fmt(q.q25, spec, none)}, {fmt(q.q75, spec, none)}]"


def table(doc: Sweep) -> str:
    """One row per setting and cell: successes/trials, rate, interval, loss and fit quartiles."""
    head = ("setting", "cell", "succ", "rate", "95% interval", "loss median [q25, q75]", "within", "rho", "horizon")
    body = []
    for g in Sweep.of(doc, "sweep").groups:
        for c in g.cells:
            w, f, h = c.within, c.factor, c.horizon
            body.append((setting(g.values), c.cell, _count(c), fmt(c.rate, ".2f"), _interval(c),
                         quartiles_text(c.final_loss, ".3g"),
                         "-" if not w else fmt(w.median, ".3f"), "-" if not f else fmt(f.median, ".3f"),
                         "-" if not h else (f"> K ({h.beyond})" if h.median is None else fmt(h.median, ".0f"))))
    widths = [max(len(hd), *(len(b[i]) for b in body)) if body else len(hd) for i, hd in enumerate(head)]
    line = lambda cols: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)  # noqa: E731
                                  for i, (c, w) in enumerate(zip(cols, widths)))
    return "\n".join([line(head), line(tuple("-" * w for w in widths))] + [line(b) for b in body])


def markdown_table(doc: Sweep) -> str:
    """The README's form of the table (tests/test_shipped_sweeps.py checks the README holds
    exactly this for each shipped sweep's committed sweep.json)."""
    doc = Sweep.of(doc, "sweep")
    within = any(c.within for g in doc.groups for c in g.cells)
    head = ["setting", "cell", "successes", "95% interval", "final loss: median [q25, q75]"]
    # the task's measure: within 0.04 for adding, every answer right for selective_copy and mqar
    head += ["within: median [q25, q75]"] if within else []
    head += ["ρ (median)"]
    q = lambda d, spec: "–" if not d else f"{fmt(d.median, spec)} [{fmt(d.q25, spec)}, {fmt(d.q75, spec)}]"  # noqa: E731
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for g in doc.groups:
        for c in g.cells:
            cols = [setting(g.values), c.cell, _count(c), _interval(c), q(c.final_loss, ".3g")]
            cols += [q(c.within, ".3f")] if within else []
            cols += ["–" if not c.factor else fmt(c.factor.median, ".3f")]
            rows.append("| " + " | ".join(cols) + " |")
    return "\n".join(rows)
