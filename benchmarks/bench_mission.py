"""The mission's claim, measured: at a short lag both the tanh RNN and the LSTM beat the
memoryless loss; at a long lag the LSTM goes well below it within a budget where the
tanh RNN stays near it.

    python benchmarks/bench_mission.py [--steps 400] [--json out.json]

Everything is fixed in advance (cells, sizes, optimiser, seed 0); the script reports what
happens, it does not search for a configuration that makes the claim come out.
Default: the adding problem (uRNN form), short lag T = 20, long lag T = 100, 1500 steps of
batch 32. `--task latch` / `latch-noisy` run Hochreiter & Schmidhuber's experiments 2a / 2b
(p = 10 and 100), where an orthogonally initialised tanh RNN also solves p = 100.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from diagnostics.cells import make_cell
from diagnostics.tasks import make_task
from diagnostics.training import train

CELLS = {"rnn-tanh": ("rnn", {"activation": "tanh"}),
         "lstm": ("lstm", {}),                          # forget gate, forget_bias 1.0 (default)
         "lstm-1997": ("lstm", {"forget_gate": False}),  # the paper's CEC, no forget gate
         "lstm-chrono": ("lstm", {"chrono": "T"})}       # Tallec & Ollivier 2018, T_max = T
HIDDEN, BATCH, LR, CLIP = 32, 32, 1e-2, 1.0


def run(task_kind: str, task_opts: dict, steps: int, cells=tuple(CELLS), seed: int = 0) -> list[dict]:
    task = make_task(task_kind, **task_opts)
    rows = []
    for label, (kind, opts) in CELLS.items():
        if label not in cells:
            continue
        opts = {k: (task.length if v == "T" else v) for k, v in opts.items()}
        cell = make_cell(kind, input_size=task.input_size, hidden=HIDDEN, **opts)
        params = cell.init(np.random.default_rng(seed))
        t0 = time.perf_counter()
        r = train(cell, params, task, steps=steps, batch=BATCH, seed=seed, clip=CLIP,
                  optimizer={"kind": "adam", "lr": LR}, checkpoints=[0])
        rows.append({"task": task_kind, **task_opts, "lag": task.lag, "cell": label, "steps": steps,
                     "sequences": steps * BATCH, "baseline": task.baseline, "final_loss": r.final_loss,
                     "final_accuracy": r.final_accuracy, "ratio": r.final_loss / task.baseline,
                     "solved": r.solved, "diverged_at": r.diverged_at,
                     "seconds": round(time.perf_counter() - t0, 2)})
    return rows


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--task", default="adding", choices=["latch", "latch-noisy", "adding"])
    ap.add_argument("--short", type=int, default=20, help="latch p or adding T at the short lag")
    ap.add_argument("--long", type=int, default=100, help="latch p or adding T at the long lag")
    ap.add_argument("--cells", default="rnn-tanh,lstm,lstm-chrono", help="comma-separated labels of CELLS")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    cells = a.cells.split(",")
    kind, key, extra = {"latch": ("latch", "p", {}), "latch-noisy": ("latch", "p", {"noise": True}),
                        "adding": ("adding", "length", {})}[a.task]
    rows = [r for lag in (a.short, a.long) for r in run(kind, {key: lag, **extra}, a.steps, cells)]
    print(f"{'task':>6} {'size':>4} {'lag':>4} {'cell':>11} {'steps':>6} {'seqs':>6} {'baseline':>9} "
          f"{'final':>9} {'ratio':>7} {'acc':>6} {'solved':>6} {'sec':>6}")
    for r in rows:
        acc = "-" if r["final_accuracy"] is None else f"{r['final_accuracy']:.3f}"
        print(f"{r['task']:>6} {r.get('p', r.get('length')):>4} {r['lag']:>4} {r['cell']:>11} {r['steps']:>6} {r['sequences']:>6} "
              f"{r['baseline']:>9.5f} {r['final_loss']:>9.5f} {r['ratio']:>7.3f} {acc:>6} "
              f"{str(r['solved']):>6} {r['seconds']:>6}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
