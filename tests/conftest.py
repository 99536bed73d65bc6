"""Fixtures shared by the test modules: a tiny case and the contract example as fresh copies, a
case file writer, the cell registry put back as it was, the umask under test, and a process
quiet enough to fork the probe's workers. pytest finds them here; no test module imports
another (tests/test_architecture.py checks). Helpers that are plain code rather than fixtures
are the modules of this folder without the test_ prefix (cell_cases.py, sweep_helpers.py, ...)."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml

from diagnostics.cells import cell_kinds, unregister_cell
from diagnostics.probing import parallel

# one tanh RNN of 3 units on a short copy task: trains and probes in well under a second
TINY = {"name": "tiny", "seed": 3, "task": {"kind": "copy", "delay": 4, "symbols": 2, "alphabet": 3},
        "cells": [{"kind": "rnn", "hidden": 3}], "train": {"steps": 4, "batch": 4, "checkpoints": [0, 4]},
        "probe": {"lags": 8, "sequences": 4, "lyapunov": 2, "lyapunov_steps": 30, "tk_map": {"anchors": 0}}}

# the case file contract's example (200 lags > a 120-step copy episode)
CONTRACT = """\
name: rnn-vs-lstm-copy
description: Plain RNN against gated memory on the copy task.
seed: 0
task: {kind: copy, delay: 100, symbols: 10, alphabet: 8}
cells:
  - {kind: rnn, label: tanh RNN, hidden: 64, activation: tanh, recurrent_init: {kind: orthogonal, gain: 1.0}}
  - {kind: gru, hidden: 64}
  - {kind: lstm, hidden: 64, forget_bias: 1.0}
train: {steps: 500, batch: 32, optimizer: {kind: adam, lr: 0.001}, clip: 1.0, checkpoints: [0, 100, 500]}
probe: {lags: 200, sequences: 16, norms: [spectral, frobenius], lyapunov: 8}
"""


@pytest.fixture(scope="session")
def tiny_case():
    """tiny_case(**changes): a fresh copy of TINY, the given top-level keys replaced."""
    def make(**changes) -> dict:
        return {**copy.deepcopy(TINY), **changes}
    return make


@pytest.fixture(scope="session")
def contract_yaml() -> str:
    """The contract example's text (CONTRACT)."""
    return CONTRACT


@pytest.fixture(scope="session")
def contract_case():
    """contract_case(): a fresh dict of the contract example (CONTRACT)."""
    return lambda: yaml.safe_load(CONTRACT)


@pytest.fixture(scope="session")
def write_case():
    """write_case(folder, data, name="case.yaml"): the case as a YAML file (a str is written as
    it is); its path."""
    def write(folder: Path, data, name: str = "case.yaml") -> Path:
        p = Path(folder) / name
        p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
        return p
    return write


@pytest.fixture
def clean_registry():
    """Whatever cell kinds the test registers are unregistered after it."""
    before = set(cell_kinds())
    yield
    for k in set(cell_kinds()) - before:
        unregister_cell(k)


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    """The process umask for the test (restored after it)."""
    set_umask = os.umask            # forbid_umask replaces os.umask by a trap
    old = set_umask(request.param)
    yield request.param
    set_umask(old)


@pytest.fixture
def forbid_umask(monkeypatch):
    """From here on, any call to os.umask fails the test: it both reads and sets the
    process-wide mask, so setting it, even for a moment, races with every other thread creating
    files."""
    def refuse(mask):
        raise AssertionError(f"os.umask({mask:#o}) called")
    return lambda: monkeypatch.setattr(os, "umask", refuse)


@pytest.fixture
def quiet_process():
    """A process that forks the probe's workers, else the test skips. One that an earlier test
    made busy (torch's OpenMP runtime, loaded by the PyTorch tests, stays for the session)
    cannot; test_fork_path_tests_pass_in_a_fresh_process (test_probe_parallel.py) runs the
    tests of the forked path where nothing else has run."""
    parallel._PROCESS.reset()   # a fresh look at the thread pools, not a view kept from earlier tests
    if not parallel.fork_allowed():
        pytest.skip("this test process does not fork workers (another platform, or an earlier test loaded a thread runtime)")
