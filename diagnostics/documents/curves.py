"""curves.json ("diag-curves/1"): the numbers of a run that depend only on the case and seed.

The fields below are the contract; what they mean is said beside each model (how they are
computed: diagnostics/run/curves.py, which builds them). Keys marked "absent ..." are written
only when there is something to say, so a run without it writes the file it wrote before the
key existed, and a file from before it reads as stated.

Nulls. log10 of an exact zero is -inf, written null: a value, the smallest. A pair that is not
a number (a sequence whose numbers diverged) is left out of the quantiles and counted per lag in
`nonfinite`; a lag where every pair was left out has null quantiles and `nonfinite` equal to the
pair count.

Reading is lenient about absence, as it always was: a curves document needs only `format`,
`lags` and `series`, and an item may lack keys (a dict of one's own given to the pytest plugin's
gradient_curves.check and stored as a baseline: a median without min and max, a fit without
tau); an absent list reads as empty, anything else as null. What is present must have its type,
and an unknown key is refused. diag's own writers are held to the whole form (Document.built);
the JSON Schema states it (`required`: every key but OPTIONAL).
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, StrictBool, StrictInt, StrictStr

from .base import CURVES, Document, Model, Num, Values, decay_path, primary_norm


def _empty():
    """An absent list reads as empty."""
    return Field(default_factory=list)


class Fit(Model):
    """The geometric decay fitted to a median curve (probing/metrics.fit_decay): log10 slope per
    step, factor ρ = 10^slope, time constant τ = -1/ln ρ (null when nothing decays), horizon =
    the first lag 3 decades below lag 1 (null: none within the lags)."""
    slope: Optional[Num] = None
    factor: Optional[Num] = None
    tau: Optional[Num] = None
    horizon: Optional[Num] = None


class Quantiles(Model):
    """Per lag, over every (anchor, sequence) pair: log10 of the norm's median, quartiles, extremes."""
    median: Values = _empty()
    q25: Values = _empty()
    q75: Values = _empty()
    min: Values = _empty()
    max: Values = _empty()


class PairsDiverged(Model):
    """`pairs` of the probe's `of` (anchor, sequence) pairs held an inf or NaN in a state or cache
    up to the anchor (their forward pass diverged): left out at every lag."""
    pairs: StrictInt
    of: StrictInt

    @property
    def all(self) -> bool:
        """No pair is left: there is no number to show."""
        return self.pairs == self.of


class SequencesDiverged(Model):
    """`sequences` of `of` Lyapunov trajectories diverged; the exponents are over the others."""
    sequences: StrictInt
    of: StrictInt

    @property
    def all(self) -> bool:
        return self.sequences == self.of


def all_diverged(part: PairsDiverged | SequencesDiverged | None) -> bool:
    """A forward_diverged or lyapunov_diverged that covers every pair or sequence."""
    return part is not None and part.all


class Interval(Model):
    """Per lag, the median over the (anchor, sequence) pairs of each pair's two-sided `level`
    confidence interval of the norm (not of the median across pairs), each end widened by
    1e-9 decades for rounding (estimator.FLOOR): log10 of the norm, in decades like the
    quantiles; and the median relative standard error of the squared norm's
    estimate (a plain ratio)."""
    level: Num = None
    lo: Values = _empty()
    hi: Values = _empty()
    rel_stderr: Values = _empty()


class Estimate(Model):
    """How an estimated series was measured (diagnostics/probing/estimator.py): `kind` "sketch",
    from `rows` random rows per sequence drawn from `seed`; `value` "hutchinson" (an unbiased
    estimate of the squared Frobenius norm; the quantiles are log10 of its square root, and
    `interval` says how far off it may be) or "lower_bound" (spectral: never above the exact
    norm but for rounding)."""
    OPTIONAL = WHEN_MEASURED = frozenset({"interval"})
    kind: Literal["sketch"] = None
    rows: StrictInt = None
    seed: StrictInt = None
    value: Literal["hutchinson", "lower_bound"] = None
    interval: Optional[Interval] = None       # hutchinson only


class Series(Model):
    """One decay curve: the norm of d state<t> / d state<t-k> along `path` ("a", "c",
    "c_direct", "state") in `norm`, per lag k = 1..K."""
    OPTIONAL = frozenset({"nonfinite", "forward_diverged", "estimated"})
    WHEN_MEASURED = frozenset({"forward_diverged", "estimated"})
    cell: StrictStr = None
    kind: StrictStr = None
    checkpoint: StrictInt = None
    path: StrictStr = None
    norm: StrictStr = None
    log10: Quantiles = Field(default_factory=Quantiles)
    nonfinite: list[StrictInt] = _empty()                       # absent in files from before the count: none
    fit: Fit = Field(default_factory=Fit)
    forward_diverged: Optional[PairsDiverged] = None     # absent when no forward pass diverged
    estimated: Optional[Estimate] = None                 # absent for an exact series

    @property
    def rows(self) -> int | None:
        """The random rows an estimated series was measured from; None: exact."""
        return None if self.estimated is None else self.estimated.rows

    @property
    def key(self) -> tuple[str, int, str, str]:
        return self.cell, self.checkpoint, self.path, self.norm

    @property
    def diverged_pairs(self) -> tuple[int, int]:
        """(pairs whose forward pass diverged, pairs), (0, 0) when none did."""
        fd = self.forward_diverged
        return (fd.pairs, fd.of) if fd is not None else (0, 0)

    @property
    def all_diverged(self) -> bool:
        return all_diverged(self.forward_diverged)


class Influence(Model):
    """One input-to-output influence curve of a model cell (a whole sequence model named in the
    case, diagnostics/interop): log10 ||d y<t> / d x<t-k>|| of its output y (`path` "influence",
    or "l{i}.influence" for layer i's hidden states) against its input x k steps earlier, in
    `norm`, per lag k in `lags` (0 = the direct term, 0..K-1). Not ||d a<t>/d a<t-k>||: the
    input and output are the model's own, whatever its state. The fit is of the median over
    `lags` (its horizon: the first lag 3 decades below lag 1)."""
    OPTIONAL = WHEN_MEASURED = frozenset({"nonfinite", "estimated"})
    cell: StrictStr = None
    kind: StrictStr = None                 # the model's class name (MambaModel, LSTM, ...)
    checkpoint: StrictInt = None
    path: StrictStr = None
    norm: StrictStr = None
    lags: list[StrictInt] = _empty()
    log10: Quantiles = Field(default_factory=Quantiles)
    nonfinite: list[StrictInt] = _empty()
    fit: Fit = Field(default_factory=Fit)
    estimated: Optional[Estimate] = None   # absent for an exact curve

    @property
    def rows(self) -> int | None:
        return None if self.estimated is None else self.estimated.rows

    @property
    def key(self) -> tuple[str, int, str, str]:
        return self.cell, self.checkpoint, self.path, self.norm


class Lyapunov(Model):
    """The largest Lyapunov exponents of the state along `path` (natural log per step, largest
    first; null: -inf, an exactly singular step, unless every trajectory diverged)."""
    # fixed_point: not written by regression.adapt (it takes no spectrum along a stream)
    OPTIONAL = frozenset({"fixed_point", "resolved", "forward_diverged"})
    WHEN_MEASURED = frozenset({"fixed_point", "forward_diverged"})
    cell: StrictStr = None
    checkpoint: StrictInt = None
    path: StrictStr = None
    exponents: Values = _empty()
    fixed_point: Optional[StrictBool] = None      # the probe stream left the state at a fixed point
    # per exponent, signal (true) or rounding (a dead relu unit's direction); absent: all signal
    resolved: Optional[list[StrictBool]] = None
    forward_diverged: Optional[SequencesDiverged] = None   # absent when no trajectory diverged

    @property
    def key(self) -> tuple[str, int, str]:
        return self.cell, self.checkpoint, self.path

    @property
    def resolved_flags(self) -> list[bool]:
        """One flag per exponent; a file from before the flag counts every exponent resolved."""
        flags, n = list(self.resolved or []), len(self.exponents)
        return flags[:n] + [True] * (n - len(flags))

    @property
    def diverged_sequences(self) -> int:
        return self.forward_diverged.sequences if self.forward_diverged is not None else 0


class Training(Model):
    """One cell's training: the loss and gradient norm per recorded step, the loss at each probe
    checkpoint and on the evaluation batch at the end."""
    OPTIONAL = frozenset({"final_within"})
    cell: StrictStr = None
    step: list[StrictInt] = _empty()
    loss: Values = _empty()
    grad_norm: Values = _empty()
    # the loss of the best answer that does not remember the relevant input (the task's)
    memoryless_loss: Optional[Num] = Field(None, alias="baseline")
    diverged_at: Optional[StrictInt] = None
    checkpoints: list[StrictInt] = _empty()
    loss_at_checkpoints: Values = _empty()
    final_loss: Optional[Num] = None
    final_accuracy: Optional[Num] = None
    solved: Optional[StrictBool] = None    # null: no task says what solving is (a monitored run)
    loss_kind: Optional[StrictStr] = None
    # the fraction of evaluation sequences within the task's tolerance; absent in older files
    final_within: Optional[Num] = None

    @property
    def key(self) -> tuple[str]:
        return (self.cell,)

    def loss_at(self, checkpoint: int) -> float | None:
        """The evaluation loss at the last checkpoint, the training loss at an earlier one."""
        if checkpoint == max(self.checkpoints):
            return self.final_loss
        return self.loss_at_checkpoints[self.checkpoints.index(checkpoint)]


class GradFlow(Model):
    """log10 ||dL/d a<s>|| over the time steps s, at one checkpoint."""
    cell: StrictStr = None
    checkpoint: StrictInt = None
    t: list[StrictInt] = _empty()
    log10: Values = _empty()


class TemporalComponents(Model):
    """log10 of each lag's part of the recurrent-weight gradient, at one checkpoint."""
    cell: StrictStr = None
    checkpoint: StrictInt = None
    lags: list[StrictInt] = _empty()
    log10: Values = _empty()


class Bound(Model):
    """An upper bound on the curve ("pascanu": (γ σ_max(W_a))^k, spectral norm), log10 per lag."""
    cell: StrictStr = None
    checkpoint: StrictInt = None
    kind: StrictStr = None
    log10: Values = _empty()


class TkMap(Model):
    """The median curve at each anchor step t (rows); null beyond lag t."""
    cell: StrictStr = None
    checkpoint: StrictInt = None
    path: StrictStr = None
    norm: StrictStr = None
    anchors: list[StrictInt] = _empty()
    log10_median: list[Values] = _empty()


class SensitivityStats(Model):
    """Over the (anchor, sequence) pairs: "rms" = log10 sqrt(mean of the squared norms), and the
    quantiles of the log10 norms, per lag."""
    rms: Values = _empty()
    median: Values = _empty()
    q25: Values = _empty()
    q75: Values = _empty()
    min: Values = _empty()
    max: Values = _empty()


class TotalStats(Model):
    """The same statistics of the total (one number each)."""
    rms: Optional[Num] = None
    median: Optional[Num] = None
    q25: Optional[Num] = None
    q75: Optional[Num] = None
    min: Optional[Num] = None
    max: Optional[Num] = None


class SensitivityTotal(Model):
    log10: TotalStats = Field(default_factory=TotalStats)
    nonfinite: StrictInt = None


class Sensitivity(Model):
    """kind "sensitivity": the state's sensitivity to one recurrent parameter θ, ||C_k||_F per lag
    k = 0..K-1 (C_k = (d a<t>/d a<t-k>)(∂⁺a<t-k>/∂θ)) and ||d a<t>/dθ||_F in total; kind "state"
    (parameter null): the state's size ||a<t>||_2, in total only (diagnostics/sensitivity)."""
    OPTIONAL = WHEN_MEASURED = frozenset({"lags", "log10", "nonfinite"})   # absent for "state"
    cell: StrictStr = None
    checkpoint: StrictInt = None
    kind: Literal["sensitivity", "state"] = None
    parameter: Optional[StrictStr] = None
    lags: list[StrictInt] = _empty()
    pairs: StrictInt = None
    log10: Optional[SensitivityStats] = None
    nonfinite: list[StrictInt] = _empty()
    total: SensitivityTotal = Field(default_factory=SensitivityTotal)

    @property
    def key(self) -> tuple:
        return self.cell, self.checkpoint, self.kind, self.parameter


class SummaryRow(Model):
    """A row of the summary (run.json `summary`, the terminal table, the page's table): per cell
    and checkpoint, the fit of path a in the primary norm, the top Lyapunov exponent and the
    training outcome (Curves.summary_rows)."""
    OPTIONAL = frozenset({"fixed_point", "nonfinite", "forward_diverged", "lyapunov_diverged", "diverged_at"})
    cell: StrictStr
    kind: StrictStr
    checkpoint: StrictInt
    factor: Optional[Num]
    tau: Optional[Num]
    horizon: Optional[Num]
    lyapunov_top: Optional[Num]        # null: -inf (an exactly singular step), or none measured
    fixed_point: StrictBool = False    # these five: absent in files from before them
    nonfinite: StrictInt = 0
    forward_diverged: Optional[PairsDiverged] = None
    lyapunov_diverged: Optional[SequencesDiverged] = None
    final_loss: Optional[Num]
    memoryless_loss: Optional[Num] = Field(alias="baseline")
    solved: Optional[StrictBool]       # null before the last checkpoint and without training
    diverged_at: Optional[StrictInt] = None


def _training_at(t: Training, checkpoint: int) -> Training:
    """A training item up to `checkpoint`, that checkpoint its last."""
    n = sum(s <= checkpoint for s in t.step)
    loss = t.loss_at_checkpoints[t.checkpoints.index(checkpoint)]
    return t.model_copy(update={"step": t.step[:n], "loss": t.loss[:n], "grad_norm": t.grad_norm[:n],
                                "checkpoints": [checkpoint], "loss_at_checkpoints": [loss], "final_loss": loss})


class Curves(Document):
    """The whole file. Items of one list are told apart by their key (cell, checkpoint, ...)."""
    FORMAT = CURVES
    FILE = "curves.json"
    OPTIONAL = WHEN_MEASURED = frozenset({"sensitivity", "state_decay", "influence", "float32_inside"})

    format: Literal["diag-curves/1"]
    case: StrictStr = None
    lags: list[StrictInt]
    series: list[Series]
    lyapunov: list[Lyapunov] = _empty()
    training: list[Training] = _empty()
    grad_flow: list[GradFlow] = _empty()
    bounds: list[Bound] = _empty()
    tk_map: list[TkMap] = _empty()
    temporal_components: list[TemporalComponents] = _empty()
    sensitivity: list[Sensitivity] = _empty()      # absent unless probe.sensitivity
    # the cells whose output is not fed back (Cell.decay_path "state": Mamba, Gated DeltaNet,
    # mLSTM, stacks of them), as the writer's cells said; absent when there are none, so files
    # of cells that have "a" are as before
    state_decay: list[StrictStr] = _empty()
    # model cells (a sequence model named in the case): their input-to-output influence curves,
    # with their own lags; absent when the case has none, so other files are as before
    influence: list[Influence] = _empty()
    # the model cells whose model computes in float32 inside even in a float64 copy (a tiny
    # change of the input changes no output): their curves hold to float32 precision only
    float32_inside: list[StrictStr] = _empty()

    # --- lookups: the one place a reader finds an item -----------------------------------------
    @property
    def norms(self) -> list[str]:
        return sorted({s.norm for s in self.series})

    @property
    def primary_norm(self) -> str:
        return primary_norm(self.norms)

    @property
    def checkpoints(self) -> list[int]:
        """Every probed checkpoint, in order (of the series and the influence curves: a monitored
        model without memory paths has only the latter)."""
        return sorted({x.checkpoint for x in [*self.series, *self.influence]})

    def checkpoints_of(self, cell: str) -> list[int]:
        return sorted({x.checkpoint for x in [*self.series, *self.influence] if x.cell == cell})

    def series_for(self, cell: str, checkpoint: int, path: str | None = None,
                   norm: str | None = None) -> Series | None:
        """The curve of (cell, checkpoint, path, norm); the cell's decay path (decay_paths) when
        `path` is None, the primary norm when `norm` is None."""
        key = (cell, checkpoint, path or self.decay_paths().get(cell), norm or self.primary_norm)
        return next((s for s in self.series if s.key == key), None)

    def a_series(self, norm: str | None = None) -> dict[tuple[str, int], Series]:
        """(cell, checkpoint) -> the curve of the cell's decay path (a, or state for a cell
        whose output is not fed back: decay_paths) in `norm` (the primary norm when None)."""
        norm, decay = norm or self.primary_norm, self.decay_paths()
        return {(s.cell, s.checkpoint): s for s in self.series if s.path == decay[s.cell] and s.norm == norm}

    def paths_of(self, cell: str) -> list[str]:
        return list(dict.fromkeys(s.path for s in self.series if s.cell == cell))

    def decay_paths(self) -> dict[str, str | None]:
        """cell -> the path its decay is read on: "state" for the cells in state_decay, "a" for
        the others (their own decay path, as Cell.decay_path says; base.decay_path); None when
        that path was not probed. Asked of the cell, never guessed from what was probed: an LSTM
        probed on c and state only has no decay curve, not its whole state as one."""
        paths: dict[str, set[str]] = {}
        for s in self.series:
            paths.setdefault(s.cell, set()).add(s.path)
        own = {c: "state" if c in self.state_decay else "a" for c in paths}
        return {c: decay_path([own[c]] if own[c] in ps else []) for c, ps in paths.items()}

    def influence_of(self, cell: str, checkpoint: int | None = None, path: str = "influence",
                     norm: str | None = None) -> Influence | None:
        """The influence curve of (cell, checkpoint, path, norm); the cell's last checkpoint when
        None, the primary norm of the influence curves when `norm` is None."""
        norm = norm or primary_norm(sorted({x.norm for x in self.influence}))
        found = [x for x in self.influence if (x.cell, x.path, x.norm) == (cell, path, norm)
                 and (checkpoint is None or x.checkpoint == checkpoint)]
        return max(found, key=lambda x: x.checkpoint, default=None)

    @property
    def model_cells(self) -> list[str]:
        """The cells measured as whole models (input-to-output influence), in order."""
        return list(dict.fromkeys(x.cell for x in self.influence))

    def training_of(self, cell: str) -> Training | None:
        return next((t for t in self.training if t.cell == cell), None)

    def lyapunov_of(self, cell: str, checkpoint: int) -> Lyapunov | None:
        return next((x for x in self.lyapunov if (x.cell, x.checkpoint) == (cell, checkpoint)), None)

    def bound_of(self, cell: str, checkpoint: int) -> Bound | None:
        return next((b for b in self.bounds if (b.cell, b.checkpoint) == (cell, checkpoint)), None)

    def tk_map_of(self, cell: str, checkpoint: int, path: str | None = None) -> TkMap | None:
        """The (t, k) map of (cell, checkpoint) on `path` (the cell's decay path when None)."""
        path = path or self.decay_paths().get(cell) or "a"
        return next((m for m in self.tk_map if (m.cell, m.checkpoint, m.path) == (cell, checkpoint, path)), None)

    def sensitivity_of(self, cell: str, checkpoint: int) -> list[Sensitivity]:
        return [x for x in self.sensitivity if (x.cell, x.checkpoint) == (cell, checkpoint)]

    def at_checkpoint(self, checkpoint: int) -> "Curves":
        """These curves cut to one checkpoint: every item of that checkpoint, and each training
        item up to it with its loss there (a baseline of one moment of a training: `diag check
        --checkpoint`, LagMonitor.save_baseline)."""
        update = {k: [x for x in getattr(self, k) if x.checkpoint == checkpoint]
                  for k in ("series", "lyapunov", "grad_flow", "bounds", "tk_map", "temporal_components", "sensitivity",
                            "influence")
                  if k in self.model_fields_set}
        update["training"] = [_training_at(t, checkpoint) for t in self.training if checkpoint in t.checkpoints]
        return self.model_copy(update=update)

    def summary_rows(self, kinds: dict[str, str] | None = None, norm: str | None = None) -> list[SummaryRow]:
        """Per cell and checkpoint: the fit of the cell's decay path (a, or state for a cell
        whose output is not fed back: decay_paths) in `norm` (the primary norm when None: the
        one rule for which norm a summary reads), the top Lyapunov exponent, the training
        outcome. `kinds`: the cell kinds to name (else each series' own)."""
        norm, kinds, decay = norm or self.primary_norm, kinds or {}, self.decay_paths()
        lyap = {(x.cell, x.checkpoint): x for x in self.lyapunov}
        rows = []
        for s in self.series:
            if s.path != decay[s.cell] or s.norm != norm:
                continue
            tr, ly = self.training_of(s.cell), lyap.get((s.cell, s.checkpoint))
            last = tr is not None and s.checkpoint == max(tr.checkpoints)
            rows.append(SummaryRow(
                cell=s.cell, kind=kinds.get(s.cell, s.kind), checkpoint=s.checkpoint,
                factor=s.fit.factor, tau=s.fit.tau, horizon=s.fit.horizon,
                lyapunov_top=ly.exponents[0] if ly is not None and ly.exponents else None,
                fixed_point=bool(ly is not None and ly.fixed_point), nonfinite=max(s.nonfinite or [0]),
                forward_diverged=s.forward_diverged,
                lyapunov_diverged=ly.forward_diverged if ly is not None else None,
                final_loss=tr.loss_at(s.checkpoint) if tr is not None else None,
                memoryless_loss=tr.memoryless_loss if tr is not None else None,
                solved=tr.solved if last else None, diverged_at=tr.diverged_at if tr is not None else None))
        # a model cell's row: the fit of its whole-model influence curve (no state, no training here)
        for x in self.influence:
            if x.path == "influence" and x.norm == norm:
                rows.append(SummaryRow(cell=x.cell, kind=kinds.get(x.cell, x.kind), checkpoint=x.checkpoint,
                                       factor=x.fit.factor, tau=x.fit.tau, horizon=x.fit.horizon, lyapunov_top=None,
                                       fixed_point=False, nonfinite=max(x.nonfinite or [0]), forward_diverged=None,
                                       lyapunov_diverged=None, final_loss=None, memoryless_loss=None, solved=None,
                                       diverged_at=None))
        return rows
