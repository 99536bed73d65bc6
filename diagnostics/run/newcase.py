"""`diag new NAME`: a commented case file to start from (it validates and runs as written)."""
from __future__ import annotations

from pydantic_core import PydanticCustomError

from .schema import safe_name

TEMPLATE = """\
# A gradient-diagnostics case. Check it with `diag validate {name}.yaml`, run it with
# `diag run {name}.yaml` (report in reports/{name}/index.html). `diag list` shows every cell
# and task option; `diag schema` prints the JSON Schema for editors.
name: {name}                 # the report folder: reports/{name}/
description: A tanh RNN against an LSTM on the adding task (about 10 s on 2 cores).
seed: 0                      # same case + seed -> byte-identical curves.json

task:                        # copy | adding | temporal_order | latch | tariff_shock | none
  kind: adding
  length: 30                 # steps per sequence; the marked values sit in each half

cells:                       # one entry per cell to compare; labels default to the kind
  - kind: rnn
    label: tanh RNN
    hidden: 16
    activation: tanh         # tanh | relu | linear
    recurrent_init: {{kind: orthogonal, gain: 1.0}}   # gaussian | orthogonal | identity | uniform | zeros
  - kind: lstm
    hidden: 16
    forget_bias: 1.0         # Γ_f = σ(1) ≈ 0.73 at initialisation: a memory of ~3 steps
  # - kind: gru
  #   hidden: 16

# 250 steps are enough for the LSTM to learn the task and too few for the tanh RNN, whose
# gradient from the first marked value has fallen by several decades: the contrast this
# tool exists to show (the tanh RNN stays near the memoryless loss 0.167)
train:                       # leave out to probe the cells at initialisation only
  steps: 250
  batch: 32
  optimizer: {{kind: adam, lr: 0.01}}    # or {{kind: sgd, lr: 0.01, momentum: 0.9}}
  clip: 1.0                  # gradient-norm clipping threshold
  checkpoints: [0, 250]      # the probe runs at each of these steps

probe:
  lags: 60                   # K: curves of log10 ||d a<t>/d a<t-k>|| for k = 1..K
  sequences: 8               # probe batch; curves show the median and quartiles
  norms: [spectral, frobenius]
  lyapunov: 8                # top Lyapunov exponents (0: off)
  tk_map: {{anchors: 4}}       # the (t, k) map at 4 anchors (0: off)
  # sensitivity: true        # also d a<t>/dθ of the recurrent weights, by lag (figures 10, 11)

report:
  title: "{name}: RNN against LSTM"

# baseline: baselines/{name}.json   # default: baselines/<name>.json beside this file
# tolerances: {{decades: 0.05}}       # regression tolerances (see `diag schema`)
"""


def safe_case_name(name: str) -> str | None:
    """None if `name` is a usable case name, else the problem in words."""
    try:
        safe_name(name)
    except PydanticCustomError as e:
        return e.message()
    return None


def new_case_text(name: str) -> str:
    return TEMPLATE.format(name=name)
