"""PyTorch modules into the probe, through the same state_dict path as weight files.

    imp = from_module(nn.LSTM(2, 16, num_layers=2), layer="all")
    res = probe(imp.cell, imp.params, imp.inputs(module_inputs(module, xs)), lags=100)

    with LagMonitor(model, probe_batch, "out/monitor", every=100) as monitor:   # in a training loop
        ...; monitor.step(step, loss=loss)

Any sequence model (a Hugging Face Mamba, Mamba-2, RecurrentGemma, xLSTM, GPT-2, or any
module): lag_influence (influence.py), log10 ||d y<t>/d x<t-k>||; and the memory paths of
Mamba, Mamba-2, RecurrentGemma and xLSTM layers: memory_paths (memory.py).

torch is imported only when these functions run (it is an optional extra).
"""
from __future__ import annotations

import random
import sys
import time
from copy import deepcopy

import numpy as np

from ..documents.run import MONITOR_SOURCE
from ..optional import import_torch
from ..probing.core import probe
from ..probing.estimator import AUTO_WIDTH
from ..probing.metrics import pascanu_bound
from ..probing.parallel import single_threaded_blas
from ..probing.series import influence_items, series_items
from ..weights import Imported, WeightsError, from_state_dict
from .influence import lag_influence
from .memory import memory_paths, supported_mixers
from .models import Call, ModelError, float64_copy
from .monitor import Checkpoint, Identity, MonitorError, MonitorFolder, summary_of

__all__ = ["LagMonitor", "from_module", "lag_influence", "memory_paths", "module_inputs", "unwrap"]

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


# --- watching a training loop ------------------------------------------------------------------

def unwrap(model):
    """The module a DistributedDataParallel (`.module`) or torch.compile (`._orig_mod`) wrapper
    holds, through any number of them."""
    nn = sys.modules["torch"].nn
    while True:
        if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
            model = model.module
        elif is_module(getattr(model, "_orig_mod", None)):   # torch._dynamo's OptimizedModule
            model = model._orig_mod
        else:
            return model


def _is_rank0(torch) -> bool:
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class _Untouched:
    """Every random state (torch CPU and CUDA, numpy's global, Python's random) as it was on
    entry, put back on exit: whatever the probe or a copied model's forward pass draws."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        t = self.torch
        self.cpu = t.get_rng_state()
        self.cuda = t.cuda.get_rng_state_all() if t.cuda.is_available() and t.cuda.is_initialized() else None
        self.np, self.py = np.random.get_state(), random.getstate()
        return self

    def __exit__(self, *exc):
        t = self.torch
        t.set_rng_state(self.cpu)
        if self.cuda is not None:
            t.cuda.set_rng_state_all(self.cuda)
        np.random.set_state(self.np)
        random.setstate(self.py)
        return False


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise MonitorError(f"LagMonitor: {name}: must be a positive integer, got {value!r}")
    return int(value)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class LagMonitor:
    """Lag curves of a model, recorded while the user's own loop trains it.

        with LagMonitor(model, probe_batch, "out/monitor", every=100) as monitor:
            for step, batch in enumerate(loader):
                ...
                monitor.step(step, loss=loss)

    model: an nn.RNN, nn.GRU or nn.LSTM, or a module holding one (found as `from_module` finds
    it; `prefix` names it when there are several); a DistributedDataParallel or compiled wrapper
    is unwrapped. inputs: a fixed probe batch as the model takes it (a tensor, or a tuple of
    positional arguments). At each checkpoint the recurrent layer's state paths are probed as
    `diag run` probes an imported module (every path, spectral and Frobenius, anchors at the
    last step of the batch by default), on a float64 CPU copy of the current weights: the
    recurrent module's state_dict read as float64, and, when it sits inside a larger model, its
    inputs from a forward pass of a float64 CPU copy of the whole model in eval mode (so its
    dropout is off). The model, its mode, its parameters' `.grad` and every random state are
    left as they were; under torch.distributed only rank 0 probes and writes. layer, direction:
    as from_module (default: every layer of a one-directional module, layer 0 forward of a
    bidirectional one).

    Any other sequence model (a module holding no nn.RNN/GRU/LSTM: a Hugging Face Mamba,
    Mamba-2, RecurrentGemma, xLSTM, GPT-2, or a module of one's own) gets its input-to-output
    influence instead: at each checkpoint `lag_influence(model, inputs, lags, anchors=anchors,
    estimator=estimator, rows=rows, seed=seed)` (lags 0..lags-1; `influence` items of
    curves.json; "auto" is the sketch for inputs at least AUTO_WIDTH wide), and for the
    selective families memory_paths knows, `memory_paths(model, inputs, lags)` (series
    `l{i}.memory`, lags 1..lags), with the float32-inside note when the model computes in
    float32 inside. `inputs`: one tensor as lag_influence takes it (a Hugging Face model:
    batch-first (B, T, d) embeddings; another module: per its `batch_first` attribute, time-major
    without one); one trial forward pass of a float64 copy checks them at construction. The
    horizon and decay factor it returns (and the adapters log) are the influence fit's. The
    same contract: a float64 CPU copy, the model, its mode, `.grad` and random states untouched.
    The folder: diagnostics/interop/monitor.py.
    """

    def __init__(self, model, inputs, out, *, every=100, lags=64, anchors=None, estimator="exact", rows=64, seed=0,
                 prefix: str | None = None, layer=None, direction: str | None = None):
        torch = import_torch("LagMonitor")
        self.every = _positive("every", every)
        self.lags = _positive("lags", lags)
        if estimator not in ("exact", "sketch", "auto"):
            raise MonitorError(f"LagMonitor: estimator: must be exact, sketch or auto, got {estimator!r}")
        self.estimator = {"estimator": estimator, "rows": _positive("rows", rows), "seed": int(seed)}
        self._torch, self.model, self.inputs = torch, model, inputs
        self.active = _is_rank0(torch)
        self.closed, self.last, self._losses, self._seen, self._probed = False, None, [], None, set()
        self.norms = ("spectral", "frobenius")
        top = unwrap(model)
        if not is_module(top):
            raise MonitorError(f"LagMonitor: model: expected a torch nn.Module (a sequence model, or one holding an "
                               f"nn.RNN, nn.GRU or nn.LSTM), got {type(top).__name__}")
        if prefix is None and not holds_recurrent(top):
            identity = self._any_model(top, anchors, layer, direction)
        else:
            identity = self._recurrent_layer(top, prefix, anchors, layer, direction)
        self.folder = MonitorFolder(out, identity) if self.active else None

    # --- construction -------------------------------------------------------------------------
    def _recurrent_layer(self, top, prefix, anchors, layer, direction) -> Identity:
        """The nn.RNN/GRU/LSTM route: its state paths, probed as `diag run` probes a module."""
        torch, self._rnn = self._torch, None
        try:
            self._name, self._rnn = _recurrent(top, prefix, torch)
            self._kind = _kind(self._rnn, torch)
        except WeightsError as e:
            raise MonitorError("LagMonitor: model: " + str(e).removeprefix("from_module: ")) from None
        bidi = bool(getattr(self._rnn, "bidirectional", False))
        self._layer = layer if layer is not None else (0 if bidi else "all")
        self._direction = direction if direction is not None or not bidi else "forward"
        with _Untouched(torch), single_threaded_blas():
            imp, xs = self._imported()
        self.anchors = self._anchors(anchors, xs.shape[0])
        self.paths = imp.cell.paths
        self.label = (self._name or type(self._rnn).__name__).lower()
        return self._identity(imp, xs)

    def _any_model(self, top, anchors, layer, direction) -> Identity:
        """Any other sequence model: its influence, and memory paths for the selective families,
        the inputs checked by one forward pass of a float64 CPU copy (the user's model is not run)."""
        torch, self._rnn = self._torch, None
        if layer is not None or direction is not None:
            raise MonitorError(f"LagMonitor: layer, direction: choose a layer of an nn.RNN, nn.GRU or nn.LSTM; "
                               f"{type(top).__name__} holds none")
        if isinstance(self.inputs, (tuple, list)):
            raise MonitorError(f"LagMonitor: inputs: {type(top).__name__} is measured on one tensor of inputs "
                               f"(as lag_influence takes it); got a {type(self.inputs).__name__} of {len(self.inputs)}")
        with _Untouched(torch), single_threaded_blas():
            copy = float64_copy(top)
            try:
                call = Call(copy, self.inputs)
                with torch.no_grad():
                    call.forward(call.x)   # a finite sequence out, or one line
            except ModelError as e:
                raise MonitorError(f"LagMonitor: {e}") from None
            except Exception as e:  # noqa: BLE001  (the user's forward: any error is theirs, said in one line)
                raise MonitorError(f"LagMonitor: inputs: the model cannot take them ({_first_line(e)})") from None
            try:
                memory = [path for path, _ in supported_mixers(copy)]
            except ModelError:   # not a selective family memory_paths knows: influence only
                memory = []
        self.anchors = self._anchors(anchors, call.T)
        self.paths, self._memory = ("influence", *memory), bool(memory)
        self.label, self._kind = type(top).__name__, type(top).__name__
        kind = self.estimator["estimator"]
        self._influence_estimator = {**self.estimator, "estimator": kind if kind != "auto" else
                                     "sketch" if call.x.shape[2] >= AUTO_WIDTH else "exact"}
        shapes = {k: list(v.shape) for k, v in top.state_dict().items()}
        plan = self._plan(call.T, call.B)
        source = f"{MONITOR_SOURCE}: {type(top).__name__}, input-to-output influence" + \
            (f" and memory paths ({len(memory)} layers)" if memory else "") + ", in a training loop"
        return Identity(self.label, self._kind, {"module": type(top).__name__, "shapes": shapes}, plan,
                        dict(self.estimator), source, {"torch": self._torch.__version__})

    def _plan(self, T: int, B: int) -> dict:
        return {"lags": self.lags, "episode": T, "stream": T, "anchors": self.anchors, "tk_anchors": [],
                "lyapunov": 0, "lyapunov_steps": 0, "sequences": B, "norms": list(self.norms), "sensitivity": False,
                "paths": {self.label: list(self.paths)}}

    def _anchors(self, anchors, T: int) -> list[int]:
        anchors = [T] if anchors is None else list(anchors)
        if not anchors or any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 1 <= a <= T
                              for a in anchors):
            raise MonitorError(f"LagMonitor: anchors: must be steps of the probe batch (1..{T}), got {anchors!r}")
        anchors = sorted({int(a) for a in anchors})
        if self.lags > anchors[0]:
            raise MonitorError(f"LagMonitor: lags: must be <= the smallest anchor ({anchors[0]}), got {self.lags}")
        return anchors

    def _identity(self, imp, xs) -> Identity:
        shapes = {k: list(v.shape) for k, v in self._rnn.state_dict().items()}
        where = f" {self._name!r} in {type(unwrap(self.model)).__name__}" if self._name else ""
        options = {"module": type(self._rnn).__name__, "prefix": self._name or None, "layer": self._layer,
                   "direction": self._direction, "shapes": shapes}
        plan = self._plan(int(xs.shape[0]), int(xs.shape[1]))
        source = f"{MONITOR_SOURCE}: nn.{type(self._rnn).__name__}{where} ({imp.source}), in a training loop"
        return Identity(self.label, self._kind, options, plan, dict(self.estimator), source,
                        {"torch": self._torch.__version__})

    # --- the float64 copy -----------------------------------------------------------------------
    def _imported(self):
        """(Imported, probe inputs (T, B, n) float64) from the model's current weights."""
        imp = from_module(self._rnn, layer=self._layer, direction=self._direction)
        feed = self.inputs if self._rnn is unwrap(self.model) else self._captured()
        if isinstance(feed, (tuple, list)):
            raise MonitorError("LagMonitor: inputs: the recurrent module takes one tensor; got "
                               f"{type(feed).__name__} of {len(feed)}")
        try:
            xs = imp.inputs(module_inputs(self._rnn, feed), where="inputs")
        except WeightsError as e:
            raise MonitorError(f"LagMonitor: {e}") from None
        return imp, xs

    def _captured(self):
        """What the recurrent module receives when a float64 CPU copy of the whole model, in eval
        mode, runs on the probe batch (the user's model is not run)."""
        torch = self._torch
        top = unwrap(self.model)
        copy = _float64_copy(top, torch)
        inner = copy.get_submodule(self._name)
        seen = []
        hook = inner.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
        args = self.inputs if isinstance(self.inputs, tuple) else (self.inputs,)
        args = tuple(a.detach().to("cpu", torch.float64) if isinstance(a, torch.Tensor) and a.is_floating_point()
                     else a.detach().cpu() if isinstance(a, torch.Tensor) else a for a in args)
        try:
            with torch.no_grad():
                copy(*args)
        except Exception as e:  # noqa: BLE001  (the user's forward: any error is theirs, said in one line)
            raise MonitorError(f"LagMonitor: inputs: the model cannot take them ({_first_line(e)})") from None
        finally:
            hook.remove()
        if not seen:
            raise MonitorError(f"LagMonitor: inputs: the model's forward pass never reached {self._name!r}")
        if not isinstance(seen[0], torch.Tensor):
            raise MonitorError(f"LagMonitor: inputs: {self._name!r} receives a {type(seen[0]).__name__}, "
                               "not a tensor (a PackedSequence cannot be probed; give padded inputs)")
        return seen[0]

    # --- the training loop's side -----------------------------------------------------------------
    def step(self, global_step: int, loss=None) -> dict | None:
        """Record `loss` (if given) and probe when global_step % every == 0 (once per step: a
        step given again, as under gradient accumulation, only records its loss). Returns the
        checkpoint's {"step", "horizon", "decay_factor"} when it probed, else None."""
        if self.closed:
            raise MonitorError("LagMonitor.step: the monitor is closed")
        if not self.active:
            return None
        if loss is not None:
            self.record_loss(loss)
        self._seen = int(global_step)
        if global_step % self.every or global_step in self._probed:
            return None
        return self.checkpoint(int(global_step))

    def record_loss(self, loss) -> None:
        """A loss for the current checkpoint window; a tensor is kept detached and read at the
        checkpoint (no device sync per step)."""
        if self.active:
            self._losses.append(loss.detach() if isinstance(loss, self._torch.Tensor) else float(loss))

    def checkpoint(self, step: int) -> dict:
        """Probe the current weights now and record them as checkpoint `step`."""
        t0 = time.perf_counter()
        # one BLAS thread: the training's threads keep the cores (OpenBLAS's pool, left spinning
        # after a call beside torch's OpenMP threads, slowed the training itself on 2 cores)
        with _Untouched(self._torch), single_threaded_blas():
            items = self._measure(step) if self._rnn is not None else self._measure_model(step)
            self.folder.add(step, *items, loss=self._window_loss(), seconds=time.perf_counter() - t0)
        self._probed.add(step)
        self.last = {"step": step, **summary_of([*items.series, *items.influence], self.norms)}
        return self.last

    def _measure(self, step: int) -> Checkpoint:
        """The recurrent layer's state paths and Pascanu bound at the current weights."""
        imp, xs = self._imported()
        res = probe(imp.cell, imp.params, xs, lags=self.lags, anchors=self.anchors, paths=list(self.paths),
                    norms=list(self.norms), workers=1, **self.estimator)
        bound = pascanu_bound(imp.cell, imp.params, np.arange(1, self.lags + 1))
        bounds = [] if bound is None else [{"cell": self.label, "checkpoint": step, "kind": "pascanu", "log10": bound}]
        return Checkpoint(series_items(self.label, self._kind, step, res, self.paths, self.norms), bounds)

    def _measure_model(self, step: int) -> Checkpoint:
        """Any other sequence model's influence (lags 0..lags-1) and memory paths (1..lags)."""
        model = unwrap(self.model)
        try:
            res = lag_influence(model, self.inputs, self.lags, anchors=self.anchors, norms=self.norms,
                                **self._influence_estimator)
            mem = (memory_paths(model, self.inputs, self.lags, anchors=self.anchors, norms=self.norms)
                   if self._memory else None)
        except ModelError as e:   # weights gone non-finite in training: the finished checkpoints stay
            raise MonitorError(f"LagMonitor: step {step}: {e}") from None
        influence = influence_items(self.label, self._kind, step, res, res.paths, self.norms)
        series = [] if mem is None else series_items(self.label, self._kind, step, mem, mem.paths, self.norms)
        return Checkpoint(series, [], influence, res.float32_inside)

    def _window_loss(self) -> float | None:
        vals = [float(v) for v in self._losses]
        self._losses = []
        return float(np.mean(vals)) if vals else None

    def save_baseline(self, path, checkpoint: int | None = None):
        """Write one checkpoint's curves (the last when None) as a baseline for `diag check`."""
        return self.folder.save_baseline(path, checkpoint) if self.active else None

    def close(self) -> None:
        """Finish: the last step given is probed if it was not a checkpoint. Idempotent."""
        if self.closed:
            return
        if self.active and self._seen is not None and self._seen not in self._probed:
            self.checkpoint(self._seen)
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        else:   # a failed training: the finished checkpoints are on disk; probe nothing more
            self.closed = True
        return False


def _float64_copy(module, torch):
    """A float64 CPU copy of `module` in eval mode; the module itself is not touched."""
    copy = deepcopy(module)
    for p in copy.parameters():
        p.grad = None
    return copy.to("cpu").to(torch.float64).eval()
