"""Instrumented recurrent cells: pure step functions with analytic Jacobians."""
from ..options import Init
from .base import Cell, freeze, sigmoid
from .cornn import CoRNN
from .gru import GRU
from .indrnn import IndRNN
from .lru import LRU
from .lstm import LSTM
from .minimal import MinGRU, MinLSTM
from .registry import (
                       JacobianCheck,
                       cell_kinds,
                       cell_options,
                       check_jacobian,
                       make_cell,
                       reference_jacobian,
                       register_cell,
                       unregister_cell,
)
from .rnn import RNN
from .slstm import SLSTM

register_cell("rnn", RNN)
register_cell("gru", GRU)
register_cell("lstm", LSTM)
register_cell("indrnn", IndRNN)
register_cell("lru", LRU)
register_cell("mingru", MinGRU)
register_cell("minlstm", MinLSTM)
register_cell("cornn", CoRNN)
register_cell("slstm", SLSTM)

__all__ = ["Cell", "Init", "freeze", "sigmoid", "make_cell", "register_cell", "cell_kinds",
           "cell_options", "check_jacobian", "unregister_cell", "reference_jacobian", "JacobianCheck", "RNN", "GRU", "LSTM",
           "IndRNN", "LRU", "MinGRU", "MinLSTM", "CoRNN", "SLSTM"]
