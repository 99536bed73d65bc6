import numpy as np

from diagnostics.cells import check_jacobian, make_cell


def test_rnn_jacobian_complex_step():
    cell = make_cell("rnn", input_size=3, hidden=5)
    p = cell.init(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    chk = check_jacobian(cell, p, rng.normal(size=(4, 5)), rng.normal(size=(4, 3)))
    assert chk.method == "complex" and chk.max_rel_error < 1e-12
