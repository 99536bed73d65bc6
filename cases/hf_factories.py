"""Factories of cases/hf_recurrent.yaml: the model cells that are not Hugging Face classes.

A case's `model: {factory: "hf_factories:lstm", kwargs: {...}}` RUNS THIS CODE when the case is
validated or run, as pytest runs a conftest.py: the case file's folder is first on sys.path
while the module is imported. Your own factory is any importable "package.module:function"
that returns a torch nn.Module mapping a sequence to a sequence.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent


def lstm(weights: str, input_size: int, hidden: int) -> torch.nn.LSTM:
    """A batch-first nn.LSTM read from a .safetensors state_dict (relative to this folder);
    its outputs (B, T, hidden) are the first tensor it returns, the one measured."""
    model = torch.nn.LSTM(input_size, hidden, batch_first=True)
    model.load_state_dict(load_file(HERE / weights))
    return model
