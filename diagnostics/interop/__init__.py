"""Bridges to other frameworks, each imported only when used (PyTorch is an optional extra).

    from diagnostics.interop.torch import from_module     # nn.RNN / nn.GRU / nn.LSTM / *Cell

What a missing dependency says is in diagnostics/optional.py.
"""
