"""Train tiny Hugging Face recurrent models (Mamba, Mamba-2, RecurrentGemma, xLSTM), an nn.LSTM of
similar size and a 2-layer GPT-2 on the adding problem and save them, the models the case
cases/hf_recurrent.yaml reads (cases/weights/hf_*/, each weights file under 200 kB).

    python examples/train_hf_models.py [--out cases/weights] [--steps 400]

The task is diagnostics' own adding problem (uRNN form, T = 50: the sum of two marked values,
one in each half; predicting 1 gives MSE 1/6). Each model reads the task's two features as the
first two of its WIDTH embedding coordinates (the rest zero: `inputs_embeds`, no token
embedding involved) and a linear read-out of its last output predicts the sum; only the
backbone is saved (save_pretrained: config.json + model.safetensors; the LSTM as a
.safetensors state_dict read by cases/hf_factories.py). Seeded, one torch thread: a rerun
writes the same numbers. Also writes hf_adding_inputs.npy, eight sequences (T, B, WIDTH) to
probe them on. Needs transformers (pip install 'gradient-diagnostics[hf]').
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import transformers as tf
from safetensors.torch import save_file

from diagnostics.tasks import make_task

T, WIDTH, BATCH, LSTM_HIDDEN = 50, 16, 64, 32


def configs() -> dict[str, object]:
    """The tiny backbones, 4-9 k parameters each (the nn.LSTM(16, 32) has 6.4 k)."""
    return {
        "mamba": tf.MambaConfig(vocab_size=16, hidden_size=WIDTH, state_size=8, num_hidden_layers=2, expand=2,
                                conv_kernel=4, time_step_rank=4),
        "mamba2": tf.Mamba2Config(vocab_size=16, hidden_size=WIDTH, state_size=8, num_hidden_layers=2, expand=2,
                                  num_heads=4, head_dim=8, n_groups=1, conv_kernel=4, chunk_size=16),
        # recurrent blocks only, no cache (the cache of a model without attention blocks fails in 5.x)
        "recurrentgemma": tf.RecurrentGemmaConfig(vocab_size=16, hidden_size=WIDTH, intermediate_size=32,
                                                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                                  head_dim=8, lru_width=WIDTH, attention_window_size=16,
                                                  block_types=["recurrent", "recurrent"], use_cache=False),
        "xlstm": tf.xLSTMConfig(vocab_size=16, hidden_size=WIDTH, embedding_dim=WIDTH, num_heads=2, num_blocks=2,
                                use_cache=False),   # its default (cached) config fails in backward
        "gpt2": tf.GPT2Config(vocab_size=16, n_embd=WIDTH, n_layer=2, n_head=2, n_positions=64,
                              bos_token_id=0, eos_token_id=0),
    }


BACKBONES = {"mamba": "MambaModel", "mamba2": "Mamba2Model", "recurrentgemma": "RecurrentGemmaModel",
             "xlstm": "xLSTMModel", "gpt2": "GPT2Model"}


class Model(torch.nn.Module):
    """A backbone (batch-first embeddings -> hidden states) and a linear read-out of the last step."""

    def __init__(self, name: str):
        super().__init__()
        if name == "lstm":
            self.backbone = torch.nn.LSTM(WIDTH, LSTM_HIDDEN, batch_first=True)
            out = LSTM_HIDDEN
        else:
            self.backbone = getattr(tf, BACKBONES[name])(configs()[name])
            out = WIDTH
        self.head = torch.nn.Linear(out, 1)

    def forward(self, x):                      # x (B, T, WIDTH) -> prediction at the last step (B,)
        if isinstance(self.backbone, torch.nn.LSTM):
            h = self.backbone(x)[0]
        else:
            h = self.backbone(inputs_embeds=x, use_cache=False).last_hidden_state
        return self.head(h[:, -1])[:, 0]


def embed(inputs: np.ndarray) -> np.ndarray:
    """The task's (T, B, 2) as (T, B, WIDTH): its two features first, zeros after."""
    out = np.zeros(inputs.shape[:2] + (WIDTH,))
    out[..., :2] = inputs
    return out


def train(name: str, steps: int, seed: int = 0) -> tuple[Model, float, float]:
    """(model, MSE on 1,000 fresh sequences before training, and after)."""
    torch.manual_seed(seed)
    task, rng = make_task("adding", length=T), np.random.default_rng(seed)
    model = Model(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def batch(n):
        b = task.sample(rng, n)
        x = torch.tensor(embed(b.inputs).transpose(1, 0, 2), dtype=torch.float32)
        return x, torch.tensor(b.targets[-1, :, 0], dtype=torch.float32)

    test_x, test_y = batch(1000)

    def test_mse():
        with torch.no_grad():
            return float(torch.mean((model(test_x) - test_y) ** 2))

    before = test_mse()
    model.train()
    for _ in range(steps):
        x, y = batch(BATCH)
        loss = torch.mean((model(x) - y) ** 2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    return model, before, test_mse()


def save(name: str, model: Model, out: Path, about: str) -> Path:
    if name == "lstm":
        path = out / f"hf_adding_lstm{LSTM_HIDDEN}.safetensors"
        save_file({k: v.detach().contiguous() for k, v in model.backbone.state_dict().items()}, str(path),
                  metadata={"about": about})
        return path
    folder = out / f"hf_{name}"
    model.backbone.save_pretrained(folder)
    (folder / "about.json").write_text(json.dumps({"about": about}, indent=1) + "\n")
    return folder / "model.safetensors"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "cases" / "weights")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--only", nargs="*", default=None, help="train only these (lstm, mamba, ...)")
    args = ap.parse_args()
    torch.set_num_threads(1)   # one thread: the same sums in the same order on every run
    args.out.mkdir(parents=True, exist_ok=True)
    task = make_task("adding", length=T)
    for name in args.only or ["lstm", *BACKBONES]:
        model, before, after = train(name, args.steps)
        about = (f"{name} backbone, width {WIDTH}, adding (urnn) T = {T}, {args.steps} Adam steps, seed 0, "
                 f"test MSE {after:.6f}")
        path = save(name, model, args.out, about)
        n = sum(p.numel() for p in model.backbone.parameters())
        print(f"{name}: {n} parameters, test MSE {before:.4f} -> {after:.4f} after {args.steps} steps "
              f"(memoryless loss {task.baseline:.4f}); wrote {path} ({path.stat().st_size} bytes)", flush=True)
    xs = embed(task.sample(np.random.default_rng(123), 8).inputs)
    np.save(args.out / "hf_adding_inputs.npy", xs)
    print(f"wrote {args.out / 'hf_adding_inputs.npy'} {xs.shape}")


if __name__ == "__main__":
    main()
