"""Finding PyTorch recurrent modules in a state_dict by their keys.

    nn.RNN / nn.GRU / nn.LSTM:   {prefix.}weight_ih_l{k}[_reverse], weight_hh_l{k}[_reverse],
                                 bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse], weight_hr_l{k} (proj_size)
    nn.RNNCell / GRUCell / LSTMCell:  {prefix.}weight_ih, weight_hh, bias_ih, bias_hh

The kind is not in the file: weight_hh has (gates x hidden) rows, 1 for nn.RNN, 3 for nn.GRU,
4 for nn.LSTM, and hidden columns (proj_size columns when weight_hr is there, whose own
columns then give hidden). The nonlinearity of nn.RNN is not in the file either.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .files import WeightsError, listing

KINDS = {1: "rnn", 3: "gru", 4: "lstm"}
GATES = {v: k for k, v in KINDS.items()}
TORCH_NAMES = {"rnn": "nn.RNN", "gru": "nn.GRU", "lstm": "nn.LSTM"}
_HH = re.compile(r"^(?:(?P<prefix>.+)\.)?weight_hh(?:_l(?P<layer>\d+)(?P<rev>_reverse)?)?$")


@dataclass(frozen=True)
class Found:
    """One recurrent module of a state_dict."""
    prefix: str              # "" for a bare module's own state_dict
    is_cell: bool            # an nn.*Cell (no _l{k} suffix)
    layers: int
    bidirectional: bool
    kind: str                # rnn | gru | lstm, from weight_hh's rows
    hidden: int
    input_size: int
    bias: bool
    proj_size: int           # 0 without weight_hr

    def key(self, name: str, layer: int = 0, reverse: bool = False) -> str:
        """Full key of weight_ih / weight_hh / bias_ih / bias_hh / weight_hr for one layer and direction."""
        sfx = "" if self.is_cell else f"_l{layer}" + ("_reverse" if reverse else "")
        return f"{self.prefix}.{name}{sfx}" if self.prefix else f"{name}{sfx}"

    def label(self) -> str:
        """e.g. "nn.LSTM 'rnn' (2 layers, bidirectional, input 2, hidden 16)"."""
        what = TORCH_NAMES[self.kind] + ("Cell" if self.is_cell else "") + (f" {self.prefix!r}" if self.prefix else "")
        extra = [] if self.is_cell else [f"{self.layers} layer{'s' * (self.layers > 1)}"]
        extra += ["bidirectional"] * self.bidirectional + [f"input {self.input_size}", f"hidden {self.hidden}"]
        return f"{what} ({', '.join(extra)})"


def _shape(sd, key):
    return tuple(int(s) for s in sd[key].shape)


def find_modules(sd: dict, source: str = "state_dict") -> list[Found]:
    """Every recurrent module in sd, sorted by prefix. Raises WeightsError when a module's
    row count is no whole number of gates or its first layer lacks weight_ih."""
    groups: dict[str, list] = {}
    for key in sd:
        m = _HH.match(key)
        if m:
            groups.setdefault(m["prefix"] or "", []).append(m)
    out = []
    for prefix, ms in sorted(groups.items()):
        is_cell = all(m["layer"] is None for m in ms)
        probe = Found(prefix, is_cell, 1, False, "rnn", 0, 0, False, 0)
        hh = probe.key("weight_hh")
        if hh not in sd:   # a mixture of cell-style and layer keys, or layers not starting at 0
            raise WeightsError(f"{source}: key {hh!r} missing; found {listing(m.string for m in ms)}")
        rows, cols = _matrix(sd, hh, source)
        hr = probe.key("weight_hr")
        if hr in sd:
            proj, hidden = _matrix(sd, hr, source)
        else:
            proj, hidden = 0, cols
        if hidden == 0 or rows % hidden or rows // hidden not in KINDS:
            raise WeightsError(f"{source}: {hh} has shape {_shape(sd, hh)}: its rows are not 1, 3 or 4 times "
                               f"hidden {hidden} (nn.RNN, nn.GRU, nn.LSTM)")
        ih = probe.key("weight_ih")
        if ih not in sd:
            raise WeightsError(f"{source}: key {ih!r} missing (the input weights of {hh})")
        layers = 1 if is_cell else 1 + max(int(m["layer"]) for m in ms)
        bidirectional = any(m["rev"] for m in ms)
        out.append(Found(prefix, is_cell, layers, bidirectional, KINDS[rows // hidden], hidden,
                         _matrix(sd, ih, source)[1], probe.key("bias_ih") in sd or probe.key("bias_hh") in sd, proj))
    return out


def _matrix(sd, key, source) -> tuple[int, int]:
    shape = _shape(sd, key)
    if len(shape) != 2:
        raise WeightsError(f"{source}: {key} has shape {shape}, expected a matrix (2 axes)")
    return shape


def select(sd: dict, prefix: str | None, source: str) -> Found:
    """The module under `prefix`, or the only one when prefix is None."""
    found = find_modules(sd, source)
    if not found:
        raise WeightsError(f"{source}: no recurrent module (no key ending in weight_hh_l0 or weight_hh); "
                           f"keys found: {listing(sd)}")
    if prefix is None:
        if len(found) > 1:
            raise WeightsError(f"{source}: {len(found)} recurrent modules ({'; '.join(f.label() for f in found)}); "
                               "choose one with prefix")
        return found[0]
    for f in found:
        if f.prefix == prefix.rstrip("."):
            return f
    raise WeightsError(f"{source}: no recurrent module under prefix {prefix!r}; found "
                       f"{'; '.join(f.label() for f in found)}")
