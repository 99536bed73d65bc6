"""CI regression of gradient curves: compare() semantics, the table, the tolerances model.

Files, `diag check` and atomic writes: test_regression_files.py; the pytest plugin:
test_regression_plugin.py; `diag run` end to end: test_regression_e2e.py.
"""
from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from regression_data import make_curves

from diagnostics.regression.comparison import compare
from diagnostics.tolerances import Tolerances


def failing(cmp, what=None):
    return [r for r in cmp.failing if what is None or r.what == what]


# --- compare ---------------------------------------------------------------------------------
def test_identical_passes():
    a = make_curves()
    cmp = compare(a, copy.deepcopy(a))
    assert cmp.ok and cmp.failing == [] and len(cmp.rows) > 0
    assert "all" in cmp.table() and "passed" in cmp.table()


def test_shift_of_006_decades_fails_at_the_right_lag():
    base, cur = make_curves(), make_curves()
    s = cur["series"][2]                               # lstm a/spectral
    s["log10"]["median"][16] += 0.06                   # lag 17
    s["log10"]["median"][20] += 0.03                   # smaller move elsewhere: not the worst
    cmp = compare(cur, base)
    assert not cmp.ok
    (row,) = failing(cmp)
    assert (row.what, row.lag) == ("point", 17)
    assert row.series == "lstm ckpt=0 a/spectral median"
    assert row.difference == pytest.approx(0.06) and row.tolerance == 0.05
    # the same shift within a wider tolerance passes; 0.04 decades passes the default
    assert compare(cur, base, Tolerances(decades=0.07)).ok
    s["log10"]["median"][16] -= 0.02
    assert compare(cur, base).ok


@settings(max_examples=60, deadline=None)
@given(shift=st.floats(-0.2, 0.2), lag=st.integers(1, 30), decades=st.floats(0.0, 0.1))
def test_a_point_fails_exactly_when_it_moves_beyond_tolerance(shift, lag, decades):
    base, cur = make_curves(), make_curves()
    cur["series"][0]["log10"]["median"][lag - 1] += shift
    moved = abs(cur["series"][0]["log10"]["median"][lag - 1] - base["series"][0]["log10"]["median"][lag - 1])
    (row,) = [r for r in compare(cur, base, Tolerances(decades=decades)).rows
              if r.series == "rnn ckpt=0 a/spectral median"]
    assert row.ok == (moved <= decades)
    if moved > 0:
        assert row.lag == lag


def test_whole_curve_shift_fails_all_stats():
    base, cur = make_curves(), make_curves()
    for stat in ("median", "q25", "q75"):
        cur["series"][0]["log10"][stat] = [v - 0.1 for v in cur["series"][0]["log10"][stat]]
    assert {r.series.split()[-1] for r in failing(compare(cur, base), "point")} == {"median", "q25", "q75"}


@pytest.mark.parametrize("section,index", [("series", 3), ("lyapunov", 0), ("training", 0)])
def test_missing_on_either_side_fails(section, index):
    base, cur = make_curves(), make_curves()
    del cur[section][index]
    for c, b, present in ((cur, base, ("present", "missing")), (base, cur, ("missing", "present"))):
        (row,) = failing(compare(c, b))
        assert row.what == "missing" and (row.baseline, row.current) == present


def test_null_handling():
    base, cur = make_curves(), make_curves()
    for d in (base, cur):
        d["series"][0]["log10"]["median"][-1] = None          # both exact zero: equal
    assert compare(cur, base).ok
    cur["series"][0]["log10"]["median"][-1] = -320.0          # underflowed: counts as zero
    assert compare(cur, base).ok
    cur["series"][0]["log10"]["median"][-1] = -250.0          # tiny but not zero: fails
    (row,) = failing(compare(cur, base))
    assert (row.what, row.lag, row.baseline, row.current, row.difference) == ("point", 30, None, -250.0, None)
    assert "null" in compare(cur, base).table() and "inf" in compare(cur, base).table()


def test_infinities_from_memory_become_null():
    base, cur = make_curves(), make_curves()
    base["series"][0]["log10"]["median"][-1] = None
    cur["series"][0]["log10"]["median"][-1] = float("-inf")
    assert compare(cur, base).ok


def test_slope_horizon_loss_lyapunov():
    base = make_curves()
    cur = copy.deepcopy(base)
    cur["series"][0]["fit"]["slope"] = -0.08 * 1.04             # 4% < 5%
    cur["series"][0]["fit"]["horizon"] += 2                      # 2 steps allowed
    cur["training"][0]["loss_at_checkpoints"][1] = 1.2 * 1.04
    cur["lyapunov"][0]["exponents"][0] = -0.1 + 0.019
    assert compare(cur, base).ok
    cur["series"][0]["fit"]["slope"] = -0.08 * 1.06
    cur["series"][1]["fit"]["horizon"] = None                    # null vs number
    cur["training"][0]["loss_at_checkpoints"][1] = 1.2 * 1.06
    cur["lyapunov"][0]["exponents"][2] = -0.9 - 0.03
    cmp = compare(cur, base)
    got = {(r.what, r.lag) for r in cmp.failing}
    assert got == {("slope", None), ("horizon", None), ("loss", 2), ("lyapunov", 3)}


def test_only_resolved_lyapunov_exponents_are_compared():
    """An exponent that is rounding on either side (a dead relu unit's direction: -13.94 on one
    BLAS kernel, -8.00 on another) is no number to compare; a resolved one still is, to 0.02."""
    base = make_curves()
    base["lyapunov"][0]["resolved"] = [True, True, False]
    cur = copy.deepcopy(base)
    cur["lyapunov"][0]["exponents"][2] = -0.9 + 5.9
    assert compare(cur, base).ok
    del base["lyapunov"][0]["resolved"]          # a baseline from before the flag: all resolved
    cur["lyapunov"][0]["resolved"] = [True, True, False]
    assert compare(cur, base).ok
    cur["lyapunov"][0]["exponents"][1] = -0.3 - 0.03
    assert [(r.what, r.lag) for r in compare(cur, base).failing] == [("lyapunov", 2)]


def test_divergence_is_a_change():
    base = make_curves()
    cur = copy.deepcopy(base)
    cur["training"][0]["diverged_at"] = 2
    (row,) = failing(compare(cur, base))
    assert (row.what, row.baseline, row.current) == ("diverged", None, 2)


def test_slope_floor_for_flat_curves():
    base = make_curves()
    base["series"][0]["fit"]["slope"] = 0.0
    cur = copy.deepcopy(base)
    cur["series"][0]["fit"]["slope"] = 4e-4                      # below the 5e-4 floor
    assert compare(cur, base).ok
    cur["series"][0]["fit"]["slope"] = 6e-4
    assert failing(compare(cur, base), "slope")


def test_different_lag_counts_fail():
    base, cur = make_curves(30), make_curves(25)
    whats = {r.what for r in compare(cur, base).failing}
    assert "lags" in whats
    top = [r for r in compare(cur, base).failing if r.series == "lags"]
    assert top and (top[0].baseline, top[0].current) == ("30 lags", "25 lags")


def test_table_is_aligned_and_names_its_columns():
    base, cur = make_curves(), make_curves()
    cur["series"][2]["log10"]["median"][16] += 0.06
    del cur["series"][4]
    text = compare(cur, base).table()
    lines = text.splitlines()
    assert lines[0].startswith("gradient curves: 2 of")
    for word in ("series", "worst lag", "expected (baseline)", "obtained (current)", "difference", "tolerance"):
        assert word in lines[1]
    assert set(lines[2]) <= {"-", " "}
    # right-aligned number columns end at the same character in every row
    end = lines[1].index("difference") + len("difference")
    assert lines[3][end - len("+0.0600"):end] == "+0.0600"
    assert "missing" in text and "FAIL" in text
    assert len(compare(cur, base).table(all_rows=True).splitlines()) > len(lines)


def test_tolerances_are_strict():
    with pytest.raises(Exception):
        Tolerances(decades=-1)
    with pytest.raises(Exception):
        Tolerances(decades="0.1")
    with pytest.raises(Exception):
        Tolerances(decadez=0.1)
    assert Tolerances(stats=["median"]).stats == ["median"]
