"""Reading weight files and input sequences, with one-line errors naming the file and the key.

    read_state_dict("model.safetensors")   # {name: float64 array}; .pt/.pth/.bin, .safetensors, .npz
    read_inputs("xs.npy", input_size=2)    # (T, B, d) float64

No file is ever unpickled with code: .pt/.pth/.bin go through torch.load(weights_only=True),
which only rebuilds tensors and plain containers; .npz through np.load(allow_pickle=False);
.safetensors through the safetensors package's numpy reader (no torch needed). Floating
arrays are read as float64 whatever their stored precision.
"""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import DiagnosticsError
from ..optional import OptionalMissing, import_torch

TORCH_SUFFIXES = (".pt", ".pth", ".bin")
SUFFIXES = TORCH_SUFFIXES + (".safetensors", ".npz")


class WeightsError(DiagnosticsError):
    """A weight or input file that cannot be used; the message is one line naming the file,
    the key or value, and what was expected (the CLI prints it and exits 2)."""


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0].strip() if text else type(e).__name__


def listing(names, limit: int = 12) -> str:
    """'a, b, c' with at most `limit` names shown (the rest counted), sorted, on one line."""
    names = sorted(names)
    shown = ", ".join(names[:limit]) or "(none)"
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def _existing(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"{p}: no such file")
    if not p.is_file():
        raise WeightsError(f"{p}: not a file")
    return p


def _as_float64(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a


def read_state_dict(path) -> dict[str, np.ndarray]:
    """{name: array} from a weight file, floating arrays as float64 (see the module docstring).
    Nested mappings (a checkpoint {"model": state_dict, "epoch": 3}) are flattened with dots;
    leaves that are not tensors are left out."""
    p = _existing(path)
    suffix = p.suffix.lower()
    if suffix in TORCH_SUFFIXES:
        raw = _read_torch(p)
    elif suffix == ".safetensors":
        raw = _read_safetensors(p)
    elif suffix == ".npz":
        raw = _read_npz(p)
    else:
        raise WeightsError(f"{p}: unknown weight file type {suffix or '(no suffix)'!r}; expected one of {', '.join(SUFFIXES)}")
    return {k: _as_float64(v) for k, v in raw.items()}


def _read_torch(p: Path) -> dict[str, np.ndarray]:
    try:
        torch = import_torch(f"reading a {p.suffix} file")
    except OptionalMissing as e:
        raise WeightsError(f"{p}: {e}") from None
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's weights-only unpickler names the class a pickle would have to import and run
        needs = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if needs:
            raise WeightsError(f"{p}: the pickle needs code to load ({needs[1]}), which is never run "
                               "(torch.load with weights_only=True); save model.state_dict() instead") from None
        detail = re.search(r"WeightsUnpickler error: \s*(.+)", str(e))
        raise WeightsError(f"{p}: not a readable PyTorch file ({detail[1].strip() if detail else first_line(e)})") from None
    except Exception as e:   # torch raises KeyError, RuntimeError, EOFError ... on damaged files
        raise WeightsError(f"{p}: not a readable PyTorch file ({type(e).__name__}: {first_line(e)})") from None
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{p}: expected a state_dict (a mapping of names to tensors), found a {type(obj).__name__}")
    out: dict[str, np.ndarray] = {}
    _flatten(p, obj, "", out, torch)
    return out


def _flatten(p: Path, obj: Mapping, prefix: str, out: dict, torch) -> None:
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, torch.Tensor):
            out[name] = _tensor_array(p, name, v, torch)
        elif isinstance(v, Mapping):
            _flatten(p, v, name + ".", out, torch)


def _tensor_array(p: Path, name: str, v, torch) -> np.ndarray:
    """A tensor as a numpy array; WeightsError naming it for the kinds numpy has no array of
    (sparse, quantized, nested). A sparse tensor is not densified: its dense size is not bounded."""
    if v.layout != torch.strided:
        raise WeightsError(f"{p}: tensor {name!r} is {str(v.layout).removeprefix('torch.')}, not dense; "
                           "save dense tensors (tensor.to_dense())")
    try:
        v = v.detach().cpu()
        return (v.to(torch.float64) if v.is_floating_point() else v).numpy()
    except Exception as e:   # quantized (QInt8), nested, ... tensors
        raise WeightsError(f"{p}: tensor {name!r} cannot be read as an array ({first_line(e)}); "
                           "save plain dense tensors") from None


def _read_safetensors(p: Path) -> dict[str, np.ndarray]:
    try:
        from safetensors.numpy import (
            load_file,  # only for a .safetensors file: `import diagnostics.weights` loads neither it nor torch
        )
        return load_file(str(p))
    except Exception as e:
        # numpy has no bfloat16: torch, where present, reads those files
        try:
            import torch  # noqa: F401
            from safetensors.torch import load_file as load_torch
        except ImportError:
            raise WeightsError(f"{p}: not a readable .safetensors file ({first_line(e)})") from None
        try:
            return {k: (v.to(torch.float64) if v.is_floating_point() else v).numpy()
                    for k, v in load_torch(str(p)).items()}
        except Exception as e2:
            raise WeightsError(f"{p}: not a readable .safetensors file ({first_line(e2)})") from None


def _read_npz(p: Path) -> dict[str, np.ndarray]:
    with _open_npz(p) as z:
        return {k: _npz_array(p, z, k) for k in z.files}


def _open_npz(p: Path):
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:
        raise WeightsError(f"{p}: not a readable .npz file ({first_line(e)})") from None


def _npz_array(p: Path, z, key: str) -> np.ndarray:
    try:
        return z[key]
    except ValueError:   # object arrays need pickle, which is refused
        raise WeightsError(f"{p}: array {key!r} holds Python objects, which would need pickle (refused); "
                           "store numeric arrays") from None
    except Exception as e:
        raise WeightsError(f"{p}: array {key!r} is not readable ({first_line(e)})") from None


def read_inputs(path, input_size: int | None, key: str | None = None) -> np.ndarray:
    """User sequences (T, B, d) = (steps, sequences, features) as float64, from .npy or .npz
    (`key` names the array of an .npz holding several). Time-major, like the probe's xs.
    input_size None: any width (a model that states none)."""
    p, key, a = _one_array(path, key)
    where = f"{p}" + (f" [{key}]" if key is not None else "")
    return check_inputs(a, input_size, where)


def read_tokens(path, vocab: int | None, key: str | None = None) -> np.ndarray:
    """Token ids (T, B) = (steps, sequences) as int64 from .npy or .npz, each in 0..vocab-1."""
    p, key, a = _one_array(path, key)
    where = f"{p}" + (f" [{key}]" if key is not None else "")
    if not np.issubdtype(a.dtype, np.integer) or a.ndim != 2 or a.size == 0:
        raise WeightsError(f"{where}: token ids must be integers of shape (T, B) = (steps, sequences), "
                           f"got {a.dtype} of shape {a.shape}")
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or (vocab is not None and hi >= vocab):
        raise WeightsError(f"{where}: token ids must lie in 0..{vocab - 1 if vocab is not None else 'the vocabulary'}"
                           f" (the model's embedding), got {lo if lo < 0 else hi}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _one_array(path, key: str | None):
    """(path, key, the array) of a .npy, or of the .npz array `key` (the only one when None)."""
    p = _existing(path)
    suffix = p.suffix.lower()
    if suffix == ".npy":
        if key is not None:
            raise WeightsError(f"{p}: key {key!r} given, but a .npy file holds one array")
        try:
            a = np.load(p, allow_pickle=False)
        except ValueError as e:
            raise WeightsError(f"{p}: the array holds Python objects, which would need pickle (refused)"
                               if "pickle" in str(e) else f"{p}: not a readable .npy file ({first_line(e)})") from None
        except Exception as e:
            raise WeightsError(f"{p}: not a readable .npy file ({first_line(e)})") from None
    elif suffix == ".npz":
        with _open_npz(p) as z:
            names = list(z.files)
            if key is None and len(names) != 1:
                raise WeightsError(f"{p}: holds {len(names)} arrays ({listing(names)}); name the inputs with key")
            key = names[0] if key is None else key
            if key not in names:
                raise WeightsError(f"{p}: no array {key!r}; found {listing(names)}")
            a = _npz_array(p, z, key)
    else:
        raise WeightsError(f"{p}: unknown inputs file type {suffix or '(no suffix)'!r}; expected .npy or .npz")
    return p, key, a


def check_inputs(a: Any, input_size: int | None, where: str = "inputs") -> np.ndarray:
    """a as a (T, B, input_size) float64 array, or WeightsError naming `where` and the shape."""
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)) or a.dtype == bool:
        raise WeightsError(f"{where}: inputs must be numbers, got dtype {a.dtype}")
    if a.ndim != 3:
        raise WeightsError(f"{where}: inputs must have 3 axes (T, B, {input_size or 'd'}) = (steps, sequences, "
                           f"features), got shape {a.shape}")
    if input_size is not None and a.shape[2] != input_size:
        raise WeightsError(f"{where}: inputs have {a.shape[2]} features per step (shape {a.shape}), "
                           f"the model expects {input_size}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise WeightsError(f"{where}: inputs need at least one step and one sequence, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float64)
    if not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise WeightsError(f"{where}: inputs must be finite, got {a[bad]} at index {bad}")
    return a
