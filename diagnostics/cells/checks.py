"""Is a cell true to its contract? The checks every built-in cell passes, for any cell.

    res = check_cell(cell, params)     # -> CellCheck
    res.ok                             # no check failed
    res.failures                       # one line per failed check:
        # vjp: 1 row: max relative error 1.6e+00 against M @ J, the cell's jacobian (tolerance 1e-12)
    print(res)                         # every check: passed, failed or skipped, and why
    check_jacobian(cell, params, state, x)   # the Jacobian alone -> JacobianCheck

Every reference is taken from `step` alone: complex step (h = 1e-30) where the cell says it
is `analytic`, exact to rounding, else central differences (h = 1e-6: O(h²) truncation and
O(eps/h) rounding, ~1e-10 of the entries for a smooth step). The checks run at a state the
cell reaches itself (4 steps from its initial state on N(0, 1) inputs, so a cell whose
state must keep a sign is checked where it does), and errors are relative to the largest
entry of the reference, per sequence where the quantity has one.

    check         what                                                  tolerance (complex / central)
    step          (B, S) float64, same bits twice, arguments untouched;  1e-6
                  an analytic step's complex-step derivative agrees with
                  central differences (else complex-step references lie)
    jacobian      against d step/d state                                1e-10 / 1e-6
    vjp           M @ J for 1, 5 and 12 rows, M column-major too, and   1e-12 (the cell's jacobian;
                  the declared `vjp_accepts` keywords                     without one, as jacobian)
    input_vjp     against M @ d step/d x                                1e-10 / 1e-6
    backward      g_prev against g J (as vjp); parameter and input      1e-10 / 1e-6
                  gradients of one step, and of a 4-step chain
    param_vjp     against the rows' derivatives of step in each θ       1e-10 / 1e-6
    log_diagonal  over 4 steps, each declared path's product P of       1e-10 / 1e-6
                  step Jacobians has P Pᵀ = diag(exp(2 Σ ln|d|)) (the
                  singular values the probe's fast path reports); and
                  each path kron_factors declares has P =
                  blockdiag_h(I_r ⊗ Π F_h) (the structure its fast path
                  chains)

A hook the cell does not have is skipped, with what the package does without it; a default
that runs through another hook (vjp through jacobian; input_vjp and param_vjp through
backward) is checked, since that is what the probe or the sensitivity will call. A check
whose hook raises fails with the exception's first line. `tol` replaces the tolerances: one
number for all, or {check: number}.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .base import Cell, overrides

COMPLEX_H, CENTRAL_H = 1e-30, 1e-6
REFERENCE_TOL = {"complex": 1e-10, "central": 1e-6}   # a hook against derivatives of step
CONSISTENCY_TOL = 1e-12     # two hand-written forms of one product: no differences involved
STEP_TOL = 1e-6             # complex step against central differences: is the step analytic?
WARMUP, CHAIN = 4, 4
ROWS = (1, 5, 12)           # on both sides of the LSTM vjp's switch of strategy
CHECKS = ("step", "jacobian", "vjp", "input_vjp", "backward", "param_vjp", "log_diagonal")


# --- the Jacobian alone (the older public check) ------------------------------------------
@dataclass(frozen=True)
class JacobianCheck:
    max_rel_error: float
    method: str
    ok: bool


def _method(cell: Cell, method: str = "auto") -> str:
    if method == "auto":
        return "complex" if cell.analytic else "central"
    if method not in ("complex", "central"):
        raise ValueError(f"method: must be auto, complex or central, got {method!r}")
    return method


def derivative(f: Callable, method: str, h: float | None = None) -> np.ndarray:
    """d f(ε)/dε at ε = 0 from f alone; f builds its arrays in the dtype of ε (complex for
    the complex step)."""
    if method == "complex":
        h = COMPLEX_H if h is None else h
        return np.asarray(f(1j * h)).imag / h
    h = CENTRAL_H if h is None else h
    return (np.asarray(f(h)) - np.asarray(f(-h))) / (2 * h)


def _as(a, eps) -> np.ndarray:
    return np.asarray(a).astype(np.result_type(eps, np.float64))


def _bump(a: np.ndarray, idx, eps) -> np.ndarray:
    out = _as(a, eps)
    out[idx] += eps
    return out


def reference_jacobian(cell: Cell, params, state: np.ndarray, x: np.ndarray,
                       method: str = "auto", h: float | None = None) -> tuple[np.ndarray, str]:
    """d state<t>/d state<t-1> (B, S, S) computed from `step` alone, independent of `jacobian`.

    complex-step: J[:, :, j] = Im(step(state + i h e_j)) / h, exact to rounding for analytic
    steps. central: (step(s + h e_j) - step(s - h e_j)) / 2h, for steps that are not analytic.
    """
    method = _method(cell, method)
    B, S = state.shape
    J = np.empty((B, S, S))
    for j in range(S):
        J[:, :, j] = derivative(lambda e, j=j: cell.step(params, _bump(state, (slice(None), j), e), _as(x, e))[0],
                                method, h)
    return J, method


def reference_input_jacobian(cell: Cell, params, state: np.ndarray, x: np.ndarray,
                             method: str = "auto", h: float | None = None) -> np.ndarray:
    """d state<t>/d x<t> (B, S, d) from `step` alone."""
    method = _method(cell, method)
    B, d = x.shape
    J = np.empty((B, state.shape[1], d))
    for j in range(d):
        J[:, :, j] = derivative(lambda e, j=j: cell.step(params, _as(state, e), _bump(x, (slice(None), j), e))[0],
                                method, h)
    return J


def reference_param_jacobians(cell: Cell, params, state: np.ndarray, x: np.ndarray,
                              method: str = "auto", h: float | None = None) -> dict[str, np.ndarray]:
    """∂⁺state<t>/∂θ, {name: (B, S, *shape)}: the immediate dependence, from `step` alone."""
    method = _method(cell, method)
    out = {}
    for name, v in params.items():
        J = np.empty(state.shape + np.shape(v))
        for idx in np.ndindex(np.shape(v)):
            def f(e, name=name, idx=idx):
                p = {k: (_bump(a, idx, e) if k == name else _as(a, e)) for k, a in params.items()}
                return cell.step(p, _as(state, e), _as(x, e))[0]
            J[(slice(None), slice(None)) + idx] = derivative(f, method, h)
        out[name] = J
    return out


def check_jacobian(cell: Cell, params, state: np.ndarray, x: np.ndarray, *,
                   method: str = "auto", rtol: float | None = None) -> JacobianCheck:
    """Compare `cell.jacobian` with a derivative taken from `cell.step` alone.

    The error is relative to the largest entry of the reference, per sequence. Default
    tolerance: 1e-10 for complex step, 1e-6 for central differences.
    """
    _, cache = cell.step(params, state, x)
    J = np.asarray(cell.jacobian(params, cache))
    R, used = reference_jacobian(cell, params, state, x, method)
    if J.shape != R.shape:
        raise ValueError(f"jacobian: shape {J.shape} where {R.shape} is expected")
    err = rel_error(J, R)
    tol = rtol if rtol is not None else REFERENCE_TOL[used]
    return JacobianCheck(err, used, err <= tol)


def rel_error(got, ref, per_sequence: bool = True) -> float:
    """max |got - ref| over the largest |ref|, per sequence (the leading axis) or overall.
    NaN anywhere gives NaN, which no tolerance passes."""
    got, ref = np.asarray(got), np.asarray(ref)
    if not per_sequence or ref.ndim == 0:
        got, ref = got.reshape(1, -1), ref.reshape(1, -1)
    diff = np.abs(got - ref).reshape(len(ref), -1).max(axis=1, initial=0.0)
    scale = np.maximum(np.abs(ref).reshape(len(ref), -1).max(axis=1, initial=0.0), 1e-300)
    return float(np.max(diff / scale))


# --- every check ----------------------------------------------------------------------------
class _Failure(Exception):
    """A check's one line (without its name)."""


class _Skip(Exception):
    """Why a check did not run."""


@dataclass(frozen=True)
class Outcome:
    check: str
    status: str          # "passed", "failed" or "skipped"
    detail: str = ""     # the failure, the reason for a skip, or how a default was reached

    def __str__(self) -> str:
        if self.status == "passed":
            return f"{self.check}: passed" + (f" ({self.detail})" if self.detail else "")
        return f"{self.check}: {self.detail}"


@dataclass(frozen=True)
class CellCheck:
    """What check_cell found: `ok`, one line per failure (`failures`), per skip (`skipped`)."""
    cell: str
    outcomes: tuple[Outcome, ...]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(str(o) for o in self.outcomes if o.status == "failed")

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(str(o) for o in self.outcomes if o.status == "skipped")

    @property
    def passed(self) -> tuple[str, ...]:
        return tuple(o.check for o in self.outcomes if o.status == "passed")

    def __str__(self) -> str:
        counts = ", ".join(f"{sum(o.status == s for o in self.outcomes)} {s}" for s in ("passed", "failed", "skipped"))
        return "\n".join([f"{self.cell}: {counts}"] + [f"  {o}" for o in self.outcomes])


class _Context:
    """The cell, its point (a reached state, CHAIN inputs) and references computed once."""

    def __init__(self, cell: Cell, params, rng: np.random.Generator, batch: int, tol):
        self.cell, self.params, self.batch, self.tol_override = cell, params, batch, tol
        self.seed = int(rng.integers(2**63))
        self.method = _method(cell)
        self.how = "complex step of step" if self.method == "complex" else "central differences of step"
        gen = self.rng("point")
        s = cell.initial_state(batch)
        for _ in range(WARMUP):
            s, _ = cell.step(params, s, gen.normal(size=(batch, cell.input_size)))
        self.state = np.asarray(s, dtype=np.float64)
        self.xs = gen.normal(size=(CHAIN, batch, cell.input_size))
        self.x = self.xs[0]

    def rng(self, check: str) -> np.random.Generator:
        """Each check's own stream, so running a subset draws the same numbers."""
        return np.random.default_rng([self.seed, (["point"] + list(CHECKS)).index(check)])

    def tol(self, check: str, default: float) -> float:
        t = self.tol_override
        if isinstance(t, Mapping):
            return float(t.get(check, default))
        return default if t is None else float(t)

    def has(self, hook: str) -> bool:
        return overrides(type(self.cell), hook)

    def compare(self, got, ref, tol: float, against: str, per_sequence: bool = True, what: str = "") -> None:
        if np.shape(got) != np.shape(ref):
            raise _Failure(f"{what}shape {np.shape(got)} where {np.shape(ref)} is expected")
        err = rel_error(got, ref, per_sequence)
        if not err <= tol:
            raise _Failure(f"{what}max relative error {err:.1e} against {against} (tolerance {tol:g})")

    @functools.cached_property
    def cache(self):
        return self.cell.step(self.params, self.state, self.x)[1]

    @functools.cached_property
    def R(self) -> np.ndarray:
        return reference_jacobian(self.cell, self.params, self.state, self.x, self.method)[0]

    @functools.cached_property
    def Jx(self) -> np.ndarray:
        return reference_input_jacobian(self.cell, self.params, self.state, self.x, self.method)

    @functools.cached_property
    def Jp(self) -> dict[str, np.ndarray]:
        return reference_param_jacobians(self.cell, self.params, self.state, self.x, self.method)

    def own_or_reference(self, check: str) -> tuple[np.ndarray, float, str]:
        """The J to compare a product with: the cell's jacobian (to rounding), else the reference."""
        if self.has("jacobian"):
            return np.asarray(self.cell.jacobian(self.params, self.cache)), self.tol(check, CONSISTENCY_TOL), \
                "M @ J, the cell's jacobian"
        return self.R, self.tol(check, REFERENCE_TOL[self.method]), f"M @ J, J the {self.how}"

    def run(self, p, s0):
        """state<CHAIN> and the caches from s0 on the chain's inputs (dtype of s0)."""
        caches, s = [], s0
        for x in self.xs:
            s, c = self.cell.step(p, s, x.astype(s.dtype))
            caches.append(c)
        return s, caches


def _rows(r: int, how: str = "") -> str:
    return f"{r} {how}row{'s' if r > 1 else ''}: "


def _check_step(c: _Context) -> str:
    cell, B, S = c.cell, c.batch, c.cell.state_size
    state, x = c.state.copy(), c.x.copy()
    out = cell.step(c.params, state, x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise _Failure(f"must return (state, cache), got {type(out).__name__}")
    new = out[0]
    if not isinstance(new, np.ndarray) or new.shape != (B, S) or new.dtype != np.float64:
        raise _Failure(f"state<t> must be a float64 array of shape {(B, S)}, got "
                       f"{getattr(new, 'dtype', type(new).__name__)} {getattr(new, 'shape', '')}".rstrip())
    if not (np.array_equal(state, c.state) and np.array_equal(x, c.x)):
        raise _Failure("changed its state or input argument in place")
    if not np.array_equal(cell.step(c.params, state, x)[0], new, equal_nan=True):
        raise _Failure("two calls on the same arguments gave different states")
    if c.method != "complex":
        return ""
    # along a random direction of (state, x); not of the parameters, whose real part a cell
    # may constrain (the sLSTM's block-diagonal W): their complex steps are backward's check
    gen = c.rng("step")
    vs, vx = gen.normal(size=state.shape), gen.normal(size=x.shape)

    def f(e):
        return cell.step(c.params, _as(state, e) + e * vs, _as(x, e) + e * vx)[0]
    try:
        cs = derivative(f, "complex")
    except Exception as e:
        raise _Failure(f"fails on complex input ({_one_line(e)}); a step that is not complex-analytic "
                       "sets analytic = False") from None
    err = rel_error(cs, derivative(f, "central"))
    tol = c.tol("step", STEP_TOL)
    if not err <= tol:
        raise _Failure(f"complex-step derivative differs from central differences by {err:.1e} "
                       f"(tolerance {tol:g}); a step that is not complex-analytic sets analytic = False")
    return ""


def _check_jacobian(c: _Context) -> str:
    if not c.has("jacobian"):
        raise _Skip("not provided: the probe takes the paths log_diagonal declares")
    c.compare(c.cell.jacobian(c.params, c.cache), c.R, c.tol("jacobian", REFERENCE_TOL[c.method]), c.how)
    return ""


def _check_vjp(c: _Context) -> str:
    if not (c.has("vjp") or c.has("jacobian")):
        raise _Skip("not provided, nor jacobian: only the paths log_diagonal declares can be probed")
    J, tol, against = c.own_or_reference("vjp")
    cell, gen, S = c.cell, c.rng("vjp"), c.cell.state_size
    extras = {"out", "scale", "absmax"} & set(cell.vjp_accepts)
    for r in ROWS:
        M = gen.normal(size=(c.batch, r, S))
        ref = M @ J
        Mf = np.ascontiguousarray(M.transpose(0, 2, 1)).transpose(0, 2, 1)    # as the probe keeps M
        for m, how in ((M, ""), (Mf, "column-major ")):
            c.compare(cell.vjp(c.params, c.cache, m), ref, tol, against, what=_rows(r, how))
            if not extras:
                continue
            kw = {"out": np.empty_like(M), "scale": np.linspace(0.5, 3.0, c.batch), "absmax": np.empty(c.batch)}
            kw = {k: v for k, v in kw.items() if k in extras}
            got = cell.vjp(c.params, c.cache, m, **kw)
            c.compare(got, ref * kw.get("scale", np.ones(c.batch))[:, None, None], tol, against,
                      what=f"{_rows(r, how)}with {', '.join(sorted(kw))}: ")
            if "out" in kw and got is not kw["out"]:
                raise _Failure("with out: the result is not the `out` array")
            if "absmax" in kw and not np.array_equal(kw["absmax"], np.abs(got).max(axis=(1, 2))):
                raise _Failure("with absmax: it is not each sequence's largest |entry| of the result")
    return "" if c.has("vjp") else "Cell's default, through jacobian"


def _check_input_vjp(c: _Context) -> str:
    if not (c.has("input_vjp") or c.has("backward")):
        raise _Skip("not provided, nor backward: the cell cannot sit above another in a stack")
    gen, tol = c.rng("input_vjp"), c.tol("input_vjp", REFERENCE_TOL[c.method])
    for r in ROWS:
        M = gen.normal(size=(c.batch, r, c.cell.state_size))
        c.compare(c.cell.input_vjp(c.params, c.cache, M), M @ c.Jx, tol, f"M @ d step/d x, the {c.how}",
                  what=_rows(r))
    return "" if c.has("input_vjp") else "Cell's default, through backward"


def _grads_of(out, params) -> tuple:
    if not (isinstance(out, tuple) and len(out) == 3):
        raise _Failure(f"must return (g_prev, grads, g_x), got {type(out).__name__}")
    g_prev, grads, g_x = out
    if set(grads) != set(params):
        raise _Failure(f"gradients of {sorted(grads)} where the parameters are {sorted(params)}")
    return g_prev, grads, g_x


def _check_backward(c: _Context) -> str:
    if not c.has("backward"):
        raise _Skip("not provided (training only): the cell cannot be trained")
    cell, params, gen = c.cell, c.params, c.rng("backward")
    tol = c.tol("backward", REFERENCE_TOL[c.method])
    w = gen.normal(size=c.state.shape)
    g_prev, grads, g_x = _grads_of(cell.backward(params, c.cache, w), params)
    J, jtol, against = c.own_or_reference("backward")
    c.compare(g_prev, np.einsum("bi,bij->bj", w, J), jtol, against.replace("M @", "g @"), what="g_prev: ")
    for name in sorted(params):
        c.compare(grads[name], np.einsum("bi,bi...->...", w, c.Jp[name]), tol, c.how, per_sequence=False,
                  what=f"gradient of {name}: ")
    c.compare(g_x, np.einsum("bi,bij->bj", w, c.Jx), tol, c.how, what="input gradient: ")
    # a chain of steps: what the trainer does (a backward that disturbs a cache shows here)
    _, caches = c.run(params, c.state)
    g, total = w, {k: np.zeros(np.shape(v)) for k, v in params.items()}
    for cache in reversed(caches):
        g, grads, _ = _grads_of(cell.backward(params, cache, g), params)
        for k in total:
            total[k] += grads[k]
    for name, v in sorted(params.items()):
        ref = np.empty(np.shape(v))
        for idx in np.ndindex(np.shape(v)):
            ref[idx] = derivative(lambda e, name=name, idx=idx: np.sum(w * c.run(
                {k: (_bump(a, idx, e) if k == name else _as(a, e)) for k, a in params.items()},
                _as(c.state, e))[0]), c.method)
        c.compare(total[name], ref, tol, c.how, per_sequence=False,
                  what=f"{CHAIN}-step chain, gradient of {name}: ")
    ref_s = np.empty(c.state.shape)
    for idx in np.ndindex(c.state.shape):
        ref_s[idx] = derivative(lambda e, idx=idx: np.sum(w * c.run({k: _as(a, e) for k, a in params.items()},
                                                                    _bump(c.state, idx, e))[0]), c.method)
    c.compare(g, ref_s, tol, c.how, what=f"{CHAIN}-step chain, gradient of the first state: ")
    return ""


def _check_param_vjp(c: _Context) -> str:
    if not (c.has("param_vjp") or c.has("backward")):
        raise _Skip("not provided, nor backward: no state sensitivity")
    gen, tol, names = c.rng("param_vjp"), c.tol("param_vjp", REFERENCE_TOL[c.method]), sorted(c.params)
    m = gen.normal(size=(c.batch, 4, c.cell.state_size))
    m[0, 1] = 0.0                 # a zero row, which the default skips
    got = c.cell.param_vjp(c.params, c.cache, m, names)
    for name in names:
        c.compare(got[name], np.einsum("bri,bi...->br...", m, c.Jp[name]), tol, f"rows of the {c.how}",
                  what=f"{name}: ")
    return "" if c.has("param_vjp") else "Cell's default, through backward"


def _check_log_diagonal(c: _Context) -> str:
    """The structured paths: those log_diagonal declares diagonal and those kron_factors
    declares Kronecker (one check, since both are ways of the probe's fast path)."""
    cell, params = c.cell, c.params
    declared = cell.log_diagonal(params, c.cache) or {}
    kron = cell.kron_factors(params, c.cache) or {}
    if not declared and not kron:
        if not c.has("jacobian"):
            raise _Failure("declares no path, and the cell has no jacobian: the probe has no way to it")
        raise _Skip("declares no diagonal path: the probe takes the dense chain")
    unknown = sorted((set(declared) | set(kron)) - set(cell.paths))
    if unknown:
        raise _Failure(f"declares {', '.join(unknown)}, not among the cell's paths {', '.join(cell.paths)}")
    if not c.has("jacobian") and (left := [p for p in cell.paths if p not in declared and p not in kron]):
        raise _Failure(f"the cell has no jacobian, so every path must be declared; {', '.join(left)} is not")
    # CHAIN steps: per step the logs and the reference Jacobian, at the states the chain passes
    tol = c.tol("log_diagonal", REFERENCE_TOL[c.method])
    s, logs, factors, Rs = c.state, [], [], []
    for x in c.xs:
        Rs.append(reference_jacobian(cell, params, s, x, c.method)[0])
        s, cache = cell.step(params, s, x)
        logs.append(cell.log_diagonal(params, cache) or {})
        factors.append(cell.kron_factors(params, cache) or {})
    S = cell.state_size
    for path in sorted(declared):
        blk, direct = cell.path_block(path), path in cell.direct_paths
        width = len(range(S)[blk])
        if any(np.shape(lg[path]) != (c.batch, width) for lg in logs):
            raise _Failure(f"path {path}: shape {np.shape(logs[0][path])} where {(c.batch, width)} is expected")
        run = sum(np.asarray(lg[path]) for lg in logs)
        err = _diagonal_error(_product(Rs, blk, S, direct), run)
        if not err <= tol:
            raise _Failure(f"path {path}: max relative error {err:.1e} of P Pᵀ against diag(exp(2 Σ ln|d|)), "
                           f"P the {c.how} over {CHAIN} steps (tolerance {tol:g})")
    for path in sorted(kron):
        blk = cell.path_block(path)
        err = _kron_error(cell, path, [f[path] for f in factors], _product(Rs, blk, S, path in cell.direct_paths),
                          c.batch)
        if not err <= tol:
            raise _Failure(f"path {path}: max relative error {err:.1e} of blockdiag(I ⊗ Π F) against P, "
                           f"P the {c.how} over {CHAIN} steps (tolerance {tol:g})")
    return ""


def _product(Rs, blk: slice, S: int, direct: bool) -> np.ndarray:
    """The path's block of the product of the step Jacobians Rs (oldest first); for a direct
    path the product of that block's own step factors."""
    width = len(range(S)[blk])
    P = np.eye(width if direct else S)
    for R in Rs:
        P = (R[:, blk, blk] if direct else R) @ P
    return P if direct else P[:, blk, blk]


def _kron_error(cell: Cell, path: str, factors: list, P: np.ndarray, batch: int) -> float:
    """How far the product P (B, w, w) is from blockdiag_h(I_r ⊗ F_h(t) ... F_h(1)), the
    structure kron_factors declares (Cell.kron_factors), relative to P's largest entry."""
    F = [np.asarray(f) for f in factors]
    B, H, m, m2 = F[0].shape
    w = P.shape[-1]
    if B != batch or m != m2 or any(f.shape != F[0].shape for f in F) or w % (H * m):
        raise _Failure(f"path {path}: factors of shape {F[0].shape} where (B={batch}, H, m, m) with H m dividing "
                       f"the path's width {w} is expected")
    r = w // (H * m)
    Q = np.broadcast_to(np.eye(m), (B, H, m, m))
    for f in F:
        Q = f @ Q
    ref = np.zeros_like(P)
    for h in range(H):
        for j in range(r):
            o = (h * r + j) * m
            ref[:, o:o + m, o:o + m] = Q[:, h]
    return rel_error(ref, P)


def _diagonal_error(P: np.ndarray, run: np.ndarray) -> float:
    """How far P Pᵀ is from diag(exp(2 run)), entry by entry relative to exp(run_i + run_j);
    a row whose run is -inf (an exact zero) must be zero, relative to the largest exp(run)."""
    e = np.exp(run)                                      # (B, m); -inf -> 0
    G = P @ np.swapaxes(P, 1, 2)
    eye = np.eye(run.shape[1])
    zero = e == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        N = G / (e[:, :, None] * e[:, None, :])
    N = np.where(zero[:, :, None] | zero[:, None, :], eye, N)      # the zero rows: below
    rows = np.sqrt(np.abs(np.diagonal(G, axis1=1, axis2=2)))
    top = np.maximum(e.max(axis=1, keepdims=True), 1e-300)
    dead = np.where(zero, rows / top, 0.0)
    return float(max(np.abs(N - eye).max(initial=0.0), dead.max(initial=0.0)))


RUNNERS = {"step": _check_step, "jacobian": _check_jacobian, "vjp": _check_vjp, "input_vjp": _check_input_vjp,
           "backward": _check_backward, "param_vjp": _check_param_vjp, "log_diagonal": _check_log_diagonal}


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def cell_label(cell) -> str:
    """The cell's class and the options that differ from their defaults: `LSTM(hidden=4, forget_gate=False)`."""
    if isinstance(cell, tuple):
        return f"({', '.join(cell_label(c) for c in cell)})"
    if not (isinstance(cell, Cell) and dataclasses.is_dataclass(cell)):
        return repr(cell)
    opts = []
    for f in dataclasses.fields(cell):
        v = getattr(cell, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if f.init and (default is dataclasses.MISSING or v != default):
            opts.append(f"{f.name}={cell_label(v)}")
    return f"{type(cell).__name__}({', '.join(opts)})"


def check_cell(cell: Cell, params, *, rng: np.random.Generator | None = None, batch: int = 3,
               tol: float | Mapping[str, float] | None = None, checks=None) -> CellCheck:
    """Run on `cell` every check the built-in cells pass (the module docstring lists them and
    their tolerances) and say what failed, one line per check.

    rng: draws the point and the test rows (default: seed 0, so the result repeats). batch:
    sequences per check. tol: one tolerance for every check, or {check: tolerance}; None for
    the stated ones. checks: the names to run (default: all, in the order of CHECKS)."""
    if not isinstance(cell, Cell):
        raise TypeError(f"check_cell: cell must be a Cell, got {type(cell).__name__}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch: must be a positive integer, got {batch!r}")
    names = CHECKS if checks is None else tuple(checks)
    for n in names:
        if n not in RUNNERS:
            raise ValueError(f"checks: {n!r} is not a check; expected some of {', '.join(CHECKS)}")
    rng = np.random.default_rng(0) if rng is None else rng
    try:
        ctx = _Context(cell, params, rng, batch, tol)
    except Exception as e:     # the point is reached by `step`: nothing else can run
        return CellCheck(cell_label(cell), (Outcome("step", "failed", f"raised {_one_line(e)} while reaching a "
                                                    "state to check at"),) +
                         tuple(Outcome(n, "skipped", "step failed") for n in names if n != "step"))
    outcomes = []
    for n in names:
        try:
            outcomes.append(Outcome(n, "passed", RUNNERS[n](ctx)))
        except _Skip as e:
            outcomes.append(Outcome(n, "skipped", str(e)))
        except _Failure as e:
            outcomes.append(Outcome(n, "failed", str(e)))
        except Exception as e:    # the cell's own code raised: its line, not a traceback
            outcomes.append(Outcome(n, "failed", f"raised {_one_line(e)}"))
    return CellCheck(cell_label(cell), tuple(outcomes))
