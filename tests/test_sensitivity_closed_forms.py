"""The curse of memory's closed forms (REFERENCES item 22; diagnostics/sensitivity/closed_forms.py)
against their defining series, and the toolkit's measured sensitivities against them.

Monte Carlo: N independent sequences of the `none` task's AR(1) stream, one anchor each (the
last step), so the per-sequence squares are independent draws and the standard error of their
mean is their sample standard deviation over sqrt(N). The state starts at zero; T is chosen so
that the neglected tail (λ^(2T) times a polynomial in T) is below 1e-6 of each mean, far
below the standard errors (1-3 %)."""
from __future__ import annotations

import numpy as np
import pytest

from diagnostics.cells import make_cell
from diagnostics.sensitivity import closed_forms as cf
from diagnostics.sensitivity import state_sensitivity
from diagnostics.tasks import make_task

N = 2000


def linear(lam):
    return make_cell("rnn", input_size=1, hidden=1, activation="linear", bias=0.0,
                     recurrent_init={"kind": "identity", "gain": lam}, input_init={"kind": "identity", "gain": 1.0})


def lru(lam, normalize=True):
    # one unit, real λ (θ = 0), input weight (1 + i)/√2 of modulus 1
    return make_cell("lru", input_size=1, hidden=1, r_min=lam, r_max=lam, max_phase=0.0, normalize=normalize,
                     input_init={"kind": "identity", "gain": np.sqrt(0.5)})


def stream(rho, T, seed, n=N):
    return make_task("none", length=T, inputs="ar1", rho=rho).sample(np.random.default_rng(seed), n).inputs


def squares(cell, xs):
    """Per sequence: {θ: ||d a<T>/dθ||², "state": ||a<T>||²} at the last step."""
    res = state_sensitivity(cell, cell.init(np.random.default_rng(0)), xs, lags=1)
    out = {n: (res.total[n][0].reshape(xs.shape[1], -1) ** 2).sum(axis=1) for n in res.names}
    out["state"] = 10.0 ** (2 * res.log10_state[0])
    return out


def within_3_se(values, expected):
    mean, se = values.mean(), values.std(ddof=1) / np.sqrt(values.size)
    return abs(mean - expected) <= 3 * se, f"mean {mean:.6g} vs closed form {expected:.6g}, se {se:.3g}"


@pytest.mark.parametrize("lam", [0.5, 0.9, 0.99])
@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_closed_forms_are_the_series(lam, rho):
    n = 2500                              # 0.99^5000 n² < 1e-15: the tail is gone
    s = cf.series_sums(lam, rho, n)
    assert s["state"] == pytest.approx(cf.state_ms(lam, rho), rel=1e-12)
    assert s["sensitivity"] == pytest.approx(cf.sensitivity_ms(lam, rho), rel=1e-12)
    assert s["cross"] == pytest.approx(cf.cross_mean(lam, rho), rel=1e-12)
    # the LRU's: ds/dν = λ ln λ (γ' h + γ h') and ds/dθ = i λ γ h' are linear in the inputs too,
    # with weights w_i per input x<t-i>; E||·||² = w C w
    i = np.arange(float(n))
    C = rho ** np.abs(i[:, None] - i[None, :])
    h, dh = lam ** i, np.where(i > 0, i * lam ** np.maximum(i - 1, 0), 0.0)
    for normalize in (True, False):
        g, dg = (np.sqrt(1 - lam ** 2), -lam / np.sqrt(1 - lam ** 2)) if normalize else (1.0, 0.0)
        w_nu, w_th = lam * np.log(lam) * (dg * h + g * dh), lam * g * dh
        assert w_nu @ C @ w_nu == pytest.approx(cf.lru_nu_ms(lam, rho, normalize), rel=1e-12)
        assert w_th @ C @ w_th == pytest.approx(cf.lru_theta_ms(lam, rho, normalize), rel=1e-12)
        assert g ** 2 * (h @ C @ h) == pytest.approx(cf.lru_state_ms(lam, rho, normalize), rel=1e-12)


def test_rho_zero_forms_of_the_reference():
    lam = np.array([0.5, 0.9, 0.99])
    np.testing.assert_allclose(cf.sensitivity_ms(lam, 0.0), (1 + lam ** 2) / (1 - lam ** 2) ** 3, rtol=1e-14)
    np.testing.assert_allclose(cf.state_ms(lam, 0.0), 1 / (1 - lam ** 2), rtol=1e-14)


@pytest.mark.parametrize("rho", [0.0, 0.5])
@pytest.mark.slow
def test_measured_means_match_the_closed_forms(rho):
    """Linear recurrence: E[h²] and E[(dh/dλ)²]; LRU, normalised and not: E||s||², E||ds/dν||²
    and E||ds/dθ||²; each mean over N sequences within three standard errors."""
    xs = stream(rho, 1500, seed=11)        # λ = 0.99: the tail of E[h'²] is 5e-11 of it
    failures = []
    for lam in (0.5, 0.9, 0.99):
        q = squares(linear(lam), xs)
        checks = [("linear state", q["state"], cf.state_ms(lam, rho)),
                  ("linear dh/dλ", q["W_a"], cf.sensitivity_ms(lam, rho))]
        for normalize in (True, False):
            q = squares(lru(lam, normalize), xs)
            tag = "LRU" if normalize else "LRU unnormalised"
            checks += [(f"{tag} state", q["state"], cf.lru_state_ms(lam, rho, normalize)),
                       (f"{tag} ν", q["nu"], cf.lru_nu_ms(lam, rho, normalize)),
                       (f"{tag} θ", q["theta"], cf.lru_theta_ms(lam, rho, normalize))]
        for what, values, expected in checks:
            ok, words = within_3_se(values, expected)
            if not ok:
                failures.append(f"λ={lam} ρ={rho} {what}: {words}")
    assert not failures, "\n".join(failures)


def _slope(q1, q2, x1, x2):
    """Slope of log RMS against log(1 - λ²) between two λ on the same inputs, and its standard
    error by the delta method (the two means are correlated through the shared sequences)."""
    m1, m2 = q1.mean(), q2.mean()
    slope = 0.5 * (np.log(m2) - np.log(m1)) / (x2 - x1)
    c = np.cov(np.stack([q1 / m1, q2 / m2]), ddof=1) / q1.size
    se = 0.5 * np.sqrt(c[0, 0] + c[1, 1] - 2 * c[0, 1]) / abs(x2 - x1)
    return slope, se


@pytest.mark.slow
def test_scalings_as_memory_grows():
    """Between λ = 0.99 and 0.999 (ρ = 0.5): the linear recurrence's RMS sensitivity to λ grows
    like (1 - λ²)^(-3/2) and its state like (1 - λ²)^(-1/2); the normalised LRU's state and its
    sensitivity to ν stay bounded (slope 0), its sensitivity to θ grows like (1 - λ²)^(-1). The
    closed forms' own slopes there are -1.502, -0.503, -0.003, -0.003 and -1.006; the measured
    ones must match them within three standard errors."""
    rho, lams = 0.5, (0.99, 0.999)
    xs = stream(rho, 10000, seed=12, n=1000)   # λ = 0.999: the tail of E[h'²] is 5e-7 of it
    x = np.log(1 - np.asarray(lams) ** 2)
    lin = [squares(linear(lam), xs) for lam in lams]
    nrm = [squares(lru(lam), xs) for lam in lams]
    cases = [("linear dh/dλ", lin, "W_a", cf.sensitivity_ms, -1.5),
             ("linear state", lin, "state", cf.state_ms, -0.5),
             ("LRU ν", nrm, "nu", cf.lru_nu_ms, 0.0),
             ("LRU state", nrm, "state", cf.lru_state_ms, 0.0),
             ("LRU θ", nrm, "theta", cf.lru_theta_ms, -1.0)]
    for what, q, key, form, law in cases:
        exact = 0.5 * np.log(form(lams[1], rho) / form(lams[0], rho)) / (x[1] - x[0])
        assert abs(exact - law) < 0.01, (what, exact)       # the law holds there already
        slope, se = _slope(q[0][key], q[1][key], x[0], x[1])
        assert abs(slope - exact) <= 3 * se, f"{what}: slope {slope:.4f} vs {exact:.4f}, se {se:.4f}"
    # bounded: the normalised LRU's ν-sensitivity tends to a finite limit (1/4 for ρ = 0)
    assert cf.lru_nu_ms(1 - 1e-6, 0.0) == pytest.approx(0.25, rel=1e-4)
