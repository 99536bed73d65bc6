"""PyTorch modules into the probe, through the same state_dict path as weight files.

    imp = from_module(nn.LSTM(2, 16, num_layers=2), layer="all")
    res = probe(imp.cell, imp.params, imp.inputs(module_inputs(module, xs)), lags=100)

Any sequence model (a Hugging Face Mamba, Mamba-2, RecurrentGemma, xLSTM, GPT-2, or any
module): lag_influence (influence.py), log10 ||d y<t>/d x<t-k>||; and the memory paths of
Mamba, Mamba-2, RecurrentGemma and xLSTM layers: memory_paths (memory.py).

torch is imported only when these functions run (it is an optional extra).
"""
from __future__ import annotations

import sys

import numpy as np

from ..optional import import_torch
from ..weights import Imported, WeightsError, from_state_dict
from .influence import lag_influence
from .memory import memory_paths

__all__ = ["from_module", "lag_influence", "memory_paths", "module_inputs"]

EXPECTED = "an nn.RNN, nn.GRU, nn.LSTM, nn.RNNCell, nn.GRUCell or nn.LSTMCell (or a module holding one)"


def is_module(obj) -> bool:
    """Is obj a torch nn.Module? Never imports torch: an object of torch's exists only once it is."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def holds_recurrent(module) -> bool:
    """Is module an nn.RNN, GRU, LSTM or *Cell, or does it hold one? (What from_module reads.)"""
    torch = import_torch("holds_recurrent")
    kinds = (torch.nn.RNNBase, torch.nn.RNNCellBase)
    return any(isinstance(m, kinds) for m in module.modules())


def _recurrent(module, prefix, torch):
    """(name, the recurrent module): module itself, the one it holds, or the one under prefix."""
    kinds = (torch.nn.RNNBase, torch.nn.RNNCellBase)
    if not isinstance(module, torch.nn.Module):
        raise WeightsError(f"from_module: expected {EXPECTED}, got {type(module).__name__}")
    if prefix is None and isinstance(module, kinds):
        return "", module
    found = [(n, m) for n, m in module.named_modules() if isinstance(m, kinds)]
    if prefix is not None:
        for n, m in found:
            if n == prefix:
                return n, m
        raise WeightsError(f"from_module: no recurrent module named {prefix!r} in {type(module).__name__}; "
                           f"found {', '.join(repr(n) for n, _ in found) or 'none'}")
    if len(found) != 1:
        names = ", ".join(f"{n!r} ({type(m).__name__})" for n, m in found)
        raise WeightsError(f"from_module: {type(module).__name__} holds "
                           + (f"{len(found)} recurrent modules ({names}); choose one with prefix" if found
                              else f"no recurrent module; expected {EXPECTED}"))
    return found[0]


def _kind(m, torch) -> str:
    nn = torch.nn
    for kind, types in (("lstm", (nn.LSTM, nn.LSTMCell)), ("gru", (nn.GRU, nn.GRUCell)), ("rnn", (nn.RNN, nn.RNNCell))):
        if isinstance(m, types):
            return kind
    mode = getattr(m, "mode", "")   # a bare RNNBase names its kind in `mode`
    kind = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn", "RNN_RELU": "rnn"}.get(mode)
    if kind is None:
        raise WeightsError(f"from_module: {type(m).__name__} is not supported; expected {EXPECTED}")
    return kind


def from_module(module, *, layer=0, direction: str | None = None, prefix: str | None = None) -> Imported:
    """A torch recurrent module as an Imported (cell, params, reverse, source): its state_dict,
    read as float64, through diagnostics.weights.from_state_dict. layer, direction: as there;
    prefix: the name of the recurrent submodule when `module` holds several."""
    torch = import_torch("from_module")
    name, m = _recurrent(module, prefix, torch)
    kind = _kind(m, torch)
    nl = None
    if kind == "rnn":
        nl = getattr(m, "nonlinearity", None) or ("relu" if getattr(m, "mode", "") == "RNN_RELU" else "tanh")
    sd = {k: v.detach().cpu().to(torch.float64).numpy() for k, v in m.state_dict().items()
          if v.is_floating_point()}
    source = "torch module" + (f" {name!r}" if name else "")
    return from_state_dict(sd, kind, layer=layer, direction=direction, nonlinearity=nl, source=source)


def module_inputs(module, xs) -> np.ndarray:
    """xs as the module takes them (a tensor or array; batch-first if the module is), as the
    probe's time-major (T, B, d) float64. Unbatched (T, d) becomes one sequence."""
    torch = import_torch("module_inputs")
    if isinstance(xs, torch.Tensor):
        xs = xs.detach().cpu().to(torch.float64).numpy()
    xs = np.asarray(xs, dtype=np.float64)
    if xs.ndim == 2:
        return xs[:, None, :]
    if xs.ndim == 3 and getattr(module, "batch_first", False):
        return xs.transpose(1, 0, 2)
    return xs
