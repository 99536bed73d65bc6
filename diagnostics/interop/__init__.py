"""Bridges to other frameworks, each imported only when used (PyTorch is an optional extra).

    from diagnostics.interop.torch import from_module     # nn.RNN / nn.GRU / nn.LSTM / *Cell
"""
from __future__ import annotations

INSTALL_HINT = "pip install 'gradient-diagnostics[torch]'"


class TorchMissing(ImportError):
    """A feature that needs PyTorch was used where it is not installed (one line)."""


def import_torch(what: str):
    """The torch module, or TorchMissing("<what> needs PyTorch: pip install ...")."""
    try:
        import torch
    except ImportError:
        raise TorchMissing(f"{what} needs PyTorch: {INSTALL_HINT}") from None
    return torch
