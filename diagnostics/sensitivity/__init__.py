"""The state's sensitivity to its recurrent parameters, by lag, and the closed forms it is
checked against (Zucchet & Orvieto 2024, "the curse of memory"; REFERENCES item 22)."""
from .chain import SensitivityResult, state_sensitivity

__all__ = ["SensitivityResult", "state_sensitivity"]
