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


EQUATIONS = {"rnn": rnn_equations, "gru": gru_equations, "lstm": lstm_equations}


def cell_equations(kind: str, options: dict[str, Any] | None) -> tuple[list[str], str]:
    """(equation lines, a sentence in words) for one cell; unknown kinds get no equations."""
    fn = EQUATIONS.get(kind)
    if fn is None:
        return [], f"A '{kind}' cell (registered by a plug-in; its equations are not known to the report)."
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
