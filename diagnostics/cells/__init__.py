"""Instrumented recurrent cells: pure step functions with analytic Jacobians."""
from .base import Cell, Init, freeze, sigmoid
from .registry import (JacobianCheck, cell_kinds, cell_options, check_jacobian, make_cell,
                       reference_jacobian, register_cell)
from .rnn import RNN

register_cell("rnn", RNN)
try:  # gated cells land in their own modules
    from .gru import GRU
    register_cell("gru", GRU)
except ImportError:  # pragma: no cover
    pass
try:
    from .lstm import LSTM
    register_cell("lstm", LSTM)
except ImportError:  # pragma: no cover
    pass

__all__ = ["Cell", "Init", "freeze", "sigmoid", "make_cell", "register_cell", "cell_kinds",
           "cell_options", "check_jacobian", "reference_jacobian", "JacobianCheck", "RNN"]
