"""Each cell's equations in the notes' notation, following its options.

Strings use the notes' plain notation (a<t>, c~<t>, Γ_u, W_a, *); html.py turns them into
sub/superscripts after escaping, so equations are shown exactly as the notes write them.
`*` is the element-wise product, σ the logistic sigmoid, [a, x] stacks two vectors.
"""
from __future__ import annotations

from typing import Any

from ..numfmt import fmt

GATE = "σ(W_{g} a<t-1> + U_{g} x<t> + b_{g})"


def _gate(g: str) -> str:
    return GATE.format(g=g)


def rnn_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    act = opts.get("activation") or "tanh"
    inner = "W_a a<t-1> + U_a x<t> + b_a"
    rhs = {"tanh": f"tanh({inner})", "relu": f"max(0, {inner})", "linear": inner}.get(act, f"{act}({inner})")
    eqs = [f"a<t> = {rhs}"]
    gamma = "γ = 1 (the largest slope of the activation)"
    words = {"tanh": "a plain RNN with tanh activation",
             "relu": "a plain RNN with ReLU activation (the IRNN when W_a starts as the identity)",
             "linear": "a linear RNN (no activation), so ∂a<t>/∂a<t-k> = W_a^k exactly"}.get(act, f"a plain RNN ({act})")
    return eqs, (f"{words[0].upper()}{words[1:]}. Backpropagation multiplies one factor diag(g'(z<t>)) W_a "
                 f"per step, so ‖∂a<t>/∂a<t-k>‖ ≤ (γ σ_max(W_a))^k with {gamma} — the Pascanu bound.")


def gru_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    reset = opts.get("reset_gate", True) is not False
    after = reset and opts.get("reset_after", False) is True
    eqs = [f"Γ_u = {_gate('u')}"]
    if after:
        eqs.append(f"Γ_r = {_gate('r')}")
        eqs.append("c~<t> = tanh(U_m x<t> + b_m + Γ_r * (W_m a<t-1> + b_hn))")
    elif reset:
        eqs.append(f"Γ_r = {_gate('r')}")
        eqs.append("c~<t> = tanh(W_m (Γ_r * a<t-1>) + U_m x<t> + b_m)")
    else:
        eqs.append("c~<t> = tanh(W_m a<t-1> + U_m x<t> + b_m)")
    eqs += ["c<t> = Γ_u * c~<t> + (1 - Γ_u) * c<t-1>", "a<t> = c<t>"]
    if after:
        kind = ("the reset gate applied after the recurrent product (the form of cuDNN, PyTorch's nn.GRU "
                "and Keras's reset_after), with its own bias b_hn; PyTorch's update gate z is 1 - Γ_u")
    elif reset:
        kind = "the full GRU: the relevance gate Γ_r decides how much of a<t-1> enters the candidate"
    else:
        kind = "the simplified GRU (Γ_r = 1): the whole of a<t-1> enters the candidate"
    return eqs, (f"A GRU, {kind}. Forgetting is tied to storing (Γ_f = 1 - Γ_u) and there is no "
                 "output gate (a<t> = c<t>); where Γ_u is near 0 the state is copied unchanged.")


def lstm_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    forget = opts.get("forget_gate", True) is not False
    out_tanh = opts.get("output_tanh", True) is not False
    eqs = [f"Γ_u = {_gate('u')}"]
    if forget:
        eqs.append(f"Γ_f = {_gate('f')}")
    eqs += [f"Γ_o = {_gate('o')}", "c~<t> = tanh(W_m a<t-1> + U_m x<t> + b_m)"]
    eqs.append("c<t> = Γ_u * c~<t> + Γ_f * c<t-1>" if forget else "c<t> = Γ_u * c~<t> + c<t-1>")
    eqs.append("a<t> = Γ_o * tanh(c<t>)" if out_tanh else "a<t> = Γ_o * c<t>")
    parts = ["An LSTM with independent store (Γ_u), "
             + ("forget (Γ_f) " if forget else "")
             + "and retrieve (Γ_o) gates."]
    if forget:
        parts.append("Along the memory the gradient is multiplied by Γ_f at each step (∂c<t>/∂c<t-1> direct = diag(Γ_f)).")
        if opts.get("chrono") is not None:
            parts.append(f"Chrono initialisation: b_f ~ ln U[1, {fmt(opts['chrono'] - 1)}] and b_u = -b_f, so "
                         "memory time scales spread up to that many steps.")
        elif opts.get("forget_bias") is not None:
            parts.append(f"The forget-gate bias b_f starts at {fmt(opts['forget_bias'])}, a memory time scale "
                         "of about -1/ln σ(b_f) steps.")
    else:
        parts.append("Without a forget gate (Γ_f = 1, the 1997 LSTM) the direct memory path ∂c<t>/∂c<t-1> "
                     "is the identity: the constant error carousel.")
    if not out_tanh:
        parts.append("The output has no tanh, as in the notes' a<t> = Γ_o * c<t>.")
    return eqs, " ".join(parts)


def indrnn_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    act = opts.get("activation") or "relu"
    inner = "U_a x<t> + u * a<t-1> + b_a"
    rhs = {"tanh": f"tanh({inner})", "relu": f"max(0, {inner})", "linear": inner}.get(act, f"{act}({inner})")
    lo, hi = opts.get("recurrent_min"), opts.get("recurrent_max")
    init = f" It starts with u ~ U[{fmt(lo)}, {fmt(hi)}]." if lo is not None and hi is not None else ""
    return [f"a<t> = {rhs}"], ("An IndRNN (Li et al. 2018): each unit feeds back only to itself through one weight "
                               "u_j, so ∂a<t>/∂a<t-1> = diag(g'(z<t>) * u) is diagonal and the gradient of unit j "
                               f"is scaled by about |u_j| per step.{init}")


def lru_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    norm = opts.get("normalize", True) is not False
    eqs = ["λ_j = exp(-exp(ν_j) + i θ_j)", "x<t> = λ * x<t-1> + γ * (B u<t>)"]
    eqs.append("γ_j = sqrt(1 - |λ_j|²)" if norm else "γ_j = 1")
    ring = ""
    if opts.get("r_min") is not None and opts.get("r_max") is not None:
        ring = f" It starts with |λ| on the ring [{fmt(opts['r_min'])}, {fmt(opts['r_max'])}]."
    return eqs, ("A linear recurrent unit (Orvieto et al. 2023): a complex diagonal linear recurrence, its state "
                 "carried as [Re x; Im x]; the read-out Re(C x) is the trainer's linear read-out. "
                 "∂x<t>/∂x<t-k> = diag(λ^k), so the gradient decays exactly like |λ|^k"
                 + (", and γ (recomputed from ν) keeps the state's variance bounded as |λ| -> 1." if norm else ".")
                 + ring)


def mingru_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    return (["Γ_u = σ(U_u x<t> + b_u)", "c~<t> = U_c x<t> + b_c", "a<t> = (1 - Γ_u) * a<t-1> + Γ_u * c~<t>"],
            "A minGRU (Feng et al. 2024): the gate and the candidate read the input only, so the recurrence is "
            "element-wise and linear in a<t-1>: ∂a<t>/∂a<t-1> = diag(1 - Γ_u), and the gradient survives where "
            "the update gate stays closed.")


def minlstm_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    return (["Γ_f = σ(U_f x<t> + b_f),  Γ_u = σ(U_u x<t> + b_u)", "c~<t> = U_c x<t> + b_c",
             "a<t> = (Γ_f / (Γ_f + Γ_u)) * a<t-1> + (Γ_u / (Γ_f + Γ_u)) * c~<t>"],
            "A minLSTM (Feng et al. 2024): forget and store gates of the input only, normalised to sum to one, "
            "so ∂a<t>/∂a<t-1> = diag(Γ_f / (Γ_f + Γ_u)) is diagonal.")


def cornn_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    return (["z<t> = z<t-1> + Δt (tanh(W_y a<t-1> + W_z z<t-1> + U x<t> + b) - γ a<t-1> - ε z<t-1>)",
             "a<t> = a<t-1> + Δt z<t>"],
            "A coupled oscillatory RNN (Rusch & Mishra 2021): a damped, driven second-order ODE discretised with "
            f"step Δt = {fmt(opts.get('dt'))} (γ = {fmt(opts.get('gamma'))}, ε = {fmt(opts.get('epsilon'))}); the "
            "state is the position a and velocity z of n oscillators, whose Jacobian stays close to the identity "
            "for small Δt, so gradients neither vanish nor explode quickly.")


def slstm_equations(opts: dict[str, Any]) -> tuple[list[str], str]:
    forget = opts.get("forget") or "sigmoid"
    lnf = "ln σ(W_f a<t-1> + U_f x<t> + b_f)" if forget == "sigmoid" else "W_f a<t-1> + U_f x<t> + b_f"
    return (["ln Γ_u = W_u a<t-1> + U_u x<t> + b_u,  ln Γ_f = " + lnf,
             "m<t> = max(ln Γ_f + m<t-1>, ln Γ_u);  m<t> = ln Γ_u where n<t-1> = 0 (the first step)",
             "Γ_u' = min(1, exp(ln Γ_u - m<t>)),  Γ_f' = min(1, exp(ln Γ_f + m<t-1> - m<t>))",
             "c<t> = Γ_f' * c<t-1> + Γ_u' * c~<t>,  n<t> = Γ_f' * n<t-1> + Γ_u'", "a<t> = Γ_o * c<t> / n<t>"],
            "An sLSTM (Beck et al. 2024, xLSTM): an exponential store gate, a normaliser n<t> and a stabiliser "
            "m<t>. Implemented as the official cell's step (NX-AI/xlstm): the stabilised form of the paper's eqs. "
            "15-17, with m<t> = ln Γ_u where the normaliser is still zero. c and n are the paper's unstabilised "
            "ones times exp(-m<t>), so a<t> is the paper's h<t> exactly and every exponential stays <= 1; the c "
            f"path is that of the stabilised c. {fmt(opts.get('heads'))} head(s): the recurrent matrices are "
            "block-diagonal.")


EQUATIONS = {"rnn": rnn_equations, "gru": gru_equations, "lstm": lstm_equations, "indrnn": indrnn_equations,
             "lru": lru_equations, "mingru": mingru_equations, "minlstm": minlstm_equations,
             "cornn": cornn_equations, "slstm": slstm_equations}


def cell_equations(kind: str, options: dict[str, Any] | None, doc: str | None = None) -> tuple[list[str], str]:
    """(equation lines, a sentence in words) for one cell. A kind registered by a user has no
    entry here: its class docstring (`doc`, recorded in run.json) stands in for the words."""
    fn = EQUATIONS.get(kind)
    if fn is None:
        words = " ".join((doc or "").strip().split("\n\n")[0].split())
        return [], words or f"A '{kind}' cell (registered by a plug-in; it has no docstring to show)."
    return fn(dict(options or {}))


def settings_text(options: dict[str, Any] | None) -> str:
    """The cell's options in one line, e.g. 'hidden 64 · recurrent init orthogonal (gain 1)'."""
    out = []
    for k, v in (options or {}).items():
        if v is None:
            continue
        if isinstance(v, dict) and "kind" in v:
            v = f"{v['kind']} (gain {fmt(v.get('gain', 1.0))})"
        out.append(f"{k.replace('_', ' ')} {fmt(v)}")
    return " · ".join(out)
