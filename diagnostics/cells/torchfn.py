"""Any cell written in PyTorch, probed with no hand-written Jacobian: derivatives by torch.func.

    def step(p, s, x):                     # torch tensors: s (B, S), x (B, d) -> new s (B, S)
        return torch.tanh(s @ p["W"].T + x @ p["U"].T)
    cell = TorchFn(step, input_size=2, hidden=16)
    res = probe(cell, params, xs)          # params: {name: numpy array}, as for any cell

    cell, params = module_cell(nn.GRUCell(2, 16))     # an nn.Module cell: forward(x, state)

Everything runs in float64. `step` runs the function under torch.func.vjp, so the cache holds
the pullback and `vjp` applies it to all r rows at once with vmap (the batch is the
function's own batch axis: sequences must not interact, as for every cell); `jacobian`
vmaps jacrev over the batch. The state may hold several blocks of `hidden` entries
(`state_blocks=("a", "c")` for an LSTM-like [a; c]), each a path of the probe, with "state"
the whole. check_jacobian compares with central differences (analytic = False: the
function's complex behaviour is unknown).
"""
from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from ..optional import import_torch
from ..options import PosInt
from .base import Cell, freeze


class TorchCache(NamedTuple):
    p: dict                  # parameters as tensors (views of the numpy arrays)
    s: Any                   # state<t-1> (B, S) tensor
    x: Any                   # x<t> (B, d) tensor
    pullback: Any            # torch.func.vjp's function of the step at (s, x)


def _tensor(torch, a):
    """A float64 tensor sharing a's memory where it can: torch warns about read-only arrays,
    which are only ever read here."""
    a = np.asarray(a, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


@dataclass(frozen=True)
class TorchFn(Cell):
    """A cell whose step is a torch function fn(params, state, x) -> state."""
    fn: Any = None
    input_size: PosInt = 1
    hidden: PosInt = 32
    state_blocks: tuple[str, ...] = ("a",)
    kind: ClassVar[str] = "torchfn"

    def check(self) -> None:
        if not callable(self.fn):
            raise ValueError(f"fn: must be a torch step function fn(params, state, x) -> state, got {self.fn!r}")
        if "a" not in self.state_blocks or len(set(self.state_blocks)) != len(self.state_blocks):
            raise ValueError(f"state_blocks: must name distinct blocks, 'a' among them, got {list(self.state_blocks)}")

    @property
    def state_size(self) -> int:
        return self.hidden * len(self.state_blocks)

    @property
    def blocks(self) -> dict[str, slice]:
        n = self.hidden
        return {b: slice(i * n, (i + 1) * n) for i, b in enumerate(self.state_blocks)}

    @property
    def paths(self) -> tuple[str, ...]:
        return ("a",) if len(self.state_blocks) == 1 else self.state_blocks + ("state",)

    @property
    def analytic(self) -> bool:
        return False

    def init(self, rng):
        raise NotImplementedError("torchfn: parameters come from your model (see module_cell)")

    def _torch(self):
        return import_torch("a torchfn cell")

    def _params(self, torch, params) -> dict:
        return {k: _tensor(torch, v) for k, v in params.items()}

    def step(self, params, state, x):
        torch = self._torch()
        p, s, xt = self._params(torch, params), _tensor(torch, state), _tensor(torch, x)
        new, pullback = torch.func.vjp(lambda s_: self.fn(p, s_, xt), s)
        return new.detach().numpy(), TorchCache(p, s, xt, pullback)

    def vjp(self, params, cache, m):
        """m @ J for rows m (B, r, S): the step's pullback, vmapped over the r rows."""
        torch = self._torch()
        rows = _tensor(torch, m).permute(1, 0, 2)                  # (r, B, S): one cotangent per row
        out = torch.func.vmap(lambda g: cache.pullback(g)[0])(rows)
        return out.permute(1, 0, 2).detach().numpy()

    def input_vjp(self, params, cache, m):
        """m @ d state<t>/d x<t> (B, r, d): a pullback in x, made on demand (stacks only)."""
        torch = self._torch()
        _, pull_x = torch.func.vjp(lambda x_: self.fn(cache.p, cache.s, x_), cache.x)
        rows = _tensor(torch, m).permute(1, 0, 2)
        return torch.func.vmap(lambda g: pull_x(g)[0])(rows).permute(1, 0, 2).detach().numpy()

    def jacobian(self, params, cache):
        """Dense (B, S, S): jacrev of one sequence's step, vmapped over the batch."""
        torch = self._torch()
        one = lambda s, x: self.fn(cache.p, s[None], x[None])[0]  # noqa: E731
        return torch.func.vmap(torch.func.jacrev(one))(cache.s, cache.x).detach().numpy()

    def describe(self) -> dict:
        return {"kind": self.kind, "fn": getattr(self.fn, "__qualname__", type(self.fn).__name__),
                "input_size": self.input_size, "hidden": self.hidden, "state_blocks": list(self.state_blocks)}


def module_cell(module, *, input_size: int | None = None, hidden: int | None = None,
                state_blocks: tuple[str, ...] | None = None) -> tuple[TorchFn, dict]:
    """(cell, params) of a torch module stepping as module(x, state) -> state: nn.RNNCell,
    nn.GRUCell, nn.LSTMCell ((h, c) in and out: state_blocks ("a", "c")) or your own module
    with that convention (a tuple of blocks in and out when state_blocks has several).
    A float64 copy of the module is called with params through torch.func.functional_call."""
    torch = import_torch("module_cell")
    mod = copy.deepcopy(module).double()
    if state_blocks is None:
        state_blocks = ("a", "c") if isinstance(module, torch.nn.LSTMCell) else ("a",)
    d = input_size if input_size is not None else getattr(module, "input_size", None)
    n = hidden if hidden is not None else getattr(module, "hidden_size", None)
    if d is None or n is None:
        raise ValueError(f"module_cell: {type(module).__name__} has no input_size/hidden_size; pass input_size= and hidden=")
    several = len(state_blocks) > 1

    def fn(p, s, x):
        blocks = s.split(n, dim=1)
        out = torch.func.functional_call(mod, p, (x, tuple(blocks) if several else blocks[0]))
        return torch.cat(tuple(out), dim=1) if several else out

    fn.__qualname__ = f"module_cell({type(module).__name__})"
    params = freeze({k: v.detach().double().numpy() for k, v in mod.named_parameters()})
    return TorchFn(fn, input_size=d, hidden=n, state_blocks=tuple(state_blocks)), params
