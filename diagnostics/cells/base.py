"""The contract every recurrent cell honours.

A cell is a frozen description (sizes and options) plus pure functions of explicit
parameters and state, in the manner of equinox/flax cells:

    params          = cell.init(rng)                    # dict of read-only float64 arrays
    state           = cell.initial_state(B)             # (B, S)
    state, cache    = cell.step(params, state, x)       # x: (B, d)
    J               = cell.jacobian(params, cache)      # (B, S, S) = d state<t> / d state<t-1>
    M @ J           = cell.vjp(params, cache, M)        # M: (B, r, S), r rows at once
    J @ V           = cell.jvp(params, cache, V)        # V: (B, S, p), p columns at once
    M @ dstate/dx   = cell.input_vjp(params, cache, M)  # (B, r, d): for stacked layers
    g_prev, grads, g_x = cell.backward(params, cache, g)  # one BPTT step, g: (B, S)
    {θ: M ∂⁺state/∂θ} = cell.param_vjp(params, cache, M, names)  # per sequence and row (B, r, ...)
    {path: ln|d|}   = cell.log_diagonal(params, cache)  # paths whose step factor is diagonal
    {path: F}       = cell.kron_factors(params, cache)  # paths whose step factor is I_r ⊗ F per group

Which of these a cell must supply and which are optional is in the Cell docstring;
`check_cell(cell, params)` (diagnostics/cells/checks.py) checks every one a cell has.

The state is one array: a<t> for the RNN and GRU (S = n), [a<t>; c<t>] for the LSTM (S = 2n).
`blocks` says where each named part of the state lives, so the probe can cut the a- and
c-blocks out of a product of full-state Jacobians.

Cells whose output is not their state. In Mamba (y<t> = C<t> h<t> + D x<t>), Gated DeltaNet
(S<t>^T q<t>) and the mLSTM (h<t> = C<t> q<t> / max(...)) the output is not fed back, and a path
"a" would mean nothing. Such a cell carries its output as a block of the state that no step
reads (its columns of the step Jacobian are zero) and names it in `output_block`: that block
is what the trainer's linear read-out sees, what the state's sensitivity differentiates and
what a layer above it in a stack reads. Its memory is the block "state", whose path is
d S<t>/d S<t-k> (`path_block`: the block named "state", else the whole state); the block
triangular step Jacobian (nothing reads y<t-1>) makes that block of the full product the
product of the state blocks. Its decay path (`decay_path`, for the report, the horizon and
the summaries) is "state" where it has no "a". Today's cells are unchanged: their output is
the a-block, and "state" is their whole state.

`vjp` exists because the probe multiplies r rows by a Jacobian at every lag: each step's
Jacobian is diagonals times weights shared by the whole batch, so M @ J is one large matrix
product over (B * r) rows instead of B dense n x n products.
"""
from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Mapping

import numpy as np
from scipy.special import expit, log_expit

from ..documents import decay_path
from ..options import INIT_KINDS, Init, options_model, validate

Params = Mapping[str, np.ndarray]
Cache = Any


def freeze(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mark every array read-only so a cell can never mutate its parameters in place."""
    out = {}
    for k, v in params.items():
        a = np.array(v, dtype=np.float64, copy=True)
        a.setflags(write=False)
        out[k] = a
    return out


def _exp_minus_abs(z: np.ndarray) -> np.ndarray:
    """e^-|z| for real z; for complex z, e^-z or e^z by the sign of Re z (analytic on each
    side, and never above 1 in modulus): the one exponential the stable forms below need."""
    if np.iscomplexobj(z):
        return np.exp(np.where(z.real >= 0, -z, z))
    return np.exp(-np.abs(z))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function; analytic, so complex-step derivatives pass straight through.

    Real input goes to scipy's expit: overflow-free, accurate for tiny gates (a 0.5 + 0.5 tanh
    form would lose relative precision there) and one ufunc pass instead of masked halves.
    Complex input (complex-step checks) takes, on each side of Re z = 0, the form whose
    exponential cannot overflow. A gate's complement 1 - σ(z) is sigmoid(-z), never a
    subtraction: σ(40) rounds to 1, so 1 - σ(40) gives 0 where the exact value is 4.2e-18.
    """
    if np.iscomplexobj(z):
        w = _exp_minus_abs(z)
        return np.where(z.real >= 0, 1.0 / (1.0 + w), w / (1.0 + w))
    return expit(z)


def log_sigmoid(z: np.ndarray) -> np.ndarray:
    """ln σ(z) from z itself, never the log of a rounded σ: exact where σ underflows or rounds
    to 1. Real input: scipy's log_expit; complex: -ln(1 + e^-z) or z - ln(1 + e^z) by the sign
    of Re z."""
    if np.iscomplexobj(z):
        return np.where(z.real >= 0, 0.0, z) - np.log1p(_exp_minus_abs(z))
    return log_expit(z)


def sigmoid_slope(z: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """σ'(z) = σ(z) σ(-z) = w / (1 + w)² with w = e^-|z| (σ' is even): accurate to rounding
    for every z. σ(z) (1 - σ(z)) is 0 at z = 40, where the exact value is 4.2e-18. `scale`
    gives σ'(scale z) (tanh_slope's 2z) without a temporary; in place after the exponential
    (a step computes several of these, at a few passes over (B, n) each)."""
    if np.iscomplexobj(z):
        w = _exp_minus_abs(scale * z)
    else:
        w = np.abs(z)
        w *= -scale
        np.exp(w, out=w)
    d = w + 1.0
    d *= d
    w /= d
    return w


def tanh_slope(z: np.ndarray) -> np.ndarray:
    """tanh'(z) = 4 σ'(2z) = sech²(z), accurate to rounding for every z. 1 - tanh²(z) loses
    relative precision from |z| ~ 3 and is 0 from |z| ~ 19, where the exact value is 1.3e-16."""
    w = sigmoid_slope(z, 2.0)
    w *= 4.0
    return w


def diagonal_matrices(d: np.ndarray) -> np.ndarray:
    """(B, n) diagonals -> (B, n, n) matrices: the Jacobian of a cell whose step is diagonal."""
    J = np.zeros(d.shape + (d.shape[-1],), dtype=d.dtype)
    idx = np.arange(d.shape[-1])
    J[:, idx, idx] = d
    return J


def weights_times(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """w @ v[b] for every sequence b, w (R, n) shared, v (B, n, p) -> (B, R, p): one GEMM over
    all B p columns instead of B small ones."""
    B, n, p = v.shape
    out = w @ v.transpose(1, 0, 2).reshape(n, B * p)
    return out.reshape(w.shape[0], B, p).transpose(1, 0, 2)


def leading_w_names(params) -> list[str]:
    """The names of the matrices acting on a<t-1>: by convention every cell names them with a
    leading W (W_a, W), the input ones with U."""
    return sorted(k for k in params if k.startswith("W"))


def overrides(cls: type, name: str) -> bool:
    """True when a cell class supplies its own `name` instead of Cell's default."""
    return getattr(cls, name) is not getattr(Cell, name)


PROBE_ROUTE = ("a way to the probe: jacobian(params, cache) -> (B, S, S), or log_diagonal(params, cache) "
               "(or kron_factors) declaring every path structured")


def _has_probe_route(cls: type) -> bool:
    return overrides(cls, "jacobian") or overrides(cls, "log_diagonal") or overrides(cls, "kron_factors")


def missing(cls: type) -> list[str]:
    """What a cell class lacks of the required contract (empty when it is complete): its
    abstract methods by name, and a way to the probe."""
    return sorted(getattr(cls, "__abstractmethods__", ())) + ([] if _has_probe_route(cls) else [PROBE_ROUTE])


class Cell(abc.ABC):
    """Base class; subclasses are frozen dataclasses whose typed init fields (`input_size`,
    `hidden` and the options) are the cell's one declaration of its options (see
    diagnostics/options.py): they are validated here, on construction, and the case schema,
    `diag list` and `diag schema` are built from them.

    Required: a class without these cannot be constructed (nor registered), and the error
    names what is missing. Checked then, as Python checks abstract methods, not at class
    definition, so an intermediate class may leave them to its subclasses.
        init(rng)                   abstract: the parameters
        step(params, state, x)      abstract: the new state and a cache; it must take complex
                                    arrays when `analytic` (complex-step checks)
        a way to the probe          `jacobian` (the dense step Jacobian), or `log_diagonal`
                                    declaring every path of `paths` diagonal, so a cell with a
                                    very wide diagonal state needs no dense Jacobian

    Optional hooks: whom each serves, and what the package does without it.
        vjp           speed     the probe multiplies by the dense jacobian (B dense products)
        input_vjp     speed     a stack calls backward once per row for its layer below
        backward      training  the cell cannot be trained; nor param_vjp's default
        param_vjp     speed     the state's sensitivity calls backward once per sequence and row
        log_diagonal  speed     every path takes the probe's dense chain; no c_direct path
        kron_factors  speed     every path takes the probe's dense chain: O(S^2) per row and lag
        jvp           speed     the sketch's forward pass (probing/estimator.py) multiplies by the
                                dense jacobian (B dense products per step)

    Declarations with defaults: `kind` (the registry name: a registered class declares its
    own), `analytic`, `parallel_safe`, `vjp_accepts`, `blocks`, `paths`, `output_block`,
    `readout_size`, `direct_paths`, `path_block`, `decay_path`, `recurrent_names`,
    `recurrent_weight`, `activation_gamma`, `describe`."""

    kind: ClassVar[str] = "cell"
    input_size: int
    hidden: int
    # True when step/vjp/jacobian are pure (no shared mutable state, results only through
    # return values), so the probe may split a batch over forked processes or threads; a
    # user's cell opts in by setting it
    parallel_safe: ClassVar[bool] = False
    # the keyword arguments this cell's `vjp` honours beyond (params, cache, m), which the
    # probe then passes (see vjp below); a cell declares the ones it implements
    vjp_accepts: ClassVar[frozenset] = frozenset()
    # paths that are the direct route through one block alone (the product of that block's own
    # step factors, holding the rest of the state fixed), and the block: the LSTM's c_direct is
    # Π diag(Γ_f) on the c-block. They exist only on the structured fast paths.
    direct_paths: ClassVar[dict[str, str]] = {"c_direct": "c"}

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)     # object refuses a class with abstract methods, naming them
        if not _has_probe_route(cls):
            raise TypeError(f"Can't instantiate cell class {cls.__name__} without {PROBE_ROUTE}")
        return self

    def __post_init__(self):
        if not dataclasses.is_dataclass(self):
            return
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        for k, v in validate(options_model(type(self)), given).items():
            object.__setattr__(self, k, v)     # normalised (frozen dataclass)
        self.check()

    def check(self) -> None:
        """Constraints between options (raise ValueError("name: problem")); none by default."""

    # --- sizes and layout -------------------------------------------------------------
    @property
    def state_size(self) -> int:
        """Length of the state vector: where the last named block ends."""
        return max(b.stop for b in self.blocks.values())

    @property
    def blocks(self) -> dict[str, slice]:
        """Named parts of the state vector (rows/columns of the state Jacobian)."""
        return {"a": slice(0, self.hidden)}

    @property
    def paths(self) -> tuple[str, ...]:
        """Jacobian paths the probe can report for this cell."""
        return ("a",)

    @property
    def output_block(self) -> str:
        """The block a cell emits: what the trainer's linear read-out sees, what the state's
        sensitivity differentiates and what a layer above it in a stack reads. "a" for a cell
        whose output is its state; a cell whose output is not fed back carries it as a block
        that no step reads (see the module docstring) and names it here."""
        return "a"

    def path_block(self, path: str) -> slice:
        """The state coordinates a path's norms are of: for "state" the block named so, else
        the whole state; for a direct path (`direct_paths`) the block it runs through; for any
        other path its block."""
        if path == "state":
            return self.blocks.get("state", slice(0, self.state_size))
        return self.blocks[self.direct_paths.get(path, path)]

    @property
    def decay_path(self) -> str:
        """The path the report's decay figure, opening sentences, horizon, (t, k) map and the
        summaries read: "a" where the cell has it, else "state" (documents.decay_path)."""
        return decay_path(self.paths)

    @property
    def analytic(self) -> bool:
        """True when the step is complex-analytic (complex-step checks apply)."""
        return True

    def initial_state(self, batch: int, dtype=np.float64) -> np.ndarray:
        return np.zeros((batch, self.state_size), dtype=dtype)

    # --- required -------------------------------------------------------------------
    @abc.abstractmethod
    def init(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The parameters: {name: read-only float64 array} (see `freeze`)."""

    @abc.abstractmethod
    def step(self, params: Params, state: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, Cache]:
        """One step: state<t-1> (B, S), x<t> (B, d) -> (state<t> (B, S), cache for the hooks)."""

    def jacobian(self, params: Params, cache: Cache) -> np.ndarray:
        """d state<t>/d state<t-1> (B, S, S). Required unless log_diagonal declares every path."""
        raise NotImplementedError(f"{self.kind}: no dense jacobian; its paths are declared diagonal "
                                  "(probe it with diagonal=True, the default)")

    # --- optional hooks (see the class docstring) ---------------------------------------
    def vjp(self, params: Params, cache: Cache, m: np.ndarray, **extras) -> np.ndarray:
        """m @ J for m of shape (B, r, S). Default: through the dense Jacobian.

        A cell may also honour these keywords, declared in `vjp_accepts` (the probe passes
        only what is declared): `out` (B, r, S), a buffer to write the result into (not
        overlapping m); `scale` (B,), a factor per sequence to multiply the result by;
        `absmax` (B,), receives each sequence's max |entry| of the result."""
        return np.matmul(m, self.jacobian(params, cache))

    def jvp(self, params: Params, cache: Cache, v: np.ndarray) -> np.ndarray:
        """J @ v for columns v of shape (B, S, p): the forward-mode product the sketch's
        forward pass needs (diagnostics/probing/estimator.py). Default: through the dense
        Jacobian."""
        return np.matmul(self.jacobian(params, cache), v)

    def input_vjp(self, params: Params, cache: Cache, m: np.ndarray) -> np.ndarray:
        """m @ d state<t>/d x<t> (B, r, d) for rows m (B, r, S): what a stacked cell passes to
        the layer below. Default: backward's input gradient, one row at a time (the built-in
        cells do all rows in one product)."""
        return np.stack([self.backward(params, cache, m[:, i])[2] for i in range(m.shape[1])], axis=1)

    def backward(self, params: Params, cache: Cache, g: np.ndarray):
        """One BPTT step: g = dL/d state<t> (B, S) -> (dL/d state<t-1>, {name: dL/dparam}, dL/dx<t>)."""
        raise NotImplementedError(f"{self.kind}: backward() not implemented; the trainer needs it")

    def param_vjp(self, params: Params, cache: Cache, m: np.ndarray, names) -> dict[str, np.ndarray]:
        """m[b, i] @ ∂⁺state<t>/∂θ for every sequence b and row i, per parameter θ in `names`:
        {name: (B, r, *shape)}, the immediate (this step only) dependence. What the state's
        sensitivity needs (diagnostics/sensitivity/): `backward` sums its parameter gradients
        over the batch, which mixes sequences and rows whose norms are wanted one by one.

        Default: one `backward` per (sequence, row), g zero but in that sequence, so exact for
        any cell with a backward, at B r calls per step; the built-in rnn, indrnn and lru
        supply the batched form."""
        B, r, S = m.shape
        out = {k: np.zeros((B, r) + np.shape(params[k]), dtype=np.result_type(m, params[k])) for k in names}
        for b in range(B):
            for i in range(r):
                if not m[b, i].any():
                    continue          # backward is linear in g: a zero row has zero gradients
                g = np.zeros((B, S), dtype=m.dtype)     # fresh: a cell may keep or reuse its g
                g[b] = m[b, i]
                grads = self.backward(params, cache, g)[1]
                for k in names:
                    out[k][b, i] = grads[k]
        return out

    def log_diagonal(self, params: Params, cache: Cache) -> dict[str, np.ndarray] | None:
        """Paths whose one-step factor is diagonal, as {path: ln|d| (B, m)}, or None.

        A path may be declared here when its step factor is D_t Q_t with D_t = diag(|d_t|)
        and Q_t orthogonal, block diagonal with blocks on which |d_t| is constant, taken from
        a family that commutes across steps (1x1 signs; 2x2 rotations, as the LRU's complex
        λ_j acting on (Re x_j, Im x_j)). Then the k-step product is diag(Π|d|) times an
        orthogonal matrix, so its singular values are exactly exp(Σ ln|d_i|), one per entry
        i: a 2x2 rotation-scaling block lists its ln|λ_j| twice, once per real coordinate,
        and the Frobenius norm stays exact. An exact zero is -inf. The probe then sums these
        logs instead of multiplying matrices (diagnostics/probing/diagonal.py): O(B m) per lag.

        The entries cover the whole block of the path ("a", "state", ...), or for
        "c_direct" the direct memory path alone. Default: the LSTM-style direct memory path
        from `direct_memory_log`, if the cell has one."""
        lg = self.direct_memory_log(params, cache)
        return None if lg is None else {"c_direct": lg}

    def direct_memory_log(self, params: Params, cache: Cache) -> np.ndarray | None:
        """ln of the diagonal of the direct memory path d c<t>/d c<t-1> (B, n), or None."""
        return None

    def kron_factors(self, params: Params, cache: Cache) -> dict[str, np.ndarray] | None:
        """Paths whose one-step factor is a Kronecker product, as {path: F (B, H, m, m)}, or None.

        A path may be declared here when, on its block (`path_block`), the step factor is
        block-diagonal over H groups, group h being I_r ⊗ F_h(t): r copies of one m x m
        factor, coordinates ordered (group h, copy j, row i) -> h r m + j m + i, so
        r = width / (H m). Gated DeltaNet's S<t> = α (I - β k k^T) S<t-1> + ..., stored as S^T
        per head, is the case: F_h = α_h (I - β_h k_h k_h^T), r = d_v. The k-step product is
        then blockdiag_h(I_r ⊗ P_h), P_h = F_h(t) F_h(t-1) ... F_h(t-k+1), whose spectral norm is
        max_h σ_max(P_h) and Frobenius norm sqrt(r Σ_h ||P_h||_F²): the probe chains the m x m
        factors in log space (diagnostics/probing/kron.py), O(B H m^3) per lag, never the
        (H r m)^2 matrix. Checked against the dense product (checks.py, as log_diagonal)."""
        return None

    # --- declarations with defaults, for the trainer, the metrics and the report ---------
    def recurrent_names(self, params: Params) -> list[str]:
        """Parameters whose gradient the trainer splits into temporal components: by
        convention those acting on the previous state, named with a leading W."""
        return leading_w_names(params)

    @property
    def readout_size(self) -> int:
        """Width of the output block (`output_block`), what the trainer's linear read-out sees."""
        return len(range(self.state_size)[self.blocks[self.output_block]])

    def recurrent_weight(self, params: Params) -> np.ndarray | None:
        """W_a of a plain RNN (for the Pascanu bound); None for gated cells."""
        return None

    def activation_gamma(self) -> float | None:
        """γ bounding |g'| for the Pascanu bound; None where it does not apply."""
        return None

    def describe(self) -> dict:
        """Options that define the cell, for reports and run.json."""
        opts = dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}
        return {"kind": self.kind, **opts}


class GatedCell(Cell):
    """Shared layout of gated cells: gate weights stacked row-wise in the order `gates`
    (W: (G n, n), U: (G n, d), b: (G n,)), so a step is one GEMM for all gates."""

    def split(self, params) -> dict[str, np.ndarray]:
        """Named views W_u, U_u, b_u, W_f, ... of the stacked parameters."""
        n, out = self.hidden, {}
        for i, g in enumerate(self.gates):
            rows = slice(i * n, (i + 1) * n)
            out.update({f"W_{g}": params["W"][rows], f"U_{g}": params["U"][rows], f"b_{g}": params["b"][rows]})
        return out

    def stacked_weights(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, d, G = self.hidden, self.input_size, len(self.gates)
        # one block per gate, so e.g. every gate's recurrent matrix is itself orthogonal
        W = np.vstack([init_matrix(rng, self.recurrent_init, n, n, n) for _ in range(G)])
        U = np.vstack([init_matrix(rng, self.input_init, n, d, n) for _ in range(G)])
        return W, U, np.full(G * n, float(self.bias))


def init_matrix(rng: np.random.Generator, spec: Init, rows: int, cols: int, hidden: int) -> np.ndarray:
    """One (rows, cols) weight block. fan_in = cols; `uniform` follows PyTorch, U(±1/sqrt(hidden))."""
    k, g = spec.kind, float(spec.gain)
    if k == "gaussian":
        return rng.standard_normal((rows, cols)) * (g / np.sqrt(cols))
    if k == "orthogonal":
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q = q * np.sign(np.diag(r))  # Haar-distributed, not biased by QR's sign convention
        return g * (q if rows >= cols else q.T)[:rows, :cols]
    if k == "identity":
        return g * np.eye(rows, cols)
    if k == "uniform":
        bound = 1.0 / np.sqrt(hidden)
        return g * rng.uniform(-bound, bound, size=(rows, cols))
    if k == "zeros":
        return np.zeros((rows, cols))
    raise ValueError(f"init kind: must be one of {', '.join(INIT_KINDS)}, got {k!r}")
