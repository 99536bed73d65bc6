"""gradient-diagnostics: see, measure and regression-test vanishing and exploding gradients.

The names below load on first use (PEP 562), so `import diagnostics` -- and the pytest plugin
that every pytest run in the environment loads -- costs nothing until something is used.
"""
from .version import __version__

__all__ = ["Cell", "Init", "check_cell", "check_jacobian", "make_cell", "register_cell", "unregister_cell",
           "probe", "ProbeResult", "fit_decay", "pascanu_bound", "lyapunov_spectrum", "resolve",
           "__version__"]


def __getattr__(name: str):
    if name in ("Cell", "check_cell", "check_jacobian", "make_cell", "register_cell", "unregister_cell"):
        from . import cells
        return getattr(cells, name)
    if name == "Init":
        from .options import Init
        return Init
    if name in ("probe", "ProbeResult"):
        from .probing import core as module
        return getattr(module, name)
    if name in ("fit_decay", "pascanu_bound"):
        from .probing import metrics
        return getattr(metrics, name)
    if name == "lyapunov_spectrum":
        from .probing.lyapunov import lyapunov_spectrum
        return lyapunov_spectrum
    if name == "resolve":
        from .run.spec import resolve
        return resolve
    raise AttributeError(f"module 'diagnostics' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
