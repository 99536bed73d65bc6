"""What a resolved case will cost, estimated before anything runs, so that a case too large for
the machine is refused in one line (exit 2) instead of being killed by the kernel hours in.

    est = estimate(spec)          # est.bytes (peak, roughly), est.flops, est.parts
    line = over_budget(spec, limit_bytes)   # None, or "probe.lags: needs about 43 GB ... "

The estimate counts the arrays that scale with the case's sizes, per cell (cells run one after
the other, so the peak is the largest cell's): the probe stream and its per-step caches, the
Jacobian chain's rows, the probe's outputs, the Lyapunov frames, training caches, the
evaluation batch, the temporal components and the optimiser state. Constants are generous
(a cache is taken as 6 state-sized vectors per step and sequence, measured 4.5 for the LSTM):
measured peaks were 0.86 GB for an estimate of 1.87 GB (probe of 4,000 lags, 64 sequences,
LSTM n = 64) and 10.7 GB for 10.7 GB (training, T = 2,000, batch 256). Shipped cases need
tens of MB.
Each part names the case key that drives it, the one furthest above its default.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

F8 = 8                 # bytes per float64
CACHE_VECTORS = 6      # state-sized vectors per cached step and sequence (LSTM: 4.5 measured)
JSON_BYTES = 120       # per number in curves.json while it is built and written (objects + text)
EVAL_BATCH = 256       # the trainer's evaluation batch


@dataclass
class Estimate:
    bytes: float = 0.0
    flops: float = 0.0
    parts: list = field(default_factory=list)   # (bytes, what, key) of the peak cell

    def driver(self) -> tuple[float, str, str]:
        return max(self.parts) if self.parts else (0.0, "", "")


def _task_key(task) -> str:
    """The task option that sets its episode length (the largest integer option)."""
    ints = {k: v for k, v in task.opts.items() if isinstance(v, int) and not isinstance(v, bool)}
    return f"task.{max(ints, key=ints.get)}" if ints else "task"


def _key(candidates: list[tuple[str, float, float]]) -> str:
    """The key whose value is furthest above its default (ratio), among (key, value, default)."""
    return max(candidates, key=lambda c: c[1] / max(c[2], 1))[0]


def _params(cell) -> float:
    S, d = cell.state_size, cell.input_size
    return 4.0 * (S * S + S * d + S)        # up to four gate blocks of recurrent, input and bias


def estimate(spec) -> Estimate:
    plan, task, case = spec.plan, spec.task, spec.case
    B, K, A, d = plan.sequences, plan.K, len(plan.anchors), task.input_size
    T_all, T_probe = plan.total_steps, plan.stream
    lag_key = ("probe.lags", K, plan.episode) if case.probe.lags is not None else (_task_key(task), K, 100)
    est = Estimate()
    stream = T_all * B * d * F8
    shared = [(stream, "the probe's input stream", _key([lag_key, ("probe.sequences", B, 16)]))]
    for i, cell in enumerate(spec.cells):
        if cell.state_size is None:
            # a model cell (run/models.py): its cost is its own forward and backward passes, which
            # it does not state; what is counted here is the probe's share, the inputs
            est.parts = est.parts or list(shared)
            est.bytes = max(est.bytes, stream)
            continue
        S, n = cell.state_size, cell.hidden
        hid = (f"cells[{i}].hidden", n, 32)
        paths = len(plan.paths[i])
        parts = list(shared)
        parts.append((T_probe * B * CACHE_VECTORS * S * F8, "the probe's per-step caches",
                      _key([lag_key, ("probe.sequences", B, 16), hid])))
        parts.append((3 * B * S * S * F8, "the Jacobian chain's rows", _key([("probe.sequences", B, 16), hid])))
        parts.append((paths * len(plan.norms) * A * B * K * F8 + paths * len(plan.norms) * 6 * K * JSON_BYTES,
                      "the probe's curves", _key([lag_key, ("probe.sequences", B, 16)])))
        if plan.lyapunov:
            # its length is the case's own, or follows the probe stream (max(500, stream))
            ly_key = (("probe.lyapunov_steps", plan.lyapunov_steps, 500) if case.probe.lyapunov_steps is not None
                      else lag_key)
            parts.append((plan.lyapunov_steps * B * CACHE_VECTORS * S * F8 + 3 * B * S * S * F8,
                          "the Lyapunov spectrum", _key([ly_key, ("probe.sequences", B, 16), hid])))
        P = _params(cell)
        parts.append((4 * P * F8, "the parameters and optimiser state", hid[0]))
        flops = 2.0 * K * A * B * S ** 3 + 2.0 * plan.lyapunov_steps * B * S ** 3
        if plan.sensitivity:
            # d a<t>/dθ per sequence is (rows of a) x (entries of θ): the sum, one step's part
            # and its copy; the walk reuses the probe's cache size (the probe's are freed first)
            R = cell.readout_size
            parts.append((3 * B * R * P * F8, "the state's sensitivity (probe.sensitivity)",
                          _key([("probe.sequences", B, 16), hid])))
            flops += 4.0 * A * T_probe * B * R * P
        if case.train is not None:
            tr, T = case.train, task.length
            batch_key = ("train.batch", tr.batch, 32)
            len_key = (_task_key(task), T, 100)
            # twice: a tracked step's per-step caches and the fused LSTM path's buffers are both
            # alive (measured: LSTM n = 64, T = 2,000, batch 256 peaks at 10.7 GB; this gives 10.7)
            parts.append((2 * T * tr.batch * (CACHE_VECTORS * S + 2 * d + 2) * F8, "the training batch's caches",
                          _key([batch_key, len_key, hid])))
            parts.append((T * EVAL_BATCH * CACHE_VECTORS * S * F8, "the evaluation batch", _key([len_key, hid])))
            parts.append((T * P * F8, "the temporal components", _key([len_key, hid])))
            flops += 6.0 * tr.steps * tr.batch * T * P
        total = sum(p[0] for p in parts)
        est.flops += flops
        if total > est.bytes:
            est.bytes, est.parts = total, parts
    return est


def available_bytes() -> float | None:
    """What the machine can give now (MemAvailable), else its physical memory, else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}


def parse_size(text: str) -> float:
    """'500MB', '2 GB', '1.5GiB', '1e9' -> bytes; ValueError naming what is accepted."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS or float(m.group(1)) <= 0:
        raise ValueError(f"must be a positive size such as 500MB, 2GB or 1.5GiB, got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def human(nbytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{nbytes / size:.3g} {unit}"
    return f"{nbytes:.0f} B"


def over_budget(spec, limit: float | None = None, *, what_limit: str = "--max-memory",
                remedy: str = "raise --max-memory") -> str | None:
    """One line naming the key that drives the estimate past the limit (the machine's
    available memory unless given; `what_limit` names a given one, `remedy` says the other
    way out than a smaller case), or None when the case fits."""
    given = limit is not None
    limit = limit if given else available_bytes()
    if limit is None:
        return None
    est = estimate(spec)
    if est.bytes <= limit:
        return None
    size, what, key = est.driver()
    where = what_limit if given else "the memory available on this machine"
    return (f"{key}: the run would need about {human(est.bytes)} ({what}: {human(size)}), more than "
            f"{where} ({human(limit)}); make it smaller or {remedy}")
