"""gradient-diagnostics: see, measure and regression-test vanishing and exploding gradients."""
__version__ = "0.1.0"

from .cells import Cell, Init, check_jacobian, make_cell, register_cell  # noqa: E402,F401
