"""Instrumented recurrent cells: pure step functions with analytic Jacobians."""
from ..options import Init
from .base import Cell, freeze, sigmoid
from .checks import (
    CellCheck,
    JacobianCheck,
    check_cell,
    check_jacobian,
    reference_jacobian,
)
from .cornn import CoRNN
from .deltanet import GatedDeltaNet
from .gru import GRU
from .indrnn import IndRNN
from .lru import LRU
from .lstm import LSTM
from .mamba import Mamba
from .mamba2 import Mamba2
from .minimal import MinGRU, MinLSTM
from .mlstm import MLSTM
from .registry import (
    cell_kinds,
    cell_options,
    make_cell,
    register_cell,
    unregister_cell,
)
from .rglru import RGLRU
from .rnn import RNN
from .slstm import SLSTM
from .stacked import Stacked

for _cls in (RNN, GRU, LSTM, IndRNN, LRU, MinGRU, MinLSTM, CoRNN, SLSTM, Mamba, Mamba2, MLSTM, GatedDeltaNet, RGLRU):
    register_cell(_cls)

__all__ = ["Cell", "Init", "freeze", "sigmoid", "make_cell", "register_cell", "cell_kinds",
           "cell_options", "check_cell", "CellCheck", "check_jacobian", "unregister_cell", "reference_jacobian",
           "JacobianCheck", "RNN", "GRU", "LSTM", "IndRNN", "LRU", "MinGRU", "MinLSTM", "CoRNN", "SLSTM",
           "Mamba", "Mamba2", "MLSTM", "GatedDeltaNet", "RGLRU", "Stacked"]
