"""The optional dependencies, in one place: what to install when a feature needs one.

    torch = import_torch("from_module")   # the module, or OptionalMissing in one line:
                                          # "from_module needs PyTorch: pip install 'gradient-diagnostics[torch]'"

`import diagnostics` and `diag run` on a shipped case need none of these; each is imported
only by the feature that uses it, when it runs.
"""
from __future__ import annotations

import importlib

from .errors import DiagnosticsError

# module -> (what it is, the extra that installs it)
EXTRAS = {"torch": ("PyTorch", "torch"), "transformers": ("transformers", "hf")}


class OptionalMissing(DiagnosticsError, ImportError):
    """A feature that needs an optional dependency was used where it is not installed (one
    line). An ImportError, which is what a missing module is, and a DiagnosticsError, so the
    commands say it as their other errors."""


def install_hint(module: str) -> str:
    return f"pip install 'gradient-diagnostics[{EXTRAS[module][1]}]'"


def require(module: str, what: str):
    """The module, or OptionalMissing("<what> needs <name>: pip install ...")."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OptionalMissing(f"{what} needs {EXTRAS[module][0]}: {install_hint(module)}") from None


def import_torch(what: str):
    """torch, or OptionalMissing naming `what` and the install command."""
    return require("torch", what)
