"""Memory paths of the selective recurrences inside Hugging Face models, exact and cheap.

    res = memory_paths(model, xs, lags=1000)             # lags 1..K, paths "l{i}.memory"
    res.log10[("l0.memory", "spectral")]                  # (anchors, sequences, K)

Inside one layer the state-to-state Jacobian of these recurrences is diagonal and depends on
the layer's input only, so its k-step product is exp of a sum of logs per state entry, read
from the module's parameters and the activations a forward hook captures (one forward pass,
no backward):

  Mamba (MambaMixer)          state (d_inner, N): diag(exp(Δ<t>_i A_in)), A = -exp(A_log),
                              Δ = softplus(dt_proj(x_proj(u)[:rank]))  (dt_proj's bias included)
  Mamba-2 (Mamba2Mixer)       state (H, P, N): exp(Δ<t>_h a_h) on all P N entries of head h,
                              a = -exp(A_log), Δ = clamp(softplus(dt + dt_bias), time_step_limit),
                              dt the last H columns of in_proj's output
  RecurrentGemma (RG-LRU)     state (lru_width,): a<t> = exp(-8 r<t> softplus(Λ)), r<t> the
                              recurrence gate; a<t> = 0 where position_ids is 0 (the reset).
                              The input's sqrt(1 - a²) normalisation does not touch the state
                              Jacobian. Attention blocks have no recurrence and no path.
  xLSTM (mLSTM layer)         C per head (dqk, dv): the forget gate with the stabiliser,
                              f' = exp(ln σ(f̃<t>) + m<t-1> - m<t>), m<t> = max(ln σ(f̃<t>) + m<t-1>, ĩ<t>),
                              m<0> = 0 (the recurrent step's), on all dqk dv entries of C: the
                              direct path Π f' of diagnostics' own mLSTM `memory` and sLSTM `c_direct`

Lag k at anchor t is d state<t>/d state<t-k> = Π_{s=t-k+1..t} diag(d<s>): per entry the sum
run = Σ ln d<s>; the spectral norm is the largest entry, max run / ln 10, and the Frobenius
norm is over every entry of the state, ½ logsumexp(2 run) / ln 10 (as the probe's diagonal fast
path, diagnostics/probing/diagonal.py): exact in log space at any lag. The parameters are read
as the model reads them (A_log, dt_proj's bias through .float(), as the transformers code
does), the activations in float64 (the model's float64 copy): float32-level agreement with the
model's own scan, which runs its decay in float32.

The four families above are measured (the same mixer classes inside hybrids, where a hybrid
uses these classes); any other model is refused in one line (TESTED: the transformers versions
these formulas were read from and tested against).
"""
from __future__ import annotations

import inspect
import re

import numpy as np

from ..optional import import_torch
from .influence import NORMS, _norms, anchors_and_lags
from .models import Call, ModelError, float32_inside, float64_copy
from .results import ModelResult

TESTED = "5.25.0"
# (module, class) of each supported mixer -> its family's name
SUPPORTED = {
    ("transformers.models.mamba.modeling_mamba", "MambaMixer"): "Mamba",
    ("transformers.models.mamba2.modeling_mamba2", "Mamba2Mixer"): "Mamba-2",
    ("transformers.models.recurrent_gemma.modeling_recurrent_gemma", "RecurrentGemmaRglru"): "RecurrentGemma RG-LRU",
    ("transformers.models.xlstm.modeling_xlstm", "xLSTMLayer"): "xLSTM mLSTM",
}
LN10 = np.log(10.0)
# entries x lags of one block of the running sums (bounds their memory: 8e6 floats, 64 MB)
BLOCK = 8_000_000


def memory_paths(model, inputs, lags, *, anchors=None, norms=NORMS, device=None) -> ModelResult:
    """log10 of each supported layer's k-step state Jacobian, k = 1..lags, at each anchor
    (steps 1..T, default T), per sequence: paths "l{i}.memory", i the layer's index in the
    model. `inputs` as lag_influence takes them. See the module docstring."""
    torch = import_torch("memory_paths")
    norms = _norms(norms)
    m64 = float64_copy(model, device).requires_grad_(False)
    mixers = supported_mixers(m64)
    call = Call(m64, inputs, device=device)
    anchors, K = anchors_and_lags(call.T, anchors, lags)
    captured = {}
    hooks = [_hook(mixer, captured.setdefault(path, {})) for path, mixer in mixers]
    try:
        with torch.no_grad():
            call.forward(call.x)
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for path, mixer in mixers:
        u, coef, mult = _LOGS[_family(mixer)](mixer, captured[path], torch)
        got = [diagonal_norms(u, coef, mult, t, K, norms) for t in anchors.tolist()]
        for n in norms:
            out[(path, n)] = np.stack([g[n] for g in got])
    paths = tuple(p for p, _ in mixers)
    return ModelResult(np.arange(1, K + 1), anchors, paths, norms, out, {}, np.zeros((anchors.size, call.B), bool),
                       kind="memory", float32_inside=float32_inside(m64, call), model=call.name)


def _family(module) -> str | None:
    return SUPPORTED.get((type(module).__module__, type(module).__name__))


def supported_mixers(model) -> list[tuple[str, object]]:
    """[("l{i}.memory", mixer)] in the model's order, i the first index in the mixer's name
    (layers.3.mixer -> 3), or its rank among the mixers; a one-line ModelError without any."""
    found = [(name, m) for name, m in model.named_modules() if _family(m) is not None]
    if not found:
        names = ", ".join(f"{cls} ({fam})" for (_, cls), fam in SUPPORTED.items())
        raise ModelError(f"memory_paths: {type(model).__name__} has no supported recurrence; supported: {names} "
                         f"(transformers {TESTED} tested)")
    out = []
    for rank, (name, m) in enumerate(found):
        idx = re.search(r"(?:^|\.)(\d+)(?:\.|$)", name)
        out.append((f"l{idx.group(1) if idx else rank}.memory", m))
    return out


def _hook(mixer, store: dict):
    """A hook capturing what the mixer's logs are computed from (see _LOGS)."""
    fam = _family(mixer)
    if fam == "Mamba":
        return mixer.x_proj.register_forward_hook(lambda mod, args, out: store.update(x_proj=out))
    if fam == "Mamba-2":
        return mixer.in_proj.register_forward_hook(lambda mod, args, out: store.update(in_proj=out))
    if fam == "RecurrentGemma RG-LRU":
        return mixer.register_forward_pre_hook(
            lambda mod, args, kwargs: store.update(args=args, kwargs=kwargs), with_kwargs=True)
    return mixer.mlstm_backend.register_forward_pre_hook(
        lambda mod, args, kwargs: store.update(kwargs=kwargs), with_kwargs=True)


# Each family's logs: (u (B, T, G), coef (G, E), mult): ln d<s> of state entry (g, e) is
# u[:, s, g] * coef[g, e], and each (g, e) stands for `mult` entries of the state.
def _mamba(mixer, got, torch):
    rank = mixer.time_step_rank
    ts = got["x_proj"][..., :rank]
    bias = mixer.dt_proj.bias.float().double()         # as mamba_scan_forward reads it
    delta = torch.nn.functional.softplus(ts @ mixer.dt_proj.weight.T + bias)
    A = -torch.exp(mixer.A_log.float()).double()
    return delta.cpu().numpy(), A.cpu().numpy(), 1


def _mamba2(mixer, got, torch):
    dt = got["in_proj"][..., -mixer.num_heads:]
    delta = torch.nn.functional.softplus(dt + mixer.dt_bias.to(dt.dtype))
    lo, hi = mixer.time_step_limit
    delta = torch.clamp(delta, min=lo, max=hi)
    a = -torch.exp(mixer.A_log.float()).double()
    return delta.cpu().numpy(), a.cpu().numpy()[:, None], mixer.head_dim * mixer.ssm_state_size


def _rglru(mixer, got, torch):
    bound = inspect.signature(mixer.forward).bind(*got["args"], **got["kwargs"]).arguments
    act, position_ids = bound["activations"], bound["position_ids"]
    B, T, W = act.shape
    h, w = mixer.num_attention_heads, mixer.block_width
    x = act.reshape(B * T, h, w).permute(1, 0, 2)
    r = torch.baddbmm(mixer.recurrent_gate_bias[:, None, :], x, mixer.recurrent_gate_weight)
    r = torch.sigmoid(r.transpose(0, 1).reshape(B, T, W))
    log_a = -8.0 * r * torch.nn.functional.softplus(mixer.recurrent_param)
    log_a = torch.where(position_ids[:, :, None] == 0, -torch.inf, log_a)   # the reset: a = 0
    return log_a.cpu().numpy(), np.ones((W, 1)), 1


def _mlstm(mixer, got, torch):
    kw = got["kwargs"]
    f, i = kw["fgate"], kw["igate"]                      # (B, H, T) soft-capped pre-activations
    log_f = torch.nn.functional.logsigmoid(f).cpu().numpy()
    i = i.cpu().numpy()
    m = np.zeros(log_f.shape[:2])
    out = np.empty_like(log_f)
    for t in range(log_f.shape[2]):                      # the stabiliser's recurrence, in order
        new = np.maximum(log_f[:, :, t] + m, i[:, :, t])
        out[:, :, t] = log_f[:, :, t] + m - new
        m = new
    dqk = kw["query"].shape[-1]
    dv = kw["value"].shape[-1]
    return out.transpose(0, 2, 1), np.ones((out.shape[1], 1)), dqk * dv


_LOGS = {"Mamba": _mamba, "Mamba-2": _mamba2, "RecurrentGemma RG-LRU": _rglru, "xLSTM mLSTM": _mlstm}


def diagonal_norms(u: np.ndarray, coef: np.ndarray, mult: int, t: int, K: int, norms) -> dict:
    """{norm: (B, K)} log10 norms of diag(exp(run)) for lags 1..K at anchor t, run[g, e] =
    coef[g, e] Σ_{s=t-k+1..t} u[:, s, g] (steps 1-based; `mult` entries per (g, e))."""
    B, _, G = u.shape
    E = coef.shape[1]
    sums = np.cumsum(u[:, t - K:t][:, ::-1], axis=1)     # (B, K, G): lag k at index k-1; -inf stays
    out = {n: np.empty((B, K)) for n in norms}
    step = max(1, BLOCK // max(1, B * G * E))
    for k0 in range(0, K, step):
        s = sums[:, k0:k0 + step]
        run = (s[..., None] * coef).reshape(B, s.shape[1], G * E)   # coef > 0 where u can be -inf
        top = run.max(axis=2)
        if "spectral" in norms:
            out["spectral"][:, k0:k0 + step] = top / LN10
        if "frobenius" in norms:
            finite = np.where(np.isfinite(top), top, 0.0)
            with np.errstate(divide="ignore"):
                lse = 0.5 * np.log(np.exp(2.0 * (run - finite[..., None])).sum(axis=2)) + finite
            lse = np.where(np.isneginf(top), -np.inf, lse)
            out["frobenius"][:, k0:k0 + step] = (lse + 0.5 * np.log(mult)) / LN10
    return out
