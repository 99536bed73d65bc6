"""What a run showed, in sentences generated from its own numbers (the report opens with them,
`diag run` prints them), and the warnings a reader must not miss.

    opening(curves, summary) -> ["Over 60 lags, the tanh RNN's gradient ... ", ...]
    warnings(curves)         -> ["LSTM (step 150, path a): 3 of 16 ... diverged ...", ...]

`curves` is a documents.Curves (a dict is checked into one), `summary` its SummaryRows. Only
numbers in curves.json and the summary rows are used, so the words cannot disagree with
the figures; nothing is claimed that the numbers do not show. What divergence does to the
numbers comes first: a training that diverged (which checkpoints were probed, and so what the
curves are of), then a forward pass that diverged (inf or NaN in the states or caches), for
which no decay is stated when no (sequence, anchor) pair is left.
"""
from __future__ import annotations

import math

from ..documents import Curves, Influence, Series, SummaryRow

WITHIN = 1.0   # decades: "stays within one decade of lag 1"


def _median(series: Series | None) -> list[float] | None:
    """The median curve, null read as -inf (an exact zero); None when there is none to read:
    no series, or every (sequence, anchor) pair's forward pass diverged."""
    if series is None or series.all_diverged:
        return None
    return [(-math.inf if v is None else float(v)) for v in series.log10.median]


def _last_rows(summary: list[SummaryRow]) -> dict[str, SummaryRow]:
    rows: dict[str, SummaryRow] = {}
    for r in summary:
        if r.cell not in rows or r.checkpoint >= rows[r.cell].checkpoint:
            rows[r.cell] = r
    return rows


def _decay_phrase(cell: str, y: list[float]) -> str:
    first, last = y[0], y[-1]
    if math.isinf(first) and first < 0:
        return f"is exactly zero from lag 1 for the {cell}"
    if math.isinf(last) and last < 0:
        k = next(i for i, v in enumerate(y) if math.isinf(v)) + 1
        return f"becomes exactly zero at lag {k} for the {cell}"
    change = last - first
    if abs(change) <= WITHIN:
        return f"stays within one decade of its lag-1 value for the {cell}"
    return f"{'falls' if change < 0 else 'grows'} {abs(change):.1f} decades for the {cell}"


def opening(curves: Curves, summary: list[SummaryRow], imported=()) -> list[str]:
    """Two or three sentences: how each cell's decay path falls (a; or state, said so, for a
    cell whose output is not fed back), how training ended, the contrast.
    `imported`: labels of cells read from weight files (their checkpoint 0 is not an
    initialisation)."""
    curves = Curves.of(curves, "curves")
    norm = curves.primary_norm
    models = set(curves.model_cells)     # their rows are of the influence: said apart, never as ∂a/∂a
    rows = {c: r for c, r in _last_rows(summary).items() if c not in models}
    if not rows:
        return _influence_sentences(curves)
    ck = max(r.checkpoint for r in rows.values())
    K = len(curves.lags)
    if ck > 0:
        when = f"after {ck} training steps"
    elif imported:
        when = ("with the weights as read from their files" if set(imported) >= set(rows)
                else "with the imported weights as read (the other cells at initialisation)")
    else:
        when = "at initialisation"
    decay = curves.decay_paths()
    series = {c: curves.series_for(c, rows[c].checkpoint, decay.get(c), norm) for c in rows}
    ys = {c: _median(s) for c, s in series.items()}
    # a cell whose training diverged was last probed before the others' last checkpoint
    early = {c: f" (at step {rows[c].checkpoint})" for c in rows if rows[c].checkpoint != ck}
    # an infinite end gives inf or NaN here, never <= WITHIN
    within = [c for c, y in ys.items() if y and abs(y[-1] - y[0]) <= WITHIN]
    out = _training_diverged(curves) + _forward_diverged(series)
    a_phrases = _phrases({c: y for c, y in ys.items() if decay.get(c) != "state"}, within, early)
    s_phrases = _phrases({c: y for c, y in ys.items() if decay.get(c) == "state"}, within, early)
    if a_phrases:
        a_series = {c: s for c, s in series.items() if decay.get(c) != "state"}
        out.append(f"Over {K} lags {when}, ‖∂a<t>/∂a<t-k>‖ ({norm} norm, median over sequences"
                   f"{_estimated(a_series)}) " + _join(a_phrases) + ".")
    if s_phrases:   # the cells whose output is not fed back: "a" means nothing for them
        state = [c for c, y in ys.items() if decay.get(c) == "state" and y]
        lead = f"Over {K} lags {when}, t" if not a_phrases else "T"
        one = len(state) == 1
        out.append(f"{lead}he {_join(state)} {'does' if one else 'do'} not feed {'its' if one else 'their'} output "
                   f"back, so {'its' if one else 'their'} decay is read on the state path: "
                   f"‖∂S<t>/∂S<t-k>‖ ({norm} norm, median over sequences"
                   f"{_estimated({c: series[c] for c in state})}) " + _join(s_phrases) + ".")
    within = [c for c in within if c not in early]
    # a cell whose training diverged has no held-out loss of probed parameters to state
    diverged = {t.cell for t in curves.training if t.diverged_at is not None}
    trained = [r for r in rows.values() if r.final_loss is not None and r.memoryless_loss
               and r.cell not in diverged]
    if trained:
        out.append(f"On a held-out evaluation batch {when}, " + _loss_sentence(trained) + ".")
    fits = [r for r in rows.values() if r.factor is not None and not math.isnan(r.factor)
            and r.cell not in early]   # curves of one checkpoint are compared
    decaying = [r for r in fits if r.factor < 1]
    if len(decaying) >= 2:
        slow = max(decaying, key=lambda r: r.factor)
        fast = min(decaying, key=lambda r: r.factor)
        s = (f"Of the decaying curves the slowest is the {slow.cell}'s (ρ = {slow.factor:.3g} per step, "
             f"{_horizon(slow, K)}) and the fastest the {fast.cell}'s (ρ = {fast.factor:.3g}, {_horizon(fast, K)})")
        growing = [r.cell for r in fits if r.factor > 1]
        out.append(s + (f"; {_join([f'the {g}' for g in growing])} {'grows' if len(growing) == 1 else 'grow'} "
                        "(ρ > 1)." if growing else "."))
    # the honest contrast: cells whose gradient survives the lags yet which learned nothing,
    # beside a cell that did learn
    learned = [r.cell for r in trained if r.final_loss > 0 and r.memoryless_loss / r.final_loss >= 1.25]
    idle = [r.cell for r in trained if r.cell in within and r.cell not in learned]
    if idle and learned:
        one = len(idle) == 1
        out.append(f"The {_join(idle)} {'keeps its' if one else 'keep their'} gradient within one decade over the "
                   f"{K} lags yet stay{'s' if one else ''} at the memoryless loss: a slowly decaying gradient "
                   "is necessary for learning a long dependency, not sufficient.")
    return out + _influence_sentences(curves)


def _influence_sentences(curves: Curves) -> list[str]:
    """The model cells' input-to-output influence ‖∂y<t>/∂x<t-k>‖ (their own lags from 0): how
    each whole-model curve moves from lag 1 to its last lag, and the slowest and fastest fit."""
    items = [x for c in curves.model_cells if (x := curves.influence_of(c)) is not None]
    if not items:
        return []
    lags, norm = items[0].lags, items[0].norm
    ys = {x.cell if x.kind == x.cell else f"{x.cell} ({x.kind})": [(-math.inf if v is None else float(v)) for v in x.log10.median] for x in items}
    # from lag 1: lag 0 is the direct term, of another kind
    ys = {name: y[1:] if len(y) > 1 else y for name, y in ys.items()}
    phrases = _phrases(ys, [c for c, y in ys.items() if abs(y[-1] - y[0]) <= WITHIN], {})
    est = _estimated({x.cell: x for x in items})
    out = [f"Input to output, over lags {lags[0]}..{lags[-1]}, the whole-model influence ‖∂y<t>/∂x<t-k>‖ of the "
           f"output on the input k steps back ({norm} norm, median over sequences{est}; not a state-to-state "
           "Jacobian) " + _join(phrases) + "."]
    fits = [x for x in items if x.fit.factor is not None and not math.isnan(x.fit.factor) and x.fit.factor < 1]
    if len(fits) >= 2:
        slow, fast = max(fits, key=lambda x: x.fit.factor), min(fits, key=lambda x: x.fit.factor)
        hz = lambda x: (f"horizon {x.fit.horizon} steps" if x.fit.horizon is not None  # noqa: E731
                        else f"no 3-decade fall within {lags[-1]} lags")
        out.append(f"Of the decaying influence curves the slowest is the {slow.cell}'s (ρ = {slow.fit.factor:.3g} per "
                   f"step, {hz(slow)}) and the fastest the {fast.cell}'s (ρ = {fast.fit.factor:.3g}, {hz(fast)}).")
    return out


def _phrases(ys: dict[str, list[float] | None], within: list[str], early: dict[str, str]) -> list[str]:
    """How each of these cells' median curve moves over the lags: one phrase per cell, and one
    for all those that stay within one decade (at the last checkpoint)."""
    phrases = [_decay_phrase(c, y) + early.get(c, "") for c, y in ys.items()
               if y and (c not in within or c in early)]
    flat = [c for c in within if c in ys and c not in early]
    if flat:   # one phrase for all the cells it fits
        phrases.append(f"stays within one decade of its lag-1 value for the {_join(flat)}")
    return phrases


def _estimated(series: dict[str, Series | None]) -> str:
    """"; estimated from r rows ..." when any of the curves the sentence reads was estimated
    (probe.estimator), naming the cells when not all were."""
    est = {c: s.estimated for c, s in series.items() if s is not None and s.estimated is not None}
    if not est:
        return ""
    rows = sorted({e.rows for e in est.values()})
    what = ("a lower bound on the norm" if all(e.value == "lower_bound" for e in est.values())
            else "the 95 % interval is drawn")
    whose = "" if len(est) == len(series) else f" for the {_join(list(est))}"
    return f"; estimated from {'/'.join(map(str, rows))} rows{whose}: {what}"


def _training_diverged(curves: Curves) -> list[str]:
    """One sentence per group of cells whose training diverged at the same step: which
    checkpoints were probed (the later ones do not exist)."""
    groups: dict[tuple, list[str]] = {}
    for t in curves.training:
        if t.diverged_at is None:
            continue
        probed = curves.checkpoints_of(t.cell)
        missed = [c for c in t.checkpoints if c not in probed]
        groups.setdefault((t.diverged_at, tuple(probed), tuple(missed)), []).append(t.cell)
    out = []
    for (step, probed, missed), cells in groups.items():
        one = len(cells) == 1
        ckpts = lambda cs: ("checkpoint " if len(cs) == 1 else "checkpoints ") + _join([str(c) for c in cs])  # noqa: E731
        if probed:
            what = (f"{'it was' if one else 'they were'} probed only at {ckpts(probed)}"
                    + (f" ({ckpts(missed)} {'was' if len(missed) == 1 else 'were'} not reached)" if missed else ""))
        else:
            what = f"{'it was' if one else 'they were'} not probed ({ckpts(missed)} {'was' if len(missed) == 1 else 'were'} not reached)"
        out.append(f"Training diverged at step {step} for the {_join(cells)} (a loss or gradient was not "
                   f"a finite number), so {what}.")
    return out


def _forward_diverged(series: dict[str, Series | None]) -> list[str]:
    """A sentence per cell whose forward pass diverged in some (sequence, anchor) pairs."""
    out = []
    for c, s in series.items():
        n, of = s.diverged_pairs if s is not None else (0, 0)
        if n:
            out.append(f"The forward pass diverged for the {c} (a state or cached value overflowed to inf or NaN) "
                       f"in {n} of {of} (sequence, anchor) pairs: "
                       + ("no gradient curve is read for it." if n == of else f"its medians are over the other {of - n}."))
    return out


def _horizon(r: SummaryRow, K: int) -> str:
    return f"horizon {r.horizon} steps" if r.horizon is not None else f"no 3-decade fall within {K} lags"


def _loss_sentence(rows: list[SummaryRow]) -> str:
    """Cells grouped by outcome against the memoryless loss (one per task)."""
    below, at, above = [], [], []
    for r in rows:
        loss, memoryless = r.final_loss, r.memoryless_loss
        ratio = memoryless / loss if loss > 0 else math.inf
        if ratio >= 1.25:
            below.append(f"{ratio:.3g}x below it for the {r.cell} ({loss:.3g}{', solved' if r.solved else ''})")
        elif ratio <= 0.8:
            above.append(f"{r.cell} ({loss:.3g})")
        else:
            at.append(f"{r.cell} ({loss:.3g})")
    memoryless = rows[0].memoryless_loss
    parts = []
    if at:
        parts.append(f"the loss stays at the memoryless loss {memoryless:.3g} for the {_join(at)}")
    if above:
        parts.append(f"it is above the memoryless loss for the {_join(above)}")
    if below:
        parts.append(("it is " if parts else f"against the memoryless loss {memoryless:.3g} the loss is ") + _join(below))
    return "; ".join(parts)


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def warnings(curves: Curves) -> list[str]:
    """Diverged pairs left out of quantiles (once per cell and checkpoint for a forward pass
    that diverged, per series for a chain that turned NaN on its own), Lyapunov trajectories
    that diverged, and probes that sat at a fixed point."""
    curves = Curves.of(curves, "curves")
    out, told = [], set()
    for cell in curves.float32_inside:
        out.append(f"{cell}: the model computes in float32 inside even in its float64 copy (its forward casts to "
                   "float32), so its curves hold to float32 precision (about 7 digits), not float64's.")
    for x in curves.influence:
        bad = max(x.nonfinite or [0])
        if bad:
            out.append(f"{x.cell} (path {x.path}, {x.norm} norm): up to {bad} (sequence, anchor) pairs of its influence "
                       "were not a number; the quantiles are over the others.")
    for s in curves.series:
        n, of = s.diverged_pairs
        if n and (s.cell, s.checkpoint) not in told:
            told.add((s.cell, s.checkpoint))
            out.append(f"{s.cell} (step {s.checkpoint}): the forward pass diverged (inf or NaN in a state or "
                       f"cache) in {n} of {of} (sequence, anchor) pairs; they are left out of the quantiles at every "
                       + ("lag and counted in nonfinite." if n < of else "lag, so its curves and fits are empty (null)."))
        counts = [c - n for c in s.nonfinite]
        if any(counts):
            k = next(i for i, c in enumerate(counts) if c) + 1
            out.append(f"{s.cell} (step {s.checkpoint}, path {s.path}, {s.norm} norm): up to "
                       f"{max(counts)} {'more ' if n else ''}(sequence, anchor) pairs were not a number (the sequence "
                       f"diverged) from lag {k} on; the quantiles are over the others.")
    for x in curves.lyapunov:
        fd = x.forward_diverged
        if fd is not None:
            n, of = fd.sequences, fd.of
            out.append(f"{x.cell} (step {x.checkpoint}): the trajectory of the Lyapunov exponents diverged "
                       f"(inf or NaN in a state or cache) in {n} of {of} sequences; "
                       + ("no exponent is given." if n == of else f"the exponents are the mean over the other {of - n}."))
        if x.fixed_point:
            out.append(f"{x.cell} (step {x.checkpoint}): the probe stream left the state at a fixed point "
                       "(it did not move after the warm-up), so the Lyapunov exponents are the log moduli of "
                       "that fixed point's Jacobian eigenvalues, not the rates along a moving trajectory; "
                       "give the probe inputs that move the state (e.g. task inputs: gaussian).")
    return out
