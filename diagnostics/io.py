"""Atomic file writes: a temporary file in the same folder, then os.replace.

A run killed mid-way therefore leaves the previous file intact, never a half-written one.
"""
from __future__ import annotations

import errno
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any, Callable

import numpy as np


def create_unique(folder: Path, prefix: str, suffix: str, create: Callable[[Path], Any]):
    """(path, create(path)) for a new random name folder/prefix...suffix; `create` must make the
    entry and fail with FileExistsError if it is taken. Unlike tempfile.mkstemp / mkdtemp
    (0600 / 0700), the caller passes an ordinary mode (0666 for a file, 0777 for a folder) and
    the kernel applies the umask: the modes of a plain open() or mkdir, without reading or
    changing the process-wide umask (changing it, even for a moment, races with other threads)."""
    for _ in range(100):
        path = Path(folder) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            return path, create(path)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free name {prefix}*{suffix} in {folder}")


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp, fd = create_unique(path.parent, f".{path.name}.", ".tmp", lambda p: os.open(p, _NEW_FILE, 0o666))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """Replace non-finite floats by None (null) and numpy scalars/arrays by plain Python values,
    so a file never holds NaN or Infinity."""
    if isinstance(obj, np.ndarray):
        return [json_safe(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Deterministic JSON: finite floats only, sorted keys off (order is part of the contract),
    repr-exact floats so a rerun is byte-identical."""
    return json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps(obj))
