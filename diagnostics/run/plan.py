"""What the probe of a case will do: lags, the input stream, anchors, Lyapunov length; and --quick.

The probe stream. A probe may ask for more lags than one task episode has steps (the copy
task's episode is 120 steps; the contract example probes 200 lags). The probe's input is then
a stream of consecutive, independently sampled task episodes, concatenated until it is long
enough, with the state carried across episode boundaries, as a network deployed on a stream
would see them. The stream is a whole number of episodes, and the default anchor is its last
step, so lag k at the anchor reaches back k steps into that stream. Every cell and every
checkpoint sees the same stream (drawn once from the case seed).

The (t, k) map reads the curve at a grid of anchors. A count A places anchors evenly over
[K, K + one episode] (rounded up to whole episodes), so the map shows how the decay depends
on the phase of the episode where it is read; an explicit list is used as given, and for an
anchor t < K the lags beyond t do not exist (null in the map).

--quick (a smoke run, deterministic): train.steps -> min(steps, 30) with the checkpoints
scaled proportionally (round(c * new / old)); train.batch -> min(batch, 16); probe.lags ->
min(lags, 40); probe.sequences -> min(sequences, 4); tk_map count -> min(count, 3);
lyapunov_steps -> min(steps, 100). Cells, task and seed are unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..probing.estimator import ROWS

QUICK = {"steps": 30, "batch": 16, "lags": 40, "sequences": 4, "tk_anchors": 3, "lyapunov_steps": 100}
DEFAULT_LYAPUNOV = 8
MIN_LYAPUNOV_STEPS = 500


@dataclass(frozen=True)
class ProbePlan:
    K: int
    episode: int
    stream: int                 # steps of the main probe stream (whole episodes)
    anchors: tuple[int, ...]
    tk_anchors: tuple[int, ...]
    lyapunov: int               # exponents per cell (0: off)
    lyapunov_steps: int
    sequences: int
    norms: tuple[str, ...]
    paths: tuple[tuple[str, ...], ...]   # per cell
    sensitivity: bool = False            # d a<t>/dθ by lag at each checkpoint (diagnostics/sensitivity)
    estimator: tuple[str, int, int] = ("exact", ROWS, 0)   # (kind, rows, seed): probe()'s (probing/estimator.py)

    @property
    def total_steps(self) -> int:
        """Length of the one stream every probe reads a prefix of."""
        need = max(self.stream, max(self.tk_anchors, default=0), self.lyapunov_steps)
        return whole_episodes(need, self.episode)


def whole_episodes(steps: int, episode: int) -> int:
    return episode * max(1, math.ceil(steps / episode))


def default_lags(probe, episode: int) -> int:
    """K when the case does not say: one episode, or less when an explicit anchor is earlier."""
    if probe.lags is not None:
        return probe.lags
    return min(episode, min(probe.anchors)) if probe.anchors else episode


def _anchors_tk(spec, K: int, episode: int) -> tuple[int, ...]:
    if isinstance(spec, list):
        return tuple(sorted(set(spec)))
    if spec == 0:
        return ()
    hi = whole_episodes(K + episode, episode)
    if spec == 1:
        return (hi,)
    return tuple(sorted({round(K + (hi - K) * i / (spec - 1)) for i in range(spec)}))


def make_plan(case, task, cells, given: tuple[int, int] | None = None) -> ProbePlan:
    """`given` = (T, B) of the user's own inputs (probe.inputs), which replace the task's
    stream: then the stream is those T steps (one "episode"), the sequences at most B."""
    p, T_ep = case.probe, int(task.length if given is None else given[0])
    K = int(default_lags(p, T_ep))
    sizes = [c.state_size for c in cells if c.state_size is not None]   # a model cell has no state of diag's
    m = p.lyapunov if p.lyapunov is not None else min(DEFAULT_LYAPUNOV, *sizes) if sizes else 0
    if given is not None:   # the user's T steps are the whole stream, one "episode"
        stream, sequences = T_ep, min(p.sequences, given[1])
        anchors = tuple(sorted(set(p.anchors))) if p.anchors else (T_ep,)
        ly_steps = min(p.lyapunov_steps if p.lyapunov_steps is not None else T_ep, T_ep)
        tk = p.tk_map.anchors
        tk_anchors = (tuple(sorted(set(tk))) if isinstance(tk, list) else () if tk == 0 or K >= T_ep else
                      tuple(sorted({round(K + (T_ep - K) * i / max(tk - 1, 1)) for i in range(tk)})))
    else:
        sequences = p.sequences
        if p.anchors:
            stream = whole_episodes(max(max(p.anchors), K), T_ep)
            anchors = tuple(sorted(set(p.anchors)))
        else:
            stream = whole_episodes(K, T_ep)
            anchors = (stream,)
        ly_steps = p.lyapunov_steps if p.lyapunov_steps is not None else max(MIN_LYAPUNOV_STEPS, stream)
        tk_anchors = _anchors_tk(p.tk_map.anchors, K, T_ep)
    # a repeated norm or path would give two series with one key; keep the first of each
    paths = tuple(tuple(x for x in dict.fromkeys(p.paths or c.paths) if x in c.paths) for c in cells)
    return ProbePlan(K=K, episode=T_ep, stream=stream, anchors=anchors, tk_anchors=tk_anchors, lyapunov=int(m),
                     lyapunov_steps=int(ly_steps), sequences=sequences, norms=tuple(dict.fromkeys(p.norms)),
                     paths=paths, sensitivity=bool(p.sensitivity), estimator=_estimator(p.estimator, case.seed))


def _estimator(e, case_seed: int) -> tuple[str, int, int]:
    """probe.estimator as probe()'s (kind, rows, seed); absent: exact; the rows' seed defaults to
    the case's."""
    if e is None:
        return "exact", ROWS, case_seed
    return e.kind, e.rows, case_seed if e.seed is None else e.seed


def plan_problems(case, task, cells, given: tuple[int, int] | None = None) -> list[str]:
    """Problems only visible once task and cells exist (one line each)."""
    p, out = case.probe, []
    if given is not None:
        T = given[0]
        if p.lags is not None and p.lags > T:
            out.append(f"probe.lags: must be <= the {T} steps of probe.inputs, got {p.lags}")
        if p.anchors and max(p.anchors) > T:
            out.append(f"probe.anchors: must be steps of probe.inputs (1..{T}), got {max(p.anchors)}")
    if p.anchors and p.lags is not None and p.lags > min(p.anchors):
        out.append(f"probe.lags: must be <= the smallest of probe.anchors ({min(p.anchors)}), got {p.lags}")
    if p.paths:
        have = sorted({x for c in cells for x in c.paths})
        for x in p.paths:
            if x not in have:
                out.append(f"probe.paths: {x!r} is not a path of any cell in this case (have: {', '.join(have)})")
        for i, c in enumerate(cells):   # a cell with none of them would have nothing to probe
            if c.state_size is not None and have and not set(p.paths) & set(c.paths) and set(p.paths) <= set(have):
                out.append(f"probe.paths: none of {list(p.paths)} is a path of cells[{i}] ({c.kind}: "
                           f"{', '.join(c.paths)})")
    smallest = min((c.state_size for c in cells if c.state_size is not None), default=None)
    if p.lyapunov is not None and smallest is not None and p.lyapunov > smallest:
        out.append(f"probe.lyapunov: must be <= the smallest cell state size ({smallest}), got {p.lyapunov}")
    return out


def quick_case(case, task_length: int):
    """The --quick form of a case (see the module docstring)."""
    upd: dict = {}
    if case.train is not None:
        tr = case.train
        steps = min(tr.steps, QUICK["steps"])
        ck = sorted({round(c * steps / tr.steps) for c in tr.checkpoints})
        upd["train"] = tr.model_copy(update={"steps": steps, "batch": min(tr.batch, QUICK["batch"]),
                                             "checkpoints": ck})
    p = case.probe
    K = default_lags(p, task_length)
    tk = p.tk_map.anchors
    tk = min(tk, QUICK["tk_anchors"]) if isinstance(tk, int) else tk
    ly = p.lyapunov_steps if p.lyapunov_steps is not None else MIN_LYAPUNOV_STEPS
    upd["probe"] = p.model_copy(update={
        "lags": min(K, QUICK["lags"]), "sequences": min(p.sequences, QUICK["sequences"]),
        "tk_map": p.tk_map.model_copy(update={"anchors": tk}),
        "lyapunov_steps": min(ly, QUICK["lyapunov_steps"])})
    return case.model_copy(update=upd)
