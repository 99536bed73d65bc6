"""Optimisers and gradient-norm clipping, updating parameter arrays in place.

    opt = make_optimizer({"kind": "adam", "lr": 1e-3}, params)   # or {"kind": "sgd", "lr", "momentum"}
    norm = global_norm(grads); clip_(grads, theta, norm); opt.update(params, grads)

In-place updates into buffers allocated once: a training step of a small network is
dominated by per-call overheads, so the optimiser allocates nothing per step.
"""
from __future__ import annotations

import numpy as np

DEFAULTS = {"adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
            "sgd": {"lr": 1e-2, "momentum": 0.0}}


def global_norm(grads: dict) -> float:
    return float(np.sqrt(sum(float(np.vdot(g, g).real) for g in grads.values())))


def clip_(grads: dict, theta: float, norm: float) -> bool:
    """Pascanu et al. 2013, Algorithm 1: if ||g|| >= θ then g <- θ g / ||g||. True if clipped."""
    if norm >= theta and norm > 0:
        scale = theta / norm
        for g in grads.values():
            g *= scale
        return True
    return False


class SGD:
    """Heavy-ball momentum: v <- μ v + g; θ <- θ - lr v (μ = 0: plain SGD)."""

    def __init__(self, params: dict, lr: float, momentum: float):
        self.lr, self.mu = lr, momentum
        self.v = {k: np.zeros_like(p) for k, p in params.items()} if momentum else None

    def update(self, params: dict, grads: dict) -> None:
        for k, p in params.items():
            g = grads[k]
            if self.v is not None:
                v = self.v[k]
                v *= self.mu
                v += g
                g = v
            p -= self.lr * g


class Adam:
    """Kingma & Ba 2015, with the bias corrections folded into the step size."""

    def __init__(self, params: dict, lr: float, beta1: float, beta2: float, eps: float):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, beta1, beta2, eps, 0
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.tmp = {k: np.empty_like(p) for k, p in params.items()}

    def update(self, params: dict, grads: dict) -> None:
        self.t += 1
        step = self.lr * np.sqrt(1.0 - self.b2 ** self.t) / (1.0 - self.b1 ** self.t)
        # eps is scaled the same way so the update equals the textbook m̂ / (sqrt(v̂) + eps)
        eps = self.eps * np.sqrt(1.0 - self.b2 ** self.t)
        for k, p in params.items():
            g, m, v, tmp = grads[k], self.m[k], self.v[k], self.tmp[k]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - self.b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            p -= tmp


def make_optimizer(spec: dict | None, params: dict):
    spec = dict(spec or {"kind": "adam"})
    kind = spec.pop("kind", "adam")
    if kind not in DEFAULTS:
        raise ValueError(f"optimizer.kind: must be one of {', '.join(DEFAULTS)}, got {kind!r}")
    unknown = sorted(set(spec) - set(DEFAULTS[kind]))
    if unknown:
        raise ValueError(f"optimizer.{unknown[0]}: unknown for {kind}; expected {', '.join(DEFAULTS[kind])}")
    opts = {**DEFAULTS[kind], **spec}
    for k, v in opts.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ValueError(f"optimizer.{k}: must be a non-negative number, got {v!r}")
    if opts["lr"] <= 0:
        raise ValueError(f"optimizer.lr: must be > 0, got {opts['lr']!r}")
    for k in ("beta1", "beta2", "momentum"):   # 1 would never forget: Adam's first step is 0/0
        if k in opts and not opts[k] < 1:
            raise ValueError(f"optimizer.{k}: must be < 1, got {opts[k]!r}")
    return Adam(params, **opts) if kind == "adam" else SGD(params, **opts)
