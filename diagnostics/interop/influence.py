"""Lag influence of any PyTorch sequence model: log10 ||d y<t> / d x<t-k>|| for k = 0..K-1.

    res = lag_influence(model, xs, lags=100)              # exact
    res = lag_influence(model, xs, lags=100, estimator="sketch", rows=64)
    res.log10[("influence", "spectral")]                   # (anchors, sequences, K): lag 0..K-1
    res.summary("influence", "frobenius")

What it measures. The output y<t> at an anchor step t (the model's last_hidden_state, or the
`output` chosen) against the input x<t-k> k steps earlier: the input-to-output influence
through the whole model (every layer, norm, residual and mixing path), not the state-to-state
product ||d a<t>/d a<t-k>|| the probe measures inside a cell (memory.py reads that one for the
selective recurrences). Lag 0 is the direct term. The model is copied and cast to float64
(models.float64_copy); a model that computes in float32 inside is said so in the result
(`float32_inside`), its numbers float32-accurate.

Method. One reverse pass from a vector v on y<t> gives v^T d y<t>/d x<s> for every step s at
once, so each lag costs nothing extra: a row of every lag's Jacobian per vector-Jacobian
product (VJP). The VJPs are batched over the vectors (`is_grads_batched`, PyTorch's vmap over
the backward), in chunks sized so the batched backward stays near MEMORY bytes; where vmap
cannot run the backward, one VJP at a time (the same numbers). The sequences of a batch are
independent, so one VJP serves all of them (each sequence's vector on its own anchor row).

  exact   the m unit vectors of y<t> (m its width): every row of J_k = d y<t>/d x<t-k>; the
          spectral norm from the singular values of J_k, the Frobenius norm from its entries.
  sketch  q = `rows` Gaussian directions per sequence (drawn from `seed` and the sequence's
          index, as the probe's sketch): Z = QR(Ω^T), rows Z^T J_k; the Frobenius norm is
          Hutchinson's unbiased estimate with its LEVEL interval and standard error, the
          spectral norm the lower bound σ_max(Z^T J_k) (probing/estimator.py; here without
          its forward-mode refinement, p = 0: no forward-mode product is needed, and
          RecurrentGemma's custom autograd Function has none). An output no wider than
          `rows` is measured exactly.

Log space. Each lag's rows are divided by their largest |entry| before any square is formed,
so a norm of 1e-250 reads -250, not -inf; an exactly zero gradient reads -inf. The VJP itself
is float64: a gradient below ~1e-308 underflows to zero in PyTorch and reads -inf.
"""
from __future__ import annotations

import numpy as np

from ..optional import import_torch
from ..probing import estimator as est
from ..probing.parallel import single_threaded_blas
from .models import Call, ModelError, float32_inside, float64_copy
from .results import ModelResult

NORMS = ("spectral", "frobenius")
ESTIMATORS = ("exact", "sketch")
ROWS = 64
# bytes the batched backward of one chunk may take, measured as the forward's saved tensors
# times the chunk's vectors (vmap's backward holds about one copy of them per vector)
MEMORY = 1 << 30
# bytes of the rows kept for the exact spectral norm (every row of every lag's Jacobian)
ROWS_MEMORY = 4 << 30


def lag_influence(model, inputs, lags, *, anchors=None, norms=NORMS, estimator="exact", rows=ROWS, seed=0,
                  layers=False, output=None, device=None) -> ModelResult:
    """log10 ||d y<t>/d x<t-k>|| for k = 0..lags-1 at each anchor t (steps 1..T, default T),
    per sequence; see the module docstring. `inputs` as the model takes them (models.Call);
    `layers`: also each layer's output (paths "l{i}.influence", layer i of
    the model's layer list, as memory_paths numbers them); `output`: which
    of the model's outputs is y (default last_hidden_state, or the first tensor); `device`:
    where the float64 copy runs (default CPU). The user's model is not modified."""
    torch = import_torch("lag_influence")
    norms = _norms(norms)
    how = _estimator(estimator, rows, seed)
    m64 = float64_copy(model, device).requires_grad_(False)
    call = Call(m64, inputs, output=output, layers=layers, device=device)
    anchors, K = anchors_and_lags(call.T, anchors, lags)
    inside = float32_inside(m64, call)
    x = call.x.clone().requires_grad_(True)
    saved = [0]
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(saved_bytes(saved), lambda t: t):
        ys = call.forward(x)
    out, estimated, interval, rel = {}, {}, {}, {}
    for i, (path, y) in enumerate(ys.items()):
        sketch = how.kind == "sketch" and y.shape[2] > how.rows
        vectors, L = directions(y.shape[2], call.B, how, 1 + i) if sketch else (None, None)
        q = how.rows if sketch else y.shape[2]
        _check_rows(path, call.B * K * q * x.shape[2] * 8)
        chunk = chunk_size(saved[0], call.B * q)
        per = [anchor_rows(y, x, t, K, vectors, chunk) for t in anchors.tolist()]
        if sketch:
            got = [sketch_norms(r, L, norms) for r in per]
            for n in norms:
                estimated[(path, n)] = {**how.document(), "value": "hutchinson" if n == "frobenius" else "lower_bound"}
            if "frobenius" in norms:
                interval[(path, "frobenius")] = np.stack([g["interval"] for g in got])
                rel[(path, "frobenius")] = np.stack([g["rel_stderr"] for g in got])
        else:
            got = [exact_norms(r, norms) for r in per]
        for n in norms:
            out[(path, n)] = np.stack([g[n] for g in got])
    return ModelResult(np.arange(K), anchors, tuple(ys), norms, out, {}, np.zeros((anchors.size, call.B), bool),
                       estimated, interval, rel, kind="influence", float32_inside=inside, model=call.name)


def _norms(norms) -> tuple[str, ...]:
    norms = tuple([norms] if isinstance(norms, str) else norms)
    if not norms or any(n not in NORMS for n in norms):
        raise ModelError(f"norms: must be among {', '.join(NORMS)}, got {list(norms)}")
    return norms


def _estimator(kind, rows, seed) -> est.Estimator:
    if kind not in ESTIMATORS:
        raise ModelError(f"estimator: must be one of {', '.join(ESTIMATORS)}, got {kind!r}")
    try:
        return est.estimator(kind, rows, seed)
    except ValueError as e:   # rows, seed: the probe's own one-line checks
        raise ModelError(str(e)) from None


def anchors_and_lags(T: int, anchors, lags) -> tuple[np.ndarray, int]:
    """Anchors (steps 1..T, default [T]) and K (lags 0..K-1 need K <= the smallest anchor)."""
    try:
        anchors = np.array([T] if anchors is None else list(np.ravel(anchors)), dtype=int)
    except (TypeError, ValueError):
        raise ModelError(f"anchors: must be steps in 1..{T}, got {anchors!r}") from None
    if anchors.size == 0 or anchors.min() < 1 or anchors.max() > T:
        raise ModelError(f"anchors: must be steps in 1..{T}, got {anchors.tolist()}")
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)) or not 1 <= lags <= anchors.min():
        raise ModelError(f"lags: must be an integer in 1..{int(anchors.min())} (the smallest anchor), got {lags!r}")
    return anchors, int(lags)


def _check_rows(path: str, nbytes: int) -> None:
    if nbytes > ROWS_MEMORY:
        raise ModelError(f"lags: the exact {path} would keep {nbytes / 2**30:.1f} GB of Jacobian rows per anchor "
                         f"(over {ROWS_MEMORY / 2**30:.0f} GB); use estimator='sketch' or fewer lags")


def saved_bytes(total: list):
    """A saved-tensors pack hook adding up the bytes the forward keeps for the backward."""
    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t
    return pack


def chunk_size(saved: int, vectors: int) -> int:
    """Vectors per batched VJP: as many as keep ~`saved` bytes each under MEMORY, at least 1."""
    return int(max(1, min(vectors, MEMORY // max(saved, 1))))


def directions(m: int, B: int, how: est.Estimator, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """The sketch's rows per sequence: Z (B, m, r) orthonormal, from QR of Gaussian Ω^T
    (seed, the sequence's index, `stream`), and L (B, r, r) with Ω = L Z^T (estimator.bases
    with no forward-mode columns)."""
    omega_t = est.normal(how.seed, range(B), stream, (m, how.rows))
    return est.bases(np.zeros((B, m, 0)), omega_t)


def anchor_rows(y, x, t: int, K: int, vectors=None, chunk: int = 1, batched: bool = True) -> np.ndarray:
    """(B, K, q, d): row j of d y<t>/d x<t-k> for each sequence b and lag k, along the
    direction vectors[b, :, j] of y<t> (vectors (B, m, q); None: the m unit vectors, every
    row). VJPs of `chunk` vectors at a time, batched (vmap) unless `batched` is False or the
    model's backward cannot be vmapped."""
    torch = import_torch("lag_influence")
    B, _, m = y.shape
    v = (torch.eye(m, dtype=y.dtype, device=y.device).expand(B, m, m) if vectors is None
         else torch.as_tensor(vectors, dtype=y.dtype, device=y.device))
    q = v.shape[2]
    parts = []
    for start in range(0, q, chunk):
        stop = min(q, start + chunk)
        g = torch.zeros((stop - start,) + tuple(y.shape), dtype=y.dtype, device=y.device)
        g[:, :, t - 1, :] = v[:, :, start:stop].permute(2, 0, 1)
        parts.append(_vjps(y, x, g, batched))
    grads = torch.cat(parts)                            # (q, B, T, d)
    lagged = grads[:, :, t - K:t, :].flip(2)            # lag k at index k
    return lagged.permute(1, 2, 0, 3).detach().cpu().numpy()


def _vjps(y, x, g, batched: bool):
    """The VJPs g[i]^T dy/dx, (c, B, T, d): batched over i when vmap can run the backward."""
    torch = import_torch("lag_influence")
    if batched and g.shape[0] > 1:
        try:
            return torch.autograd.grad(y, x, g, retain_graph=True, is_grads_batched=True)[0]
        except (RuntimeError, NotImplementedError):
            pass   # an op without a batching rule in the backward: one at a time, the same numbers
    return torch.stack([torch.autograd.grad(y, x, gi, retain_graph=True)[0] for gi in g])


def _scaled(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """r (..., q, d) divided by each matrix's largest |entry|, and log10 of that (-inf: zero)."""
    big = np.abs(r).max(axis=(-2, -1))
    safe = np.where(big > 0, big, 1.0)
    with np.errstate(divide="ignore"):
        return r / safe[..., None, None], np.log10(big)


def exact_norms(r: np.ndarray, norms) -> dict:
    """{norm: (B, K)} log10 norms of each (q, d) Jacobian in r (B, K, q, d), every row given."""
    s, scale = _scaled(r)
    out = {}
    # one BLAS thread: many small SVDs; threaded ones stalled on the busy 2-core machine
    # (2 x 768 x 768: 2.7 s threaded, 0.6 s on one thread, load ~8)
    with np.errstate(divide="ignore"), single_threaded_blas():   # an exactly zero Jacobian: -inf
        _exact_into(out, s, scale, norms)
    return {n: np.where(np.isneginf(scale), -np.inf, v) for n, v in out.items()}


def _exact_into(out: dict, s: np.ndarray, scale: np.ndarray, norms) -> None:
    if "spectral" in norms:
        out["spectral"] = np.log10(np.linalg.svd(s, compute_uv=False)[..., 0]) + scale if s.size else scale
    if "frobenius" in norms:
        out["frobenius"] = 0.5 * np.log10(np.einsum("bkij,bkij->bk", s, s)) + scale


def sketch_norms(r: np.ndarray, L: np.ndarray, norms) -> dict:
    """{norm: (B, K)} from the sketch's rows r = Z^T J_k (B, K, q, d) and L (B, q, q): the
    Frobenius estimate with "interval" (B, K, 2) and "rel_stderr" (B, K), the spectral lower
    bound (see the module docstring)."""
    B, K, q, d = r.shape
    s, scale = _scaled(r)
    with single_threaded_blas():   # many small Gram matrices (see exact_norms)
        e = est.sketch_norms(s.reshape(B * K, q, d), np.repeat(L, K, axis=0))
    shape = (B, K)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"spectral": 0.5 * np.log10(e.spectral_sq).reshape(shape) + scale,
               "frobenius": 0.5 * np.log10(e.frobenius_sq).reshape(shape) + scale,
               "interval": np.stack([0.5 * np.log10(e.lo_sq).reshape(shape) + scale,
                                     0.5 * np.log10(e.hi_sq).reshape(shape) + scale], axis=-1),
               "rel_stderr": (e.stderr_sq / e.frobenius_sq).reshape(shape)}
    zero = np.isneginf(scale)
    for key in ("spectral", "frobenius"):
        out[key][zero] = -np.inf
    out["interval"][zero] = -np.inf
    out["rel_stderr"][zero] = np.nan
    return {k: v for k, v in out.items() if k in norms or k in ("interval", "rel_stderr")}
