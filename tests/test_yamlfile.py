"""diagnostics/yamlfile.py: hostile YAML (aliases, alias bombs, deep nesting, files over the
limit, a FIFO) is refused quickly, in one line; numbers are read as YAML 1.2 reads them
(1e-3 is a float)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

# --- hostile YAML is refused quickly, with one line -------------------------------------------

def _alias_bomb(levels: int) -> str:
    """~500 bytes at 7 levels: each level lists the previous one ten times, so a walk that does
    not notice shared nodes visits 10^7 of them (the old duplicate-key check took ~25 s)."""
    lines = ["name: bomb", "task: {kind: none}", "cells: [{kind: rnn}]", "l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def _read_in_time(path, budget=1.0):
    """read_yaml(path): the data, or the CaseError's lines; fails if it took `budget` s or more
    of CPU time (not wall time: other jobs on a shared machine must not make this flaky)."""
    import time

    from diagnostics.errors import CaseError
    from diagnostics.yamlfile import read_yaml
    t0 = time.process_time()
    try:
        out = read_yaml(path)
    except CaseError as e:
        out = e.lines
    took = time.process_time() - t0
    assert took < budget, f"{path.name}: {took:.2f} s"
    return out


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(_alias_bomb(7))
    assert p.stat().st_size < 600
    lines = _read_in_time(p)
    assert lines == [f"{p}: YAML error at line 5, column 10: aliases (*l0) are not supported in case files; "
                     "write the value out"]


@pytest.mark.parametrize("text", [
    "name: x\nnotes: &n hello\nother: *n\n",           # harmless, but no shipped case needs them
    "name: x\nl: &l [*l]\n",                            # a cycle
])
def test_every_alias_is_refused(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    lines = _read_in_time(p)
    assert len(lines) == 1 and "aliases" in lines[0] and "are not supported in case files" in lines[0]


@pytest.mark.parametrize("kind", ["dense list", "deep nesting", "over 1 MB"])
def test_any_file_reads_or_is_refused_within_a_second(tmp_path, kind):
    """Dense scalars cost the YAML reader the most per byte: the largest file accepted must still
    read in well under a second; anything larger, or nested absurdly deep, is one line."""
    from diagnostics.yamlfile import MAX_BYTES
    p = tmp_path / "c.yaml"
    if kind == "dense list":
        head = "name: x\nanchors: ["
        p.write_text(head + ", ".join(["0"] * ((MAX_BYTES - len(head) - 2) // 3)) + "]\n")
        assert MAX_BYTES - 4 <= p.stat().st_size <= MAX_BYTES
        data = _read_in_time(p)
        assert data["name"] == "x" and set(data["anchors"]) == {0}
    elif kind == "deep nesting":
        p.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
        lines = _read_in_time(p)       # libyaml's scanner may meet its own limit (1000) first
        assert len(lines) == 1 and re.search("nested too deeply|exceeded maximum nesting depth", lines[0]), lines
        p.write_text("name:\n" + "".join(" " * i + "- \n" for i in range(1, 40)))
        assert _read_in_time(p) == [f"{p}: YAML error at line 33, column 33: nested too deeply (more than 32 levels)"]
    else:
        p.write_text("name: x\nnotes: '" + "a" * 1_100_000 + "'\n")
        assert _read_in_time(p) == [f"{p}: {p.stat().st_size} bytes; a case file holds at most "
                                    f"{MAX_BYTES // 1024} KiB"]



@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.slow
def test_a_case_file_that_is_a_fifo_is_one_line_not_a_wait(tmp_path):
    """A FIFO with no writer blocked `diag validate` forever in open() (weight files already
    refused FIFOs). Run in a child process, so that a hang fails the test instead of the run."""
    import subprocess
    import sys
    os.mkfifo(tmp_path / "case.yaml")
    root = Path(__file__).resolve().parents[1]
    try:
        res = subprocess.run([sys.executable, "-m", "diagnostics.cli", "validate", str(tmp_path / "case.yaml")],
                             capture_output=True, text=True, timeout=30, cwd=root,
                             env={**os.environ, "PYTHONPATH": str(root)})
    except subprocess.TimeoutExpired:
        pytest.fail("diag validate waited on the FIFO")
    assert res.returncode == 2, res.stderr
    assert res.stderr == (f"error: {tmp_path / 'case.yaml'}: not a regular file (a pipe or a device); "
                          "a case file must be a file\n")


# --- YAML 1.2 numbers ------------------------------------------------------------------------

def test_exponent_notation_reads_as_a_number(tmp_path):
    """PyYAML follows YAML 1.1, where a float needs a dot and a signed exponent: 1e-3 was the
    string '1e-3' (and 'lr: must be a number'). YAML 1.2 reads all of these as floats."""
    from diagnostics.yamlfile import read_yaml
    p = tmp_path / "c.yaml"
    p.write_text("a: 1e-3\nb: 1e6\nc: 5E-4\nd: -2.5e+3\ne: +1.5e3\nf: .5e-2\ng: 2.e1\n"
                 "h: 1.0\ni: 1\nj: 1_000\nk: .inf\nl: 1.0e-3\n")
    got = read_yaml(p)
    assert got == {"a": 1e-3, "b": 1e6, "c": 5e-4, "d": -2.5e3, "e": 1.5e3, "f": 0.5e-2, "g": 20.0,
                   "h": 1.0, "i": 1, "j": 1000, "k": float("inf"), "l": 1e-3}
    assert [type(got[k]) for k in "abcdefghijkl"] == [float] * 7 + [float, int, int, float, float]


def test_only_exponent_numbers_become_numbers(tmp_path):
    from diagnostics.yamlfile import read_yaml
    p = tmp_path / "c.yaml"
    p.write_text("name: 1e5abc\nq: '1e-3'\nqq: \"1e6\"\ne: e5\nf: 1e\ng: 1e+\nh: 1.5e3.2\n"
                 "i: 1e-3 m\nj: 0x1e3\n1e3x: key\n")
    got = read_yaml(p)
    assert got == {"name": "1e5abc", "q": "1e-3", "qq": "1e6", "e": "e5", "f": "1e", "g": "1e+",
                   "h": "1.5e3.2", "i": "1e-3 m", "j": 0x1e3, "1e3x": "key"}


def test_a_case_with_lr_1e_3_validates(tmp_path):
    from diagnostics.run.spec import resolve
    p = tmp_path / "c.yaml"
    p.write_text("name: c\ntask: {kind: copy}\ncells: [{kind: rnn, hidden: 4}]\n"
                 "train: {steps: 2, optimizer: {kind: adam, lr: 1e-3}}\n")
    assert resolve(p).case.train.optimizer.lr == 1e-3
