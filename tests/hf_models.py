"""Tiny Hugging Face models of each recurrent family (and GPT-2) for the tests, and the
reference the influence is checked against: torch.autograd.functional.jacobian of the whole
model. Plain code, not fixtures (see conftest.py); transformers is imported by the caller's
importorskip first."""
from __future__ import annotations

import numpy as np
import torch
import transformers as tf

WIDTH = 8   # d_model of every tiny model

CONFIGS = {
    "MambaModel": lambda: tf.MambaConfig(hidden_size=WIDTH, state_size=4, num_hidden_layers=2, expand=2,
                                         conv_kernel=3, vocab_size=10, time_step_rank=2),
    "Mamba2Model": lambda: tf.Mamba2Config(hidden_size=WIDTH, state_size=4, num_hidden_layers=2, expand=2,
                                           num_heads=4, head_dim=4, n_groups=1, conv_kernel=3, vocab_size=10,
                                           chunk_size=4),
    # layers: recurrent, recurrent, attention (the default block pattern)
    "RecurrentGemmaModel": lambda: tf.RecurrentGemmaConfig(hidden_size=WIDTH, lru_width=WIDTH, num_hidden_layers=3,
                                                           num_attention_heads=2, num_key_value_heads=1, head_dim=4,
                                                           intermediate_size=12, vocab_size=10,
                                                           attention_window_size=4, conv1d_width=3),
    "xLSTMModel": lambda: tf.xLSTMConfig(hidden_size=WIDTH, embedding_dim=WIDTH, num_heads=2, num_blocks=2,
                                         vocab_size=10, use_cache=False, qk_dim_factor=0.5, v_dim_factor=1.0,
                                         chunk_size=4),
    "GPT2Model": lambda: tf.GPT2Config(n_embd=WIDTH, n_layer=2, n_head=2, n_positions=64, vocab_size=10,
                                       bos_token_id=0, eos_token_id=0),
}
SSMS = ("MambaModel", "Mamba2Model", "RecurrentGemmaModel", "xLSTMModel")


def tiny(name: str, seed: int = 0):
    """A tiny `name` (a transformers class) with weights from `seed`, in eval mode, float32."""
    torch.manual_seed(seed)
    return getattr(tf, name)(CONFIGS[name]()).eval()


def call_hf(model):
    """x (B, T, d) -> last_hidden_state, the way lag_influence calls a Hugging Face model."""
    return lambda x: model(inputs_embeds=x, use_cache=False).last_hidden_state


def jacobian_norms(f, x: torch.Tensor, t: int, K: int) -> dict:
    """{norm: (B, K)} log10 ||d y<t>/d x<t-k>|| from the dense Jacobian of f (batch-first x)."""
    J = torch.autograd.functional.jacobian(f, x)
    B = x.shape[0]
    out = {"spectral": np.empty((B, K)), "frobenius": np.empty((B, K))}
    for b in range(B):
        for k in range(K):
            m = J[b, t - 1, :, b, t - 1 - k, :].numpy()
            out["spectral"][b, k] = np.log10(np.linalg.norm(m, 2))
            out["frobenius"][b, k] = np.log10(np.linalg.norm(m))
    return out
