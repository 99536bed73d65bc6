"""The Wilson interval against its closed form (REFERENCES item 24), computed another way:
the interval is the set of p with (k/n - p)^2 <= z^2 p (1 - p) / n, so its ends are the roots
of (1 + z^2/n) p^2 - (2 k/n + z^2/n) p + (k/n)^2 = 0."""
from __future__ import annotations

import math

import numpy as np
import pytest

from diagnostics.sweep.stats import Z95, overlap, quartiles, wilson


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 10), (3, 10), (5, 10), (10, 10), (1, 3), (37, 50), (999, 1000)])
def test_wilson_is_the_quadratic_s_roots(k, n):
    p, z2 = k / n, Z95 ** 2 / n
    roots = np.sort(np.roots([1 + z2, -(2 * p + z2), p * p]).real)
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(roots[0], abs=1e-12) and hi == pytest.approx(roots[1], abs=1e-12)
    assert 0.0 <= lo <= p <= hi <= 1.0


def test_wilson_known_values_and_ends():
    # 0 of 10 still allows a true rate up to z²/(n + z²) = 0.2775; 10 of 10 down to 0.7225
    assert wilson(0, 10) == (0.0, pytest.approx(Z95 ** 2 / (10 + Z95 ** 2), abs=1e-15))
    assert wilson(10, 10)[0] == pytest.approx(10 / (10 + Z95 ** 2), abs=1e-15)
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 10)[0] == 0.0
    lo, hi = wilson(3, 10)
    assert (1 - hi, 1 - lo) == pytest.approx(wilson(7, 10), abs=1e-15)   # symmetric in k <-> n - k
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="0..10"):
        wilson(11, 10)
    assert Z95 == pytest.approx(math.sqrt(2) * 1.3859038243496777, abs=1e-12)   # sqrt(2) erfinv(0.95)


def test_overlap_and_quartiles():
    assert overlap((0.0, 0.3), (0.3, 1.0)) and not overlap((0.0, 0.28), (0.72, 1.0))
    q = quartiles([1.0, None, 2.0, 3.0, float("nan"), 4.0])
    assert q == {"median": 2.5, "q25": 1.75, "q75": 3.25, "n": 4}
    assert quartiles([None]) is None


def test_quartiles_of_horizons_count_one_never_reached_as_larger_than_any():
    """A horizon not reached within K lags (None) is a value above all, not a missing one: a
    quartile interpolating towards it is unknown (None), one that lands beside it is not.
    Sorted [3, 5, 7, 9, beyond]: positions 1, 2, 3 (n - 1 = 4 times 0.25, 0.5, 0.75)."""
    assert quartiles([9, None, 3, 7, 5], beyond=True) == {"median": 7.0, "q25": 5.0, "q75": 9.0, "n": 5, "beyond": 1}
    # [2, 4, beyond, beyond]: positions 0.75, 1.5, 2.25; only the first has no weight on a beyond
    assert quartiles([None, 4, 2, None], beyond=True) == {"median": None, "q25": 2 + 0.75 * (4 - 2), "q75": None,
                                                          "n": 4, "beyond": 2}
    assert quartiles([None], beyond=True) == {"median": None, "q25": None, "q75": None, "n": 1, "beyond": 1}
    assert quartiles([], beyond=True) is None
