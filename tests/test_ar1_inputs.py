"""The `none` task's AR(1) inputs (inputs: ar1, rho): unit variance from the first step (the
stationary start), autocorrelation ρ^j, the options' errors; gaussian inputs draw as before."""
from __future__ import annotations

import numpy as np
import pytest

from diagnostics.tasks import make_task


def _within_3_se(products, expected):
    mean, se = products.mean(), products.std(ddof=1) / np.sqrt(products.size)
    return abs(mean - expected) <= 3 * se, (mean, expected, se)


@pytest.mark.parametrize("rho", [0.0, 0.5, -0.8, 0.95])
def test_unit_variance_and_geometric_autocorrelation(rho):
    x = make_task("none", length=40, inputs="ar1", rho=rho).sample(np.random.default_rng(1), 20000).inputs[:, :, 0]
    for t in (0, 1, 39):                      # the first step too: the start is stationary
        ok, info = _within_3_se(x[t] ** 2, 1.0)
        assert ok, (t, info)
    for j in (1, 2, 5):                       # independent sequences: products at one (t, j) each
        for t in (j, 39):
            ok, info = _within_3_se(x[t] * x[t - j], rho ** j)
            assert ok, (t, j, info)


def test_the_recursion_and_the_scale():
    """x<t> = ρ x<t-1> + sqrt(1 - ρ²) ε<t> exactly, x<1> = the first normal draw, then times scale."""
    rho, rng = 0.6, np.random.default_rng(2)
    got = make_task("none", length=6, input_size=2, inputs="ar1", rho=rho, scale=3.0).sample(rng, 4).inputs
    z = np.random.default_rng(2).standard_normal((6, 4, 2))
    ref = np.empty_like(z)
    ref[0] = z[0]
    for t in range(1, 6):
        ref[t] = rho * ref[t - 1] + np.sqrt(1 - rho ** 2) * z[t]
    np.testing.assert_allclose(got, 3.0 * ref, rtol=1e-14, atol=1e-14)


def test_gaussian_inputs_draw_as_before():
    got = make_task("none", length=5, scale=2.0).sample(np.random.default_rng(3), 4).inputs
    assert np.array_equal(got, 2.0 * np.random.default_rng(3).standard_normal((5, 4, 1)))


@pytest.mark.parametrize("opts,msg", [
    ({"rho": 0.5}, r"^rho: applies only to inputs: ar1 \(inputs is gaussian\), got 0\.5$"),
    ({"inputs": "ar1", "rho": 1.5}, r"^rho: must be <= 1, got 1\.5$"),
    ({"inputs": "ar2"}, r"^inputs: must be one of zeros, gaussian or ar1, got 'ar2'"),
])
def test_bad_options_are_one_line(opts, msg):
    with pytest.raises(ValueError, match=msg):
        make_task("none", **opts)
