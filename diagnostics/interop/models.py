"""Any PyTorch sequence model, as the influence and memory measurements see it.

    model = load_model({"hf": "Mamba2Model", "config": {"hidden_size": 16, ...}})
    model = load_model({"hf_folder": "weights/mamba2_tiny"}, base=case_folder)
    model = load_model({"factory": "mypkg.models:build", "kwargs": {"width": 32}})
    m64 = float64_copy(model)                 # the user's model is never touched
    run = Call(m64, inputs)                   # inputs checked; run.forward(x) -> {path: (B, T, m)}

Calling conventions (those of the probe's module_inputs): a Hugging Face model takes
batch-first (B, T, d) embeddings (`inputs_embeds`, `use_cache=False` where its forward has the
argument: xLSTM's cache path has no backward on CPU); an nn.RNN/GRU/LSTM takes them per its
`batch_first` (a 2-D input is one unbatched sequence); any other module is called with the
tensor, laid out per its `batch_first` attribute (time-major without one, as nn.RNN's default).

Float32 inside. Some Hugging Face SSMs cast to float32 inside their forward even after
`.double()` (Mamba's and Mamba-2's scans and RMSNorms, RecurrentGemma's norms and rotary
angles, xLSTM's state). `float32_inside` runs one forward pass and watches every operation
PyTorch dispatches: a floating result of less than float64's precision means the numbers
are float32-accurate at best, and the measurements say so.

torch and transformers are imported only when these functions run (both are optional).
"""
from __future__ import annotations

import copy
import importlib
import inspect
import json
import sys
from pathlib import Path

from ..errors import DiagnosticsError
from ..optional import import_torch, require


class ModelError(DiagnosticsError):
    """A model, or inputs to one, that cannot be measured (one line)."""


KINDS = ("hf", "hf_folder", "factory")
PREFIX = 8   # steps float32_inside runs the model over


# --- building a model ------------------------------------------------------------------------
def load_model(spec: dict, *, base: Path | None = None):
    """The nn.Module a spec names (see the module docstring): a transformers class built from
    config kwargs (weights from `seed`, default 0, without touching the global RNG), a
    save_pretrained folder read through safetensors (no pickle, no remote code), or a
    factory function of the user's, called with `kwargs` (this runs the user's code)."""
    if not isinstance(spec, dict) or sum(k in spec for k in KINDS) != 1:
        raise ModelError(f"model: must be a mapping with exactly one of {', '.join(KINDS)}, got {_short(spec)}")
    if "hf" in spec:
        return _from_class(spec["hf"], spec.get("config", {}), spec.get("seed", 0))
    if "hf_folder" in spec:
        folder = Path(spec["hf_folder"])
        return _from_folder(folder if base is None or folder.is_absolute() else Path(base) / folder)
    return _from_factory(spec["factory"], spec.get("kwargs", {}), base)


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _hf_class(name, where: str):
    """transformers' model class `name` (a PreTrainedModel subclass), or a one-line error."""
    tf = require("transformers", where)
    cls = getattr(tf, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, tf.PreTrainedModel)):
        raise ModelError(f"{where}: {_short(name)} is not a model class of transformers {tf.__version__} "
                         f"(e.g. MambaModel, Mamba2Model, RecurrentGemmaModel, xLSTMModel, GPT2Model)")
    return cls


def _from_class(name, config, seed):
    cls = _hf_class(name, "model.hf")
    torch = import_torch("model.hf")
    if not isinstance(config, dict):
        raise ModelError(f"model.config: must be a mapping of {name}'s config options, got {_short(config)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ModelError(f"model.seed: must be a non-negative integer, got {_short(seed)}")
    try:
        cfg = cls.config_class(**config)
    except (TypeError, ValueError) as e:
        raise ModelError(f"model.config: {name}'s config refused it: {str(e).splitlines()[0]}") from None
    with torch.random.fork_rng(devices=[]):   # the weights from the seed; the caller's RNG untouched
        torch.manual_seed(seed)
        return cls(cfg).eval()


def _from_folder(folder: Path):
    """A save_pretrained folder: its config.json names the class (`architectures`), the
    weights are read from .safetensors only; code the folder ships is never run."""
    if not folder.is_dir():
        raise ModelError(f"model.hf_folder: {folder} is not a folder")
    if not (folder / "config.json").is_file():
        raise ModelError(f"model.hf_folder: {folder} has no config.json (expected a save_pretrained folder)")
    if not any(folder.glob("*.safetensors")):
        raise ModelError(f"model.hf_folder: {folder} has no .safetensors weights (only safetensors are read; "
                         f"save with save_pretrained(..., safe_serialization=True))")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"model.hf_folder: {folder / 'config.json'} is not JSON: {e}") from None
    names = config.get("architectures") or []
    if not names:
        raise ModelError(f"model.hf_folder: {folder / 'config.json'} names no class in `architectures`")
    cls = _hf_class(names[0], "model.hf_folder")
    try:
        return cls.from_pretrained(folder, use_safetensors=True, trust_remote_code=False,
                                   local_files_only=True).eval()
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise ModelError(f"model.hf_folder: {folder} could not be read as a {names[0]}: "
                         f"{str(e).splitlines()[0]}") from None


def _forget_if_elsewhere(mod_name: str, base) -> None:
    """A module the case's folder holds but that was imported from elsewhere (another case's
    folder of the same name, earlier in this process) is dropped from sys.modules, so this
    case runs its own code, not a stale copy."""
    top = mod_name.split(".")[0]
    if base is None or not ((Path(base) / f"{top}.py").is_file() or (Path(base) / top).is_dir()):
        return
    where = getattr(sys.modules.get(top), "__file__", None)
    if top in sys.modules and (where is None or Path(base).resolve() not in Path(where).resolve().parents):
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]
    importlib.invalidate_caches()   # a file written since the last import is seen


def _from_factory(ref, kwargs, base):
    torch = import_torch("model.factory")
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise ModelError(f"model.factory: must be 'package.module:function', got {_short(ref)}")
    if not isinstance(kwargs, dict):
        raise ModelError(f"model.kwargs: must be a mapping of keyword arguments, got {_short(kwargs)}")
    mod_name, fn_name = ref.split(":")
    _forget_if_elsewhere(mod_name, base)
    added = base is not None and str(base) not in sys.path
    if added:   # the case's folder, as pytest's rootdir is for a conftest
        sys.path.insert(0, str(base))
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name, None)
    except ImportError as e:
        raise ModelError(f"model.factory: cannot import {mod_name!r}: {e}") from None
    finally:
        if added:
            sys.path.remove(str(base))
    if not callable(fn):
        raise ModelError(f"model.factory: {mod_name!r} has no function {fn_name!r}")
    try:
        inspect.signature(fn).bind(**kwargs)
    except TypeError as e:
        raise ModelError(f"model.kwargs: {ref} does not take them: {e}") from None
    except ValueError:   # a builtin without a signature: called as it is
        pass
    model = fn(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"model.factory: {ref} returned {type(model).__name__}, not a torch nn.Module")
    return model


# --- a float64 copy ----------------------------------------------------------------------
def unwrap(model):
    """The module inside DistributedDataParallel (`.module`) or torch.compile (`_orig_mod`)."""
    torch = import_torch("float64_copy")
    while True:
        inner = getattr(model, "_orig_mod", None)
        if inner is None and isinstance(model, (torch.nn.parallel.DistributedDataParallel,
                                                torch.nn.DataParallel)):
            inner = model.module
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def float64_copy(model, device=None):
    """A float64 deep copy of `model` in eval mode on `device` (default CPU); the user's model
    (its dtype, device, mode, gradients) is left as it was."""
    torch = import_torch("float64_copy")
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"model: expected a torch nn.Module, got {type(model).__name__}")
    return copy.deepcopy(unwrap(model)).to(device=_device(device, torch), dtype=torch.float64).eval()


def _device(device, torch):
    """torch.device(device) (default CPU), or a one-line error for one that is not there."""
    try:
        dev = torch.device(device or "cpu")
    except (RuntimeError, TypeError):
        raise ModelError(f"device: must be a torch device such as 'cpu' or 'cuda:0', got {_short(device)}") from None
    backend = getattr(torch, dev.type, None) if dev.type != "cpu" else None
    if dev.type != "cpu" and not (backend is not None and hasattr(backend, "is_available") and backend.is_available()):
        raise ModelError(f"device: {dev} is not available here (torch {torch.__version__}); use 'cpu'")
    return dev


# --- calling a model on its inputs -----------------------------------------------------------
def is_hf(model) -> bool:
    """Is model a Hugging Face PreTrainedModel? (transformers is imported if model is one.)"""
    tf = sys.modules.get("transformers")
    return tf is not None and isinstance(model, tf.PreTrainedModel)


class Call:
    """`model` (float64, see float64_copy) on `inputs` (as the model takes them), checked once:
    `x` the inputs as a batch-first (B, T, d) float64 tensor; `forward(x)` the outputs measured,
    {path: (B, T, m)} batch-first ("influence", and with layers=True "l{i}.influence" for the
    output of the i-th block of the model's layer list: its top-most nn.ModuleList, `layers`,
    `h` or `blocks`, captured by forward hooks, so l{i} is the layer memory_paths calls l{i},
    whatever the model's hidden_states put first). A one-line ModelError for inputs of the wrong rank or width,
    an output that is not a sequence, a non-finite output."""

    def __init__(self, model, inputs, *, output=None, layers=False, device=None):
        torch = self.torch = import_torch("lag_influence")
        self.model, self.output, self.layers = model, output, layers
        self.name = type(model).__name__
        self.kind = ("hf" if is_hf(model) else "rnn" if isinstance(model, torch.nn.RNNBase) else "module")
        self.blocks = layer_list(model) if layers else None
        if layers and (self.kind != "hf" or not self.blocks):
            raise ModelError(f"layers: needs a Hugging Face model with a list of layers; {self.name} is not one")
        x = torch.as_tensor(inputs.detach() if isinstance(inputs, torch.Tensor) else inputs)
        if not x.is_floating_point():
            raise ModelError(f"inputs: must be floating-point embeddings, got {x.dtype} "
                             f"(token ids go through the model's embedding first)")
        x = x.to(device=_device(device, torch), dtype=torch.float64)
        self.unbatched = self.kind == "rnn" and x.ndim == 2
        self.batch_first = self.kind == "hf" or bool(getattr(model, "batch_first", False))
        self._check_shape(x)
        x = x[None] if self.unbatched else x if self.batch_first else x.transpose(0, 1)
        self.x = x.contiguous()
        self.B, self.T, _ = self.x.shape
        self.kwargs = self._kwargs()

    def _check_shape(self, x) -> None:
        layout = "(T, d) or (B, T, d)" if self.kind == "rnn" and self.batch_first else \
            "(T, d) or (T, B, d)" if self.kind == "rnn" else "(B, T, d)" if self.batch_first else "(T, B, d)"
        if x.ndim != 3 and not self.unbatched:
            raise ModelError(f"inputs: {self.name} takes {layout}, got shape {tuple(x.shape)}")
        width = self._width()
        if width is not None and x.shape[-1] != width:
            raise ModelError(f"inputs: {self.name} takes {width} features per step, got shape {tuple(x.shape)}")
        if min(x.shape) < 1:
            raise ModelError(f"inputs: need at least one step and one sequence, got shape {tuple(x.shape)}")
        if not bool(self.torch.isfinite(x).all()):
            raise ModelError("inputs: must be finite, got inf or NaN")

    def _width(self) -> int | None:
        if self.kind == "rnn":
            return self.model.input_size
        if self.kind == "hf":
            emb = self.model.get_input_embeddings()
            return getattr(emb, "embedding_dim", None) or getattr(self.model.config, "hidden_size", None)
        return None

    def _kwargs(self) -> dict:
        if self.kind != "hf":
            return {}
        params = inspect.signature(self.model.forward).parameters
        out = {"return_dict": True} if "return_dict" in params else {}
        if "use_cache" in params:   # the cache path: no backward for some (xLSTM), and not needed
            out["use_cache"] = False
        return out

    def forward(self, x) -> dict:
        """{path: (B, T, m)} batch-first outputs of x (B, T, d) batch-first."""
        torch = self.torch
        seen: dict = {}
        hooks = [b.register_forward_hook(lambda m, a, o, i=i: seen.setdefault(i, o)) for i, b in enumerate(self.blocks or ())]
        try:
            out = self._call(x)
        finally:
            for h in hooks:
                h.remove()
        shape = tuple(x.shape[:2])
        ys = {"influence": self._select(out, shape)}
        for i in range(len(self.blocks or ())):
            ys[f"l{i}.influence"] = self._select(seen.get(i), shape, f"layer {i}'s output")
        for path, y in ys.items():
            if not bool(torch.isfinite(y).all()):
                raise ModelError(f"model: {self.name}'s output {path} is not finite (inf or NaN) on these inputs")
        return ys

    def _call(self, x):
        if self.kind == "hf":
            out = self.model(inputs_embeds=x, **self.kwargs)
        else:
            arg = x[0] if self.unbatched else x if self.batch_first else x.transpose(0, 1)
            try:
                out = self.model(arg)
            except (RuntimeError, TypeError, ValueError, IndexError) as e:
                raise ModelError(f"model: {self.name} failed on inputs of shape {tuple(arg.shape)}: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        return out

    def _select(self, out, shape, layer: str | None = None):
        """The output measured: `output` (a key of a ModelOutput or dict, an index of a tuple),
        by default last_hidden_state or the first tensor; a layer's output: its first tensor."""
        torch, want = self.torch, None if layer else self.output
        if layer:
            out = next((v for v in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(v, torch.Tensor)),
                       None)
            if out is None:
                raise ModelError(f"layers: {self.name}'s {layer} is not a tensor")
            return self._sequence(out, layer, shape)
        if isinstance(out, torch.Tensor):
            if want is not None:
                raise ModelError(f"output: {self.name} returns one tensor; output must be None, got {want!r}")
            return self._sequence(out, "output", shape)
        if hasattr(out, "keys"):
            keys = [k for k in out if isinstance(out[k], torch.Tensor)]
            if want is None:
                want = "last_hidden_state" if "last_hidden_state" in keys else keys[0] if keys else None
            if want not in keys:
                raise ModelError(f"output: {self.name} returns tensors {', '.join(keys) or 'none'}; got {want!r}")
            return self._sequence(out[want], want, shape)
        if isinstance(out, (tuple, list)):
            idx = [i for i, v in enumerate(out) if isinstance(v, torch.Tensor)]
            if want is None:
                want = idx[0] if idx else None
            if want not in idx:
                raise ModelError(f"output: {self.name} returns tensors at positions {idx}; got {want!r}")
            return self._sequence(out[want], f"output[{want}]", shape)
        raise ModelError(f"model: {self.name} is not a sequence model: it returned {type(out).__name__}")

    def _sequence(self, y, what: str, shape: tuple[int, int]):
        """y as (B, T, m) batch-first, (B, T) = shape, or the one-line error of a module that
        is not a sequence model (its output has no step axis of the inputs' length)."""
        if self.unbatched and y.ndim == 2:
            y = y[None]
        elif y.ndim == 3 and not self.batch_first:
            y = y.transpose(0, 1)
        if y.ndim != 3 or tuple(y.shape[:2]) != shape or not y.is_floating_point():
            expect = "(B, T, m)" if self.batch_first else "(T, B, m)"
            raise ModelError(f"model: {self.name} is not a sequence model: its {what} has shape "
                             f"{tuple(y.shape)}, expected {expect} with B = {shape[0]}, T = {shape[1]}")
        return y


def layer_list(model) -> list:
    """The model's layers: its top-most non-empty nn.ModuleList (Mamba's and RecurrentGemma's
    `layers`, GPT-2's `h`, xLSTM's `blocks`); [] without one."""
    torch = import_torch("layers")
    lists = [(name.count("."), m) for name, m in model.named_modules()
             if isinstance(m, torch.nn.ModuleList) and len(m)]
    return list(min(lists, key=lambda d: d[0])[1]) if lists else []


def float32_inside(model, inputs) -> bool:
    """Does `model`, cast to float64 (a copy), compute in float32 (or less) inside on `inputs`? One forward pass
    under a dispatch mode that records the dtype of every floating result: any of less than
    float64's precision means the outputs (and their gradients) are float32-accurate at best
    (a 1e-9 relative change of the inputs is lost in the cast). The pass runs over the first
    PREFIX steps: which dtypes a forward uses does not depend on the length."""
    torch = import_torch("float32_inside")
    call = inputs if isinstance(inputs, Call) else Call(float64_copy(model), inputs)
    low = {torch.float32, torch.float16, torch.bfloat16}
    seen = []

    class Watch(torch.utils._python_dispatch.TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in torch.utils._pytree.tree_leaves(out):
                if isinstance(t, torch.Tensor) and t.dtype in low:
                    seen.append(func)
            return out

    with torch.no_grad(), Watch():   # the dtypes do not depend on the length: a short prefix
        call.forward(call.x[:, :PREFIX])
    return bool(seen)
