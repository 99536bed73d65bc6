"""PyTorch recurrent weights as our cells: an ordinary (cell, params), exact to rounding.

    nn.RNN   a' = g(W_ih x + b_ih + W_hh a + b_hh)       -> rnn: W_a = W_hh, U_a = W_ih, b_a = b_ih + b_hh
    nn.LSTM  gates (i, f, g, o)                          -> lstm: (u, f, c, o), W = W_hh, U = W_ih, b = b_ih + b_hh
    nn.GRU   r, z, n = ..., h' = (1 - z) n + z h         -> gru, reset_after: Γ_u = 1 - z, so the z rows
             n = tanh(W_in x + b_in + r (W_hn h + b_hn))    are negated (σ(-v) = 1 - σ(v)); b_hn kept apart
Several layers give a Stacked cell (layer="all"); each direction of a bidirectional module is
its own cell. Every problem is a WeightsError of one line naming the source and the key.
"""
from __future__ import annotations

import numpy as np

from ..cells import GRU, LSTM, RNN
from ..cells.base import freeze
from ..cells.stacked import Stacked
from .files import WeightsError, listing, read_state_dict
from .imported import Imported
from .modules import GATES, TORCH_NAMES, Found, select

DIRECTIONS = ("forward", "backward")


def load_weights(path, kind: str | None = None, **options) -> Imported:
    """Import a recurrent module from a weight file (.pt/.pth/.bin, .safetensors, .npz).
    Options as from_state_dict."""
    return from_state_dict(read_state_dict(path), kind, source=str(path), **options)


def from_state_dict(sd: dict, kind: str | None = None, *, prefix: str | None = None, layer=0,
                    direction: str | None = None, nonlinearity: str | None = None,
                    hidden: int | None = None, source: str = "state_dict") -> Imported:
    """The recurrent module of sd (the one found, or the one under `prefix`) as an Imported.

    kind: rnn | gru | lstm, checked against weight_hh's rows (default: what they say).
    layer: 0..num_layers-1, or "all" for the Stacked cell of every layer (the layer's own cell
    when there is one; not for a bidirectional module).
    direction: forward | backward; required for a bidirectional module, else forward.
    nonlinearity: tanh | relu for nn.RNN (not stored in a state_dict; default tanh).
    hidden: if given, must equal the file's."""
    sd = {k: np.asarray(v) for k, v in sd.items()}
    f = select(sd, prefix, source)
    here = f"{source}: {f.label()}"
    if kind is not None and kind not in GATES:
        raise WeightsError(f"kind: must be rnn, gru or lstm, got {kind!r}")
    if kind is not None and kind != f.kind:
        hh = f.key("weight_hh")
        raise WeightsError(f"{here}: {hh} has shape {tuple(sd[hh].shape)} = {GATES[f.kind]} x hidden {f.hidden} rows, "
                           f"so {kind} (an {TORCH_NAMES[kind]}) does not fit: it needs {GATES[kind]} x {f.hidden}")
    if hidden is not None and hidden != f.hidden:
        raise WeightsError(f"{here}: hidden {hidden} given, but the file's is {f.hidden} ({f.key('weight_hh')} "
                           f"has shape {tuple(sd[f.key('weight_hh')].shape)})")
    if f.proj_size:
        raise WeightsError(f"{here}: nn.LSTM with proj_size {f.proj_size} ({f.key('weight_hr')} present) is not "
                           "supported; a projected LSTM's a<t> is W_hr (Γ_o * tanh(c<t>))")
    if nonlinearity is not None and f.kind != "rnn":
        raise WeightsError(f"nonlinearity: only nn.RNN has one, and {f.label()} is not one")
    nl = nonlinearity or "tanh"
    if nl not in ("tanh", "relu"):
        raise WeightsError(f"nonlinearity: must be tanh or relu, got {nonlinearity!r}")
    if layer != "all" and (isinstance(layer, bool) or not isinstance(layer, (int, np.integer))
                           or not 0 <= layer < f.layers):
        raise WeightsError(f"layer: must be 0..{f.layers - 1} or 'all' for {f.label()}, got {layer!r}")
    if direction is not None and direction not in DIRECTIONS:
        raise WeightsError(f"direction: must be forward or backward, got {direction!r}")
    if f.bidirectional and direction is None:
        raise WeightsError(f"{here}: a bidirectional module needs direction='forward' or 'backward' (the "
                           "backward cell runs over the reversed sequence)")
    if not f.bidirectional and direction == "backward":
        raise WeightsError(f"direction: {f.label()} is not bidirectional; it has no backward direction")
    reverse = direction == "backward"
    if layer == "all":
        if f.bidirectional:
            raise WeightsError(f"layer: 'all' is not possible for {f.label()}: layer k + 1 reads both directions "
                               "of layer k, which is no single recurrence; import one layer and direction at a time")
        built = [_layer(sd, f, k, False, nl, source) for k in range(f.layers)]
        cell = built[0][0] if len(built) == 1 else Stacked(tuple(c for c, _ in built))
        params = built[0][1] if len(built) == 1 else freeze(
            {f"l{k}.{name}": v for k, (_, p) in enumerate(built) for name, v in p.items()})
        return Imported(cell, params, False, f"{source}: {f.label()}, all layers", ())
    below = tuple((_layer(sd, f, k, False, nl, source),
                   _layer(sd, f, k, True, nl, source) if f.bidirectional else None) for k in range(layer))
    cell, params = _layer(sd, f, layer, reverse, nl, source)
    what = f"layer {layer}, {direction or 'forward'}" + (", nonlinearity " + nl if f.kind == "rnn" else "")
    return Imported(cell, params, reverse, f"{source}: {f.label()}, {what}", below)


def _layer(sd, f: Found, k: int, reverse: bool, nl: str, source: str):
    """(cell, params) of layer k, one direction."""
    G, H = GATES[f.kind], f.hidden
    d = f.input_size if k == 0 else H * (2 if f.bidirectional else 1)
    why_in = "the model's input size" if k == 0 else \
        f"layer {k - 1}'s output: {'2 directions x ' if f.bidirectional else ''}hidden {H}"
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if f.bias else [])
    keys = [f.key(n, k, reverse) for n in names]
    mine = [key for key in sd if key.startswith(f.prefix + "." if f.prefix else "")]
    for key in keys:
        if key not in sd:
            raise WeightsError(f"{source}: key {key!r} missing; expected {', '.join(keys)}; found {listing(mine)}")
    rows = f"{G} x hidden {H} rows" if G > 1 else f"hidden {H} rows"
    w_ih = _get(sd, keys[0], (G * H, d), f"{rows}, {d} columns = {why_in}", source)
    w_hh = _get(sd, keys[1], (G * H, H), f"{rows}, hidden {H} columns", source)
    if f.bias:
        b_ih, b_hh = (_get(sd, key, (G * H,), rows.replace(" rows", ""), source) for key in keys[2:])
    else:
        b_ih = b_hh = np.zeros(G * H)
    if f.kind == "rnn":
        return RNN(input_size=d, hidden=H, activation=nl), freeze({"W_a": w_hh, "U_a": w_ih, "b_a": b_ih + b_hh})
    if f.kind == "lstm":   # PyTorch's (i, f, g, o) is our (u, f, c, o)
        return LSTM(input_size=d, hidden=H), freeze({"W": w_hh, "U": w_ih, "b": b_ih + b_hh})
    r, z, n = slice(0, H), slice(H, 2 * H), slice(2 * H, 3 * H)   # PyTorch's GRU rows
    return GRU(input_size=d, hidden=H, reset_after=True), freeze({
        "W": np.vstack([-w_hh[z], w_hh[r], w_hh[n]]),
        "U": np.vstack([-w_ih[z], w_ih[r], w_ih[n]]),
        "b": np.concatenate([-(b_ih[z] + b_hh[z]), b_ih[r] + b_hh[r], b_ih[n]]),
        "b_hn": b_hh[n]})


def _get(sd, key: str, shape: tuple, why: str, source: str) -> np.ndarray:
    a = sd[key]
    if tuple(a.shape) != shape:
        raise WeightsError(f"{source}: {key} has shape {tuple(a.shape)}, expected {shape} ({why})")
    if not np.issubdtype(a.dtype, np.floating):
        raise WeightsError(f"{source}: {key} has dtype {a.dtype}, expected floating-point weights")
    if not np.isfinite(a).all():
        raise WeightsError(f"{source}: {key} holds NaN or infinite values")
    return a.astype(np.float64)
