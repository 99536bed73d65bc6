"""One way to print a number in tables and pages: None as a dash, ±inf and nan in words."""
from __future__ import annotations

import math


def fmt(v, spec: str = ".4g", none: str = "-") -> str:
    if v is None:
        return none
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        if isinstance(v, float) and math.isnan(v):
            return "nan"
        if isinstance(v, float) and math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return format(v, spec)
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x, spec, none) for x in v)
    return str(v)
