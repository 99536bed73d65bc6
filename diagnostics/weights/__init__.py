"""Diagnose your own trained model: PyTorch recurrent weights as our cells (issue 13).

    from diagnostics.weights import load_weights, read_inputs
    imp = load_weights("model.safetensors", "lstm")          # .pt/.pth/.bin, .safetensors, .npz
    xs = read_inputs("xs.npy", imp.input_size)                # (T, B, d) float64
    res = probe(imp.cell, imp.params, imp.inputs(xs), lags=100)

Reading .safetensors and .npz needs no torch; .pt/.pth/.bin do (torch.load, weights_only=True).
Every bad input raises WeightsError (a DiagnosticsError, so a ValueError) with a one-line message.
"""
from .build import from_state_dict, load_weights
from .files import WeightsError, check_inputs, read_inputs, read_state_dict, read_tokens
from .imported import Imported
from .modules import Found, find_modules

__all__ = ["load_weights", "from_state_dict", "read_state_dict", "read_inputs", "read_tokens", "check_inputs",
           "find_modules", "Found", "Imported", "WeightsError"]
