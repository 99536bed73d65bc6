"""Train a small nn.LSTM and nn.GRU in PyTorch on the adding problem and save their weights,
the files the probe then reads (cases/weights/, about 4-6 kB each).

    python examples/train_torch_models.py [--out cases/weights] [--steps 1000]

The task is diagnostics' own adding problem (uRNN form, T = 50: the sum of two marked values,
one in each half; predicting 1 gives MSE 1/6). Each model is a recurrent layer (hidden 16)
named `rnn` and a linear read-out named `head`, so the saved state_dict holds one recurrent
module among other keys. Seeded, one torch thread: a rerun writes the same numbers. Also
writes adding_inputs.npy, eight sequences (T, B, d) = (50, 8, 2) to probe the models on.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from diagnostics.tasks import make_task

T, HIDDEN, BATCH = 50, 16, 64


class Model(torch.nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](2, HIDDEN)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, x):                      # x (T, B, 2) -> prediction at the last step (B,)
        out, _ = self.rnn(x)
        return self.head(out[-1])[:, 0]


def train(kind: str, steps: int, seed: int = 0) -> tuple[Model, float, float]:
    """(model, MSE on 1,000 fresh sequences before training, and after)."""
    torch.manual_seed(seed)
    task, rng = make_task("adding", length=T), np.random.default_rng(seed)
    model = Model(kind)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def batch(n):
        b = task.sample(rng, n)
        return torch.tensor(b.inputs, dtype=torch.float32), torch.tensor(b.targets[-1, :, 0], dtype=torch.float32)

    test_x, test_y = batch(1000)
    def test_mse():
        with torch.no_grad():
            return float(torch.mean((model(test_x) - test_y) ** 2))

    before = test_mse()
    for _ in range(steps):
        x, y = batch(BATCH)
        loss = torch.mean((model(x) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model, before, test_mse()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "cases" / "weights")
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(1)   # one thread: the same sums in the same order on every run
    args.out.mkdir(parents=True, exist_ok=True)
    task = make_task("adding", length=T)
    for kind in ("lstm", "gru"):
        model, before, after = train(kind, args.steps)
        path = args.out / f"adding_{kind}{HIDDEN}.safetensors"
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path),
                  # one key: safetensors writes several in no fixed order, and the file should repeat byte for byte
                  metadata={"about": f"nn.{kind.upper()} {HIDDEN} + linear head, adding (urnn) T = {T}, "
                                     f"{args.steps} Adam steps, seed 0, test MSE {after:.6f}"})
        print(f"{kind}: test MSE {before:.4f} -> {after:.4f} after {args.steps} steps "
              f"(memoryless loss {task.baseline:.4f}); wrote {path} ({path.stat().st_size} bytes)")
    xs = task.sample(np.random.default_rng(123), 8).inputs
    np.save(args.out / "adding_inputs.npy", xs)
    print(f"wrote {args.out / 'adding_inputs.npy'} {xs.shape}")


if __name__ == "__main__":
    main()
