"""Closed forms of the curse of memory (Zucchet & Orvieto 2024; REFERENCES item 22).

For h<t> = λ h<t-1> + x<t> driven by stationary inputs of unit variance and autocorrelation
E[x<t> x<t-j>] = ρ^j, so that h<t> = Σ_i λ^i x<t-i> and dh/dλ = Σ_i i λ^(i-1) x<t-i>:

    E[h²]        = (1 + ρλ) / ((1 - λρ)(1 - λ²))                                     state_ms
    E[(dh/dλ)²]  = ((1 + λ²)(1 - λ²ρ²) + 2(1 - λ²)λρ) / ((1 - λ²)³ (1 - λρ)²)         sensitivity_ms
    E[h dh/dλ]   = ½ d E[h²]/dλ  (both are Σ_ij λ^(i+j) ρ^|i-j| differentiated)        cross_mean

The LRU of the toolkit (diagnostics/cells/lru.py) with one unit, real λ = exp(-exp ν) (θ = 0)
and an input weight b of modulus 1 carries x<t> = γ b h<t>, γ = sqrt(1 - λ²) normalised or 1,
so ||[Re x; Im x]||² = γ² h² and, with dλ/dν = λ ln λ and dγ/dλ = -λ/γ,

    E||s||²          = γ² E[h²]                                                        lru_state_ms
    E||ds/dν||²      = (λ ln λ)² (γ'² E[h²] + 2γγ' E[h h'] + γ² E[h'²])               lru_nu_ms
    E||ds/dθ||²      = λ² γ² E[h'²]   (dx/dθ = iλ dx/dλ at θ = 0)                     lru_theta_ms

As λ -> 1 (ε = 1 - λ², ρ < 1 fixed): E[h²] ~ 1/ε and E[h'²] ~ 1/ε³, so the linear recurrence's
sensitivity grows like ε^(-3/2) in root mean square and its state like ε^(-1/2); normalised, the
LRU's state and its sensitivity to ν stay bounded (E||ds/dν||² -> 1/4 for ρ = 0), while its
sensitivity to the angle θ still grows like 1/ε. Unnormalised, the ν-sensitivity grows like
ε^(-1/2). Numbers against direct series sums: tests/test_sensitivity_closed_forms.py.
"""
from __future__ import annotations

import numpy as np


def state_ms(lam, rho=0.0):
    """E[h²] for unit-variance inputs of autocorrelation ρ."""
    lam, rho = np.asarray(lam, float), np.asarray(rho, float)
    return (1 + rho * lam) / ((1 - lam * rho) * (1 - lam ** 2))


def sensitivity_ms(lam, rho=0.0):
    """E[(dh/dλ)²]."""
    lam, rho = np.asarray(lam, float), np.asarray(rho, float)
    eps = 1 - lam ** 2
    num = (1 + lam ** 2) * (1 - lam ** 2 * rho ** 2) + 2 * eps * lam * rho
    return num / (eps ** 3 * (1 - lam * rho) ** 2)


def cross_mean(lam, rho=0.0):
    """E[h dh/dλ] = ½ dE[h²]/dλ, with E[h²] = N/D, N = 1 + ρλ, D = (1 - λρ)(1 - λ²)."""
    lam, rho = np.asarray(lam, float), np.asarray(rho, float)
    N, D = 1 + rho * lam, (1 - lam * rho) * (1 - lam ** 2)
    dD = -rho * (1 - lam ** 2) - 2 * lam * (1 - lam * rho)
    return 0.5 * (rho * D - N * dD) / D ** 2


def _gamma(lam, normalize: bool):
    lam = np.asarray(lam, float)
    return (np.sqrt(1 - lam ** 2), -lam / np.sqrt(1 - lam ** 2)) if normalize else (np.ones_like(lam), np.zeros_like(lam))


def lru_state_ms(lam, rho=0.0, normalize: bool = True):
    g, _ = _gamma(lam, normalize)
    return g ** 2 * state_ms(lam, rho)


def lru_nu_ms(lam, rho=0.0, normalize: bool = True):
    lam = np.asarray(lam, float)
    g, dg = _gamma(lam, normalize)
    inner = dg ** 2 * state_ms(lam, rho) + 2 * g * dg * cross_mean(lam, rho) + g ** 2 * sensitivity_ms(lam, rho)
    return (lam * np.log(lam)) ** 2 * inner


def lru_theta_ms(lam, rho=0.0, normalize: bool = True):
    lam = np.asarray(lam, float)
    g, _ = _gamma(lam, normalize)
    return lam ** 2 * g ** 2 * sensitivity_ms(lam, rho)


def series_sums(lam: float, rho: float, terms: int) -> dict[str, float]:
    """E[h²], E[h h'], E[h'²] as direct sums over i, j < terms of the weights times ρ^|i-j|
    (the definitions, for checking the closed forms)."""
    i = np.arange(terms, dtype=float)
    w = lam ** i                                              # d h / d x<t-i>
    dw = np.where(i > 0, i * lam ** np.maximum(i - 1, 0), 0.0)  # d h' / d x<t-i>
    C = rho ** np.abs(i[:, None] - i[None, :])
    return {"state": float(w @ C @ w), "cross": float(w @ C @ dw), "sensitivity": float(dw @ C @ dw)}
