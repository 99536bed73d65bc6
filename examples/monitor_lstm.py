"""Train an nn.LSTM and an nn.GRU in a plain PyTorch loop on the adding problem, with a
LagMonitor watching each (docs/tutorials/monitor.md), and draw their pages.

    python examples/monitor_lstm.py [--out examples/monitor_lstm] [--steps 1000]

The task is diagnostics' own adding problem (uRNN form, T = 100: the sum of two marked values,
one in each half, so the first lies 50 to 100 steps back; predicting 1 gives MSE 1/6). Each
model is a recurrent layer (hidden 32) named `rnn` and a linear read-out named `head`; the
monitor finds the layer inside the model and probes it every 100 steps on eight fixed sequences
(lags 64, exact). Seeded, one torch thread: a rerun writes the same curves. Writes
OUT/lstm/ and OUT/gru/ (curves.json, run.json, then the page: index.html, figures/).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from diagnostics.interop.torch import LagMonitor
from diagnostics.report import render_report
from diagnostics.tasks import make_task

T, HIDDEN, BATCH = 100, 32, 32


class Model(torch.nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](2, HIDDEN)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, x):                      # x (T, B, 2) -> prediction at the last step (B,)
        out, _ = self.rnn(x)
        return self.head(out[-1])[:, 0]


def train(kind: str, steps: int, out: Path, seed: int = 0) -> float:
    """Train with the monitor on; returns the final test MSE."""
    torch.manual_seed(seed)
    task, rng = make_task("adding", length=T), np.random.default_rng(seed)
    model = Model(kind)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def batch(n):
        b = task.sample(rng, n)
        return torch.tensor(b.inputs, dtype=torch.float32), torch.tensor(b.targets[-1, :, 0], dtype=torch.float32)

    probe_batch, _ = batch(8)
    test_x, test_y = batch(1000)
    with LagMonitor(model, probe_batch, out, every=100, lags=64) as monitor:
        for step in range(steps + 1):
            x, y = batch(BATCH)
            loss = torch.mean((model(x) - y) ** 2)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            monitor.step(step, loss=loss)
    with torch.no_grad():
        return float(torch.mean((model(test_x) - test_y) ** 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "monitor_lstm")
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)   # one thread: the same sums in the same order on every run
    memoryless = make_task("adding", length=T).baseline
    for kind in ("lstm", "gru"):
        mse = train(kind, args.steps, args.out / kind)
        page = render_report(args.out / kind)
        print(f"{kind}: test MSE {mse:.4f} after {args.steps} steps (memoryless loss {memoryless:.4f}); wrote {page}")


if __name__ == "__main__":
    main()
