"""gradient-diagnostics: see, measure and regression-test vanishing and exploding gradients."""
__version__ = "0.1.0"

from .cells import (Cell, Init, check_jacobian, make_cell, register_cell,  # noqa: E402,F401
                    unregister_cell)
from .lyapunov import lyapunov_spectrum  # noqa: E402,F401
from .metrics import fit_decay, pascanu_bound  # noqa: E402,F401
from .probe import ProbeResult, probe  # noqa: E402,F401

__all__ = ["Cell", "Init", "check_jacobian", "make_cell", "register_cell", "unregister_cell",
           "probe", "ProbeResult", "fit_decay", "pascanu_bound", "lyapunov_spectrum"]
