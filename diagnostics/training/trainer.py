"""Train a cell plus a linear read-out on a task by BPTT.

    result = train(cell, params, task, steps=500, batch=32, optimizer={"kind": "adam", "lr": 1e-3},
                   clip=1.0, seed=0, checkpoints=[0, 500], dtype="float64")

Step i evaluates loss and gradient at the parameters after i updates on a fresh batch, hands
them to the callbacks, then (for i < steps) clips and updates; so every record is indexed by
the number of updates that produced the parameters, 0..steps. A NaN or inf in the loss or
the gradient ends this training without an exception: `diverged_at` is that step and the
result keeps the last finite values (`diag run` says so in its table and opening sentences). The final loss and accuracy come from a separate evaluation batch drawn
from its own seeded stream, so they do not depend on the training batches.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..cells.unroll import unroll
from .bptt import loss_and_grads
from .callbacks import (
    CallbackList,
    Checkpoints,
    GradFlow,
    History,
    StepInfo,
    TemporalComponents,
)
from .fused_lstm import FusedLSTM, supports
from .optim import clip_, global_norm, make_optimizer
from .readout import gather, init_readout, loss_and_dy, readout_forward

DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass
class TrainResult:
    steps: list
    loss: list
    grad_norm: list
    accuracy: list
    diverged_at: int | None
    final_loss: float
    final_accuracy: float | None
    solved: bool
    baseline: float | None
    loss_kind: str
    checkpoint_params: dict
    grad_flow: dict
    temporal_components: dict
    final_within: float | None = None   # fraction of evaluation sequences within tolerance / all right


def _check_schedule(name: str, sched, steps: int) -> list[int]:
    out = []
    for s in sched:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s <= steps:
            raise ValueError(f"{name}: every entry must be an integer step in 0..{steps}, got {s!r}")
        out.append(int(s))
    return sorted(set(out))


def evaluate(cell, params, readout, task, batch) -> tuple[float, float | None]:
    """Loss and accuracy of given parameters on one batch, forward only."""
    loss, acc, _ = evaluate_all(cell, params, readout, task, batch)
    return loss, acc


def evaluate_all(cell, params, readout, task, batch) -> tuple[float, float | None, float | None]:
    """Loss, accuracy and the per-sequence `within` measure (None unless the task states a
    tolerance or asks for it): the fraction of scored answers whose every output is within
    task.within_tolerance of its target, the 1997 paper's success count for the adding task;
    for a `sequence_exact` cross-entropy task, the fraction of sequences whose every scored
    answer is right (selective copying, MQAR)."""
    trace = unroll(cell, params, batch.inputs.astype(next(iter(params.values())).dtype))
    h, tm, bm = gather(trace.states[:, :, cell.blocks[cell.output_block]], batch.mask)
    y = readout_forward(readout, h)
    loss, _, acc = loss_and_dy(y, batch.targets[tm, bm], task.loss_kind)
    tol = getattr(task, "within_tolerance", None)
    within = None
    if tol is not None and task.loss_kind == "mse":
        err = np.abs(y - batch.targets[tm, bm])
        within = float((err < tol).all(axis=1).mean())   # NaN outputs compare False: not within
    elif getattr(task, "sequence_exact", False) and task.loss_kind == "xent":
        wrong = np.zeros(batch.mask.shape[1], dtype=bool)
        np.logical_or.at(wrong, bm, y.argmax(axis=1) != batch.targets[tm, bm])
        within = float((~wrong[np.any(batch.mask, axis=0)]).mean())
    return loss, acc, within


def train(cell, params, task, *, steps: int, batch: int, optimizer=None, clip=None, seed: int = 0,
          checkpoints=(0,), dtype: str = "float64", callbacks=None, progress: bool = False,
          track=None, eval_batch: int = 256, fused: bool = True) -> TrainResult:
    """`track`: steps at which gradient flow and temporal components are recorded (default:
    the checkpoints). `callbacks`: extra callables receiving a StepInfo at every step.
    `fused`: on untracked steps, use the fused LSTM path (same equations, equal to rounding,
    several times faster; its StepInfo.out.trace is None); tracked steps always go through
    the cell's own step/backward. Checkpoints after a divergence are absent from the result.
    `eval_batch`: size of the separate batch that gives final_loss / final_accuracy."""
    if task.loss_kind is None:
        raise ValueError(f"task {task.kind}: has no targets and cannot be trained "
                         f"(use it to study cells at initialisation)")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps: must be a non-negative integer, got {steps!r}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch: must be a positive integer, got {batch!r}")
    if isinstance(eval_batch, bool) or not isinstance(eval_batch, (int, np.integer)) or eval_batch < 1:
        raise ValueError(f"eval_batch: must be a positive integer, got {eval_batch!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype: must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if clip is not None and (isinstance(clip, bool) or not np.isfinite(clip) or clip <= 0):
        raise ValueError(f"clip: must be a positive number or null, got {clip!r}")
    if cell.input_size != task.input_size:
        raise ValueError(f"input_size: the cell reads {cell.input_size} channels but task "
                         f"{task.kind} provides {task.input_size}")
    ckpts = _check_schedule("checkpoints", checkpoints, steps)
    track = ckpts if track is None else _check_schedule("track", track, steps)
    dt = DTYPES[dtype]

    # independent streams: read-out init, training batches, evaluation batch
    s_init, s_batch, s_eval = np.random.SeedSequence(seed).spawn(3)
    p = {k: np.array(v, dtype=dt, copy=True) for k, v in params.items()}   # writable, own copy
    # the read-out sees the output block: the a-block (n units, or the LRU's 2n real coordinates
    # [Re x; Im x]), or the output y<t> of a cell that does not feed it back
    width = cell.readout_size
    ro = init_readout(np.random.default_rng(s_init), width, task.output_size, dt)
    both = {**{("cell", k): v for k, v in p.items()}, **{("ro", k): v for k, v in ro.items()}}
    opt = make_optimizer(optimizer, both)
    last_good = {k: v.copy() for k, v in both.items()}

    history, ck = History(), Checkpoints(ckpts)
    flow, temporal = GradFlow(track), TemporalComponents(track)
    cbs = CallbackList([history, ck, flow, temporal, *(callbacks or [])])
    rng = np.random.default_rng(s_batch)
    fast = FusedLSTM(cell) if fused and supports(cell) else None
    tracked = set(track)
    diverged = None
    bar = None
    if progress:
        bar = tqdm(total=steps, desc=f"train {cell.kind}", leave=False)
    with np.errstate(all="ignore"):  # overflow is detected below and reported as divergence
        for i in range(steps + 1):
            b = task.sample(rng, batch)
            b = b._replace(inputs=b.inputs.astype(dt))
            if fast is not None and i not in tracked:
                out = fast.loss_and_grads(p, ro, b, task.loss_kind)
            else:
                out = loss_and_grads(cell, p, ro, b, task.loss_kind)
            norm = global_norm(out.grads)
            if not (np.isfinite(out.loss) and np.isfinite(norm)):
                diverged = i
                break
            cbs(StepInfo(i, cell, p, ro, out, norm))
            if i == steps:
                break
            for k, v in both.items():
                np.copyto(last_good[k], v)
            g = {("cell", k): v for k, v in out.grads.items() if k in p}
            g.update({("ro", k): out.grads[k] for k in ro})
            if clip is not None:
                clip_(g, float(clip), norm)
            opt.update(both, g)
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if diverged is not None:  # restore the last parameters whose loss and gradient were finite
            for k, v in both.items():
                np.copyto(v, last_good[k])
        eval_b = task.sample(np.random.default_rng(s_eval), eval_batch)
        final_loss, final_acc, final_within = evaluate_all(cell, p, ro, task, eval_b)
    return TrainResult(
        steps=history.steps, loss=history.loss, grad_norm=history.grad_norm, accuracy=history.accuracy,
        diverged_at=diverged, final_loss=final_loss, final_accuracy=final_acc,
        solved=bool(task.solved(final_loss, final_acc)), baseline=task.baseline,
        loss_kind=task.loss_kind, checkpoint_params=ck.params, grad_flow=flow.curves,
        temporal_components=temporal.curves, final_within=final_within)


__all__ = ["train", "TrainResult", "evaluate", "evaluate_all"]
