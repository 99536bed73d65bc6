"""The probe and what it is built from: Jacobian-norm curves over lags, in log space.

    core.py       probe(cell, params, xs, ...) -> ProbeResult: its arguments checked once into a
                  frozen ProbeRequest (probe_request), the forward pass, then the chain of vjp's
                  back from each anchor (jacobian_products) and its norms, the workers that
                  share a batch
    matnorms.py   log-space norms of the chain's rows: the spectral tracker, quantiles over sequences
    diagonal.py   the fast path for paths whose step Jacobian is diagonal (sums of logs)
    parallel.py   one batch over forked processes or threads, one BLAS thread each; progress tallies
    lyapunov.py   Lyapunov exponents by the QR method, with resolved and diverged sequences marked
    metrics.py    fits of the decay (factor, time constant, horizon), the Pascanu bound

    from diagnostics.probing import probe
"""
from .core import ProbeRequest, ProbeResult, jacobian_products, probe, probe_request, probe_workers

__all__ = ["ProbeRequest", "ProbeResult", "jacobian_products", "probe", "probe_request", "probe_workers"]
