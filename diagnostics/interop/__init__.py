"""Bridges to other frameworks, each imported only when used (PyTorch is an optional extra).

    from diagnostics.interop.torch import from_module     # nn.RNN / nn.GRU / nn.LSTM / *Cell
    from diagnostics.interop.torch import lag_influence   # any sequence model: ||d y<t>/d x<t-k>||
    from diagnostics.interop.torch import memory_paths    # Mamba, Mamba-2, RecurrentGemma, xLSTM layers
    from diagnostics.interop.models import load_model     # a transformers class, save_pretrained folder, factory

What a missing dependency says is in diagnostics/optional.py.
"""
