"""Instrumented recurrent cells: pure step functions with analytic Jacobians."""
from ..options import Init
from .base import Cell, freeze, sigmoid
from .registry import (JacobianCheck, cell_kinds, cell_options, check_jacobian, make_cell,
                       reference_jacobian, register_cell, unregister_cell)
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

register_cell("rnn", RNN)
register_cell("gru", GRU)
register_cell("lstm", LSTM)

__all__ = ["Cell", "Init", "freeze", "sigmoid", "make_cell", "register_cell", "cell_kinds",
           "cell_options", "check_jacobian", "unregister_cell", "reference_jacobian", "JacobianCheck", "RNN", "GRU", "LSTM"]
