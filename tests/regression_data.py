"""Synthetic diag-curves/1 documents shared by the regression tests."""
from __future__ import annotations


def make_curves(K=30):
    """A small diag-curves/1 document: straight log10 lines, one Lyapunov spectrum, one training."""
    lags = list(range(1, K + 1))

    def line(slope, off):
        return [off + slope * k for k in lags]

    series = []
    for cell, slope in (("rnn", -0.08), ("lstm", -0.02)):
        for path in ("a",) if cell == "rnn" else ("a", "c"):
            for norm in ("spectral", "frobenius"):
                series.append({"cell": cell, "kind": cell, "checkpoint": 0, "path": path, "norm": norm,
                               "log10": {"median": line(slope, 0.1), "q25": line(slope, 0.0),
                                         "q75": line(slope, 0.2), "min": line(slope, -0.5),
                                         "max": line(slope, 0.6)},
                               "fit": {"slope": slope, "factor": 10 ** slope, "tau": 5.0,
                                       "horizon": round(-3 / slope)}})
    return {"format": "diag-curves/1", "case": "synthetic", "lags": lags, "series": series,
            "lyapunov": [{"cell": "rnn", "checkpoint": 0, "path": "a", "exponents": [-0.1, -0.3, -0.9]}],
            "training": [{"cell": "rnn", "step": [0, 1, 2], "loss": [2.0, 1.5, 1.2], "grad_norm": [1.0] * 3,
                          "baseline": 2.0, "diverged_at": None, "checkpoints": [0, 2],
                          "loss_at_checkpoints": [2.0, 1.2], "final_loss": 1.2}],
            "grad_flow": []}
