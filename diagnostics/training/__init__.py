"""BPTT training of a cell plus linear read-out on a task, with tracking callbacks."""
from .bptt import (
                   Gradients,
                   Trace,
                   backward_through_time,
                   full_loss,
                   loss_and_grads,
                   recurrent_names,
                   temporal_components,
)
from .callbacks import Checkpoints, GradFlow, History, StepInfo, TemporalComponents
from .optim import SGD, Adam, clip_, global_norm, make_optimizer
from .readout import init_readout
from .trainer import TrainResult, evaluate, train

__all__ = ["train", "TrainResult", "evaluate", "full_loss", "loss_and_grads",
           "backward_through_time", "temporal_components", "recurrent_names", "Gradients", "Trace",
           "StepInfo", "History", "Checkpoints", "GradFlow", "TemporalComponents",
           "SGD", "Adam", "clip_", "global_norm", "make_optimizer", "init_readout"]
